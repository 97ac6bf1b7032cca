#!/usr/bin/env python3
"""Conformance scenarios driving the real `aws` CLI (v1, from PyPI) against Strata.

Every scenario shells out to `aws --endpoint-url $STRATA_ENDPOINT ...` with an
isolated configuration (no ~/.aws, path-style addressing, us-east-1) and checks
exit codes, stdout/stderr and the bytes that come back.

Run through conformance/run.sh, which starts the server and sets the environment
(see harness.py for the variables).
"""

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import zlib

from harness import Failure, Suite, check, eq, fail, fmt_cmd, tail, tamper_presigned

suite = Suite("aws-cli")
ENDPOINT = suite.endpoint
AWS = os.path.join(os.path.dirname(os.path.abspath(sys.executable)), "aws")
if not os.path.exists(AWS):
    AWS = shutil.which("aws") or "aws"

GIB = 1024 * 1024 * 1024
MIB = 1024 * 1024

def _write_config(name, extra_s3=""):
    path = os.path.join(suite.scratch, name)
    with open(path, "w") as f:
        f.write(
            "[default]\n"
            "region = us-east-1\n"
            "output = json\n"
            "s3 =\n"
            "    addressing_style = path\n" + extra_s3
        )
    return path


# The configuration every scenario uses: only path-style addressing is set.
CONFIG_FILE = _write_config("aws-config")
# Same plus `signature_version = s3v4`, the documented way to get SigV4
# presigned URLs (botocore presigns S3 URLs with SigV2 unless told otherwise).
CONFIG_FILE_SIGV4 = _write_config("aws-config-sigv4", "    signature_version = s3v4\n")


def cli_env(access_key=None, secret_key=None, config=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_ACCESS_KEY_ID=access_key or suite.access_key,
        AWS_SECRET_ACCESS_KEY=secret_key or suite.secret_key,
        AWS_DEFAULT_REGION="us-east-1",
        AWS_CONFIG_FILE=config or CONFIG_FILE,
        AWS_SHARED_CREDENTIALS_FILE="/dev/null",
        AWS_EC2_METADATA_DISABLED="true",
        AWS_PAGER="",
        PYTHONIOENCODING="utf-8",
        LC_ALL="C.UTF-8",
        LANG="C.UTF-8",
    )
    return env


class Result:
    def __init__(self, cmd, rc, stdout, stderr):
        self.cmd, self.rc, self.stdout, self.stderr = cmd, rc, stdout, stderr

    def json(self):
        text = self.stdout if isinstance(self.stdout, str) else self.stdout.decode()
        if not text.strip():
            return {}
        try:
            return json.loads(text)
        except ValueError:
            fail("aws printed something that is not JSON", "JSON document", tail(text), command=self.cmd)


def aws(*args, ok=True, timeout=120, creds=None, input=None, binary=False, config=None, endpoint=None):
    """Run `aws --endpoint-url ENDPOINT *args` (`endpoint` replaces the suite's server).

    ok=True: the command must exit 0; ok=False: it must exit non-zero;
    ok=None: no expectation (caller inspects the result).
    """
    cmd = [AWS, "--endpoint-url", endpoint or ENDPOINT] + [str(a) for a in args]
    env = cli_env(*(creds or (None, None)), config=config)
    try:
        if binary:
            p = subprocess.run(cmd, input=input, capture_output=True, env=env, timeout=timeout)
            out, err = p.stdout, p.stderr.decode("utf-8", "replace")
        else:
            p = subprocess.run(cmd, input=input, capture_output=True, env=env, timeout=timeout,
                               text=True, encoding="utf-8", errors="replace")
            out, err = p.stdout, p.stderr
    except subprocess.TimeoutExpired:
        fail("aws command timed out", f"finish within {timeout}s", "still running; killed", command=cmd)
    r = Result(cmd, p.returncode, out, err)
    if ok is True and r.rc != 0:
        fail("aws command failed", "exit 0", f"exit {r.rc}", command=cmd,
             extra=(err or "") + ("\nstdout: " + tail(out, 500) if out and not binary else ""))
    if ok is False and r.rc == 0:
        fail("aws command unexpectedly succeeded", "non-zero exit", "exit 0", command=cmd,
             extra=out if not binary else None)
    return r


def aws_json(*args, **kw):
    return aws(*args, "--output", "json", **kw).json()


def expect_error(args, code, creds=None):
    """The command must fail and its stderr must name the S3 error `code`."""
    r = aws(*args, ok=False, creds=creds)
    check(code in r.stderr, f"error code {code} in stderr", code, tail(r.stderr, 600), command=r.cmd)
    return r


def make_bucket(hint):
    name = suite.bucket_name(hint)
    aws("s3api", "create-bucket", "--bucket", name)
    return name


def put_bytes(bucket, key, data, *extra):
    path = write_file(os.path.join(suite.scratch, "put-" + hashlib.md5(key.encode()).hexdigest()), data)
    try:
        return aws_json("s3api", "put-object", "--bucket", bucket, "--key", key, "--body", path, *extra)
    finally:
        os.unlink(path)


def seed(bucket, objects):
    """Upload {key: bytes} in one `aws s3 cp --recursive` (one CLI start instead of many)."""
    root = os.path.join(suite.scratch, "seed-" + bucket)
    for key, data in objects.items():
        write_file(os.path.join(root, key), data)
    try:
        aws("s3", "cp", "--recursive", "--only-show-errors", root, f"s3://{bucket}/")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    keys = list_keys(bucket)
    check(set(objects) <= set(keys), "test setup: `s3 cp --recursive` uploaded every key",
          sorted(objects), keys)


def get_bytes(bucket, key, *extra):
    path = os.path.join(suite.scratch, "get-" + hashlib.md5(key.encode()).hexdigest())
    try:
        meta = aws_json("s3api", "get-object", "--bucket", bucket, "--key", key, *extra, path)
        with open(path, "rb") as f:
            return f.read(), meta
    finally:
        if os.path.exists(path):
            os.unlink(path)


def head(bucket, key, *extra):
    return aws_json("s3api", "head-object", "--bucket", bucket, "--key", key, *extra)


def list_keys(bucket, prefix=None):
    args = ["s3api", "list-objects-v2", "--bucket", bucket]
    if prefix is not None:
        args += ["--prefix", prefix]
    out = aws_json(*args)
    return [o["Key"] for o in out.get("Contents", [])]


def write_file(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    return path


def files_equal(a, b):
    return subprocess.run(["cmp", "-s", a, b]).returncode == 0


def md5_etag(data):
    return '"' + hashlib.md5(data).hexdigest() + '"'


def curl(url, out_path, method="GET"):
    cmd = ["curl", "-sS", "-X", method, "-o", out_path, "-w", "%{http_code}", url]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        fail("curl failed", "exit 0", f"exit {p.returncode}", command=cmd, extra=p.stderr)
    return int(p.stdout.strip() or 0)


# --------------------------------------------------------------------------
# scenarios
# --------------------------------------------------------------------------

@suite.scenario
def health_endpoint_without_auth():
    out = os.path.join(suite.scratch, "health")
    code = curl(ENDPOINT + "/_strata/health", out)
    eq(code, 200, "GET /_strata/health status (no credentials)")


@suite.scenario
def s3_mb_ls_and_head_bucket():
    name = suite.bucket_name("mb")
    r = aws("s3", "mb", f"s3://{name}")
    check(f"make_bucket: {name}" in r.stdout, "s3 mb output", f"make_bucket: {name}", r.stdout, command=r.cmd)
    r = aws("s3", "ls")
    names = [line.split()[-1] for line in r.stdout.splitlines() if line.strip()]
    check(name in names, "bucket listed by `s3 ls`", name, names, command=r.cmd)
    aws("s3api", "head-bucket", "--bucket", name)
    buckets = [b["Name"] for b in aws_json("s3api", "list-buckets").get("Buckets", [])]
    check(name in buckets, "bucket in list-buckets", name, buckets)


@suite.scenario
def s3_mb_existing_bucket_is_already_owned():
    name = suite.bucket_name("dup")
    aws("s3", "mb", f"s3://{name}")
    expect_error(["s3", "mb", f"s3://{name}"], "BucketAlreadyOwnedByYou")


@suite.scenario
def s3_cp_small_file_roundtrip():
    bucket = make_bucket("cp-small")
    data = os.urandom(12345)
    src = write_file(os.path.join(suite.scratch, "small.bin"), data)
    r = aws("s3", "cp", src, f"s3://{bucket}/small.bin")
    check("upload:" in r.stdout, "s3 cp upload output", "upload: ...", r.stdout, command=r.cmd)
    h = head(bucket, "small.bin")
    eq(h.get("ContentLength"), len(data), "head-object ContentLength")
    eq(h.get("ETag"), md5_etag(data), "head-object ETag (MD5 of a single-part upload)")
    dst = os.path.join(suite.scratch, "small.down")
    aws("s3", "cp", f"s3://{bucket}/small.bin", dst)
    check(files_equal(src, dst), "downloaded bytes equal uploaded bytes", "identical", "differ (cmp)")
    # streaming through stdin / stdout
    aws("s3", "cp", "-", f"s3://{bucket}/from-stdin.bin", input=data, binary=True)
    r = aws("s3", "cp", f"s3://{bucket}/from-stdin.bin", "-", binary=True)
    check(r.stdout == data, "`s3 cp - ` upload then `s3 cp ... -` download", f"{len(data)} identical bytes",
          f"{len(r.stdout)} bytes, equal={r.stdout == data}", command=r.cmd)


@suite.scenario
def s3_cp_name_with_spaces_and_unicode():
    bucket = make_bucket("cp-unicode")
    fname = "report final – ünïcødé 日本語 (v2) +&=,;'@.txt"
    data = ("héllo wörld " * 100).encode()
    src = write_file(os.path.join(suite.scratch, "uni", fname), data)
    aws("s3", "cp", src, f"s3://{bucket}/dir with space/")
    key = "dir with space/" + fname
    keys = list_keys(bucket)
    eq(keys, [key], "keys after `s3 cp` of a file with spaces/unicode")
    r = aws("s3", "ls", f"s3://{bucket}/dir with space/")
    check(fname in r.stdout, "`s3 ls` shows the unicode name", fname, r.stdout, command=r.cmd)
    eq(head(bucket, key).get("ContentLength"), len(data), "head-object ContentLength for unicode key")
    dst = os.path.join(suite.scratch, "uni", "down-" + fname)
    aws("s3", "cp", f"s3://{bucket}/{key}", dst)
    check(files_equal(src, dst), "downloaded unicode-named object equals upload", "identical", "differ (cmp)")


@suite.scenario
def s3_cp_1gib_multipart_roundtrip():
    bucket = make_bucket("cp-big")
    workdir = os.path.join(suite.scratch, "big")
    os.makedirs(workdir, exist_ok=True)
    src = os.path.join(workdir, "big.bin")
    dst = os.path.join(workdir, "big.down")
    try:
        t0 = time.monotonic()
        gen = ["head", "-c", str(GIB), "/dev/urandom"]
        with open(src, "wb") as f:
            subprocess.run(gen, stdout=f, check=True, timeout=300)
        t1 = time.monotonic()
        aws("s3", "cp", "--only-show-errors", src, f"s3://{bucket}/big.bin", timeout=600)
        t2 = time.monotonic()
        h = head(bucket, "big.bin")
        eq(h.get("ContentLength"), GIB, "head-object ContentLength of the 1 GiB object")
        etag = h.get("ETag", "")
        check(re.fullmatch(r'"[0-9a-f]{32}-\d+"', etag or ""), "multipart ETag form \"<md5>-<parts>\"",
              '"<32 hex>-N"', etag)
        aws("s3", "cp", "--only-show-errors", f"s3://{bucket}/big.bin", dst, timeout=600)
        t3 = time.monotonic()
        same = files_equal(src, dst)
        if not same:
            sums = [hashlib.sha256(open(p, "rb").read()).hexdigest() for p in (src, dst)]
            fail("1 GiB download equals upload", f"sha256 {sums[0]}", f"sha256 {sums[1]} "
                 f"(size {os.path.getsize(dst)})")
        print(f"    1 GiB: generate {t1 - t0:.1f}s, upload {t2 - t1:.1f}s, download {t3 - t2:.1f}s",
              flush=True)
        aws("s3", "rm", f"s3://{bucket}/big.bin")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@suite.scenario
def s3_sync_tree_then_resync_one_change():
    bucket = make_bucket("sync")
    tree = os.path.join(suite.scratch, "tree")
    files = {
        "a.txt": b"alpha\n",
        "sub/b.txt": b"bravo\n" * 10,
        "sub/deeper/c.bin": os.urandom(70000),
        "space dir/d é.txt": b"delta\n",
    }
    for rel, data in files.items():
        write_file(os.path.join(tree, rel), data)
    # Make the local files clearly older than the upload so `sync` decisions
    # don't depend on sub-second timing.
    old = time.time() - 3600
    for rel in files:
        os.utime(os.path.join(tree, rel), (old, old))
    dest = f"s3://{bucket}/mirror/"
    r = aws("s3", "sync", tree, dest)
    uploads = [line for line in r.stdout.splitlines() if line.startswith("upload:")]
    eq(len(uploads), len(files), "number of uploads in the first sync", command=r.cmd, extra=r.stdout)
    keys = sorted(list_keys(bucket, "mirror/"))
    eq(keys, sorted("mirror/" + k for k in files), "keys after the first sync")
    before = {k: head(bucket, "mirror/" + k) for k in files}

    # A second sync with no change uploads nothing.
    r = aws("s3", "sync", tree, dest)
    eq(r.stdout.strip(), "", "output of a sync with nothing changed", command=r.cmd)

    changed = "sub/b.txt"
    new_data = b"bravo changed\n" * 11
    write_file(os.path.join(tree, changed), new_data)
    r = aws("s3", "sync", tree, dest)
    uploads = [line for line in r.stdout.splitlines() if line.startswith("upload:")]
    check(len(uploads) == 1 and changed in uploads[0], "the re-sync uploads exactly the changed file",
          f"one upload of {changed}", uploads, command=r.cmd)
    after = {k: head(bucket, "mirror/" + k) for k in files}
    for k in files:
        if k == changed:
            check(after[k]["ETag"] != before[k]["ETag"], f"ETag of changed {k} differs",
                  "a new ETag", after[k]["ETag"])
            eq(after[k]["ETag"], md5_etag(new_data), f"ETag of changed {k}")
        else:
            eq(after[k]["ETag"], before[k]["ETag"], f"ETag of unchanged {k}")
            eq(after[k].get("LastModified"), before[k].get("LastModified"), f"LastModified of unchanged {k}")

    # And the tree comes back down identical.
    down = os.path.join(suite.scratch, "tree-down")
    aws("s3", "sync", dest, down)
    p = subprocess.run(["diff", "-r", tree, down], capture_output=True, text=True)
    eq(p.returncode, 0, "diff -r of the synced-down tree", command=["diff", "-r", tree, down],
       extra=p.stdout + p.stderr)


@suite.scenario
def s3_ls_and_ls_recursive():
    bucket = make_bucket("ls")
    objects = {"top.txt": b"t" * 3, "a/one.txt": b"o" * 5, "a/b/two.txt": b"w" * 7}
    seed(bucket, objects)
    r = aws("s3", "ls", f"s3://{bucket}/")
    lines = [line.strip() for line in r.stdout.splitlines() if line.strip()]
    check("PRE a/" in lines, "`s3 ls` shows the common prefix", "PRE a/", lines, command=r.cmd)
    check(any(line.endswith(" 3 top.txt") for line in lines), "`s3 ls` shows top.txt with size 3",
          "... 3 top.txt", lines, command=r.cmd)
    eq(len(lines), 2, "number of `s3 ls` entries at the root", extra=r.stdout)
    r = aws("s3", "ls", f"s3://{bucket}/a/")
    lines = [line.strip() for line in r.stdout.splitlines() if line.strip()]
    check("PRE b/" in lines and any(line.endswith(" 5 one.txt") for line in lines),
          "`s3 ls s3://bucket/a/`", ["PRE b/", "... 5 one.txt"], lines, command=r.cmd)
    r = aws("s3", "ls", "--recursive", f"s3://{bucket}/")
    got = {}
    for line in r.stdout.splitlines():
        parts = line.split(None, 3)
        if len(parts) == 4:
            got[parts[3]] = int(parts[2])
    eq(got, {k: len(v) for k, v in objects.items()}, "`s3 ls --recursive` keys and sizes", command=r.cmd)


@suite.scenario
def s3_rm_recursive():
    bucket = make_bucket("rm")
    objects = {f"x/{i}.txt": b"x" for i in range(5)}
    objects.update({"x-sibling.txt": b"keep", "y/keep.txt": b"keep"})
    seed(bucket, objects)
    r = aws("s3", "rm", "--recursive", f"s3://{bucket}/x/")
    deletes = [line for line in r.stdout.splitlines() if line.startswith("delete:")]
    eq(len(deletes), 5, "number of `delete:` lines from s3 rm --recursive", command=r.cmd, extra=r.stdout)
    eq(sorted(list_keys(bucket)), ["x-sibling.txt", "y/keep.txt"], "keys left after s3 rm --recursive x/")


def _presign_roundtrip(config, want_sigv4):
    bucket = make_bucket("presign")
    data = os.urandom(4096)
    key = "dir/pre signed ü.bin"
    put_bytes(bucket, key, data)
    put_bytes(bucket, "other.bin", b"other object")
    r = aws("s3", "presign", f"s3://{bucket}/{key}", "--expires-in", "600", config=config)
    url = r.stdout.strip()
    check(url.startswith(ENDPOINT + "/" + bucket + "/"), "presigned URL is path-style",
          ENDPOINT + f"/{bucket}/...", url, command=r.cmd)
    is_v4 = "X-Amz-Signature=" in url
    if want_sigv4:
        check(is_v4, "presigned URL uses SigV4 with signature_version = s3v4", "X-Amz-Signature=...", url,
              command=r.cmd)
    print(f"    presigned with {'SigV4' if is_v4 else 'SigV2'}: {url[:160]}...", flush=True)
    out = os.path.join(suite.scratch, "presigned.out")
    code = curl(url, out)
    body = open(out, "rb").read()
    check(code == 200 and body == data, f"curl of the {'SigV4' if is_v4 else 'SigV2'} presigned URL",
          f"200 and the {len(data)} object bytes",
          f"{code} and {len(body)} bytes (equal={body == data}): {tail(body[:300]) if body != data else ''}",
          command=["curl", url])
    tampered = tamper_presigned(url)
    path = url.split("?", 1)[0]
    tampered["key changed"] = url.replace(path, f"{ENDPOINT}/{bucket}/other.bin", 1)
    for what, bad in tampered.items():
        check(bad != url, f"test setup: tampering ({what}) changed the URL", "a different URL", bad)
        code = curl(bad, out)
        body = open(out, "rb").read()
        check(code == 403 and body != data, f"curl of a tampered presigned URL ({what})", "403",
              f"{code}: {tail(body[:400])}", command=["curl", bad])
        check(b"SignatureDoesNotMatch" in body, f"error code of a tampered presigned URL ({what})",
              "SignatureDoesNotMatch in the XML body", tail(body[:400]), command=["curl", bad])


@suite.scenario
def s3_presign_sigv4_and_curl():
    _presign_roundtrip(CONFIG_FILE_SIGV4, want_sigv4=True)


@suite.scenario
def s3_presign_default_config_and_curl():
    """`aws s3 presign` with no signature_version configured (what most users run): botocore
    presigns us-east-1 URLs with SigV2 (AWSAccessKeyId/Signature/Expires). Strata accepts SigV2
    presigned URLs (their expiry is enforced) while refusing SigV2 header signing."""
    _presign_roundtrip(CONFIG_FILE, want_sigv4=False)


@suite.scenario
def s3_rb_empty_and_force():
    name = suite.bucket_name("rb")
    aws("s3", "mb", f"s3://{name}")
    put_bytes(name, "a.txt", b"a")
    expect_error(["s3", "rb", f"s3://{name}"], "BucketNotEmpty")
    r = aws("s3", "rb", "--force", f"s3://{name}")
    check(f"remove_bucket: {name}" in r.stdout, "s3 rb --force output", f"remove_bucket: {name}", r.stdout,
          command=r.cmd)
    r = aws("s3api", "head-bucket", "--bucket", name, ok=False)
    check("404" in r.stderr or "Not Found" in r.stderr, "head-bucket after rb", "404 Not Found",
          tail(r.stderr), command=r.cmd)
    empty = suite.bucket_name("rb-empty")
    aws("s3", "mb", f"s3://{empty}")
    aws("s3", "rb", f"s3://{empty}")
    names = [b["Name"] for b in aws_json("s3api", "list-buckets").get("Buckets", [])]
    check(name not in names and empty not in names, "removed buckets are not listed",
          f"neither {name} nor {empty}", names)


@suite.scenario
def s3api_put_object_metadata_and_headers():
    bucket = make_bucket("meta")
    data = b"<p>hello</p>"
    put_bytes(bucket, "page.html", data, "--metadata", "color=blue,owner=strata-team",
              "--content-type", "text/x-strata; charset=utf-8", "--cache-control", "max-age=60, public",
              "--content-disposition", 'attachment; filename="page.html"')
    h = head(bucket, "page.html")
    eq(h.get("Metadata"), {"color": "blue", "owner": "strata-team"}, "head-object Metadata")
    eq(h.get("ContentType"), "text/x-strata; charset=utf-8", "head-object ContentType")
    eq(h.get("CacheControl"), "max-age=60, public", "head-object CacheControl")
    eq(h.get("ContentDisposition"), 'attachment; filename="page.html"', "head-object ContentDisposition")
    eq(h.get("ContentLength"), len(data), "head-object ContentLength")
    body, meta = get_bytes(bucket, "page.html")
    eq(body, data, "get-object body")
    eq(meta.get("Metadata"), {"color": "blue", "owner": "strata-team"}, "get-object Metadata")
    eq(meta.get("ContentType"), "text/x-strata; charset=utf-8", "get-object ContentType")


@suite.scenario
def s3api_get_object_range():
    bucket = make_bucket("range")
    data = bytes(range(256)) * 4  # 1024 bytes
    put_bytes(bucket, "r.bin", data)
    cases = [("bytes=100-199", data[100:200], "bytes 100-199/1024"),
             ("bytes=-10", data[-10:], "bytes 1014-1023/1024"),
             ("bytes=1000-", data[1000:], "bytes 1000-1023/1024"),
             ("bytes=1000-5000", data[1000:], "bytes 1000-1023/1024")]
    for rng, expected, content_range in cases:
        body, meta = get_bytes(bucket, "r.bin", "--range", rng)
        eq(body, expected, f"get-object --range {rng} body")
        eq(meta.get("ContentRange"), content_range, f"get-object --range {rng} ContentRange")
        eq(meta.get("ContentLength"), len(expected), f"get-object --range {rng} ContentLength")
    r = aws("s3api", "get-object", "--bucket", bucket, "--key", "r.bin", "--range", "bytes=5000-6000",
            os.path.join(suite.scratch, "range.out"), ok=False)
    check("InvalidRange" in r.stderr, "unsatisfiable range", "InvalidRange (416)", tail(r.stderr), command=r.cmd)


@suite.scenario
def s3api_copy_object_metadata_directive():
    bucket = make_bucket("copy")
    data = b"copy me " * 50
    put_bytes(bucket, "src.txt", data, "--metadata", "a=1", "--content-type", "text/plain")
    aws_json("s3api", "copy-object", "--bucket", bucket, "--key", "copy-default.txt",
             "--copy-source", f"{bucket}/src.txt")
    h = head(bucket, "copy-default.txt")
    eq(h.get("Metadata"), {"a": "1"}, "metadata after copy-object (default COPY directive)")
    eq(h.get("ContentType"), "text/plain", "content type after copy-object (COPY)")
    out = aws_json("s3api", "copy-object", "--bucket", bucket, "--key", "copy-replaced.txt",
                   "--copy-source", f"{bucket}/src.txt", "--metadata-directive", "REPLACE",
                   "--metadata", "b=2", "--content-type", "application/json")
    eq(out.get("CopyObjectResult", {}).get("ETag"), md5_etag(data), "CopyObjectResult.ETag")
    h = head(bucket, "copy-replaced.txt")
    eq(h.get("Metadata"), {"b": "2"}, "metadata after copy-object --metadata-directive REPLACE")
    eq(h.get("ContentType"), "application/json", "content type after copy-object REPLACE")
    body, _ = get_bytes(bucket, "copy-replaced.txt")
    eq(body, data, "body of the copied object")
    h = head(bucket, "src.txt")
    eq(h.get("Metadata"), {"a": "1"}, "source metadata untouched by the copies")


@suite.scenario
def s3api_list_objects_v2_delimiter_prefix():
    bucket = make_bucket("list")
    keys = ["docs/x.txt", "photos/2024/a.jpg", "photos/2024/b.jpg", "photos/2025/c.jpg", "photos/top.jpg",
            "readme.md"]
    seed(bucket, {k: b"k" for k in keys})
    out = aws_json("s3api", "list-objects-v2", "--bucket", bucket, "--prefix", "photos/", "--delimiter", "/")
    eq([p["Prefix"] for p in out.get("CommonPrefixes", [])], ["photos/2024/", "photos/2025/"],
       "CommonPrefixes for --prefix photos/ --delimiter /")
    eq([o["Key"] for o in out.get("Contents", [])], ["photos/top.jpg"], "Contents for --prefix photos/ --delimiter /")
    out = aws_json("s3api", "list-objects-v2", "--bucket", bucket, "--delimiter", "/")
    eq([p["Prefix"] for p in out.get("CommonPrefixes", [])], ["docs/", "photos/"], "root CommonPrefixes")
    eq([o["Key"] for o in out.get("Contents", [])], ["readme.md"], "root Contents with --delimiter /")
    out = aws_json("s3api", "list-objects-v2", "--bucket", bucket, "--prefix", "photos/2024/")
    eq([o["Key"] for o in out.get("Contents", [])], ["photos/2024/a.jpg", "photos/2024/b.jpg"],
       "Contents for --prefix photos/2024/")
    # explicit pagination
    page1 = aws_json("s3api", "list-objects-v2", "--bucket", bucket, "--max-keys", "4", "--no-paginate")
    eq(len(page1.get("Contents", [])), 4, "page 1 size with --max-keys 4")
    eq(page1.get("IsTruncated"), True, "IsTruncated on page 1")
    token = page1.get("NextContinuationToken")
    check(token, "NextContinuationToken on page 1", "a token", token)
    page2 = aws_json("s3api", "list-objects-v2", "--bucket", bucket, "--max-keys", "4", "--no-paginate",
                     "--continuation-token", token)
    eq([o["Key"] for o in page1["Contents"] + page2.get("Contents", [])], sorted(keys),
       "keys over two pages")
    eq(page2.get("IsTruncated"), False, "IsTruncated on the last page")
    out = aws_json("s3api", "list-objects-v2", "--bucket", bucket, "--start-after", "photos/2025/c.jpg")
    eq([o["Key"] for o in out.get("Contents", [])], ["photos/top.jpg", "readme.md"], "--start-after")


@suite.scenario
def s3api_delete_objects_json():
    bucket = make_bucket("delobjs")
    seed(bucket, {k: b"d" for k in ["a.txt", "b/c.txt", "keep.txt"]})
    spec = json.dumps({"Objects": [{"Key": "a.txt"}, {"Key": "b/c.txt"}, {"Key": "never-existed.txt"}]})
    out = aws_json("s3api", "delete-objects", "--bucket", bucket, "--delete", spec)
    eq(sorted(d["Key"] for d in out.get("Deleted", [])), ["a.txt", "b/c.txt", "never-existed.txt"],
       "Deleted entries of delete-objects (a missing key counts as deleted)")
    eq(out.get("Errors", []), [], "Errors of delete-objects")
    eq(list_keys(bucket), ["keep.txt"], "keys left after delete-objects")


@suite.scenario
def s3api_multipart_upload_lifecycle():
    bucket = make_bucket("mpu")
    part1 = os.urandom(5 * MIB)
    part2 = os.urandom(1024)
    p1 = write_file(os.path.join(suite.scratch, "mpu", "p1"), part1)
    p2 = write_file(os.path.join(suite.scratch, "mpu", "p2"), part2)
    out = aws_json("s3api", "create-multipart-upload", "--bucket", bucket, "--key", "mp.bin",
                   "--content-type", "application/x-test", "--metadata", "m=1")
    upload_id = out.get("UploadId")
    check(upload_id, "create-multipart-upload UploadId", "an id", out)
    e1 = aws_json("s3api", "upload-part", "--bucket", bucket, "--key", "mp.bin", "--upload-id", upload_id,
                  "--part-number", "1", "--body", p1).get("ETag")
    e2 = aws_json("s3api", "upload-part", "--bucket", bucket, "--key", "mp.bin", "--upload-id", upload_id,
                  "--part-number", "2", "--body", p2).get("ETag")
    eq(e1, md5_etag(part1), "upload-part 1 ETag")
    eq(e2, md5_etag(part2), "upload-part 2 ETag")
    uploads = aws_json("s3api", "list-multipart-uploads", "--bucket", bucket).get("Uploads", [])
    check(any(u.get("UploadId") == upload_id and u.get("Key") == "mp.bin" for u in uploads),
          "list-multipart-uploads shows the upload", upload_id, uploads)
    parts = aws_json("s3api", "list-parts", "--bucket", bucket, "--key", "mp.bin", "--upload-id", upload_id)
    eq([(p["PartNumber"], p["Size"], p["ETag"]) for p in parts.get("Parts", [])],
       [(1, len(part1), e1), (2, len(part2), e2)], "list-parts (number, size, etag)")
    spec = json.dumps({"Parts": [{"ETag": e1, "PartNumber": 1}, {"ETag": e2, "PartNumber": 2}]})
    out = aws_json("s3api", "complete-multipart-upload", "--bucket", bucket, "--key", "mp.bin",
                   "--upload-id", upload_id, "--multipart-upload", spec)
    expected_etag = '"' + hashlib.md5(hashlib.md5(part1).digest() + hashlib.md5(part2).digest()).hexdigest() + '-2"'
    eq(out.get("ETag"), expected_etag, "complete-multipart-upload ETag (md5 of part md5s, -2)")
    h = head(bucket, "mp.bin")
    eq(h.get("ContentLength"), len(part1) + len(part2), "ContentLength of the completed upload")
    eq(h.get("ContentType"), "application/x-test", "ContentType set at create-multipart-upload")
    eq(h.get("Metadata"), {"m": "1"}, "Metadata set at create-multipart-upload")
    body, _ = get_bytes(bucket, "mp.bin")
    check(body == part1 + part2, "completed object bytes", "part1 + part2", f"{len(body)} bytes, differ")
    uploads = aws_json("s3api", "list-multipart-uploads", "--bucket", bucket).get("Uploads", [])
    eq([u for u in uploads if u.get("UploadId") == upload_id], [], "completed upload no longer listed")

    # abort
    upload_id = aws_json("s3api", "create-multipart-upload", "--bucket", bucket, "--key", "aborted.bin")["UploadId"]
    aws_json("s3api", "upload-part", "--bucket", bucket, "--key", "aborted.bin", "--upload-id", upload_id,
             "--part-number", "1", "--body", p2)
    aws("s3api", "abort-multipart-upload", "--bucket", bucket, "--key", "aborted.bin", "--upload-id", upload_id)
    expect_error(["s3api", "list-parts", "--bucket", bucket, "--key", "aborted.bin", "--upload-id", upload_id],
                 "NoSuchUpload")
    uploads = aws_json("s3api", "list-multipart-uploads", "--bucket", bucket).get("Uploads", [])
    eq(uploads, [], "list-multipart-uploads after complete + abort")
    check("aborted.bin" not in list_keys(bucket), "aborted upload left no object", "no aborted.bin",
          list_keys(bucket))


def _sse_files(hint):
    """A small file and one over the CLI's 8 MiB multipart threshold (so `s3 cp` uploads it
    in parts and downloads it with ranged GETs)."""
    workdir = os.path.join(suite.scratch, hint)
    os.makedirs(workdir, exist_ok=True)
    files = {
        "small.bin": write_file(os.path.join(workdir, "small.bin"), os.urandom(100_000)),
        "big.bin": write_file(os.path.join(workdir, "big.bin"), os.urandom(9 * MIB + 4321)),
    }
    return workdir, files


@suite.scenario
def s3_cp_sse_aes256_up_and_down():
    bucket = make_bucket("sse-s3")
    workdir, files = _sse_files("sse-s3")
    try:
        for name, src in files.items():
            r = aws("s3", "cp", "--sse", "AES256", src, f"s3://{bucket}/{name}")
            check("upload:" in r.stdout, "s3 cp --sse AES256 upload output", "upload: ...", r.stdout, command=r.cmd)
            h = head(bucket, name)
            eq(h.get("ServerSideEncryption"), "AES256", f"head-object ServerSideEncryption of {name}")
            eq(h.get("ContentLength"), os.path.getsize(src), f"head-object ContentLength of {name}")
            dst = os.path.join(workdir, name + ".down")
            aws("s3", "cp", f"s3://{bucket}/{name}", dst)
            check(files_equal(src, dst), f"downloaded {name} equals the upload", "identical", "differ (cmp)")
        check(re.fullmatch(r'"[0-9a-f]{32}-2"', head(bucket, "big.bin").get("ETag", "")),
              "the 9 MiB upload was multipart", '"<md5>-2"', head(bucket, "big.bin").get("ETag"))
        # A ranged get-object across the first 64 KiB segment boundary.
        data = open(files["small.bin"], "rb").read()
        body, meta = get_bytes(bucket, "small.bin", "--range", "bytes=65530-65545")
        eq(body, data[65530:65546], "get-object --range across a segment boundary")
        eq(meta.get("ServerSideEncryption"), "AES256", "get-object ServerSideEncryption")
        # Copy within S3 keeps it encrypted when asked to.
        aws("s3", "cp", "--sse", "AES256", f"s3://{bucket}/small.bin", f"s3://{bucket}/copy.bin")
        eq(head(bucket, "copy.bin").get("ServerSideEncryption"), "AES256", "ServerSideEncryption of the copy")
        # Without --sse, a plain upload is not reported as encrypted.
        aws("s3", "cp", files["small.bin"], f"s3://{bucket}/plain.bin")
        eq(head(bucket, "plain.bin").get("ServerSideEncryption"), None, "ServerSideEncryption of a plain upload")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@suite.scenario
def storage_classes_cp_ls_and_glacier_restore():
    """`aws s3 cp --storage-class`, the class in `s3 ls`-backing listings and head-object, and
    the GLACIER flow: get-object refused with InvalidObjectState, restore-object, then readable."""
    bucket = make_bucket("classes")
    data = os.urandom(3 * MIB)
    src = write_file(os.path.join(suite.scratch, "classes-src.bin"), data)
    aws("s3", "cp", "--storage-class", "STANDARD_IA", src, f"s3://{bucket}/ia.bin")
    aws("s3", "cp", "--storage-class", "GLACIER", src, f"s3://{bucket}/cold.bin")
    aws("s3", "cp", src, f"s3://{bucket}/std.bin")
    eq(head(bucket, "ia.bin").get("StorageClass"), "STANDARD_IA", "head-object StorageClass of ia.bin")
    eq(head(bucket, "std.bin").get("StorageClass"), None, "head-object StorageClass of a STANDARD object")
    listed = {o["Key"]: o.get("StorageClass") for o in aws_json("s3api", "list-objects-v2", "--bucket", bucket)["Contents"]}
    eq(listed, {"cold.bin": "GLACIER", "ia.bin": "STANDARD_IA", "std.bin": "STANDARD"}, "list-objects-v2 StorageClass")
    body, _ = get_bytes(bucket, "ia.bin")
    check(body == data, "STANDARD_IA object reads back", "identical bytes", f"{len(body)} bytes, differ")
    expect_error(["s3api", "get-object", "--bucket", bucket, "--key", "cold.bin",
                  os.path.join(suite.scratch, "cold.out")], "InvalidObjectState")
    aws("s3api", "restore-object", "--bucket", bucket, "--key", "cold.bin",
        "--restore-request", json.dumps({"Days": 1}))
    restore = head(bucket, "cold.bin").get("Restore", "")
    check(restore.startswith('ongoing-request="false"'), "head-object Restore after restore-object",
          'ongoing-request="false", expiry-date=...', restore)
    body, _ = get_bytes(bucket, "cold.bin")
    check(body == data, "restored GLACIER object reads back", "identical bytes", f"{len(body)} bytes, differ")
    expect_error(["s3", "cp", "--storage-class", "DEEP_ARCHIVE", src, f"s3://{bucket}/deep.bin"], "InvalidStorageClass")
    os.unlink(src)


@suite.scenario
def s3_cp_sse_c_up_and_down():
    """SSE-C over plain http: Strata accepts customer keys from a loopback client (S3 itself
    requires TLS), and the aws CLI v1 sends them over http without complaint."""
    bucket = make_bucket("sse-c")
    workdir, files = _sse_files("sse-c")
    key = os.urandom(32)
    other = os.urandom(32)
    key_file = write_file(os.path.join(workdir, "key.bin"), key)
    other_file = write_file(os.path.join(workdir, "other-key.bin"), other)
    key_md5 = base64.b64encode(hashlib.md5(key).digest()).decode()
    sse_c = ["--sse-c", "AES256", "--sse-c-key", f"fileb://{key_file}"]
    try:
        for name, src in files.items():
            r = aws("s3", "cp", *sse_c, src, f"s3://{bucket}/{name}")
            check("upload:" in r.stdout, "s3 cp --sse-c upload output", "upload: ...", r.stdout, command=r.cmd)
            h = head(bucket, name, "--sse-customer-algorithm", "AES256",
                     "--sse-customer-key", f"fileb://{key_file}")
            eq(h.get("SSECustomerAlgorithm"), "AES256", f"head-object SSECustomerAlgorithm of {name}")
            eq(h.get("SSECustomerKeyMD5"), key_md5, f"head-object SSECustomerKeyMD5 of {name}")
            eq(h.get("ServerSideEncryption"), None, f"head-object ServerSideEncryption of {name} (SSE-C)")
            eq(h.get("ContentLength"), os.path.getsize(src), f"head-object ContentLength of {name}")
            dst = os.path.join(workdir, name + ".down")
            aws("s3", "cp", *sse_c, f"s3://{bucket}/{name}", dst)
            check(files_equal(src, dst), f"downloaded {name} equals the upload", "identical", "differ (cmp)")

        # Without the key: 400; with another key: 403.
        r = aws("s3api", "head-object", "--bucket", bucket, "--key", "small.bin", ok=False)
        check("400" in r.stderr or "Bad Request" in r.stderr, "head-object of an SSE-C object without the key",
              "400 Bad Request", tail(r.stderr), command=r.cmd)
        r = aws("s3api", "head-object", "--bucket", bucket, "--key", "small.bin", "--sse-customer-algorithm",
                "AES256", "--sse-customer-key", f"fileb://{other_file}", ok=False)
        check("403" in r.stderr or "Forbidden" in r.stderr, "head-object with the wrong key",
              "403 Forbidden", tail(r.stderr), command=r.cmd)
        out = os.path.join(workdir, "nokey.out")
        expect_error(["s3api", "get-object", "--bucket", bucket, "--key", "small.bin", out], "InvalidRequest")
        expect_error(["s3api", "get-object", "--bucket", bucket, "--key", "small.bin", "--sse-customer-algorithm",
                      "AES256", "--sse-customer-key", f"fileb://{other_file}", out], "AccessDenied")
        r = aws("s3", "cp", f"s3://{bucket}/small.bin", out, ok=False)
        check("400" in r.stderr or "Bad Request" in r.stderr, "s3 cp download without --sse-c",
              "400 Bad Request", tail(r.stderr), command=r.cmd)

        # A ranged get-object with the key.
        data = open(files["big.bin"], "rb").read()
        body, meta = get_bytes(bucket, "big.bin", "--range", f"bytes={8 * MIB - 10}-{8 * MIB + 9}",
                               "--sse-customer-algorithm", "AES256", "--sse-customer-key", f"fileb://{key_file}")
        eq(body, data[8 * MIB - 10:8 * MIB + 10], "get-object --range across the part boundary with the key")
        eq(meta.get("SSECustomerKeyMD5"), key_md5, "get-object SSECustomerKeyMD5")

        # Copy out of SSE-C into SSE-S3 (needs the source key).
        aws("s3", "cp", "--sse-c-copy-source", "AES256", "--sse-c-copy-source-key", f"fileb://{key_file}",
            "--sse", "AES256", f"s3://{bucket}/small.bin", f"s3://{bucket}/as-sse-s3.bin")
        h = head(bucket, "as-sse-s3.bin")
        eq(h.get("ServerSideEncryption"), "AES256", "ServerSideEncryption of the SSE-C -> SSE-S3 copy")
        body, _ = get_bytes(bucket, "as-sse-s3.bin")
        eq(body, open(files["small.bin"], "rb").read(), "bytes of the SSE-C -> SSE-S3 copy")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _checksum_roundtrip(algorithm, compute):
    bucket = make_bucket("ck-" + algorithm)
    data = os.urandom(100_000)
    expected = base64.b64encode(compute(data)).decode()
    field = "Checksum" + algorithm
    out = put_bytes(bucket, "ck.bin", data, "--checksum-algorithm", algorithm)
    eq(out.get(field), expected, f"put-object --checksum-algorithm {algorithm}: {field} in the response")
    body, meta = get_bytes(bucket, "ck.bin", "--checksum-mode", "ENABLED")
    eq(body, data, "get-object body")
    eq(meta.get(field), expected, f"get-object --checksum-mode ENABLED: {field}")
    h = head(bucket, "ck.bin", "--checksum-mode", "ENABLED")
    eq(h.get(field), expected, f"head-object --checksum-mode ENABLED: {field}")


@suite.scenario
def s3api_checksum_crc32():
    _checksum_roundtrip("CRC32", lambda d: (zlib.crc32(d) & 0xFFFFFFFF).to_bytes(4, "big"))


@suite.scenario
def s3api_checksum_sha256():
    _checksum_roundtrip("SHA256", lambda d: hashlib.sha256(d).digest())


@suite.scenario
def s3api_errors_missing_key_and_bucket():
    bucket = make_bucket("errors")
    out = os.path.join(suite.scratch, "missing.out")
    expect_error(["s3api", "get-object", "--bucket", bucket, "--key", "no/such/key", out], "NoSuchKey")
    r = aws("s3", "cp", f"s3://{bucket}/no-such-key.txt", out, ok=False)
    check("404" in r.stderr or "Not Found" in r.stderr, "s3 cp of a missing key", "404 Not Found in stderr",
          tail(r.stderr), command=r.cmd)
    r = aws("s3api", "head-object", "--bucket", bucket, "--key", "missing", ok=False)
    check("404" in r.stderr or "Not Found" in r.stderr, "head-object of a missing key", "404 Not Found",
          tail(r.stderr), command=r.cmd)
    missing_bucket = suite.bucket_name("never-created")
    expect_error(["s3api", "get-object", "--bucket", missing_bucket, "--key", "k", out], "NoSuchBucket")
    expect_error(["s3api", "list-objects-v2", "--bucket", missing_bucket], "NoSuchBucket")


@suite.scenario
def bad_credentials_rejected():
    expect_error(["s3api", "list-buckets"], "SignatureDoesNotMatch",
                 creds=(suite.access_key, suite.secret_key + "x"))
    expect_error(["s3api", "list-buckets"], "InvalidAccessKeyId",
                 creds=("AKIANOSUCHKEY0000000", "whatever-secret"))


def _start_tls_server(cert, key, data, out_path, err_path):
    """Starts `strata serve` with TLS on a free port; returns (process, https endpoint)."""
    strata = os.environ.get("STRATA_BIN")
    check(strata and os.path.exists(strata), "STRATA_BIN names the server binary (run.sh sets it)",
          "an existing file", strata)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("STRATA_") or k in ("STRATA_ROOT_ACCESS_KEY", "STRATA_ROOT_SECRET_KEY")}
    cmd = [strata, "serve", "--listen", "127.0.0.1:0", "--data", data, "--tls-cert", cert, "--tls-key", key]
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with open(out_path, encoding="utf-8", errors="replace") as f:
            m = re.search(r"^listening on (https://127\.0\.0\.1:\d+)$", f.read(), re.M)
        if m:
            return proc, m.group(1)
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    proc.kill()
    proc.wait()
    with open(err_path, encoding="utf-8", errors="replace") as f:
        fail("TLS server did not start", "`listening on https://127.0.0.1:PORT` within 30s",
             f"exit {proc.returncode}", command=cmd, extra=f.read())


@suite.scenario
def tls_dev_cert_ca_bundle_cp_and_ls():
    """`strata dev-cert` + `serve --tls-cert/--tls-key` (its own server, port 0); the CLI works
    with `--ca-bundle cert.pem` and fails certificate verification without it."""
    root = os.path.join(suite.scratch, "tls")
    os.makedirs(root, exist_ok=True)
    cert, key = os.path.join(root, "cert.pem"), os.path.join(root, "key.pem")
    cmd = [os.environ.get("STRATA_BIN", "strata"), "dev-cert", "--cert", cert, "--key", key,
           "--host", "127.0.0.1", "--host", "localhost"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    eq(p.returncode, 0, "strata dev-cert exit code", command=cmd, extra=p.stderr)
    eq(oct(os.stat(key).st_mode & 0o777), oct(0o600), "dev-cert key file mode")

    proc, endpoint = _start_tls_server(cert, key, os.path.join(root, "data"),
                                       os.path.join(root, "server.out"), os.path.join(root, "server.err"))
    try:
        bucket = suite.bucket_name("tls")
        aws("--ca-bundle", cert, "s3", "mb", f"s3://{bucket}", endpoint=endpoint)
        data = os.urandom(200 * 1024)
        src = write_file(os.path.join(root, "up.bin"), data)
        r = aws("--ca-bundle", cert, "s3", "cp", src, f"s3://{bucket}/over/tls.bin", endpoint=endpoint)
        check("upload:" in r.stdout, "s3 cp upload over https", "upload: ...", r.stdout, command=r.cmd)
        r = aws("--ca-bundle", cert, "s3", "ls", f"s3://{bucket}/over/", endpoint=endpoint)
        check("tls.bin" in r.stdout, "s3 ls over https lists the object", "tls.bin", r.stdout, command=r.cmd)
        dst = os.path.join(root, "down.bin")
        aws("--ca-bundle", cert, "s3", "cp", f"s3://{bucket}/over/tls.bin", dst, endpoint=endpoint)
        check(files_equal(src, dst), "bytes downloaded over https equal those uploaded", "identical",
              "differ (cmp)")

        r = aws("s3", "ls", f"s3://{bucket}/", endpoint=endpoint, ok=False)
        check("CERTIFICATE_VERIFY_FAILED" in r.stderr or "SSL validation failed" in r.stderr,
              "without --ca-bundle the CLI refuses the self-signed certificate",
              "a certificate verification error", tail(r.stderr, 600), command=r.cmd)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


if __name__ == "__main__":
    try:
        rc = suite.main()
    finally:
        shutil.rmtree(suite.scratch, ignore_errors=True)
    sys.exit(rc)
