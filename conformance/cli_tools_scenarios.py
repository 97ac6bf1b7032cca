#!/usr/bin/env python3
"""Conformance scenarios driving Debian's `s3cmd` and `rclone` against Strata.

- s3cmd runs with the configuration `s3cmd --configure` writes when every question is
  answered with its default except the endpoint (host_base/host_bucket = the test server,
  path style) and HTTPS (No): so `bucket_location = US` and SigV4 signing with region `US`,
  which Strata accepts as us-east-1 (src/http/signing_region.rs). The file is made by running
  `s3cmd --configure` itself with those answers on stdin.
- rclone runs with `provider = Other`, `env_auth = false`, the keys, `endpoint` and
  `region = us-east-1`.

Both are the packages `./test.sh` installs (scripts/ensure-deps.sh). Run through
conformance/run.sh (suite `cli_tools`); see harness.py for the environment.
"""

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import urllib.error
import urllib.request

import boto3
from botocore.config import Config

from harness import Suite, check, eq, fail, tail

suite = Suite("cli-tools")
ENDPOINT = suite.endpoint
HOSTPORT = re.sub(r"^https?://", "", ENDPOINT)
MIB = 1024 * 1024
S3CMD = shutil.which("s3cmd") or "s3cmd"
RCLONE = shutil.which("rclone") or "rclone"

for _k in [k for k in os.environ if k.startswith("AWS_")]:
    del os.environ[_k]
os.environ["AWS_CONFIG_FILE"] = "/dev/null"
os.environ["AWS_SHARED_CREDENTIALS_FILE"] = "/dev/null"
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"

# boto3 only to look at what the tools did (metadata, ETags, bucket existence).
s3 = boto3.session.Session(
    aws_access_key_id=suite.access_key,
    aws_secret_access_key=suite.secret_key,
    region_name="us-east-1",
).client("s3", endpoint_url=ENDPOINT, config=Config(s3={"addressing_style": "path"}))


def tool_env():
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AWS_", "RCLONE_")) and k.lower() not in ("http_proxy", "https_proxy", "all_proxy")}
    env.update(HOME=suite.scratch, LC_ALL="C.UTF-8", LANG="C.UTF-8", PYTHONIOENCODING="utf-8")
    return env


class Result:
    def __init__(self, cmd, rc, stdout, stderr):
        self.cmd, self.rc, self.stdout, self.stderr = cmd, rc, stdout, stderr


def run(cmd, ok=True, timeout=300, input=None):
    try:
        p = subprocess.run(cmd, input=input, capture_output=True, env=tool_env(), timeout=timeout,
                           text=True, encoding="utf-8", errors="replace")
    except subprocess.TimeoutExpired:
        fail("command timed out", f"finish within {timeout}s", "still running; killed", command=cmd)
    r = Result(cmd, p.returncode, p.stdout, p.stderr)
    if ok and r.rc != 0:
        fail("command failed", "exit 0", f"exit {r.rc}", command=cmd,
             extra=(r.stderr or "") + "\nstdout: " + tail(r.stdout, 800))
    return r


def md5_file(path):
    h = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(MIB), b""):
            h.update(block)
    return h.hexdigest()


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    return path


def write_random(path, size):
    """`size` random bytes, written a MiB at a time."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        left = size
        while left > 0:
            f.write(os.urandom(min(left, MIB)))
            left -= MIB
    return path


def tree_digest(root):
    """{relative path: md5} of every file under root."""
    out = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            full = os.path.join(dirpath, name)
            out[os.path.relpath(full, root)] = md5_file(full)
    return out


def make_tree(root, big=0):
    """A small tree with awkward names; plus one `big`-byte file when big > 0."""
    write(os.path.join(root, "top.txt"), b"top level\n")
    write(os.path.join(root, "dir one", "a b+c.txt"), b"spaces and plus\n")
    write(os.path.join(root, "dir one", "caf\u00e9 \u2603.txt"), "unicode names \u00e9\n".encode())
    write(os.path.join(root, "dir one", "deep", "empty"), b"")
    write(os.path.join(root, "x", "percent%20and&amp=.bin"), os.urandom(3000))
    if big:
        write_random(os.path.join(root, "big.bin"), big)
    return root


def keys_under(bucket, prefix=""):
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys.extend(o["Key"] for o in page.get("Contents", []))
    return sorted(keys)


def sent_bytes():
    """strata_sent_bytes_total (loopback scrapes are allowed by default)."""
    with urllib.request.urlopen(ENDPOINT + "/_strata/metrics", timeout=30) as resp:
        text = resp.read().decode()
    m = re.search(r"^strata_sent_bytes_total(?:\{\})? (\S+)$", text, re.M)
    check(m, "strata_sent_bytes_total in /_strata/metrics", "a sample", tail(text, 400))
    return float(m.group(1))


# ---------------------------------------------------------------------------------- s3cmd

_S3CFG = []


def s3cfg():
    """The file `s3cmd --configure` writes with the defaults, the test server and no HTTPS."""
    if _S3CFG:
        return _S3CFG[0]
    path = os.path.join(suite.scratch, "s3cfg")
    answers = "\n".join([
        suite.access_key,   # Access Key
        suite.secret_key,   # Secret Key
        "",                 # Default Region [US]
        HOSTPORT,           # S3 Endpoint
        HOSTPORT,           # DNS-style bucket+hostname:port template (no %(bucket)s: path style)
        "",                 # Encryption password
        "",                 # Path to GPG program
        "No",               # Use HTTPS protocol [Yes]
        "",                 # HTTP Proxy server name
        "Y",                # Test access with supplied credentials? (lists buckets, region US)
        "y",                # Save settings?
    ]) + "\n"
    r = run([S3CMD, "--configure", "-c", path], input=answers, ok=False, timeout=120)
    check(os.path.exists(path), "s3cmd --configure saved its file", path, "no file",
          command=r.cmd, extra=r.stdout + r.stderr)
    check("Success. Your access key and secret key worked fine" in r.stdout,
          "s3cmd --configure's access test (ListBuckets signed for region US) succeeds",
          "Success. ...", tail(r.stdout + r.stderr, 1200), command=r.cmd)
    with open(path) as f:
        text = f.read()
    for line in ("bucket_location = US", f"host_base = {HOSTPORT}", f"host_bucket = {HOSTPORT}",
                 "use_https = False", "signature_v2 = False"):
        check(re.search("^" + re.escape(line) + "$", text, re.M), f"`{line}` in the saved config",
              line, tail(text, 2000))
    _S3CFG.append(path)
    return path


def s3cmd(*args, ok=True, timeout=300):
    return run([S3CMD, "-c", s3cfg(), "--no-progress"] + [str(a) for a in args], ok=ok, timeout=timeout)


@suite.scenario
def s3cmd_configure_defaults_sign_with_region_us():
    s3cfg()
    r = s3cmd("ls", "--debug")
    check("/US/s3/aws4_request" in r.stderr, "s3cmd signs with region US", "Credential=…/US/s3/aws4_request",
          tail(r.stderr, 600), command=r.cmd)


@suite.scenario
def s3cmd_put_get_multipart_ls_info_modify_del_rb():
    bucket = suite.bucket_name("s3cmd")
    s3cmd("mb", f"s3://{bucket}")
    work = os.path.join(suite.scratch, "s3cmd-files")
    small = write(os.path.join(work, "small.txt"), b"hello from s3cmd\n")
    big = write_random(os.path.join(work, "big.bin"), 17 * MIB)

    s3cmd("put", small, f"s3://{bucket}/docs/small.txt")
    r = s3cmd("put", "--multipart-chunk-size-mb=5", big, f"s3://{bucket}/big.bin")
    head = s3.head_object(Bucket=bucket, Key="big.bin")
    eq(head["ContentLength"], 17 * MIB, "multipart object size")
    check(head["ETag"].strip('"').endswith("-4"), "a 4-part multipart upload (17 MiB in 5 MiB parts)",
          '"…-4"', head["ETag"], command=r.cmd, extra=r.stdout)

    for key, local in (("docs/small.txt", small), ("big.bin", big)):
        out = os.path.join(work, "got-" + os.path.basename(local))
        s3cmd("get", "--force", f"s3://{bucket}/{key}", out)
        eq(md5_file(out), md5_file(local), f"bytes of s3://{bucket}/{key} after get")

    r = s3cmd("ls", f"s3://{bucket}")
    check(f"s3://{bucket}/big.bin" in r.stdout and f"s3://{bucket}/docs/" in r.stdout,
          "ls shows the object and the prefix", "big.bin and docs/", r.stdout, command=r.cmd)
    r = s3cmd("ls", "--recursive", f"s3://{bucket}")
    check(f"s3://{bucket}/docs/small.txt" in r.stdout, "ls --recursive shows the nested key", "docs/small.txt",
          r.stdout, command=r.cmd)
    r = s3cmd("la")
    check(f"s3://{bucket}/big.bin" in r.stdout, "la lists objects in all buckets", "big.bin", tail(r.stdout),
          command=r.cmd)

    r = s3cmd("info", f"s3://{bucket}/docs/small.txt")
    check(re.search(r"File size:\s+17\b", r.stdout), "info shows the size", "File size: 17", r.stdout, command=r.cmd)
    check(hashlib.md5(b"hello from s3cmd\n").hexdigest() in r.stdout, "info shows the MD5", "the md5",
          r.stdout, command=r.cmd)
    r = s3cmd("info", f"s3://{bucket}")
    check("Location:" in r.stdout, "bucket info answers", "Location: …", r.stdout, command=r.cmd)

    s3cmd("modify", "--add-header=x-amz-meta-color:blue", "--mime-type=text/x-strata",
          f"s3://{bucket}/docs/small.txt")
    head = s3.head_object(Bucket=bucket, Key="docs/small.txt")
    eq(head["Metadata"].get("color"), "blue", "metadata set by s3cmd modify")
    eq(head["ContentType"], "text/x-strata", "content type set by s3cmd modify")
    eq(head["ContentLength"], 17, "modify keeps the bytes")
    got = s3.get_object(Bucket=bucket, Key="docs/small.txt")["Body"].read()
    eq(got, b"hello from s3cmd\n", "bytes after modify")

    s3cmd("del", f"s3://{bucket}/docs/small.txt", f"s3://{bucket}/big.bin")
    eq(keys_under(bucket), [], "keys after del")
    s3cmd("rb", f"s3://{bucket}")
    r = s3cmd("ls", f"s3://{bucket}", ok=False)
    check(r.rc != 0 and "NoSuchBucket" in (r.stderr + r.stdout), "the bucket is gone after rb",
          "NoSuchBucket", tail(r.stderr + r.stdout), command=r.cmd)


@suite.scenario
def s3cmd_sync_both_ways():
    bucket = suite.bucket_name("s3cmd-sync")
    s3cmd("mb", f"s3://{bucket}")
    src = make_tree(os.path.join(suite.scratch, "s3cmd-sync-src"))
    s3cmd("sync", src + "/", f"s3://{bucket}/tree/")
    want = tree_digest(src)
    eq(keys_under(bucket, "tree/"), sorted("tree/" + k for k in want), "keys after sync up")

    # Change one file, delete one, add one; sync again with --delete-removed.
    write(os.path.join(src, "top.txt"), b"changed top level\n")
    os.unlink(os.path.join(src, "dir one", "a b+c.txt"))
    write(os.path.join(src, "new", "added.txt"), b"added\n")
    s3cmd("sync", "--delete-removed", src + "/", f"s3://{bucket}/tree/")
    want = tree_digest(src)
    eq(keys_under(bucket, "tree/"), sorted("tree/" + k for k in want), "keys after the second sync up")

    dst = os.path.join(suite.scratch, "s3cmd-sync-dst")
    os.makedirs(dst, exist_ok=True)
    s3cmd("sync", f"s3://{bucket}/tree/", dst + "/")
    eq(tree_digest(dst), want, "the tree synced down")
    # A remote change comes down; a local extra file goes with --delete-removed.
    s3.put_object(Bucket=bucket, Key="tree/top.txt", Body=b"changed remotely\n")
    write(os.path.join(dst, "local-only.txt"), b"x")
    s3cmd("sync", "--delete-removed", f"s3://{bucket}/tree/", dst + "/")
    want["top.txt"] = hashlib.md5(b"changed remotely\n").hexdigest()
    eq(tree_digest(dst), want, "the tree after the second sync down")
    s3cmd("del", "--recursive", "--force", f"s3://{bucket}")
    s3cmd("rb", f"s3://{bucket}")


class OtherServer:
    """A second `strata serve` (STRATA_BIN, set by run.sh) with extra flags, for one scenario."""

    def __init__(self, *flags):
        self.data = tempfile.mkdtemp(prefix="other-server-", dir=suite.scratch)
        env = {k: v for k, v in os.environ.items() if not k.startswith("STRATA_") or k.startswith("STRATA_ROOT_")}
        self.proc = subprocess.Popen(
            [os.environ.get("STRATA_BIN", "strata"), "serve", "--listen", "127.0.0.1:0", "--data", self.data]
            + list(flags),
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
        self.endpoint = None
        for line in self.proc.stdout:
            m = re.match(r"^listening on (http://127\.0\.0\.1:\d+)$", line.strip())
            if m:
                self.endpoint = m.group(1)
                break
        check(self.endpoint, "the second server started", "listening on http://127.0.0.1:PORT", "no such line")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.data, ignore_errors=True)


@suite.scenario
def s3cmd_follows_the_region_hint_of_a_eu_west_1_server():
    """A server in eu-west-1 answers s3cmd's region-US requests with 400
    AuthorizationHeaderMalformed and <Region>eu-west-1</Region>; s3cmd reads it and retries
    with eu-west-1, as it does against AWS."""
    with OtherServer("--region", "eu-west-1") as other:
        path = os.path.join(suite.scratch, "s3cfg-eu")
        with open(s3cfg()) as f:
            text = f.read().replace(HOSTPORT, re.sub(r"^https?://", "", other.endpoint))
        with open(path, "w") as f:
            f.write(text)
        bucket = suite.bucket_name("s3cmd-eu")
        base = [S3CMD, "-c", path, "--no-progress"]
        r = run(base + ["--debug", "mb", f"s3://{bucket}"])
        # s3cmd prints this when it has read <Region> from an AuthorizationHeaderMalformed answer.
        check("Forwarding request to eu-west-1" in r.stderr,
              "the first attempt was refused with the region to use, and s3cmd followed it",
              "INFO: Forwarding request to eu-west-1", tail(r.stderr, 1500), command=r.cmd)
        local = write(os.path.join(suite.scratch, "eu.txt"), b"in eu-west-1\n")
        run(base + ["put", local, f"s3://{bucket}/eu.txt"])
        out = os.path.join(suite.scratch, "eu-got.txt")
        run(base + ["get", "--force", f"s3://{bucket}/eu.txt", out])
        with open(out, "rb") as f:
            eq(f.read(), b"in eu-west-1\n", "bytes through the eu-west-1 server")
        run(base + ["del", f"s3://{bucket}/eu.txt"])
        run(base + ["rb", f"s3://{bucket}"])


@suite.scenario
def s3cmd_signurl():
    """s3cmd signs URLs with SigV2 query authentication, which Strata accepts (expiry enforced)."""
    bucket = suite.bucket_name("s3cmd-url")
    s3cmd("mb", f"s3://{bucket}")
    body = os.urandom(40_000)
    local = write(os.path.join(suite.scratch, "signurl.bin"), body)
    s3cmd("put", local, f"s3://{bucket}/dir/signed file.bin")
    r = s3cmd("signurl", f"s3://{bucket}/dir/signed file.bin", "+600")
    url = r.stdout.strip().splitlines()[-1]
    check(url.startswith("http://") and "Signature=" in url, "signurl prints a signed http URL", "http://…Signature=…",
          url, command=r.cmd)
    with urllib.request.urlopen(url, timeout=30) as resp:
        eq(resp.status, 200, "signed URL status")
        eq(resp.read(), body, "bytes through the signed URL")
    bad = re.sub(r"Expires=(\d+)", lambda m: f"Expires={int(m.group(1)) + 1}", url)
    try:
        urllib.request.urlopen(bad, timeout=30)
        fail("a tampered signed URL", "HTTP 403", "200", command=bad)
    except urllib.error.HTTPError as e:
        eq(e.code, 403, "tampered signed URL status")
    s3cmd("del", f"s3://{bucket}/dir/signed file.bin")
    s3cmd("rb", f"s3://{bucket}")


# ---------------------------------------------------------------------------------- rclone

_RCLONE_CONF = []


def rclone_conf():
    if _RCLONE_CONF:
        return _RCLONE_CONF[0]
    path = os.path.join(suite.scratch, "rclone.conf")
    with open(path, "w") as f:
        f.write(
            "[strata]\n"
            "type = s3\n"
            "provider = Other\n"
            "env_auth = false\n"
            f"access_key_id = {suite.access_key}\n"
            f"secret_access_key = {suite.secret_key}\n"
            f"endpoint = {ENDPOINT}\n"
            "region = us-east-1\n"
        )
    _RCLONE_CONF.append(path)
    return path


def rclone(*args, ok=True, timeout=600):
    return run([RCLONE, "--config", rclone_conf(), "--retries", "1", "--low-level-retries", "1"]
               + [str(a) for a in args], ok=ok, timeout=timeout)


def rclone_files(remote):
    """{path: size} from `rclone lsjson -R --files-only`."""
    r = rclone("lsjson", "-R", "--files-only", remote)
    return {e["Path"]: e["Size"] for e in json.loads(r.stdout)}


def local_sizes(root):
    return {os.path.relpath(os.path.join(d, n), root): os.path.getsize(os.path.join(d, n))
            for d, _, files in os.walk(root) for n in files}


@suite.scenario
def rclone_copy_check_sync_list_move_delete_purge():
    bucket = suite.bucket_name("rclone")
    remote = f"strata:{bucket}"
    rclone("mkdir", remote)
    s3.head_bucket(Bucket=bucket)

    # copy: a tree with a 72 MiB file, above the upload cutoff set here, so multipart.
    src = make_tree(os.path.join(suite.scratch, "rclone-src"), big=72 * MIB)
    rclone("copy", "--s3-upload-cutoff", "32M", src, f"{remote}/tree")
    head = s3.head_object(Bucket=bucket, Key="tree/big.bin")
    eq(head["ContentLength"], 72 * MIB, "size of the big object")
    check(re.search(r"-\d+\"?$", head["ETag"]), "the big file went up in parts", '"…-N"', head["ETag"])

    # check: hashes (rclone keeps the MD5 of multipart uploads in metadata).
    r = rclone("check", src, f"{remote}/tree", ok=False)
    eq(r.rc, 0, "rclone check exit status", command=r.cmd, extra=r.stderr)
    check("0 differences found" in r.stderr, "rclone check reports 0 differences", "0 differences found",
          tail(r.stderr), command=r.cmd)
    check("hashes could not be checked" not in r.stderr, "every hash was checked", "no unchecked hashes",
          tail(r.stderr), command=r.cmd)

    # sync with small chunks, then again after local changes.
    sync_src = os.path.join(suite.scratch, "rclone-sync")
    write_random(os.path.join(sync_src, "parts.bin"), 12 * MIB)
    write(os.path.join(sync_src, "keep.txt"), b"keep\n")
    write(os.path.join(sync_src, "gone.txt"), b"gone\n")
    small_chunks = ["--s3-chunk-size", "5M", "--s3-upload-cutoff", "5M"]
    rclone("sync", *small_chunks, sync_src, f"{remote}/sync")
    head = s3.head_object(Bucket=bucket, Key="sync/parts.bin")
    check(head["ETag"].strip('"').endswith("-3"), "12 MiB in 5 MiB chunks is 3 parts", '"…-3"', head["ETag"])
    os.unlink(os.path.join(sync_src, "gone.txt"))
    write_random(os.path.join(sync_src, "parts.bin"), 11 * MIB)
    rclone("sync", *small_chunks, sync_src, f"{remote}/sync")
    eq(rclone_files(f"{remote}/sync"), local_sizes(sync_src), "lsjson after the second sync")
    r = rclone("check", sync_src, f"{remote}/sync", ok=False)
    eq(r.rc, 0, "rclone check after sync", command=r.cmd, extra=r.stderr)

    # listings
    eq(rclone_files(f"{remote}/tree"), local_sizes(src), "rclone lsjson -R of the copied tree")
    r = rclone("lsf", "-R", "--files-only", f"{remote}/tree")
    eq(sorted(r.stdout.splitlines()), sorted(local_sizes(src)), "rclone lsf -R of the copied tree")
    r = rclone("lsd", "strata:")
    check(bucket in r.stdout, "rclone lsd lists the bucket", bucket, r.stdout, command=r.cmd)

    # server-side move: a copy on the server (no download), then the source is deleted.
    before = sent_bytes()
    r = rclone("moveto", "-v", f"{remote}/tree/big.bin", f"{remote}/moved/big.bin")
    moved = sent_bytes() - before
    check(moved < 1 * MIB, "moveto did not download the 72 MiB object", "< 1 MiB sent by the server",
          f"{moved:.0f} bytes", command=r.cmd, extra=r.stderr)
    check("server-side" in r.stderr.lower() or "Moved" in r.stderr, "rclone reports a server-side move",
          "Moved (server-side)", tail(r.stderr), command=r.cmd)
    check("tree/big.bin" not in keys_under(bucket, "tree/"), "the source is gone after moveto", "absent",
          keys_under(bucket, "tree/"))
    r = rclone("md5sum", f"{remote}/moved/big.bin")
    eq(r.stdout.split()[0], md5_file(os.path.join(src, "big.bin")), "MD5 of the moved object")
    r = rclone("move", f"{remote}/sync", f"{remote}/sync-moved")
    eq(rclone_files(f"{remote}/sync-moved"), local_sizes(sync_src), "files after `rclone move` of a directory")
    eq(keys_under(bucket, "sync/"), [], "the source directory is empty after move")

    # delete, purge
    rclone("delete", f"{remote}/sync-moved")
    eq(keys_under(bucket, "sync-moved/"), [], "keys after rclone delete")
    rclone("purge", remote)
    try:
        s3.head_bucket(Bucket=bucket)
        fail("rclone purge", "the bucket removed", "it still exists")
    except s3.exceptions.ClientError as e:
        eq(e.response["Error"]["Code"], "404", "head_bucket after purge")


if __name__ == "__main__":
    raise SystemExit(suite.main())
