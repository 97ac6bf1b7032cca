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
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zlib
from concurrent.futures import ThreadPoolExecutor

import boto3
import botocore
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError

from harness import Failure, Suite, check, eq, fail, tail, tamper_presigned

suite = Suite("boto3")
ENDPOINT = suite.endpoint
MIB = 1024 * 1024


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


if __name__ == "__main__":
    print(f"boto3 {boto3.__version__}, botocore {botocore.__version__}", flush=True)
    try:
        rc = suite.main()
    finally:
        shutil.rmtree(suite.scratch, ignore_errors=True)
    sys.exit(rc)
