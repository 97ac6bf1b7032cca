#!/usr/bin/env python3
"""Browser conformance: headless Chromium loads a local page whose <img> elements point at
presigned transform URLs (`?w=..&h=..&f=..` signed as part of the URL), then reports each
image's naturalWidth/naturalHeight; we check them and keep a screenshot.

Needs Debian's `chromium` (installed by .ci/run). Run through conformance/run.sh.
"""

import html
import json
import os
import re
import shutil
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request

import boto3
import botocore.auth
import botocore.awsrequest
import botocore.credentials
from botocore.config import Config

from harness import Suite, check, eq, fail

suite = Suite("browser")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IMAGES = os.environ.get("STRATA_TESTDATA", os.path.join(ROOT, "..", "shared", "testdata", "images"))
ARTIFACTS = os.path.join(ROOT, "target", "conformance-artifacts")
CHROMIUM = os.environ.get("CHROMIUM", shutil.which("chromium") or shutil.which("chromium-browser") or "/usr/bin/chromium")

s3 = boto3.session.Session(
    aws_access_key_id=suite.access_key,
    aws_secret_access_key=suite.secret_key,
    region_name="us-east-1",
).client("s3", endpoint_url=suite.endpoint, config=Config(s3={"addressing_style": "path"}))


def presign(bucket, key, params, expires=600):
    """A SigV4 query-presigned GET URL whose signature covers the transform parameters."""
    creds = botocore.credentials.Credentials(suite.access_key, suite.secret_key)
    url = f"{suite.endpoint}/{bucket}/{urllib.parse.quote(key)}?{urllib.parse.urlencode(params)}"
    req = botocore.awsrequest.AWSRequest(method="GET", url=url)
    botocore.auth.S3SigV4QueryAuth(creds, "s3", "us-east-1", expires=expires).add_auth(req)
    return req.prepare().url


def chromium(args, timeout=90):
    cmd = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-quic",
        "--no-first-run",
        f"--user-data-dir={os.path.join(suite.scratch, 'chromium-profile')}",
    ] + args
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


@suite.scenario
def presigned_transform_urls_render_at_the_requested_size():
    check(os.path.exists(CHROMIUM), "chromium is installed", CHROMIUM, "missing (apt-get install chromium)")
    bucket = suite.bucket_name("browser")
    s3.create_bucket(Bucket=bucket)
    uploads = {
        "photos/two wings.jpg": "twowings-2560x1600.jpg",
        "art/gulp.png": "gulp-alpha-1920x1200.png",
        "flower.webp": "flower-480x360.webp",
    }
    for key, name in uploads.items():
        with open(os.path.join(IMAGES, name), "rb") as f:
            s3.put_object(Bucket=bucket, Key=key, Body=f.read())

    cases = [
        ("photos/two wings.jpg", {"w": "200", "h": "150", "f": "webp", "q": "90"}, (200, 150)),
        ("photos/two wings.jpg", {"w": "320", "h": "320", "fit": "contain", "f": "png"}, (320, 320)),
        ("art/gulp.png", {"w": "240", "f": "webp"}, (240, 150)),
        ("flower.webp", {"h": "90", "f": "jpeg", "q": "80"}, (120, 90)),
    ]
    urls = [presign(bucket, key, params) for key, params, _ in cases]
    imgs = "\n".join(f'<img id="img{i}" src="{html.escape(u)}" style="margin:4px;border:1px solid #888">'
                     for i, u in enumerate(urls))
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>strata transforms</title></head>
<body style="background:#eee">
{imgs}
<pre id="result">pending</pre>
<script>
function report() {{
  const out = [];
  for (const img of document.images) {{
    out.push({{id: img.id, complete: img.complete, w: img.naturalWidth, h: img.naturalHeight}});
  }}
  document.getElementById('result').textContent = JSON.stringify(out);
}}
window.addEventListener('load', report);
</script></body></html>"""
    page_path = os.path.join(suite.scratch, "transforms.html")
    with open(page_path, "w") as f:
        f.write(page)

    res = chromium(["--virtual-time-budget=20000", "--dump-dom", "file://" + page_path])
    m = re.search(r'<pre id="result">(.*?)</pre>', res.stdout, re.S)
    check(m, "chromium dumped the page with a result", "<pre id=result>…</pre>", res.stdout[-500:] + res.stderr[-1500:])
    raw = html.unescape(m.group(1))
    check(raw != "pending", "the page's load handler ran", "JSON sizes", raw)
    got = {r["id"]: (r["w"], r["h"]) for r in json.loads(raw)}
    for i, (key, params, want) in enumerate(cases):
        eq(got.get(f"img{i}"), want, f"naturalWidth/naturalHeight of {key}?{urllib.parse.urlencode(params)}")

    os.makedirs(ARTIFACTS, exist_ok=True)
    shot = os.path.join(ARTIFACTS, "browser-transforms.png")
    if os.path.exists(shot):
        os.remove(shot)
    res = chromium(["--virtual-time-budget=20000", "--window-size=1100,700", f"--screenshot={shot}", "file://" + page_path])
    check(os.path.exists(shot) and os.path.getsize(shot) > 1000, "chromium wrote a screenshot", shot,
          res.stderr[-1500:])
    print(f"    screenshot: {shot}")


@suite.scenario
def tampered_transform_parameter_is_refused():
    bucket = suite.bucket_name("tamper")
    s3.create_bucket(Bucket=bucket)
    with open(os.path.join(IMAGES, "flower-480x360.webp"), "rb") as f:
        s3.put_object(Bucket=bucket, Key="f.webp", Body=f.read())
    url = presign(bucket, "f.webp", {"w": "100", "f": "png"})
    with urllib.request.urlopen(url) as r:
        eq(r.status, 200, "signed transform URL works")
        eq(r.headers.get("Content-Type"), "image/png", "content type of f=png")
    bigger = url.replace("w=100", "w=4000")
    try:
        urllib.request.urlopen(bigger)
        fail("changing w after signing is refused", "403", "200")
    except urllib.error.HTTPError as e:
        eq(e.code, 403, "changing w after signing is refused")


if __name__ == "__main__":
    try:
        rc = suite.main()
    finally:
        shutil.rmtree(suite.scratch, ignore_errors=True)
    sys.exit(rc)
