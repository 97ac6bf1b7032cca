#!/usr/bin/env python3
"""Conformance scenarios driving boto3 (with its DEFAULT checksum behaviour:
CRC32 on every upload, response validation on ChecksumMode=ENABLED) against
Strata, path-style addressing, us-east-1.

Run through conformance/run.sh, which starts the server and sets the
environment (see harness.py). STRATA_BIN must point at the strata binary for
the second-principal scenario (`strata key create`).
"""

import base64
import hashlib
import io
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
import zlib
from concurrent.futures import ThreadPoolExecutor

import boto3
import botocore
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError

from harness import Failure, Suite, check, deviation, eq, fail, tail, tamper_presigned

suite = Suite("boto3")
ENDPOINT = suite.endpoint
MIB = 1024 * 1024
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IMAGES = os.environ.get("STRATA_TESTDATA", os.path.join(ROOT, "..", "shared", "testdata", "images"))


def make_client(access_key=None, secret_key=None, signature_version=None):
    # Deliberately no request_checksum_calculation / response_checksum_validation:
    # the defaults (when_supported) are what real users run.
    session = boto3.session.Session(
        aws_access_key_id=access_key or suite.access_key,
        aws_secret_access_key=secret_key or suite.secret_key,
        region_name="us-east-1",
    )
    return session.client(
        "s3",
        endpoint_url=ENDPOINT,
        config=Config(
            s3={"addressing_style": "path"},
            retries={"max_attempts": 2, "mode": "standard"},
            connect_timeout=10,
            read_timeout=120,
            max_pool_connections=16,
            signature_version=signature_version,
        ),
    )


# Keep boto3 away from the user's ~/.aws and any AWS_* in the environment.
for _k in [k for k in os.environ if k.startswith("AWS_")]:
    del os.environ[_k]
os.environ["AWS_CONFIG_FILE"] = "/dev/null"
os.environ["AWS_SHARED_CREDENTIALS_FILE"] = "/dev/null"
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"

s3 = make_client()


def new_bucket(hint, client=None):
    name = suite.bucket_name(hint)
    (client or s3).create_bucket(Bucket=name)
    return name


def expect_client_error(fn, code=None, status=None, what=""):
    """Call fn(); it must raise botocore ClientError with the given code/status."""
    try:
        result = fn()
    except ClientError as e:
        got_code = e.response.get("Error", {}).get("Code")
        got_status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code is not None and got_code != code:
            fail(what or "error code", f"ClientError {code}" + (f" (HTTP {status})" if status else ""),
                 f"ClientError {got_code} (HTTP {got_status}): {e}")
        if status is not None and got_status != status:
            fail(what or "error status", f"HTTP {status}" + (f" {code}" if code else ""),
                 f"HTTP {got_status} {got_code}: {e}")
        return e
    fail(what or "request should fail", f"ClientError {code or ''} (HTTP {status or '?'})",
         f"success: {tail(repr(result), 400)}")


def md5_etag(data):
    return '"' + hashlib.md5(data).hexdigest() + '"'


def b64(raw):
    return base64.b64encode(raw).decode()


def http(url, method="GET", data=None, headers=None):
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def all_keys(bucket, prefix=""):
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys += [o["Key"] for o in page.get("Contents", [])]
    return keys


# --------------------------------------------------------------------------
# scenarios
# --------------------------------------------------------------------------

@suite.scenario
def put_get_head_roundtrip():
    bucket = new_bucket("pgh")
    data = os.urandom(54321)
    out = s3.put_object(Bucket=bucket, Key="obj.bin", Body=data, ContentType="application/x-test",
                        Metadata={"Alpha": "one", "beta": "two words"})
    eq(out.get("ETag"), md5_etag(data), "put_object ETag (MD5)")
    got = s3.get_object(Bucket=bucket, Key="obj.bin")
    body = got["Body"].read()
    check(body == data, "get_object body", f"{len(data)} identical bytes", f"{len(body)} bytes, differ")
    eq(got.get("ContentLength"), len(data), "get_object ContentLength")
    eq(got.get("ContentType"), "application/x-test", "get_object ContentType")
    eq(got.get("Metadata"), {"alpha": "one", "beta": "two words"}, "get_object Metadata (keys lower-cased)")
    h = s3.head_object(Bucket=bucket, Key="obj.bin")
    eq(h.get("ContentLength"), len(data), "head_object ContentLength")
    eq(h.get("ETag"), md5_etag(data), "head_object ETag")
    check(h.get("LastModified") is not None, "head_object LastModified", "a timestamp", h.get("LastModified"))
    # zero-byte object
    s3.put_object(Bucket=bucket, Key="empty", Body=b"")
    got = s3.get_object(Bucket=bucket, Key="empty")
    eq(got["Body"].read(), b"", "zero-byte object body")
    eq(got.get("ContentLength"), 0, "zero-byte object ContentLength")
    eq(got.get("ETag"), md5_etag(b""), "zero-byte object ETag")
    # overwrite
    s3.put_object(Bucket=bucket, Key="obj.bin", Body=b"v2")
    eq(s3.get_object(Bucket=bucket, Key="obj.bin")["Body"].read(), b"v2", "body after overwrite")
    eq(s3.head_object(Bucket=bucket, Key="obj.bin").get("Metadata"), {}, "metadata after overwrite without any")


@suite.scenario
def tricky_key_names_roundtrip():
    bucket = new_bucket("keys")
    keys = ["a b c", "ünïcødé/日本語.txt", "plus+sign", "percent%20literal", "q?x=1&y=2", "tilde~",
            "semi;colon,comma", "dir//double-slash", "trailing-dot.", "star*(paren)", "emoji-🙂",
            "hash#frag", "back\\slash", "quote'\"", "x" * 900]
    for k in keys:
        s3.put_object(Bucket=bucket, Key=k, Body=k.encode())
    listed = all_keys(bucket)
    eq(listed, sorted(keys, key=lambda s: s.encode()), "list_objects_v2 returns every tricky key, in byte order")
    for k in keys:
        eq(s3.get_object(Bucket=bucket, Key=k)["Body"].read(), k.encode(), f"body of key {k[:40]!r}")
    v1 = [o["Key"] for o in s3.list_objects(Bucket=bucket).get("Contents", [])]
    eq(v1, listed, "list_objects (v1) keys")


@suite.scenario
def list_paginator_over_1000_keys():
    bucket = new_bucket("paginate")
    n = 1234
    keys = [f"many/{i:05d}" for i in range(n)] + ["other/x"]

    def put(k):
        s3.put_object(Bucket=bucket, Key=k, Body=b"")

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(put, keys))
    pages = list(s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="many/"))
    got = [o["Key"] for p in pages for o in p.get("Contents", [])]
    eq(len(pages), 2, "number of list_objects_v2 pages for 1234 keys (1000 per page)")
    eq(pages[0].get("KeyCount"), 1000, "KeyCount of page 1")
    eq(pages[0].get("IsTruncated"), True, "IsTruncated of page 1")
    eq(got, keys[:n], "keys over all list_objects_v2 pages")
    pages = list(s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, PaginationConfig={"PageSize": 100}))
    eq(len(pages), 13, "pages with PageSize=100 for 1235 keys")
    eq(sum(len(p.get("Contents", [])) for p in pages), n + 1, "keys over PageSize=100 pages")
    pages = list(s3.get_paginator("list_objects").paginate(Bucket=bucket, Prefix="many/"))
    got = [o["Key"] for p in pages for o in p.get("Contents", [])]
    eq(got, keys[:n], "keys over all list_objects (v1, Marker) pages")
    # delimiter over many keys: one prefix per directory
    pages = list(s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Delimiter="/"))
    prefixes = [c["Prefix"] for p in pages for c in p.get("CommonPrefixes", [])]
    eq(prefixes, ["many/", "other/"], "CommonPrefixes over 1235 keys")
    # clean up with quiet delete_objects in batches of 1000
    for i in range(0, len(keys), 1000):
        batch = keys[i:i + 1000]
        out = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True})
        eq(out.get("Errors", []), [], "delete_objects errors")
    eq(all_keys(bucket), [], "keys left after deleting all")


@suite.scenario
def delete_and_delete_objects_quiet():
    bucket = new_bucket("delete")
    for k in ["a", "b", "c", "d"]:
        s3.put_object(Bucket=bucket, Key=k, Body=k.encode())
    out = s3.delete_object(Bucket=bucket, Key="a")
    eq(out["ResponseMetadata"]["HTTPStatusCode"], 204, "delete_object status")
    expect_client_error(lambda: s3.get_object(Bucket=bucket, Key="a"), "NoSuchKey", 404, "get after delete")
    out = s3.delete_object(Bucket=bucket, Key="never-existed")
    eq(out["ResponseMetadata"]["HTTPStatusCode"], 204, "delete_object of a missing key (idempotent)")
    out = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "b"}, {"Key": "c"}, {"Key": "zz"}],
                                                   "Quiet": True})
    eq(out.get("Deleted", []), [], "Deleted entries with Quiet=True (only errors are reported)")
    eq(out.get("Errors", []), [], "Errors with Quiet=True")
    eq(all_keys(bucket), ["d"], "keys left after quiet delete_objects")
    out = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "d"}]})
    eq([d["Key"] for d in out.get("Deleted", [])], ["d"], "Deleted entries without Quiet")
    eq(all_keys(bucket), [], "bucket empty")
    s3.delete_bucket(Bucket=bucket)
    expect_client_error(lambda: s3.head_bucket(Bucket=bucket), "404", 404, "head_bucket after delete_bucket")


@suite.scenario
def delete_non_empty_bucket_fails():
    bucket = new_bucket("nonempty")
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    expect_client_error(lambda: s3.delete_bucket(Bucket=bucket), "BucketNotEmpty", 409)
    eq(s3.get_object(Bucket=bucket, Key="k")["Body"].read(), b"x", "object survives failed delete_bucket")


@suite.scenario
def copy_object_same_and_cross_bucket():
    src_bucket = new_bucket("copy-src")
    dst_bucket = new_bucket("copy-dst")
    data = os.urandom(10000)
    src_key = "dir/src ünï+code.bin"
    s3.put_object(Bucket=src_bucket, Key=src_key, Body=data, ContentType="image/x-test",
                  Metadata={"origin": "src"}, CacheControl="no-cache")
    # same bucket, default (COPY) directive
    out = s3.copy_object(Bucket=src_bucket, Key="copy1", CopySource={"Bucket": src_bucket, "Key": src_key})
    eq(out.get("CopyObjectResult", {}).get("ETag"), md5_etag(data), "CopyObjectResult ETag")
    h = s3.head_object(Bucket=src_bucket, Key="copy1")
    eq((h.get("Metadata"), h.get("ContentType"), h.get("CacheControl")),
       ({"origin": "src"}, "image/x-test", "no-cache"), "metadata/content-type/cache-control after COPY")
    # cross bucket, REPLACE
    s3.copy_object(Bucket=dst_bucket, Key="copy2", CopySource={"Bucket": src_bucket, "Key": src_key},
                   MetadataDirective="REPLACE", Metadata={"new": "yes"}, ContentType="text/plain")
    h = s3.head_object(Bucket=dst_bucket, Key="copy2")
    eq((h.get("Metadata"), h.get("ContentType")), ({"new": "yes"}, "text/plain"),
       "metadata/content-type after cross-bucket REPLACE copy")
    eq(s3.get_object(Bucket=dst_bucket, Key="copy2")["Body"].read(), data, "cross-bucket copy body")
    # cross bucket, explicit COPY
    s3.copy_object(Bucket=dst_bucket, Key="copy3", CopySource=f"{src_bucket}/{src_key}",
                   MetadataDirective="COPY")
    eq(s3.head_object(Bucket=dst_bucket, Key="copy3").get("Metadata"), {"origin": "src"},
       "metadata after cross-bucket COPY (string CopySource)")
    # in-place metadata update (copy onto itself with REPLACE)
    s3.copy_object(Bucket=dst_bucket, Key="copy2", CopySource={"Bucket": dst_bucket, "Key": "copy2"},
                   MetadataDirective="REPLACE", Metadata={"updated": "1"}, ContentType="text/plain")
    h = s3.head_object(Bucket=dst_bucket, Key="copy2")
    eq(h.get("Metadata"), {"updated": "1"}, "metadata after self-copy with REPLACE")
    eq(s3.get_object(Bucket=dst_bucket, Key="copy2")["Body"].read(), data, "body after self-copy")
    # missing source
    expect_client_error(lambda: s3.copy_object(Bucket=dst_bucket, Key="x",
                                               CopySource={"Bucket": src_bucket, "Key": "missing"}),
                        "NoSuchKey", 404, "copy of a missing source")


@suite.scenario
def multipart_three_parts():
    bucket = new_bucket("mpu")
    parts_data = [os.urandom(5 * MIB), os.urandom(5 * MIB), os.urandom(1024)]
    mpu = s3.create_multipart_upload(Bucket=bucket, Key="big/mp.bin", ContentType="application/x-mp",
                                     Metadata={"kind": "multipart"})
    uid = mpu["UploadId"]
    parts = []
    for i, chunk in enumerate(parts_data, start=1):
        out = s3.upload_part(Bucket=bucket, Key="big/mp.bin", UploadId=uid, PartNumber=i, Body=chunk)
        eq(out.get("ETag"), md5_etag(chunk), f"upload_part {i} ETag")
        parts.append({"ETag": out["ETag"], "PartNumber": i})
    listed = s3.list_parts(Bucket=bucket, Key="big/mp.bin", UploadId=uid).get("Parts", [])
    eq([(p["PartNumber"], p["Size"]) for p in listed], [(1, 5 * MIB), (2, 5 * MIB), (3, 1024)], "list_parts")
    out = s3.complete_multipart_upload(Bucket=bucket, Key="big/mp.bin", UploadId=uid,
                                       MultipartUpload={"Parts": parts})
    etag = out.get("ETag", "")
    check(etag.endswith('-3"'), "complete_multipart_upload ETag ends with -3", '"...-3"', etag)
    expected = '"' + hashlib.md5(b"".join(hashlib.md5(c).digest() for c in parts_data)).hexdigest() + '-3"'
    eq(etag, expected, "multipart ETag = md5(concat(part md5s))-3")
    whole = b"".join(parts_data)
    got = s3.get_object(Bucket=bucket, Key="big/mp.bin")
    body = got["Body"].read()
    check(body == whole, "multipart object body", f"{len(whole)} identical bytes", f"{len(body)} bytes, differ")
    eq(got.get("ETag"), expected, "get_object ETag of the multipart object")
    eq(got.get("ContentType"), "application/x-mp", "ContentType from create_multipart_upload")
    eq(got.get("Metadata"), {"kind": "multipart"}, "Metadata from create_multipart_upload")
    # ranged read across the part boundary
    rng = s3.get_object(Bucket=bucket, Key="big/mp.bin", Range=f"bytes={5 * MIB - 10}-{5 * MIB + 9}")
    eq(rng["Body"].read(), whole[5 * MIB - 10:5 * MIB + 10], "range across a part boundary")


@suite.scenario
def multipart_small_part_rejected():
    bucket = new_bucket("mpu-small")
    uid = s3.create_multipart_upload(Bucket=bucket, Key="k")["UploadId"]
    parts = []
    for i in (1, 2):
        out = s3.upload_part(Bucket=bucket, Key="k", UploadId=uid, PartNumber=i, Body=b"x" * 1024)
        parts.append({"ETag": out["ETag"], "PartNumber": i})
    expect_client_error(lambda: s3.complete_multipart_upload(Bucket=bucket, Key="k", UploadId=uid,
                                                             MultipartUpload={"Parts": parts}),
                        "EntityTooSmall", 400, "complete with a non-last part under 5 MiB")
    bad = [{"ETag": '"00000000000000000000000000000000"', "PartNumber": 1}]
    expect_client_error(lambda: s3.complete_multipart_upload(Bucket=bucket, Key="k", UploadId=uid,
                                                             MultipartUpload={"Parts": bad}),
                        "InvalidPart", 400, "complete with a wrong part ETag")
    s3.abort_multipart_upload(Bucket=bucket, Key="k", UploadId=uid)
    expect_client_error(lambda: s3.head_object(Bucket=bucket, Key="k"), "404", 404, "no object after abort")


class NonSeekableStream(io.RawIOBase):
    """A read-only, non-seekable stream (like a pipe) of deterministic bytes."""

    def __init__(self, size, seed=b"strata"):
        self.remaining = size
        self.sha = hashlib.sha256()
        self.block = hashlib.sha512(seed).digest() * 2048  # 128 KiB pattern
        self.counter = 0

    def readable(self):
        return True

    def readinto(self, buf):
        if self.remaining <= 0:
            return 0
        n = min(len(buf), self.remaining, len(self.block))
        self.counter += 1
        chunk = self.block[:n - 8] + self.counter.to_bytes(8, "big") if n > 8 else self.block[:n]
        buf[:n] = chunk
        self.sha.update(chunk)
        self.remaining -= n
        return n


@suite.scenario
def transfer_manager_upload_fileobj_stream():
    bucket = new_bucket("transfer")
    size = 20 * MIB + 12345
    stream = io.BufferedReader(NonSeekableStream(size), buffer_size=64 * 1024)
    cfg = TransferConfig(preferred_transfer_client="classic", multipart_threshold=8 * MIB,
                         multipart_chunksize=8 * MIB, max_concurrency=4)
    s3.upload_fileobj(stream, bucket, "stream.bin", Config=cfg)
    h = s3.head_object(Bucket=bucket, Key="stream.bin")
    eq(h.get("ContentLength"), size, "ContentLength of the streamed upload")
    check(h.get("ETag", "").endswith('-3"'), "ETag of a 3-part TransferManager upload", '"...-3"', h.get("ETag"))
    out = io.BytesIO()
    s3.download_fileobj(bucket, "stream.bin", out, Config=cfg)
    eq(hashlib.sha256(out.getvalue()).hexdigest(), stream.raw.sha.hexdigest(),
       "sha256 of download_fileobj vs the uploaded stream")


@suite.scenario
def conditional_get():
    bucket = new_bucket("cond")
    data = b"conditional"
    etag = s3.put_object(Bucket=bucket, Key="c", Body=data)["ETag"]
    e = expect_client_error(lambda: s3.get_object(Bucket=bucket, Key="c", IfNoneMatch=etag), "304", 304,
                            "get_object IfNoneMatch=<current etag>")
    e = expect_client_error(lambda: s3.get_object(Bucket=bucket, Key="c", IfMatch='"0123456789abcdef0123456789abcdef"'),
                            "PreconditionFailed", 412, "get_object IfMatch=<wrong etag>")
    eq(s3.get_object(Bucket=bucket, Key="c", IfMatch=etag)["Body"].read(), data, "get_object IfMatch=<right etag>")
    eq(s3.get_object(Bucket=bucket, Key="c", IfNoneMatch='"ffff"')["Body"].read(), data,
       "get_object IfNoneMatch=<other etag>")
    lm = s3.head_object(Bucket=bucket, Key="c")["LastModified"]
    expect_client_error(lambda: s3.get_object(Bucket=bucket, Key="c", IfModifiedSince=lm), "304", 304,
                        "get_object IfModifiedSince=<LastModified>")
    expect_client_error(lambda: s3.head_object(Bucket=bucket, Key="c", IfMatch='"00"'), "412", 412,
                        "head_object IfMatch=<wrong etag>")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


def website_get(bucket, path, method="GET"):
    """An unsigned request to the website endpoint (Host: <bucket>.s3-website.localhost);
    redirects are returned, not followed. Returns (status, headers, body)."""
    port = urllib.parse.urlsplit(ENDPOINT).port
    req = urllib.request.Request(ENDPOINT + path, method=method,
                                 headers={"Host": f"{bucket}.s3-website.localhost:{port}"})
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(req, timeout=60) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


@suite.scenario
def static_website_config_and_pages():
    bucket = new_bucket("website")
    expect_client_error(lambda: s3.get_bucket_website(Bucket=bucket), "NoSuchWebsiteConfiguration", 404)
    config = {
        "IndexDocument": {"Suffix": "index.html"},
        "ErrorDocument": {"Key": "error.html"},
        "RoutingRules": [{"Condition": {"KeyPrefixEquals": "old/"},
                          "Redirect": {"ReplaceKeyPrefixWith": "new/", "HttpRedirectCode": "302"}}],
    }
    s3.put_bucket_website(Bucket=bucket, WebsiteConfiguration=config)
    got = s3.get_bucket_website(Bucket=bucket)
    eq(got.get("IndexDocument"), config["IndexDocument"], "GetBucketWebsite IndexDocument")
    eq(got.get("ErrorDocument"), config["ErrorDocument"], "GetBucketWebsite ErrorDocument")
    eq(got.get("RoutingRules"), config["RoutingRules"], "GetBucketWebsite RoutingRules")
    expect_client_error(lambda: s3.put_bucket_website(
        Bucket=bucket, WebsiteConfiguration={"IndexDocument": {"Suffix": "a/b.html"}}), "InvalidArgument", 400)

    for key, body in [("index.html", b"<h1>home</h1>"), ("docs/index.html", b"<h1>docs</h1>"),
                      ("error.html", b"<h1>oops</h1>")]:
        s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="text/html")
    # Private (Block Public Access on, no policy): the website answers 403.
    status, _, body = website_get(bucket, "/")
    eq(status, 403, "website GET of a private bucket", extra=body)
    s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration={
        "BlockPublicAcls": False, "IgnorePublicAcls": False,
        "BlockPublicPolicy": False, "RestrictPublicBuckets": False})
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                       "Resource": f"arn:aws:s3:::{bucket}/*"}]}))
    status, headers, body = website_get(bucket, "/")
    eq((status, body), (200, b"<h1>home</h1>"), "website index at /")
    eq(headers.get("Content-Type"), "text/html", "Content-Type of the index")
    eq(website_get(bucket, "/docs/")[::2], (200, b"<h1>docs</h1>"), "index in a directory")
    status, headers, _ = website_get(bucket, "/docs")
    eq((status, headers.get("Location")), (302, "/docs/"), "directory without its slash")
    eq(website_get(bucket, "/missing.html")[::2], (404, b"<h1>oops</h1>"), "error document with 404")
    status, headers, _ = website_get(bucket, "/old/page.html")
    port = urllib.parse.urlsplit(ENDPOINT).port
    eq((status, headers.get("Location")), (302, f"http://{bucket}.s3-website.localhost:{port}/new/page.html"),
       "routing rule redirect")
    status, _, body = website_get(bucket, "/index.html", method="HEAD")
    eq((status, body), (200, b""), "HEAD on the website")
    eq(website_get(bucket, "/index.html", method="DELETE")[0], 405, "DELETE on the website")
    eq(s3.get_object(Bucket=bucket, Key="index.html")["Body"].read(), b"<h1>home</h1>",
       "the S3 API still serves the bucket")

    s3.delete_bucket_website(Bucket=bucket)
    expect_client_error(lambda: s3.get_bucket_website(Bucket=bucket), "NoSuchWebsiteConfiguration", 404)
    status, _, body = website_get(bucket, "/")
    eq(status, 404, "website after DeleteBucketWebsite")
    check(b"<li>Code: NoSuchWebsiteConfiguration</li>" in body, "HTML error page names the code",
          "NoSuchWebsiteConfiguration", body[:300])


def _presign_roundtrip(client, want_sigv4):
    bucket = new_bucket("presign")
    data = os.urandom(3000)
    key = "p/ü x.bin"
    s3.put_object(Bucket=bucket, Key=key, Body=data)
    url = client.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=300)
    is_v4 = "X-Amz-Signature=" in url
    if want_sigv4:
        check(is_v4, "generate_presigned_url with signature_version=s3v4 gives SigV4", "X-Amz-Signature=...", url)
    kind = "SigV4" if is_v4 else "SigV2"
    print(f"    presigned with {kind}: {url[:160]}...", flush=True)
    status, body = http(url)
    check(status == 200 and body == data, f"urllib GET of a {kind} presigned URL", "200 + object bytes",
          f"{status}: {tail(body[:300]) if body != data else 'same bytes'}", command=["GET", url])
    for what, bad in tamper_presigned(url).items():
        status, body = http(bad)
        eq(status, 403, f"{kind} presigned GET with {what}: status", command=["GET", bad], extra=body)
    # expired URL
    short = client.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=1)
    time.sleep(2.2)
    status, body = http(short)
    eq(status, 403, f"expired {kind} presigned GET status", command=["GET", short], extra=body)
    # presigned PUT
    # ContentType is part of what SigV2 signs, so presign it and send the same header.
    put_url = client.generate_presigned_url("put_object", ExpiresIn=300, Params={
        "Bucket": bucket, "Key": "uploaded.bin", "ContentType": "application/octet-stream"})
    payload = os.urandom(2000)
    status, body = http(put_url, method="PUT", data=payload, headers={"Content-Type": "application/octet-stream"})
    eq(status, 200, f"{kind} presigned PUT status", command=["PUT", put_url], extra=body)
    got = s3.get_object(Bucket=bucket, Key="uploaded.bin")
    eq(got["Body"].read(), payload, f"object stored through the {kind} presigned PUT")
    eq(got.get("ETag"), md5_etag(payload), f"ETag of the {kind} presigned PUT object")


@suite.scenario
def presigned_get_and_put_sigv4():
    _presign_roundtrip(make_client(signature_version="s3v4"), want_sigv4=True)


@suite.scenario
def presigned_default_config():
    """generate_presigned_url on a client with no signature_version set (what most users run):
    botocore presigns us-east-1 URLs with SigV2, which Strata accepts (expiry enforced)."""
    _presign_roundtrip(s3, want_sigv4=False)


@suite.scenario
def sigv2_header_signing_refused():
    """SigV2 in the Authorization header has no clock-skew check in s3s (a captured request
    could be replayed forever), so Strata refuses it unless `allow_sigv2 = true`."""
    v2 = make_client(signature_version="s3")
    expect_client_error(lambda: v2.list_buckets(), "AccessDenied", 403, "SigV2 header-signed ListBuckets")


def _crc32(data):
    return (zlib.crc32(data) & 0xFFFFFFFF).to_bytes(4, "big")


def _crt_checksum(name, width):
    def compute(data):
        from awscrt import checksums
        return getattr(checksums, name)(data).to_bytes(width, "big")
    return compute


CHECKSUMS = {
    "CRC32": _crc32,
    "CRC32C": _crt_checksum("crc32c", 4),
    "CRC64NVME": _crt_checksum("crc64nvme", 8),
    "SHA1": lambda d: hashlib.sha1(d).digest(),
    "SHA256": lambda d: hashlib.sha256(d).digest(),
}


def _checksum_roundtrip(algorithm):
    bucket = new_bucket("ck-" + algorithm)
    data = os.urandom(64 * 1024 + 7)
    expected = b64(CHECKSUMS[algorithm](data))
    field = "Checksum" + algorithm
    out = s3.put_object(Bucket=bucket, Key="k", Body=data, ChecksumAlgorithm=algorithm)
    eq(out.get(field), expected, f"put_object(ChecksumAlgorithm={algorithm}) response {field}")
    got = s3.get_object(Bucket=bucket, Key="k", ChecksumMode="ENABLED")
    body = got["Body"].read()  # botocore validates the checksum while reading
    eq(body, data, "get_object body")
    eq(got.get(field), expected, f"get_object(ChecksumMode=ENABLED) {field}")
    h = s3.head_object(Bucket=bucket, Key="k", ChecksumMode="ENABLED")
    eq(h.get(field), expected, f"head_object(ChecksumMode=ENABLED) {field}")


@suite.scenario
def checksum_crc32c():
    _checksum_roundtrip("CRC32C")


@suite.scenario
def checksum_crc64nvme():
    _checksum_roundtrip("CRC64NVME")


@suite.scenario
def checksum_sha1():
    _checksum_roundtrip("SHA1")


@suite.scenario
def default_crc32_checksum_is_stored():
    """boto3 sends x-amz-checksum-crc32 on every put by default; S3 keeps it."""
    bucket = new_bucket("ck-default")
    data = os.urandom(1000)
    out = s3.put_object(Bucket=bucket, Key="k", Body=data)
    expected = b64(_crc32(data))
    eq(out.get("ChecksumCRC32"), expected, "put_object (default checksum) response ChecksumCRC32")
    got = s3.get_object(Bucket=bucket, Key="k", ChecksumMode="ENABLED")
    eq(got["Body"].read(), data, "get_object body")
    eq(got.get("ChecksumCRC32"), expected, "get_object(ChecksumMode=ENABLED) ChecksumCRC32 of a default put")


@suite.scenario
def wrong_checksum_rejected_and_nothing_stored():
    bucket = new_bucket("baddigest")
    data = b"the real payload"
    wrong_md5 = b64(hashlib.md5(b"something else").digest())
    expect_client_error(lambda: s3.put_object(Bucket=bucket, Key="md5", Body=data, ContentMD5=wrong_md5),
                        "BadDigest", 400, "put_object with a wrong Content-MD5")
    expect_client_error(lambda: s3.head_object(Bucket=bucket, Key="md5"), "404", 404,
                        "nothing stored after BadDigest (Content-MD5)")
    wrong_crc = b64(_crc32(b"something else"))
    expect_client_error(lambda: s3.put_object(Bucket=bucket, Key="crc", Body=data, ChecksumCRC32=wrong_crc),
                        "BadDigest", 400, "put_object with a wrong x-amz-checksum-crc32")
    expect_client_error(lambda: s3.head_object(Bucket=bucket, Key="crc"), "404", 404,
                        "nothing stored after BadDigest (CRC32)")
    # a wrong digest must not clobber an existing object either
    s3.put_object(Bucket=bucket, Key="existing", Body=b"original")
    expect_client_error(lambda: s3.put_object(Bucket=bucket, Key="existing", Body=data, ContentMD5=wrong_md5),
                        "BadDigest", 400, "overwrite with a wrong Content-MD5")
    eq(s3.get_object(Bucket=bucket, Key="existing")["Body"].read(), b"original",
       "existing object untouched after a BadDigest overwrite")
    eq(all_keys(bucket), ["existing"], "keys after the rejected puts")


def _create_key(name):
    binary = os.environ.get("STRATA_BIN")
    check(binary and os.path.exists(binary), "STRATA_BIN points at the strata binary", "an existing path", binary)
    cmd = [binary, "key", "create", name, "--endpoint", ENDPOINT]
    env = dict(os.environ, STRATA_ROOT_ACCESS_KEY=suite.access_key, STRATA_ROOT_SECRET_KEY=suite.secret_key)
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60)
    except subprocess.TimeoutExpired:
        fail("strata key create timed out", "exit within 60s", "still running", command=cmd)
    eq(p.returncode, 0, "strata key create exit code", command=cmd, extra=p.stdout + p.stderr)
    ak = re.search(r"^\s*AccessKeyId:\s*(\S+)\s*$", p.stdout, re.M)
    sk = re.search(r"^\s*SecretAccessKey:\s*(\S+)\s*$", p.stdout, re.M)
    check(ak and sk, "strata key create prints AccessKeyId:/SecretAccessKey: lines", "both lines",
          tail(p.stdout), command=cmd)
    return ak.group(1), sk.group(1)


@suite.scenario
def second_principal_cannot_read_root_bucket():
    bucket = new_bucket("private")
    s3.put_object(Bucket=bucket, Key="secret.txt", Body=b"root only")
    ak, sk = _create_key("conformance-user")
    check(ak != suite.access_key, "new key differs from the root key", "a new access key id", ak)
    other = make_client(ak, sk)
    # the key itself authenticates (so AccessDenied below is authorization, not a bad signature)
    try:
        other.list_buckets()
    except ClientError as e:
        fail("second principal can call list_buckets (its key authenticates)", "success", str(e))
    expect_client_error(lambda: other.get_object(Bucket=bucket, Key="secret.txt"), "AccessDenied", 403,
                        "second principal get_object on root's bucket")
    expect_client_error(lambda: other.list_objects_v2(Bucket=bucket), "AccessDenied", 403,
                        "second principal list_objects_v2 on root's bucket")
    expect_client_error(lambda: other.put_object(Bucket=bucket, Key="intruder", Body=b"x"), "AccessDenied", 403,
                        "second principal put_object into root's bucket")
    expect_client_error(lambda: other.delete_object(Bucket=bucket, Key="secret.txt"), "AccessDenied", 403,
                        "second principal delete_object in root's bucket")
    eq(s3.get_object(Bucket=bucket, Key="secret.txt")["Body"].read(), b"root only", "root object intact")
    eq(all_keys(bucket), ["secret.txt"], "no intruder object in root's bucket")


@suite.scenario
def bad_credentials_rejected():
    wrong_secret = make_client(suite.access_key, suite.secret_key + "x")
    expect_client_error(lambda: wrong_secret.list_buckets(), "SignatureDoesNotMatch", 403, "wrong secret key")
    unknown = make_client("AKIANOSUCHKEY0000000", "whatever")
    expect_client_error(lambda: unknown.list_buckets(), "InvalidAccessKeyId", 403, "unknown access key")


# --------------------------------------------------------------------------
# versioning, ACLs, Block Public Access, bucket policy, tagging, POST Object
# --------------------------------------------------------------------------
#
# Deviation tags (see harness.deviation) name the S3 behaviour checked by a block; they let
# these scenarios be validated against a reference server (moto) that lacks it. Always strict
# for Strata (CONFORMANCE_KNOWN_DEVIATIONS unset).
#   block-public-access  the server-wide Block Public Access default of buckets without a
#                     configuration of their own; BlockPublicAcls / IgnorePublicAcls / BlockPublicPolicy
#   anonymous-authz   unsigned requests evaluated against ACLs / bucket policy (403 AccessDenied)
#   principal-authz   a non-root key limited to what it owns or is granted
#   policy-principal  a Deny statement for one principal ({"AWS": [access key id]}) applying to it only
#   owner-id          the canonical user ID of a principal is its access key id
#   transforms        image transforms (?w=..&f=..) on an object GET
#   policy-validation PutBucketPolicy refusing malformed policies (MalformedPolicy), keeping the old one
#   delete-marker-details  x-amz-delete-marker on a GET answered from a delete marker; 405
#                     MethodNotAllowed for a GET of a delete marker's VersionId; DeleteMarker=true
#                     when a delete marker is removed by version id
#   suspended-null    a write in a Suspended bucket replacing only the null version
#   version-listing-markers  ListObjectVersions with KeyMarker alone starting after that key
#   post-response     PostResponse XML (201) and bucket/key/etag on the redirect (303) of POST Object
#   post-policy       POST Object enforcing the policy's conditions and signature
#   tag-validation    InvalidTag for duplicate tag keys

ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"
PAB_OFF = {"BlockPublicAcls": False, "IgnorePublicAcls": False,
           "BlockPublicPolicy": False, "RestrictPublicBuckets": False}


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


_no_redirect_opener = urllib.request.build_opener(_NoRedirect)


def anon(url, method="GET", data=None, headers=None):
    """An unsigned request (no Authorization, no presigning); redirects are not followed.
    Returns (status, {lower-case header: value}, body)."""
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with _no_redirect_opener.open(req, timeout=60) as resp:
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def object_url(bucket, key, query=""):
    return f"{ENDPOINT}/{bucket}/{urllib.parse.quote(key)}" + (f"?{query}" if query else "")


def xml_fields(body):
    """Top-level child elements of an XML document as {tag: text} (namespaces dropped);
    None when the body is not XML."""
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        return None
    out = {"_root": root.tag.split("}")[-1]}
    for child in root:
        out[child.tag.split("}")[-1]] = (child.text or "").strip()
    return out


def expect_anon_denied(url, what, method="GET", data=None):
    """An unsigned request must get 403 with an S3 <Error><Code>AccessDenied</Code>."""
    status, _, body = anon(url, method=method, data=data)
    eq(status, 403, what + ": status", command=[method, url], extra=body)
    if method != "HEAD":
        err = xml_fields(body) or {}
        eq((err.get("_root"), err.get("Code")), ("Error", "AccessDenied"), what + ": XML error code",
           command=[method, url], extra=body)


def expect_anon_ok(url, body_expected, what):
    status, _, body = anon(url)
    check(status == 200 and body == body_expected, what, f"200 + {len(body_expected)} expected bytes",
          f"{status}: {tail(body, 300) if body != body_expected else 'same bytes'}", command=["GET", url])


def error_headers(e):
    return {k.lower(): v for k, v in e.response.get("ResponseMetadata", {}).get("HTTPHeaders", {}).items()}


def status_of(resp):
    return resp["ResponseMetadata"]["HTTPStatusCode"]


def version_entries(bucket, prefix=None):
    """list_object_versions (one page, <= 1000 entries) as (versions, delete markers), each a
    list of (key, version id, is latest) in listing order."""
    kw = {"Bucket": bucket}
    if prefix is not None:
        kw["Prefix"] = prefix
    out = s3.list_object_versions(**kw)
    return ([(v["Key"], v["VersionId"], v["IsLatest"]) for v in out.get("Versions", [])],
            [(d["Key"], d["VersionId"], d["IsLatest"]) for d in out.get("DeleteMarkers", [])])


def purge_bucket(bucket, client=None):
    """Delete every object version and delete marker (by version id), then the bucket."""
    client = client or s3
    for page in client.get_paginator("list_object_versions").paginate(Bucket=bucket):
        for v in page.get("Versions", []) + page.get("DeleteMarkers", []):
            client.delete_object(Bucket=bucket, Key=v["Key"], VersionId=v["VersionId"])
    client.delete_bucket(Bucket=bucket)


def empty_and_delete_bucket(bucket, client=None):
    """For never-versioned buckets: delete the listed objects, then the bucket."""
    client = client or s3
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for o in page.get("Contents", []):
            client.delete_object(Bucket=bucket, Key=o["Key"])
    client.delete_bucket(Bucket=bucket)


def enable_versioning(bucket, status="Enabled"):
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": status})
    eq(s3.get_bucket_versioning(Bucket=bucket).get("Status"), status, f"get_bucket_versioning after {status}")


def put_version(bucket, key, body):
    out = s3.put_object(Bucket=bucket, Key=key, Body=body)
    vid = out.get("VersionId")
    check(vid and vid != "null", f"put_object {key!r} in an Enabled bucket returns a VersionId",
          "a non-null version id", vid)
    return vid


@suite.scenario
def versioning_list_restore_and_delete_markers():
    bucket = new_bucket("ver-restore")
    eq(s3.get_bucket_versioning(Bucket=bucket).get("Status"), None,
       "get_bucket_versioning of a never-versioned bucket has no Status")
    enable_versioning(bucket)
    key = "doc.txt"
    bodies = {}
    for n in (1, 2, 3):
        body = f"version {n} of the document".encode()
        bodies[put_version(bucket, key, body)] = body
    v1, v2, v3 = list(bodies)
    eq(len({v1, v2, v3}), 3, "three puts give three distinct version ids")

    out = s3.list_object_versions(Bucket=bucket, Prefix=key)
    eq([(v["Key"], v["VersionId"], v["IsLatest"]) for v in out.get("Versions", [])],
       [(key, v3, True), (key, v2, False), (key, v1, False)],
       "list_object_versions: three versions, newest first, IsLatest only on the newest")
    eq([v["ETag"] for v in out["Versions"]], [md5_etag(bodies[v]) for v in (v3, v2, v1)], "version ETags")
    eq([v["Size"] for v in out["Versions"]], [len(bodies[v]) for v in (v3, v2, v1)], "version Sizes")
    eq(out.get("DeleteMarkers", []), [], "no delete markers yet")
    for vid, body in bodies.items():
        got = s3.get_object(Bucket=bucket, Key=key, VersionId=vid)
        eq((got["Body"].read(), got.get("VersionId")), (body, vid), f"get_object VersionId={vid}")
    eq(s3.head_object(Bucket=bucket, Key=key, VersionId=v1).get("VersionId"), v1, "head_object VersionId=v1")
    got = s3.get_object(Bucket=bucket, Key=key)
    eq((got["Body"].read(), got.get("VersionId")), (bodies[v3], v3), "get_object without VersionId = latest")

    # DELETE without a version id: a delete marker becomes the latest version
    out = s3.delete_object(Bucket=bucket, Key=key)
    eq(status_of(out), 204, "delete_object status in an Enabled bucket")
    eq(out.get("DeleteMarker"), True, "delete_object DeleteMarker (x-amz-delete-marker: true)")
    dm1 = out.get("VersionId")
    check(dm1 and dm1 not in (v1, v2, v3, "null"), "delete_object returns the new delete marker's VersionId",
          "a new version id", dm1)
    e = expect_client_error(lambda: s3.get_object(Bucket=bucket, Key=key), "NoSuchKey", 404,
                            "get_object of a key whose latest version is a delete marker")
    with deviation("delete-marker-details"):
        eq(error_headers(e).get("x-amz-delete-marker"), "true", "x-amz-delete-marker header on that 404")
    e = expect_client_error(lambda: s3.head_object(Bucket=bucket, Key=key), "404", 404,
                            "head_object of a key whose latest version is a delete marker")
    with deviation("delete-marker-details"):
        eq(error_headers(e).get("x-amz-delete-marker"), "true", "x-amz-delete-marker header on that HEAD 404")
    with deviation("delete-marker-details"):
        e = expect_client_error(lambda: s3.get_object(Bucket=bucket, Key=key, VersionId=dm1), "MethodNotAllowed", 405,
                                "get_object with the VersionId of a delete marker (S3: 405)")
        eq(error_headers(e).get("x-amz-delete-marker"), "true", "x-amz-delete-marker header on that 405")
    eq(all_keys(bucket), [], "list_objects_v2 hides a key whose latest version is a delete marker")
    versions, markers = version_entries(bucket)
    eq(markers, [(key, dm1, True)], "list_object_versions DeleteMarkers entry (IsLatest)")
    eq(versions, [(key, v3, False), (key, v2, False), (key, v1, False)],
       "list_object_versions Versions once a delete marker is latest")
    eq(s3.get_object(Bucket=bucket, Key=key, VersionId=v2)["Body"].read(), bodies[v2],
       "older versions stay readable by VersionId")

    # removing the delete marker by version id brings back the previous latest
    out = s3.delete_object(Bucket=bucket, Key=key, VersionId=dm1)
    eq(out.get("VersionId"), dm1, "delete_object VersionId=<delete marker> response VersionId")
    with deviation("delete-marker-details"):
        eq(out.get("DeleteMarker"), True, "delete_object VersionId=<delete marker> response DeleteMarker")
    got = s3.get_object(Bucket=bucket, Key=key)
    eq((got["Body"].read(), got.get("VersionId")), (bodies[v3], v3), "latest after removing the delete marker")
    eq(all_keys(bucket), [key], "key listed again")

    # restore v1 by copying it onto the key: a new version with v1's bytes
    out = s3.copy_object(Bucket=bucket, Key=key, CopySource={"Bucket": bucket, "Key": key, "VersionId": v1})
    v4 = out.get("VersionId")
    check(v4 and v4 not in (v1, v2, v3, dm1, "null"), "copy_object returns a new VersionId", "a new version id", v4)
    eq(out.get("CopySourceVersionId"), v1, "copy_object CopySourceVersionId")
    eq(out.get("CopyObjectResult", {}).get("ETag"), md5_etag(bodies[v1]), "copy_object ETag (= v1's)")
    got = s3.get_object(Bucket=bucket, Key=key)
    eq((got["Body"].read(), got.get("VersionId")), (bodies[v1], v4), "current object after restoring v1")
    bodies[v4] = bodies[v1]

    # another delete marker, more keys, then paginate the whole listing one entry at a time
    dm2 = s3.delete_object(Bucket=bucket, Key=key).get("VersionId")
    inner = put_version(bucket, "dir/inner.txt", b"inner")
    z1 = put_version(bucket, "z-other", b"z1")
    z2 = put_version(bucket, "z-other", b"z2")
    expected = [("dir/inner.txt", inner), (key, dm2), (key, v4), (key, v3), (key, v2), (key, v1),
                ("z-other", z2), ("z-other", z1)]
    seen, kw = [], {}
    for page_no in range(1, 30):
        page = s3.list_object_versions(Bucket=bucket, MaxKeys=1, **kw)
        entries = [(v["Key"], v["VersionId"]) for v in page.get("Versions", []) + page.get("DeleteMarkers", [])]
        eq(len(entries), 1, f"list_object_versions MaxKeys=1 page {page_no} entry count",
           extra=repr(page.get("Versions", [])) + repr(page.get("DeleteMarkers", [])))
        seen += entries
        if not page.get("IsTruncated"):
            break
        check(page.get("NextKeyMarker") and page.get("NextVersionIdMarker"),
              f"truncated page {page_no} carries NextKeyMarker and NextVersionIdMarker", "both",
              (page.get("NextKeyMarker"), page.get("NextVersionIdMarker")))
        kw = {"KeyMarker": page["NextKeyMarker"], "VersionIdMarker": page["NextVersionIdMarker"]}
    eq(seen, expected, "every version and delete marker exactly once, keys ascending, newest first per key")
    # the same listing in one call, and with a delimiter
    versions, markers = version_entries(bucket)
    eq(sorted(versions + markers), sorted([(k, v, v in (inner, dm2, z2)) for k, v in expected]),
       "IsLatest over the full listing")
    out = s3.list_object_versions(Bucket=bucket, Delimiter="/")
    eq([c["Prefix"] for c in out.get("CommonPrefixes", [])], ["dir/"], "list_object_versions Delimiter=/ CommonPrefixes")
    eq(sorted({v["Key"] for v in out.get("Versions", []) + out.get("DeleteMarkers", [])}), [key, "z-other"],
       "keys listed next to the common prefix")
    with deviation("version-listing-markers"):
        out = s3.list_object_versions(Bucket=bucket, KeyMarker=key)
        eq([(v["Key"], v["VersionId"]) for v in out.get("Versions", [])], [("z-other", z2), ("z-other", z1)],
           "KeyMarker without VersionIdMarker starts after every version of that key")

    purge_bucket(bucket)


@suite.scenario
def versioning_suspended_null_version():
    bucket = new_bucket("ver-suspend")
    out = s3.put_object(Bucket=bucket, Key="pre", Body=b"before versioning")
    eq(out.get("VersionId"), None, "put_object in a never-versioned bucket returns no VersionId")
    eq(version_entries(bucket), ([("pre", "null", True)], []),
       "an object written before versioning is the key's null version")
    enable_versioning(bucket)
    va = put_version(bucket, "k", b"versioned")
    vp = put_version(bucket, "pre", b"after enabling")
    eq(version_entries(bucket, "pre")[0], [("pre", vp, True), ("pre", "null", False)],
       "enabling keeps the old object as the null version")
    eq(s3.get_object(Bucket=bucket, Key="pre", VersionId="null")["Body"].read(), b"before versioning",
       "get_object VersionId=null of the pre-versioning object")

    enable_versioning(bucket, "Suspended")
    for body in (b"null one", b"null two"):
        out = s3.put_object(Bucket=bucket, Key="k", Body=body)
        check(out.get("VersionId") in (None, "null"), "put_object in a Suspended bucket: VersionId",
              "null (or absent)", out.get("VersionId"))
    with deviation("suspended-null"):
        eq(version_entries(bucket, "k"), ([("k", "null", True), ("k", va, False)], []),
           "Suspended: the second put replaced the null version; the versioned one is kept")
    got = s3.get_object(Bucket=bucket, Key="k")
    eq(got["Body"].read(), b"null two", "get_object in a Suspended bucket")
    check(got.get("VersionId") in (None, "null"), "get_object of the null version: VersionId", "null (or absent)",
          got.get("VersionId"))
    eq(s3.get_object(Bucket=bucket, Key="k", VersionId="null")["Body"].read(), b"null two",
       "get_object VersionId=null")
    with deviation("suspended-null"):
        eq(s3.get_object(Bucket=bucket, Key="k", VersionId=va)["Body"].read(), b"versioned",
           "get_object of the version written while Enabled")

    out = s3.delete_object(Bucket=bucket, Key="k")
    with deviation("suspended-null"):
        eq((out.get("DeleteMarker"), out.get("VersionId")), (True, "null"),
           "delete_object in a Suspended bucket: a delete marker with version id null")
    with deviation("suspended-null"):
        eq(version_entries(bucket, "k"), ([("k", va, False)], [("k", "null", True)]),
           "the null delete marker replaced the null version")
    expect_client_error(lambda: s3.get_object(Bucket=bucket, Key="k"), "NoSuchKey", 404, "get after the null delete marker")
    with deviation("delete-marker-details"):
        expect_client_error(lambda: s3.get_object(Bucket=bucket, Key="k", VersionId="null"), "MethodNotAllowed", 405,
                            "get_object VersionId=null when null is a delete marker")
    out = s3.delete_object(Bucket=bucket, Key="k", VersionId="null")
    with deviation("suspended-null"):
        eq((out.get("DeleteMarker"), out.get("VersionId")), (True, "null"), "delete_object VersionId=null (the marker)")
    with deviation("suspended-null"):
        got = s3.get_object(Bucket=bucket, Key="k")
        eq((got["Body"].read(), got.get("VersionId")), (b"versioned", va),
           "removing the null delete marker makes the versioned object current again")
    purge_bucket(bucket)


@suite.scenario
def versioning_delete_version_frees_and_promotes():
    bucket = new_bucket("ver-delete")
    enable_versioning(bucket)
    v1 = put_version(bucket, "k", b"one")
    v2 = put_version(bucket, "k", b"two")
    out = s3.delete_object(Bucket=bucket, Key="k", VersionId=v2)
    eq(status_of(out), 204, "delete_object VersionId=<current> status")
    eq(out.get("VersionId"), v2, "delete_object VersionId echoes the deleted version")
    check(not out.get("DeleteMarker"), "deleting a real version is not a delete marker", "no DeleteMarker",
          out.get("DeleteMarker"))
    got = s3.get_object(Bucket=bucket, Key="k")
    eq((got["Body"].read(), got.get("VersionId")), (b"one", v1), "the previous version became current")
    eq(version_entries(bucket), ([("k", v1, True)], []), "listing after deleting the current version")
    expect_client_error(lambda: s3.get_object(Bucket=bucket, Key="k", VersionId=v2), "NoSuchVersion", 404,
                        "get_object of a deleted version id")

    # a multipart upload completes into a new version too
    uid = s3.create_multipart_upload(Bucket=bucket, Key="k")["UploadId"]
    part = s3.upload_part(Bucket=bucket, Key="k", UploadId=uid, PartNumber=1, Body=b"multipart")
    out = s3.complete_multipart_upload(Bucket=bucket, Key="k", UploadId=uid,
                                       MultipartUpload={"Parts": [{"ETag": part["ETag"], "PartNumber": 1}]})
    v3 = out.get("VersionId")
    check(v3 and v3 not in (v1, v2, "null"), "complete_multipart_upload returns a new VersionId", "a new version id", v3)
    eq(version_entries(bucket), ([("k", v3, True), ("k", v1, False)], []), "listing after the multipart version")
    out = s3.delete_object(Bucket=bucket, Key="k", VersionId=v3)
    eq(out.get("VersionId"), v3, "delete_object of the multipart version")
    got = s3.get_object(Bucket=bucket, Key="k")
    eq((got["Body"].read(), got.get("VersionId")), (b"one", v1), "v1 is current again")

    vm = put_version(bucket, "m", b"m")
    out = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "m"}]})
    eq(out.get("Errors", []), [], "delete_objects (no version id) errors")
    deleted = out.get("Deleted", [])
    eq([(d.get("Key"), d.get("DeleteMarker")) for d in deleted], [("m", True)],
       "delete_objects without VersionId in an Enabled bucket creates a delete marker")
    dmm = deleted[0].get("DeleteMarkerVersionId")
    check(dmm and dmm not in (vm, "null"), "delete_objects DeleteMarkerVersionId", "the marker's version id", dmm)
    eq(all_keys(bucket), ["k"], "list_objects_v2 after the batch delete")

    out = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "k", "VersionId": v1}]})
    eq([(d.get("Key"), d.get("VersionId")) for d in out.get("Deleted", [])], [("k", v1)],
       "delete_objects with a VersionId deletes that version")
    eq(all_keys(bucket), [], "no current objects left")
    eq(version_entries(bucket), ([("m", vm, False)], [("m", dmm, True)]), "only m's version and marker are left")
    expect_client_error(lambda: s3.delete_bucket(Bucket=bucket), "BucketNotEmpty", 409,
                        "delete_bucket with noncurrent versions left")
    s3.delete_object(Bucket=bucket, Key="m", VersionId=vm)
    eq(version_entries(bucket), ([], [("m", dmm, True)]), "only a delete marker left")
    expect_client_error(lambda: s3.delete_bucket(Bucket=bucket), "BucketNotEmpty", 409,
                        "delete_bucket with only a delete marker left")
    out = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "m", "VersionId": dmm}]})
    eq([(d.get("Key"), d.get("VersionId")) for d in out.get("Deleted", [])], [("m", dmm)],
       "delete_objects of a delete marker by version id")
    with deviation("delete-marker-details"):
        eq(out["Deleted"][0].get("DeleteMarker"), True, "DeleteMarker=true for a removed delete marker")
    eq(version_entries(bucket), ([], []), "nothing left")
    out = s3.delete_bucket(Bucket=bucket)
    eq(status_of(out), 204, "delete_bucket once every version and marker is gone")
    expect_client_error(lambda: s3.head_bucket(Bucket=bucket), "404", 404, "head_bucket after delete_bucket")


def _grants(acl):
    """{(grantee, permission)} with grantee = canonical id or group URI."""
    out = set()
    for g in acl.get("Grants", []):
        who = g["Grantee"].get("ID") or g["Grantee"].get("URI") or g["Grantee"].get("EmailAddress")
        out.add((who, g["Permission"]))
    return out


@suite.scenario
def acl_canned_and_grants():
    ak2, sk2 = _create_key("conformance-acl")
    other = make_client(ak2, sk2)
    root_id = suite.access_key
    bucket = new_bucket("acl")
    expect_client_error(lambda: s3.get_public_access_block(Bucket=bucket),
                        "NoSuchPublicAccessBlockConfiguration", 404, "get_public_access_block, nothing configured")
    with deviation("block-public-access"):
        expect_client_error(lambda: s3.put_object(Bucket=bucket, Key="public.txt", Body=b"p", ACL="public-read"),
                            "AccessDenied", 403, "public-read put_object under the default Block Public Access")
    with deviation("block-public-access"):
        expect_client_error(lambda: s3.put_object(Bucket=bucket, Key="grant.txt", Body=b"p",
                                                  GrantRead=f'uri="{ALL_USERS}"'),
                            "AccessDenied", 403, "x-amz-grant-read to AllUsers under the default Block Public Access")
    with deviation("block-public-access"):
        eq(all_keys(bucket), [], "nothing stored by the refused public puts")
    s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=PAB_OFF)
    eq(s3.get_public_access_block(Bucket=bucket).get("PublicAccessBlockConfiguration"), PAB_OFF,
       "get_public_access_block after turning everything off")

    public_body, private_body, shared_body = b"hello, world", b"owner only", b"for the second key"
    s3.put_object(Bucket=bucket, Key="public.txt", Body=public_body, ACL="public-read")
    s3.put_object(Bucket=bucket, Key="private.txt", Body=private_body)
    s3.put_object(Bucket=bucket, Key="shared.txt", Body=shared_body)
    expect_anon_ok(object_url(bucket, "public.txt"), public_body, "unsigned GET of a public-read object")
    status, _, _ = anon(object_url(bucket, "public.txt"), method="HEAD")
    eq(status, 200, "unsigned HEAD of a public-read object")
    with deviation("anonymous-authz"):
        expect_anon_denied(object_url(bucket, "private.txt"), "unsigned GET of a private object")
    with deviation("anonymous-authz"):
        expect_anon_denied(f"{ENDPOINT}/{bucket}?list-type=2", "unsigned list of a private bucket")
    with deviation("anonymous-authz"):
        expect_anon_denied(object_url(bucket, "anon-put"), "unsigned PUT into a private bucket", method="PUT",
                           data=b"anonymous")

    acl = s3.get_object_acl(Bucket=bucket, Key="public.txt")
    check((ALL_USERS, "READ") in _grants(acl), "get_object_acl of a public-read object has AllUsers READ",
          (ALL_USERS, "READ"), _grants(acl))
    with deviation("owner-id"):
        eq(acl.get("Owner", {}).get("ID"), root_id, "object owner canonical ID = root access key id")
    with deviation("owner-id"):
        eq(_grants(acl), {(root_id, "FULL_CONTROL"), (ALL_USERS, "READ")}, "public-read grants")
    with deviation("owner-id"):
        eq(_grants(s3.get_object_acl(Bucket=bucket, Key="private.txt")), {(root_id, "FULL_CONTROL")},
           "grants of a private (default ACL) object")

    # a grant to the second key, header form on PutObjectAcl
    with deviation("principal-authz"):
        expect_client_error(lambda: other.get_object(Bucket=bucket, Key="shared.txt"), "AccessDenied", 403,
                            "second key before any grant")
    s3.put_object_acl(Bucket=bucket, Key="shared.txt", GrantRead=f'id="{ak2}"', GrantFullControl=f'id="{root_id}"')
    eq(_grants(s3.get_object_acl(Bucket=bucket, Key="shared.txt")), {(ak2, "READ"), (root_id, "FULL_CONTROL")},
       "get_object_acl after put_object_acl(GrantRead, GrantFullControl)")
    eq(other.get_object(Bucket=bucket, Key="shared.txt")["Body"].read(), shared_body,
       "second key GETs the object it was granted READ on")
    with deviation("principal-authz"):
        expect_client_error(lambda: other.get_object(Bucket=bucket, Key="private.txt"), "AccessDenied", 403,
                            "second key GET of a different private object")
    with deviation("principal-authz"):
        expect_client_error(lambda: other.get_object_acl(Bucket=bucket, Key="shared.txt"), "AccessDenied", 403,
                            "READ does not include READ_ACP")
    with deviation("principal-authz"):
        expect_client_error(lambda: other.list_objects_v2(Bucket=bucket), "AccessDenied", 403,
                            "second key list before any bucket grant")
    # x-amz-grant-read on PutObject
    s3.put_object(Bucket=bucket, Key="granted-on-put.txt", Body=b"g", GrantRead=f'id="{ak2}"',
                  GrantFullControl=f'id="{root_id}"')
    eq(other.get_object(Bucket=bucket, Key="granted-on-put.txt")["Body"].read(), b"g",
       "second key GETs an object put with x-amz-grant-read")

    # AccessControlPolicy body on the bucket
    s3.put_bucket_acl(Bucket=bucket, AccessControlPolicy={
        "Owner": {"ID": root_id},
        "Grants": [
            {"Grantee": {"Type": "CanonicalUser", "ID": root_id}, "Permission": "FULL_CONTROL"},
            {"Grantee": {"Type": "CanonicalUser", "ID": ak2}, "Permission": "READ"},
        ]})
    bacl = s3.get_bucket_acl(Bucket=bucket)
    eq(_grants(bacl), {(root_id, "FULL_CONTROL"), (ak2, "READ")}, "get_bucket_acl after put_bucket_acl(AccessControlPolicy)")
    with deviation("owner-id"):
        eq(bacl.get("Owner", {}).get("ID"), root_id, "bucket owner canonical ID = root access key id")
    listed = [o["Key"] for o in other.list_objects_v2(Bucket=bucket).get("Contents", [])]
    eq(listed, all_keys(bucket), "second key lists the bucket (bucket READ grant) like its owner")
    check({"granted-on-put.txt", "private.txt", "public.txt", "shared.txt"} <= set(listed),
          "second key's listing has the objects", "granted-on-put.txt private.txt public.txt shared.txt", listed)
    with deviation("principal-authz"):
        expect_client_error(lambda: other.put_object(Bucket=bucket, Key="intruder", Body=b"x"), "AccessDenied", 403,
                            "bucket READ does not allow PUT")
    with deviation("principal-authz"):
        expect_client_error(lambda: other.get_object(Bucket=bucket, Key="private.txt"), "AccessDenied", 403,
                            "bucket READ does not allow reading objects")

    # canned ACL on CopyObject
    s3.copy_object(Bucket=bucket, Key="public-copy.txt", CopySource={"Bucket": bucket, "Key": "private.txt"},
                   ACL="public-read")
    expect_anon_ok(object_url(bucket, "public-copy.txt"), private_body, "unsigned GET of a public-read copy")

    # Block Public Access back on
    s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=dict(PAB_OFF, IgnorePublicAcls=True))
    with deviation("block-public-access"):
        expect_anon_denied(object_url(bucket, "public.txt"), "unsigned GET with IgnorePublicAcls=True")
    check((ALL_USERS, "READ") in _grants(s3.get_object_acl(Bucket=bucket, Key="public.txt")),
          "IgnorePublicAcls keeps the stored ACL", (ALL_USERS, "READ"), "grant gone")
    s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=dict(PAB_OFF, BlockPublicAcls=True))
    with deviation("block-public-access"):
        expect_client_error(lambda: s3.put_object_acl(Bucket=bucket, Key="private.txt", ACL="public-read"),
                            "AccessDenied", 403, "put_object_acl public-read with BlockPublicAcls=True")
    expect_anon_ok(object_url(bucket, "public.txt"), public_body,
                   "unsigned GET again once only BlockPublicAcls is set (existing ACL honoured)")
    out = s3.delete_public_access_block(Bucket=bucket)
    eq(status_of(out), 204, "delete_public_access_block status")
    expect_client_error(lambda: s3.get_public_access_block(Bucket=bucket),
                        "NoSuchPublicAccessBlockConfiguration", 404, "get_public_access_block after delete")
    with deviation("block-public-access"):
        expect_anon_denied(object_url(bucket, "public.txt"), "unsigned GET once the server-wide default applies again")
    empty_and_delete_bucket(bucket)


def _policy(bucket, *statements):
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


@suite.scenario
def bucket_policy_allow_deny():
    ak2, sk2 = _create_key("conformance-policy")
    other = make_client(ak2, sk2)
    bucket = new_bucket("policy")
    s3.put_object(Bucket=bucket, Key="public/x", Body=b"public x")
    s3.put_object(Bucket=bucket, Key="private/x", Body=b"private x")
    with open(os.path.join(IMAGES, "storm-1920x1280.jpg"), "rb") as f:
        s3.put_object(Bucket=bucket, Key="public/photo.jpg", Body=f.read(), ContentType="image/jpeg")
    expect_client_error(lambda: s3.get_bucket_policy(Bucket=bucket), "NoSuchBucketPolicy", 404,
                        "get_bucket_policy with no policy")
    allow_public = {"Sid": "PublicRead", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                    "Resource": f"arn:aws:s3:::{bucket}/public/*"}
    with deviation("block-public-access"):
        expect_client_error(lambda: s3.put_bucket_policy(Bucket=bucket, Policy=_policy(bucket, allow_public)),
                            "AccessDenied", 403, "public bucket policy under the default Block Public Access")
    with deviation("block-public-access"):
        expect_client_error(lambda: s3.get_bucket_policy(Bucket=bucket), "NoSuchBucketPolicy", 404,
                            "the refused policy was not stored")
    s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=PAB_OFF)
    policy1 = _policy(bucket, allow_public)
    out = s3.put_bucket_policy(Bucket=bucket, Policy=policy1)
    check(status_of(out) in (200, 204), "put_bucket_policy status", "204 (S3) or 200 (the API model)", status_of(out))
    eq(json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"]), json.loads(policy1), "get_bucket_policy round trip")
    eq(s3.get_bucket_policy_status(Bucket=bucket).get("PolicyStatus", {}).get("IsPublic"), True,
       "get_bucket_policy_status IsPublic with a Principal * Allow")
    expect_anon_ok(object_url(bucket, "public/x"), b"public x", "unsigned GET allowed by the policy")
    with deviation("anonymous-authz"):
        expect_anon_denied(object_url(bucket, "private/x"), "unsigned GET outside the policy's Resource")
    with deviation("anonymous-authz"):
        expect_anon_denied(f"{ENDPOINT}/{bucket}?list-type=2", "unsigned ListBucket (policy allows only GetObject)")
    with deviation("transforms"):
        status, headers, body = anon(object_url(bucket, "public/photo.jpg", "w=200&f=webp"))
        eq(status, 200, "unsigned image transform of a policy-public object", extra=body)
        eq(headers.get("content-type"), "image/webp", "content type of the f=webp transform")
        check(body[:4] == b"RIFF" and body[8:12] == b"WEBP", "transform body is WebP", "RIFF....WEBP", body[:12])

    # an ACL grants the second key READ; a Deny statement for it wins over the ACL
    s3.put_object_acl(Bucket=bucket, Key="private/x", GrantRead=f'id="{ak2}"',
                      GrantFullControl=f'id="{suite.access_key}"')
    eq(other.get_object(Bucket=bucket, Key="private/x")["Body"].read(), b"private x", "second key reads via its ACL grant")
    deny_other = {"Sid": "DenySecondKey", "Effect": "Deny", "Principal": {"AWS": [ak2]}, "Action": "s3:*",
                  "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]}
    policy2 = _policy(bucket, allow_public, deny_other)
    s3.put_bucket_policy(Bucket=bucket, Policy=policy2)
    with deviation("policy-principal"):
        expect_client_error(lambda: other.get_object(Bucket=bucket, Key="private/x"), "AccessDenied", 403,
                            "explicit Deny beats the ACL grant")
    with deviation("policy-principal"):
        expect_client_error(lambda: other.get_object(Bucket=bucket, Key="public/x"), "AccessDenied", 403,
                            "explicit Deny beats the Principal * Allow")
    with deviation("policy-principal"):
        expect_anon_ok(object_url(bucket, "public/x"), b"public x", "unsigned GET still allowed next to the Deny")
    with deviation("policy-principal"):
        eq(s3.get_object(Bucket=bucket, Key="private/x")["Body"].read(), b"private x", "the owner is not affected")

    # malformed policies are refused and the stored one is kept
    other_bucket = {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                    "Resource": f"arn:aws:s3:::not-{bucket}/*"}
    for what, bad in [("not JSON", "{not json"),
                      ("no Statement", json.dumps({"Version": "2012-10-17"})),
                      ("Resource outside the bucket", _policy(bucket, other_bucket))]:
        with deviation("policy-validation"):
            expect_client_error(lambda: s3.put_bucket_policy(Bucket=bucket, Policy=bad), "MalformedPolicy", 400,
                                f"put_bucket_policy with a malformed policy ({what})")
    with deviation("policy-validation"):
        eq(json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"]), json.loads(policy2),
           "get_bucket_policy still returns the previous policy")

    out = s3.delete_bucket_policy(Bucket=bucket)
    eq(status_of(out), 204, "delete_bucket_policy status")
    expect_client_error(lambda: s3.get_bucket_policy(Bucket=bucket), "NoSuchBucketPolicy", 404,
                        "get_bucket_policy after delete")
    with deviation("anonymous-authz"):
        expect_anon_denied(object_url(bucket, "public/x"), "unsigned GET once the policy is deleted")
    with deviation("anonymous-authz"):
        expect_anon_denied(object_url(bucket, "public/photo.jpg", "w=200&f=webp"),
                           "unsigned image transform once the policy is deleted")
    eq(other.get_object(Bucket=bucket, Key="private/x")["Body"].read(), b"private x",
       "second key reads via its ACL grant again once the Deny is gone")
    empty_and_delete_bucket(bucket)


def _tagset(resp):
    return {t["Key"]: t["Value"] for t in resp.get("TagSet", [])}


@suite.scenario
def tagging_roundtrip():
    bucket = new_bucket("tagging")
    s3.put_object(Bucket=bucket, Key="t", Body=b"tagged", Tagging="a=1&b=2")
    eq(_tagset(s3.get_object_tagging(Bucket=bucket, Key="t")), {"a": "1", "b": "2"},
       "get_object_tagging after put_object(Tagging='a=1&b=2')")
    eq(s3.head_object(Bucket=bucket, Key="t").get("TagCount"), 2, "head_object TagCount (x-amz-tagging-count)")
    eq(s3.get_object(Bucket=bucket, Key="t").get("TagCount"), 2, "get_object TagCount (x-amz-tagging-count)")
    # url-encoded tag values in the header form
    tags = {"team": "a+b=c", "sp ace": "x/y:z @home"}
    s3.put_object(Bucket=bucket, Key="u", Body=b"u", Tagging=urllib.parse.urlencode(tags, quote_via=urllib.parse.quote))
    eq(_tagset(s3.get_object_tagging(Bucket=bucket, Key="u")), tags, "url-encoded x-amz-tagging is decoded")

    out = s3.put_object_tagging(Bucket=bucket, Key="t", Tagging={"TagSet": [{"Key": "c", "Value": "3"}]})
    eq(status_of(out), 200, "put_object_tagging status")
    eq(_tagset(s3.get_object_tagging(Bucket=bucket, Key="t")), {"c": "3"}, "put_object_tagging replaces the whole set")
    eq(s3.get_object(Bucket=bucket, Key="t").get("TagCount"), 1, "TagCount after replacing")
    eq(s3.get_object(Bucket=bucket, Key="t")["Body"].read(), b"tagged", "tagging leaves the body alone")

    # copy: tags copied by default, replaced with TaggingDirective=REPLACE
    s3.copy_object(Bucket=bucket, Key="t-copy", CopySource={"Bucket": bucket, "Key": "t"})
    eq(_tagset(s3.get_object_tagging(Bucket=bucket, Key="t-copy")), {"c": "3"}, "copy_object copies tags by default")
    s3.copy_object(Bucket=bucket, Key="t-copy2", CopySource={"Bucket": bucket, "Key": "t"},
                   TaggingDirective="REPLACE", Tagging="d=4")
    eq(_tagset(s3.get_object_tagging(Bucket=bucket, Key="t-copy2")), {"d": "4"}, "copy_object TaggingDirective=REPLACE")

    out = s3.delete_object_tagging(Bucket=bucket, Key="t")
    eq(status_of(out), 204, "delete_object_tagging status")
    eq(s3.get_object_tagging(Bucket=bucket, Key="t").get("TagSet"), [], "TagSet after delete_object_tagging")
    eq(s3.head_object(Bucket=bucket, Key="t").get("TagCount"), None, "no TagCount on an untagged object")

    expect_client_error(lambda: s3.get_object_tagging(Bucket=bucket, Key="missing"), "NoSuchKey", 404,
                        "get_object_tagging of a missing key")
    expect_client_error(lambda: s3.put_object_tagging(Bucket=bucket, Key="t", Tagging={"TagSet": [
        {"Key": f"k{i}", "Value": "v"} for i in range(11)]}), None, 400, "11 object tags (limit 10)")
    with deviation("tag-validation"):
        expect_client_error(lambda: s3.put_object_tagging(Bucket=bucket, Key="t", Tagging={"TagSet": [
            {"Key": "dup", "Value": "1"}, {"Key": "dup", "Value": "2"}]}), "InvalidTag", 400, "duplicate tag keys")
        eq(s3.get_object_tagging(Bucket=bucket, Key="t").get("TagSet"), [], "refused tagging changed nothing")

    # bucket tagging
    expect_client_error(lambda: s3.get_bucket_tagging(Bucket=bucket), "NoSuchTagSet", 404, "get_bucket_tagging, none set")
    out = s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": "env", "Value": "test"},
                                                                   {"Key": "owner", "Value": "conformance"}]})
    check(status_of(out) in (200, 204), "put_bucket_tagging status", "204 (S3) or 200 (the API model)", status_of(out))
    eq(_tagset(s3.get_bucket_tagging(Bucket=bucket)), {"env": "test", "owner": "conformance"}, "get_bucket_tagging")
    out = s3.delete_bucket_tagging(Bucket=bucket)
    eq(status_of(out), 204, "delete_bucket_tagging status")
    expect_client_error(lambda: s3.get_bucket_tagging(Bucket=bucket), "NoSuchTagSet", 404,
                        "get_bucket_tagging after delete")
    empty_and_delete_bucket(bucket)


def multipart_form(fields, filename, content, content_type="application/octet-stream"):
    """multipart/form-data body for an S3 POST Object: the fields in order, then the file
    (S3 ignores fields after the file). Returns (body, Content-Type header)."""
    boundary = "----strata-conformance-" + secrets.token_hex(12)
    out = io.BytesIO()
    for name, value in fields.items():
        out.write(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode())
        out.write(str(value).encode() + b"\r\n")
    out.write(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
              f"Content-Type: {content_type}\r\n\r\n".encode())
    out.write(content + b"\r\n")
    out.write(f"--{boundary}--\r\n".encode())
    return out.getvalue(), f"multipart/form-data; boundary={boundary}"


def post_form(url, fields, filename, content, content_type="application/octet-stream"):
    body, ctype = multipart_form(fields, filename, content, content_type)
    return anon(url, method="POST", data=body, headers={"Content-Type": ctype})


@suite.scenario
def post_object_form_upload():
    bucket = new_bucket("post")
    v4 = make_client(signature_version="s3v4")
    # Strata leaves `${filename}` in keys as it is (s3s 0.14 does not hand the file name over),
    # so the form names its key outright.
    post = v4.generate_presigned_post(
        bucket, "uploads/hello.txt",
        Fields={"success_action_status": "201", "Content-Type": "text/plain", "x-amz-meta-origin": "form"},
        Conditions=[["content-length-range", 1, 1024], ["starts-with", "$key", "uploads/"],
                    {"success_action_status": "201"}, ["starts-with", "$Content-Type", "text/"],
                    {"x-amz-meta-origin": "form"}],
        ExpiresIn=300)
    check("x-amz-signature" in post["fields"] and post["fields"].get("x-amz-algorithm") == "AWS4-HMAC-SHA256",
          "generate_presigned_post (s3v4) fields", "x-amz-algorithm/-credential/-date/-signature + policy",
          sorted(post["fields"]))
    data = b"posted through an HTML form\n"
    status, headers, body = post_form(post["url"], post["fields"], "hello.txt", data, "text/plain")
    eq(status, 201, "POST Object with success_action_status=201", command=["POST", post["url"]], extra=body)
    with deviation("post-response"):
        res = xml_fields(body) or {}
        eq(res.get("_root"), "PostResponse", "201 body is a PostResponse document", extra=body)
        # S3 quotes the ETag in PostResponse; s3s 0.14 writes it bare. Either names the same MD5.
        eq((res.get("Bucket"), res.get("Key"), (res.get("ETag") or "").strip('"')),
           (bucket, "uploads/hello.txt", md5_etag(data).strip('"')), "PostResponse Bucket/Key/ETag")
        loc = res.get("Location", "")
        check(bucket in loc and urllib.parse.unquote(loc).endswith("/uploads/hello.txt"), "PostResponse Location",
              f"a URL of {bucket}'s uploads/hello.txt (key may be URL-encoded)", loc)
        eq(headers.get("etag"), md5_etag(data), "ETag header of the POST response")
    got = s3.get_object(Bucket=bucket, Key="uploads/hello.txt")
    eq(got["Body"].read(), data, "object stored by POST")
    eq((got.get("ContentType"), got.get("Metadata")), ("text/plain", {"origin": "form"}),
       "Content-Type and x-amz-meta-* form fields are stored")

    # policy violations: too large, key outside the starts-with, tampered signature
    with deviation("post-policy"):
        status, _, body = post_form(post["url"], post["fields"], "big.txt", b"x" * 2048, "text/plain")
        err = xml_fields(body) or {}
        check(status in (400, 403) and err.get("_root") == "Error" and err.get("Code"),
              "POST larger than content-length-range is refused with an S3 error", "400/403 <Error><Code>",
              f"{status} {tail(body, 300)}")
        eq(err.get("Code"), "EntityTooLarge", "error code for a file above content-length-range", extra=body)
    with deviation("post-policy"):
        status, _, body = post_form(post["url"], dict(post["fields"], key="elsewhere/x.txt"), "x.txt", b"x",
                                    "text/plain")
        eq(status, 403, "POST with a key outside the policy's starts-with", extra=body)
        eq((xml_fields(body) or {}).get("Code"), "AccessDenied", "error code for a policy condition failure", extra=body)
        expect_client_error(lambda: s3.head_object(Bucket=bucket, Key="elsewhere/x.txt"), status=404,
                            what="refused POST stored nothing")
    with deviation("post-policy"):
        sig = post["fields"]["x-amz-signature"]
        bad_sig = ("0" if sig[0] != "0" else "1") + sig[1:]
        status, _, body = post_form(post["url"], dict(post["fields"], **{"x-amz-signature": bad_sig}), "x.txt", b"x",
                                    "text/plain")
        eq(status, 403, "POST with a tampered signature", extra=body)
        eq((xml_fields(body) or {}).get("Code"), "SignatureDoesNotMatch", "error code for a tampered POST signature",
           extra=body)
    with deviation("post-policy"):
        eq(all_keys(bucket), ["uploads/hello.txt"], "refused POSTs stored nothing")

    # default success status (204, empty body) and success_action_redirect (303 + Location)
    plain = v4.generate_presigned_post(bucket, "plain.bin", ExpiresIn=300)
    status, headers, body = post_form(plain["url"], plain["fields"], "plain.bin", b"plain")
    eq(status, 204, "POST Object without success_action_status", extra=body)
    eq(body, b"", "204 body")
    redirect = "http://127.0.0.1:9/after-upload"
    rd = v4.generate_presigned_post(bucket, "redirected.bin", ExpiresIn=300,
                                    Fields={"success_action_redirect": redirect},
                                    Conditions=[{"success_action_redirect": redirect}])
    status, headers, body = post_form(rd["url"], rd["fields"], "r.bin", b"redirected")
    eq(status, 303, "POST Object with success_action_redirect", extra=body)
    loc = headers.get("location", "")
    check(loc.startswith(redirect + "?"), "redirect Location", redirect + "?bucket=..&key=..&etag=..", loc)
    q = urllib.parse.parse_qs(urllib.parse.urlsplit(loc).query)
    with deviation("post-response"):
        eq((q.get("bucket"), q.get("key"), [e.strip('"') for e in q.get("etag", [])]),
           ([bucket], ["redirected.bin"], [hashlib.md5(b"redirected").hexdigest()]),
           "bucket/key/etag in the redirect query")
    eq(s3.get_object(Bucket=bucket, Key="redirected.bin")["Body"].read(), b"redirected", "object stored by the redirected POST")
    empty_and_delete_bucket(bucket)


@suite.scenario
def lifecycle_configuration_roundtrip():
    """Put/Get/DeleteBucketLifecycleConfiguration as boto3 sends them, S3's errors for bad
    rules, and `strata lifecycle run` (a run at the server's own time expires nothing new)."""
    bucket = new_bucket("lifecycle")
    expect_client_error(lambda: s3.get_bucket_lifecycle_configuration(Bucket=bucket),
                        "NoSuchLifecycleConfiguration", 404, "Get before any configuration")
    rules = [
        {"ID": "logs", "Status": "Enabled", "Filter": {"Prefix": "logs/"},
         "Transitions": [{"Days": 40, "StorageClass": "STANDARD_IA"}, {"Days": 90, "StorageClass": "GLACIER"}],
         "Expiration": {"Days": 365},
         "NoncurrentVersionExpiration": {"NoncurrentDays": 7, "NewerNoncurrentVersions": 2},
         "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 3}},
        {"ID": "tmp", "Status": "Disabled",
         "Filter": {"And": {"Prefix": "tmp/", "Tags": [{"Key": "class", "Value": "tmp"}],
                            "ObjectSizeGreaterThan": 1024}},
         "Expiration": {"Date": "2031-01-01T00:00:00Z"}},
        {"ID": "markers", "Status": "Enabled", "Filter": {},
         "Expiration": {"ExpiredObjectDeleteMarker": True}},
    ]
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": rules})
    got = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    eq([r["ID"] for r in got], ["logs", "tmp", "markers"], "rule IDs in order")
    eq(got[0]["Filter"], {"Prefix": "logs/"}, "prefix filter")
    eq(got[0]["Expiration"], {"Days": 365}, "expiration")
    eq([(t["Days"], t["StorageClass"]) for t in got[0]["Transitions"]],
       [(40, "STANDARD_IA"), (90, "GLACIER")], "transitions")
    eq(got[0]["NoncurrentVersionExpiration"], {"NoncurrentDays": 7, "NewerNoncurrentVersions": 2},
       "noncurrent expiration")
    eq(got[0]["AbortIncompleteMultipartUpload"], {"DaysAfterInitiation": 3}, "abort rule")
    eq(got[1]["Status"], "Disabled", "disabled rule")
    eq(got[1]["Filter"]["And"]["Tags"], [{"Key": "class", "Value": "tmp"}], "And tags")
    eq(got[1]["Expiration"]["Date"].isoformat(), "2031-01-01T00:00:00+00:00", "expiration date")
    eq(got[2]["Expiration"], {"ExpiredObjectDeleteMarker": True}, "delete-marker rule")

    bad = [
        ({"ID": "zero", "Status": "Enabled", "Filter": {}, "Expiration": {"Days": 0}}, "InvalidArgument"),
        ({"ID": "noon", "Status": "Enabled", "Filter": {},
          "Expiration": {"Date": "2031-01-01T12:00:00Z"}}, "InvalidArgument"),
        ({"ID": "ia", "Status": "Enabled", "Filter": {},
          "Transitions": [{"Days": 10, "StorageClass": "STANDARD_IA"}]}, "InvalidArgument"),
        ({"ID": "deep", "Status": "Enabled", "Filter": {},
          "Transitions": [{"Days": 10, "StorageClass": "DEEP_ARCHIVE"}]}, "InvalidStorageClass"),
        ({"ID": "tag-abort", "Status": "Enabled", "Filter": {"Tag": {"Key": "a", "Value": "b"}},
          "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1}}, "InvalidArgument"),
    ]
    for rule, code in bad:
        e = expect_client_error(
            lambda: s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [rule]}),
            code, 400, f"rule {rule['ID']} refused")
        check(rule["ID"] in str(e), f"error for rule {rule['ID']} names it", rule["ID"], str(e))
    eq(len(s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]), 3, "rules after the refused puts")

    # A run at the server's own time: the fresh object is not expired.
    s3.put_object(Bucket=bucket, Key="logs/today.txt", Body=b"today")
    binary = os.environ.get("STRATA_BIN")
    check(binary and os.path.exists(binary), "STRATA_BIN points at the strata binary", "an existing path", binary)
    cmd = [binary, "lifecycle", "run", "--bucket", bucket, "--endpoint", ENDPOINT]
    env = dict(os.environ, STRATA_ROOT_ACCESS_KEY=suite.access_key, STRATA_ROOT_SECRET_KEY=suite.secret_key)
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    eq(p.returncode, 0, "strata lifecycle run exit code", command=cmd, extra=p.stdout + p.stderr)
    m = re.search(r"^lifecycle: scanned (\d+) versions in 1 buckets, expired 0,", p.stdout, re.M)
    check(m, "summary line", "lifecycle: scanned N versions in 1 buckets, expired 0, ...", tail(p.stdout), command=cmd)
    eq(s3.get_object(Bucket=bucket, Key="logs/today.txt")["Body"].read(), b"today", "object kept")

    s3.delete_bucket_lifecycle(Bucket=bucket)
    expect_client_error(lambda: s3.get_bucket_lifecycle_configuration(Bucket=bucket),
                        "NoSuchLifecycleConfiguration", 404, "Get after DeleteBucketLifecycle")
    empty_and_delete_bucket(bucket)



# ---------------------------------------------------------------- bitrot (issue 19)

@suite.scenario
def rotten_object_is_never_downloaded():
    """A byte flipped in a blob file on disk: a range GET over it raises (500 InternalError or a
    cut-off body), never returns wrong bytes; a range clear of the bad block is served right;
    the transfer manager's multi-range download_file fails and leaves no file. Runs its own
    server on its own data dir (the shared one must stay intact for the other scenarios)."""
    binary = os.environ.get("STRATA_BIN")
    check(binary and os.path.exists(binary), "STRATA_BIN points at the strata binary", "an existing path", binary)
    data_dir = os.path.join(suite.scratch, "bitrot-data")
    env = dict(os.environ, STRATA_ROOT_ACCESS_KEY=suite.access_key, STRATA_ROOT_SECRET_KEY=suite.secret_key,
               RUST_LOG="warn")
    cmd = [binary, "serve", "--listen", "127.0.0.1:0", "--data", data_dir]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True)
    try:
        endpoint = None
        deadline = time.time() + 30
        while time.time() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            if line.startswith("listening on http://"):
                endpoint = line.split(" ", 2)[2].strip()
                break
        check(endpoint, "second server announces its address", "listening on http://...", endpoint, command=cmd)
        session = boto3.session.Session(aws_access_key_id=suite.access_key,
                                        aws_secret_access_key=suite.secret_key, region_name="us-east-1")
        s3 = session.client("s3", endpoint_url=endpoint, config=Config(
            s3={"addressing_style": "path"}, retries={"max_attempts": 2, "mode": "standard"},
            connect_timeout=10, read_timeout=60))
        bucket = "bitrot-" + secrets.token_hex(4)
        s3.create_bucket(Bucket=bucket)
        size = 20 * MIB
        data = os.urandom(size)
        s3.put_object(Bucket=bucket, Key="rotten.bin", Body=data)
        block = 64 * 1024
        file_len = size + -(-size // block) * 4  # data, then one CRC32C per 64 KiB block
        blobs = []
        for root, _, files in os.walk(os.path.join(data_dir, "blobs")):
            blobs += [os.path.join(root, f) for f in files if os.path.getsize(os.path.join(root, f)) == file_len]
        eq(len(blobs), 1, "one blob file of the object's size (data + block table)")
        bad = 12 * MIB + 5
        with open(blobs[0], "r+b") as f:
            f.seek(bad)
            byte = f.read(1)
            f.seek(bad)
            f.write(bytes([byte[0] ^ 0x5A]))

        for rng in [f"bytes={bad - 10}-{bad + 10}", f"bytes={bad}-", f"bytes={12 * MIB - 3 * block}-{bad}",
                    f"bytes=-{size - bad}", f"bytes=0-{bad}"]:
            try:
                got = s3.get_object(Bucket=bucket, Key="rotten.bin", Range=rng)["Body"].read()
            except ClientError as e:
                eq(e.response["Error"]["Code"], "InternalError", f"range {rng} over the rotten byte: error code")
                eq(e.response["ResponseMetadata"]["HTTPStatusCode"], 500, f"range {rng}: status")
                continue
            except (botocore.exceptions.ResponseStreamingError, botocore.exceptions.IncompleteReadError,
                    botocore.exceptions.ConnectionClosedError, botocore.exceptions.EndpointConnectionError):
                continue
            fail(f"range {rng} over the rotten byte", "an error", f"{len(got)} bytes served")
        clear = s3.get_object(Bucket=bucket, Key="rotten.bin", Range=f"bytes=0-{block - 1}")["Body"].read()
        check(clear == data[:block], "a range clear of the bad block is served right", "the original bytes", "different bytes")

        target = os.path.join(suite.scratch, "rotten-download.bin")
        cfg = TransferConfig(multipart_threshold=4 * MIB, multipart_chunksize=4 * MIB, max_concurrency=4)
        try:
            s3.download_file(bucket, "rotten.bin", target, Config=cfg)
        except Exception:  # noqa: BLE001 - any failure is right; a success is not
            pass
        else:
            same = open(target, "rb").read() == data
            fail("download_file of a rotten object", "a failure", "success (" + ("correct" if same else "CORRUPT") + " file)")
        check(not os.path.exists(target), "a failed download leaves no file", "no file", target)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()

if __name__ == "__main__":
    print(f"boto3 {boto3.__version__}, botocore {botocore.__version__}", flush=True)
    try:
        rc = suite.main()
    finally:
        shutil.rmtree(suite.scratch, ignore_errors=True)
    sys.exit(rc)
