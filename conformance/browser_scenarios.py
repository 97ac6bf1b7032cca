#!/usr/bin/env python3
"""Browser conformance: headless Chromium loads a local page whose <img> elements point at
presigned transform URLs (`?w=..&h=..&f=..` signed as part of the URL), then reports each
image's naturalWidth/naturalHeight; we check them and keep a screenshot.

`cross_origin_presigned_put_form_post_and_public_image` serves a page from another origin
(a Python http.server on its own port) whose script uploads to a CORS-enabled bucket with a
presigned PUT (preflighted) and a presigned-post FormData POST, reads the exposed ETag, and
shows the public object and a transform of it as plain <img> elements.

Needs Debian's `chromium` (installed by ./test.sh, scripts/ensure-deps.sh). Run through conformance/run.sh.
"""

import functools
import hashlib
import html
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request

import boto3
import botocore.auth
import botocore.awsrequest
import botocore.credentials
from botocore.config import Config
from botocore.exceptions import ClientError

from harness import Suite, check, deviation, eq, fail

suite = Suite("browser")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IMAGES = os.environ.get("STRATA_TESTDATA", os.path.join(ROOT, "..", "shared", "testdata", "images"))
ARTIFACTS = os.environ.get("CONFORMANCE_ARTIFACTS", os.path.join(ROOT, "target", "conformance-artifacts"))
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


# --------------------------------------------------------------------------
# cross-origin uploads from a page on another origin (CORS)
# --------------------------------------------------------------------------

PAB_OFF = {"BlockPublicAcls": False, "IgnorePublicAcls": False,
           "BlockPublicPolicy": False, "RestrictPublicBuckets": False}

# SigV4 presigning (a client without signature_version presigns us-east-1 with SigV2).
s3v4 = boto3.session.Session(
    aws_access_key_id=suite.access_key,
    aws_secret_access_key=suite.secret_key,
    region_name="us-east-1",
).client("s3", endpoint_url=suite.endpoint,
         config=Config(s3={"addressing_style": "path"}, signature_version="s3v4"))


def raw_request(url, method="GET", headers=None, data=None):
    """An unsigned request; returns (status, {lower-case header: value}, body)."""
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def header_list(value):
    return [v.strip().lower() for v in (value or "").split(",") if v.strip()]


def preflight(url, origin, method, request_headers=None):
    headers = {"Origin": origin, "Access-Control-Request-Method": method}
    if request_headers:
        headers["Access-Control-Request-Headers"] = request_headers
    return raw_request(url, method="OPTIONS", headers=headers)


class _PageServer:
    """A static file server on its own 127.0.0.1 port: a different origin than Strata's."""

    def __init__(self, directory):
        handler = functools.partial(_QuietHandler, directory=directory)
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.origin = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


CORS_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>pending</title></head>
<body style="background:#eee;font:12px monospace">
<script id="cfg" type="application/json">__CFG__</script>
<div id="imgs"></div>
<pre id="result" style="white-space:pre-wrap">pending</pre>
<script>
const cfg = JSON.parse(document.getElementById('cfg').textContent);
function loadImg(url) {
  return new Promise(resolve => {
    const img = new Image();
    img.style = 'margin:4px;border:1px solid #888;max-width:480px';
    img.onload = () => resolve({url, ok: true, w: img.naturalWidth, h: img.naturalHeight});
    img.onerror = () => resolve({url, ok: false, w: 0, h: 0});
    img.src = url;
    document.getElementById('imgs').appendChild(img);
  });
}
async function step(out, name, fn) {
  try { await fn(); } catch (e) { out[name + 'Error'] = String(e); }
}
async function run() {
  const out = {origin: location.origin};
  if (location.hash.startsWith('#view=')) {   // screenshot mode: only show the images and results
    const text = decodeURIComponent(location.hash.slice(6));
    try { document.getElementById('result').textContent = JSON.stringify(JSON.parse(text), null, 1); }
    catch (e) { document.getElementById('result').textContent = text; }
    await Promise.all([cfg.publicUrl, cfg.transformUrl].map(loadImg));
    document.title = 'done';
    return;
  }
  let blob = null;
  await step(out, 'source', async () => {
    const r = await fetch('photo.jpg');
    blob = await r.blob();
    out.sourceBytes = blob.size;
  });
  // (a) presigned PUT with a non-simple Content-Type: the browser sends a preflight first
  await step(out, 'put', async () => {
    const r = await fetch(cfg.putUrl, {method: 'PUT', mode: 'cors', body: blob,
                                       headers: {'Content-Type': 'image/jpeg'}});
    out.putStatus = r.status;
    out.putEtag = r.headers.get('ETag');
  });
  // (b) HTML-form style POST Object with the presigned-post fields (file last)
  await step(out, 'post', async () => {
    const fd = new FormData();
    for (const [k, v] of Object.entries(cfg.post.fields)) fd.append(k, v);
    fd.append('file', new File([blob], 'photo.jpg', {type: 'image/jpeg'}));
    const r = await fetch(cfg.post.url, {method: 'POST', mode: 'cors', body: fd});
    out.postStatus = r.status;
    out.postEtag = r.headers.get('ETag');
    out.postBody = (await r.text()).slice(0, 400);
  });
  // a CORS GET of the now public object (readable only with Access-Control-Allow-Origin)
  await step(out, 'get', async () => {
    const r = await fetch(cfg.publicUrl, {mode: 'cors', cache: 'no-store'});
    out.getStatus = r.status;
    out.getEtag = r.headers.get('ETag');
    out.getBytes = (await r.blob()).size;
  });
  // (c) the public object and a transform of it as plain <img> elements (unsigned URLs)
  await step(out, 'images', async () => {
    out.images = await Promise.all([cfg.publicUrl, cfg.transformUrl].map(loadImg));
  });
  document.getElementById('result').textContent = JSON.stringify(out);
  document.title = 'done';
}
run();
</script></body></html>"""


@suite.scenario
def cross_origin_presigned_put_form_post_and_public_image():
    check(os.path.exists(CHROMIUM), "chromium is installed", CHROMIUM, "missing (apt-get install chromium)")
    source_name, source_size = "storm-1920x1280.jpg", (1920, 1280)
    with open(os.path.join(IMAGES, source_name), "rb") as f:
        source = f.read()
    page_dir = os.path.join(suite.scratch, "cors-page")
    os.makedirs(page_dir, exist_ok=True)
    with open(os.path.join(page_dir, "photo.jpg"), "wb") as f:
        f.write(source)
    pages = _PageServer(page_dir)
    try:
        _cross_origin(pages.origin, page_dir, source, source_size)
    finally:
        pages.close()


def _cross_origin(origin, page_dir, source, source_size):
    bucket = suite.bucket_name("cors")
    s3.create_bucket(Bucket=bucket)
    base = f"{suite.endpoint}/{bucket}"
    put_key, post_key = "browser/put.jpg", "browser/post.jpg"
    check(origin != suite.endpoint, "the page is served from another origin", "a different port", origin)

    # no CORS configuration yet: preflights are refused
    with deviation("cors"):
        expect_client_error_code(lambda: s3.get_bucket_cors(Bucket=bucket), "NoSuchCORSConfiguration",
                                 "get_bucket_cors without a configuration")
    with deviation("cors"):
        status, headers, body = preflight(f"{base}/{put_key}", origin, "PUT", "content-type")
        eq(status, 403, "preflight on a bucket without CORS configuration", extra=body)

    s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=PAB_OFF)
    rule = {"AllowedOrigins": [origin], "AllowedMethods": ["GET", "PUT", "POST", "HEAD"],
            "AllowedHeaders": ["*"], "ExposeHeaders": ["ETag"], "MaxAgeSeconds": 600}
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": [rule]})
    got = s3.get_bucket_cors(Bucket=bucket).get("CORSRules", [])
    eq([{k: r.get(k) for k in rule} for r in got], [rule], "get_bucket_cors round trip")

    # preflights checked directly
    status, headers, body = preflight(f"{base}/{put_key}", origin, "PUT", "content-type")
    eq(status, 200, "preflight PUT from the allowed origin", extra=body)
    eq(headers.get("access-control-allow-origin"), origin, "preflight Access-Control-Allow-Origin")
    check("put" in header_list(headers.get("access-control-allow-methods")), "preflight Access-Control-Allow-Methods",
          "a list with PUT", headers.get("access-control-allow-methods"))
    allow_headers = header_list(headers.get("access-control-allow-headers"))
    check("content-type" in allow_headers or allow_headers == ["*"], "preflight Access-Control-Allow-Headers",
          "the requested content-type (S3 echoes it) or *", headers.get("access-control-allow-headers"))
    with deviation("cors"):
        eq(headers.get("access-control-max-age"), "600", "preflight Access-Control-Max-Age")
    with deviation("cors"):
        status, headers, body = preflight(f"{base}/{put_key}", "http://evil.example", "PUT", "content-type")
        eq(status, 403, "preflight from an origin not in AllowedOrigins", extra=body)
        eq(headers.get("access-control-allow-origin"), None, "no Access-Control-Allow-Origin for that origin")
    with deviation("cors"):
        status, headers, body = preflight(f"{base}/{put_key}", origin, "DELETE")
        eq(status, 403, "preflight for a method not in AllowedMethods", extra=body)

    put_url = s3v4.generate_presigned_url("put_object", ExpiresIn=600, Params={
        "Bucket": bucket, "Key": put_key, "ContentType": "image/jpeg"})
    # The form upload is made public by a bucket policy on its key: s3s 0.14 ignores a form's
    # `acl` field (it reads only `x-amz-acl`), so objects posted with acl=public-read stay private.
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                       "Resource": f"arn:aws:s3:::{bucket}/{post_key}"}]}))
    post = s3v4.generate_presigned_post(
        bucket, post_key, ExpiresIn=600,
        Fields={"Content-Type": "image/jpeg"},
        Conditions=[{"Content-Type": "image/jpeg"}, ["content-length-range", 1, 10 * 1024 * 1024]])
    public_url = f"{base}/{post_key}"
    cfg = {"putUrl": put_url, "post": post, "publicUrl": public_url,
           "transformUrl": public_url + "?w=120&f=png"}
    page = CORS_PAGE.replace("__CFG__", json.dumps(cfg).replace("</", "<\\/"))
    with open(os.path.join(page_dir, "index.html"), "w") as f:
        f.write(page)
    page_url = f"{origin}/index.html"

    res = chromium(["--virtual-time-budget=30000", "--dump-dom", page_url], timeout=120)
    m = re.search(r'<pre id="result"[^>]*>(.*?)</pre>', res.stdout, re.S)
    check(m, "chromium dumped the page with a result", "<pre id=result>…</pre>",
          res.stdout[-500:] + res.stderr[-1500:])
    raw = html.unescape(m.group(1))
    check(raw != "pending", "the page's script finished", "JSON results", raw + "\n" + res.stderr[-1500:])
    out = json.loads(raw)
    print(f"    page results: {raw[:600]}", flush=True)
    eq(out.get("sourceBytes"), len(source), "the page fetched the image from its own origin", extra=raw)
    eq(out.get("putStatus"), 200, "fetch PUT to the presigned URL (after a CORS preflight)", extra=raw)
    eq(out.get("putEtag"), md5_etag(source), "ETag of the PUT readable from JS (Access-Control-Expose-Headers)",
       extra=raw)
    check(out.get("postStatus") in (201, 204), "fetch POST of the form (presigned post)", "201 or 204",
          out.get("postStatus"), extra=raw)
    with deviation("post-response"):
        eq(out.get("postEtag"), md5_etag(source), "ETag of the POST response readable from JS", extra=raw)
    eq((out.get("getStatus"), out.get("getBytes")), (200, len(source)), "CORS fetch GET of the public object",
       extra=raw)
    eq(out.get("getEtag"), md5_etag(source), "ETag of the CORS GET readable from JS", extra=raw)
    images = out.get("images") or [{}, {}]
    eq((images[0].get("ok"), images[0].get("w"), images[0].get("h")), (True,) + source_size,
       "<img> of the public object loads at the original size", extra=raw)
    with deviation("transforms"):
        eq((images[1].get("ok"), images[1].get("w"), images[1].get("h")),
           (True, 120, round(120 * source_size[1] / source_size[0])),
           "<img> of the public ?w=120&f=png transform loads 120 px wide", extra=raw)

    # what the page stored
    eq(s3.get_object(Bucket=bucket, Key=put_key)["Body"].read(), source, "object stored by the browser's PUT")
    head = s3.head_object(Bucket=bucket, Key=post_key)
    eq((head.get("ContentLength"), head.get("ContentType")), (len(source), "image/jpeg"),
       "object stored by the browser's form POST")
    # CORS headers on actual (non-preflight) responses
    status, headers, _ = raw_request(public_url, headers={"Origin": origin})
    eq(status, 200, "unsigned GET of the POSTed public-read object")
    eq(headers.get("access-control-allow-origin"), origin, "Access-Control-Allow-Origin on the GET")
    check("etag" in header_list(headers.get("access-control-expose-headers")), "Access-Control-Expose-Headers on the GET",
          "a list with ETag", headers.get("access-control-expose-headers"))
    with deviation("cors"):
        status, headers, _ = raw_request(public_url, headers={"Origin": "http://evil.example"})
        eq((status, headers.get("access-control-allow-origin")), (200, None),
           "GET from a non-allowed origin: served, but without Access-Control-Allow-Origin")
    with deviation("anonymous-authz"):
        status, _, body = raw_request(f"{base}/{put_key}", headers={"Origin": origin})
        eq(status, 403, "the presigned-PUT object (no ACL) stays private", extra=body)

    # screenshot of the page in view mode (images + results, no uploads)
    os.makedirs(ARTIFACTS, exist_ok=True)
    shot = os.path.join(ARTIFACTS, "browser-cross-origin.png")
    if os.path.exists(shot):
        os.remove(shot)
    view = page_url + "#view=" + urllib.parse.quote(raw)
    res = chromium(["--virtual-time-budget=20000", "--window-size=1100,900", f"--screenshot={shot}", view])
    check(os.path.exists(shot) and os.path.getsize(shot) > 1000, "chromium wrote a screenshot", shot,
          res.stderr[-1500:])
    print(f"    screenshot: {shot}")

    # no CORS configuration again: preflights refused
    out = s3.delete_bucket_cors(Bucket=bucket)
    eq(out["ResponseMetadata"]["HTTPStatusCode"], 204, "delete_bucket_cors status")
    with deviation("cors"):
        expect_client_error_code(lambda: s3.get_bucket_cors(Bucket=bucket), "NoSuchCORSConfiguration",
                                 "get_bucket_cors after delete")
    with deviation("cors"):
        status, _, body = preflight(f"{base}/{put_key}", origin, "PUT", "content-type")
        eq(status, 403, "preflight after delete_bucket_cors", extra=body)
    for key in (put_key, post_key):
        s3.delete_object(Bucket=bucket, Key=key)
    s3.delete_bucket(Bucket=bucket)


def md5_etag(data):
    return '"' + hashlib.md5(data).hexdigest() + '"'


def expect_client_error_code(fn, code, what):
    try:
        result = fn()
    except ClientError as e:
        eq(e.response.get("Error", {}).get("Code"), code, what)
        return e
    fail(what, f"ClientError {code}", f"success: {str(result)[:300]}")


# --------------------------------------------------------------------------
# a static website on the website endpoint (<bucket>.s3-website.localhost)
# --------------------------------------------------------------------------

SITE_INDEX = """<!doctype html><html><head><meta charset="utf-8"><title>Strata site</title></head>
<body style="background:#eee;font:14px sans-serif">
<h1>Welcome</h1>
<p><img id="photo" src="photo.jpg?w=120&amp;f=png" style="border:1px solid #888"></p>
<p><a id="about" href="about/">About us</a></p>
<pre id="result">pending</pre>
<script>
window.addEventListener('load', () => {
  const img = document.getElementById('photo');
  document.getElementById('result').textContent = JSON.stringify(
    {title: document.title, complete: img.complete, w: img.naturalWidth, h: img.naturalHeight,
     about: document.getElementById('about').href});
});
</script></body></html>"""

SITE_ABOUT = """<!doctype html><html><head><meta charset="utf-8"><title>About</title></head>
<body><h1>About this site</h1><pre id="where"></pre>
<script>document.getElementById('where').textContent = location.pathname;</script></body></html>"""

SITE_ERROR = """<!doctype html><html><head><meta charset="utf-8"><title>Not here</title></head>
<body><h1 id="oops">Sorry, that page does not exist</h1></body></html>"""


def dump_dom(url):
    res = chromium(["--virtual-time-budget=15000", "--dump-dom", url])
    check(res.returncode == 0 and "<html" in res.stdout, f"chromium loaded {url}", "a DOM dump",
          res.stdout[-500:] + res.stderr[-1500:])
    return res.stdout


@suite.scenario
def static_website_with_a_transformed_image():
    check(os.path.exists(CHROMIUM), "chromium is installed", CHROMIUM, "missing (apt-get install chromium)")
    bucket = suite.bucket_name("site")
    s3.create_bucket(Bucket=bucket)
    with open(os.path.join(IMAGES, "storm-1920x1280.jpg"), "rb") as f:
        s3.put_object(Bucket=bucket, Key="photo.jpg", Body=f.read(), ContentType="image/jpeg")
    for key, body in [("index.html", SITE_INDEX), ("about/index.html", SITE_ABOUT), ("error.html", SITE_ERROR)]:
        s3.put_object(Bucket=bucket, Key=key, Body=body.encode(), ContentType="text/html; charset=utf-8")
    s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=PAB_OFF)
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                       "Resource": f"arn:aws:s3:::{bucket}/*"}]}))
    s3.put_bucket_website(Bucket=bucket, WebsiteConfiguration={
        "IndexDocument": {"Suffix": "index.html"}, "ErrorDocument": {"Key": "error.html"}})
    port = urllib.parse.urlsplit(suite.endpoint).port
    site = f"http://{bucket}.s3-website.localhost:{port}"

    dom = dump_dom(site + "/")
    m = re.search(r'<pre id="result">(.*?)</pre>', dom, re.S)
    check(m, "the index page was served and dumped", "<pre id=result>…</pre>", dom[-800:])
    raw = html.unescape(m.group(1))
    check(raw != "pending", "the index page's load handler ran", "JSON", raw)
    got = json.loads(raw)
    eq(got["title"], "Strata site", "page title of the index document")
    eq((got["complete"], got["w"]), (True, 120), "naturalWidth of <img src=photo.jpg?w=120&f=png>")
    eq(got["h"], 80, "naturalHeight of the 1920x1280 photo at w=120")
    eq(got["about"], site + "/about/", "the link to about/")

    # Following the link, and the same without its slash (302 to about/).
    for path in ["/about/", "/about"]:
        dom = dump_dom(site + path)
        check("<title>About</title>" in dom, f"{path} shows about/index.html", "<title>About</title>", dom[-800:])
        m = re.search(r'<pre id="where">(.*?)</pre>', dom, re.S)
        eq(m and m.group(1), "/about/", f"location.pathname after loading {path}")

    dom = dump_dom(site + "/no/such/page.html")
    check('<h1 id="oops">' in dom, "a missing page shows the error document", "Sorry, that page does not exist",
          dom[-800:])
    status, _, body = raw_request(suite.endpoint + "/no/such/page.html",
                                  headers={"Host": f"{bucket}.s3-website.localhost:{port}"})
    eq(status, 404, "the error document comes with status 404", extra=body)

    os.makedirs(ARTIFACTS, exist_ok=True)
    shot = os.path.join(ARTIFACTS, "browser-website.png")
    if os.path.exists(shot):
        os.remove(shot)
    res = chromium(["--virtual-time-budget=15000", "--window-size=800,500", f"--screenshot={shot}", site + "/"])
    check(os.path.exists(shot) and os.path.getsize(shot) > 1000, "chromium wrote a screenshot", shot,
          res.stderr[-1500:])
    print(f"    screenshot: {shot}")


if __name__ == "__main__":
    try:
        rc = suite.main()
    finally:
        shutil.rmtree(suite.scratch, ignore_errors=True)
    sys.exit(rc)
