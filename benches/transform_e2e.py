#!/usr/bin/env python3
"""End-to-end transform benchmark for Strata: one worker on one core vs libvips on one core.

    python3 benches/transform_e2e.py            # full: 3 runs x 20 s per measurement + memory phase
    python3 benches/transform_e2e.py --quick    # 1 run x 5 s, no memory phase

Needs `target/release/strata` (`cargo build --release`; this script builds nothing), `wrk` and
`taskset` on PATH, and the reference scripts in ../shared/bench (`--shared-bench`). pyvips is
needed for the libvips baseline and for making the memory-phase source image: if the running
interpreter lacks it, the script creates `benches/.venv` (`python3 -m venv`), pip-installs
`pyvips pyvips-binary` there and re-executes itself under it (`--no-venv` only reports instead).

Method (the same as /work/shared/bench/README.md, so the figures are comparable with the peers'):

* The binary is copied to the temp dir first (other builds may replace target/release/strata
  while the benchmark runs). Strata runs pinned to core 0 (`taskset -c 0`) with
  `[transform] workers = 1` on a fresh temp data dir; wrk runs with one thread and 16
  connections pinned to core 1; every request is a SigV4-presigned GET, so each one pays real
  signature verification. Before every measurement the box must be idle (benchlib.wait_quiet,
  up to --quiet-timeout s); CPU used by anything else during a run is recorded ("other CPU") and
  a run with more than 20 % of a core of it is flagged noisy.
* Case "200x150 webp q90" (`w={w}&h={h}&f=webp&q=90`, default fit = cover): the reference
  s3bench.py is run as a subprocess with `--tests get4k`. Its cold test cycles through 30
  byte-distinct copies of the source x 441 boxes 180..200 x 130..150 (never a cache hit); its
  warm test repeats the 200x150 URL (always a cache hit).
* Case "800w jpeg q80" (`w={w}&f=jpeg&q=80`, width only = aspect-preserving scale): s3bench's
  cold boxes are fixed near 200x150, so this script measures it itself with benchlib's wrk driver:
  cold = distinct keys (copies of the source) x widths 780..820, shuffled, a disjoint slice per
  run; warm = the w=800 URL repeated. In the same loop: plain GET of a 16 KiB object (s3bench has
  only 4 KiB / 1 MiB), the baseline for "a warm transform should cost about a plain GET".
  Runs are interleaved (run 1 of every test, then run 2, ...), medians reported.
* libvips: the reference vips_bench.py on core 0 (VIPS_CONCURRENCY=1, operation cache off),
  thumbnail_buffer + save from the same source: 200x150 crop=centre webp Q90, and width 800
  fit-inside jpeg Q80. Strata is stopped while it runs.
* Memory phase (default unless --quick; --memory / --no-memory): an 8660x5773 (~50 MP) JPEG
  q85 is made with pyvips (the 2560x1600 photo scaled up), uploaded under two keys, Strata is
  restarted with `workers = 2` (unpinned), and two client threads fire cold transforms
  (`w=400+i&f=webp`, each URL new) back to back for --memory-duration s while VmRSS / VmHWM of
  the server are sampled from /proc every 100 ms. Target: peak < 300 MiB.

Rates count successful (2xx) responses only. A cold run that got errors or wrapped around its
URL list is flagged and left out of the median while a clean run exists; after a transform run
with errors, --conc concurrent fresh transforms are replayed once to record which status the
server answered (wrk only counts them). Besides req/s the table gives cold requests per server
CPU-second vs libvips ops per CPU-second: on a shared box that ratio is the robust one.
Targets printed next to the results: warm/cold >= 20x, warm / plain-16-KiB-GET >= 0.7.
Raw data (every run, both reference scripts' JSON) goes to target/bench-transform-e2e.json.
"""

import argparse
import json
import math
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_VENV = os.path.join(REPO, "benches", ".venv")
REEXEC_ENV = "STRATA_E2E_REEXEC"
ACCESS_KEY = "benchroot"
SECRET_KEY = "benchroot-secret-key-0123456789"
WEBP_QUERY = "w={w}&h={h}&f=webp&q=90"
JPEG_QUERY = "w={w}&f=jpeg&q=80"
JPEG_COLD_WIDTHS = range(780, 821)  # 41 widths, all the same JPEG shrink-on-load factor as 800
BIG_W, BIG_H = 8660, 5773           # 49.99 MP, just under the default 50 MP source limit
MIB = 2 ** 20

bl = None  # benchlib, imported from --shared-bench once the path is known


# ---------------------------------------------------------------- arguments / prerequisites
def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="5 s x 1 run per measurement, no memory phase")
    ap.add_argument("--duration", type=int, default=None, help="seconds per measurement (default 20, quick 5)")
    ap.add_argument("--runs", type=int, default=None, help="interleaved repetitions (default 3, quick 1)")
    ap.add_argument("--memory", action=argparse.BooleanOptionalAction, default=None,
                    help="run the 50 MP memory phase (default: on, off with --quick)")
    ap.add_argument("--memory-duration", type=float, default=20.0)
    ap.add_argument("--skip-strata", action="store_true", help="skip the Strata throughput phase")
    ap.add_argument("--skip-vips", action="store_true", help="skip the libvips baseline")
    ap.add_argument("--shared-bench", default=os.path.join(REPO, "..", "shared", "bench"),
                    help="directory of s3bench.py / vips_bench.py / benchlib.py (default ../shared/bench)")
    ap.add_argument("--image", default=None,
                    help="source JPEG (default <shared-bench>/../testdata/images/twowings-2560x1600.jpg)")
    ap.add_argument("--binary", default=os.path.join(REPO, "target", "release", "strata"))
    ap.add_argument("--conc", type=int, default=16)
    ap.add_argument("--server-cpu", default="0", help="core for Strata in the throughput phase")
    ap.add_argument("--loadgen-cpu", default="1", help="core for wrk")
    ap.add_argument("--vips-cpu", type=int, default=0)
    ap.add_argument("--jpeg-cold-copies", type=int, default=None,
                    help="distinct source keys for the 800 px cold test (default: enough for "
                         "100 req/s over every run, x41 widths)")
    ap.add_argument("--quiet-timeout", type=float, default=float(os.environ.get("QUIET_TIMEOUT", 600)),
                    help="before each measurement wait up to this many s for an idle box (0 = never)")
    ap.add_argument("--quiet-max-busy", type=float, default=float(os.environ.get("QUIET_MAX_BUSY", 15)),
                    help="'idle' = all CPU use below this %% of one core")
    ap.add_argument("--settle", type=float, default=1.0, help="pause between measurements, s")
    ap.add_argument("--venv", default=DEFAULT_VENV, help="venv used for pyvips (created if missing)")
    ap.add_argument("--no-venv", action="store_true",
                    help="never create/use a venv: just report a missing pyvips")
    ap.add_argument("--json-out", default=os.path.join(REPO, "target", "bench-transform-e2e.json"))
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (data dirs, server logs)")
    a = ap.parse_args(argv)
    a.duration = a.duration or (5 if a.quick else 20)
    a.runs = a.runs or (1 if a.quick else 3)
    if a.memory is None:
        a.memory = not a.quick
    a.shared_bench = os.path.abspath(a.shared_bench)
    a.image = os.path.abspath(a.image or os.path.join(a.shared_bench, "..", "testdata", "images",
                                                      "twowings-2560x1600.jpg"))
    if a.jpeg_cold_copies is None:
        a.jpeg_cold_copies = math.ceil(100 * a.duration * a.runs / len(JPEG_COLD_WIDTHS)) + 1
    return a


def have_pyvips():
    try:
        import pyvips  # noqa: F401
    except (ImportError, OSError):
        return False
    return True


def ensure_pyvips(a):
    """Return None when pyvips imports here; otherwise create/use the venv and re-exec.
    Returns an instruction string when pyvips stays unavailable."""
    if have_pyvips():
        return None
    hint = (f"pyvips: python3 -m venv {a.venv} && {a.venv}/bin/pip install pyvips pyvips-binary, "
            f"then run this script with {a.venv}/bin/python (or let it do so: drop --no-venv)")
    if a.no_venv or os.environ.get(REEXEC_ENV):
        return hint
    vpy = os.path.join(a.venv, "bin", "python")
    if not os.path.exists(vpy):
        print(f"# creating {a.venv} for pyvips (python3 -m venv)", file=sys.stderr, flush=True)
        mk = subprocess.run([sys.executable, "-m", "venv", a.venv])
        if mk.returncode != 0:
            return hint + f"  (python3 -m venv failed, rc={mk.returncode}: Debian needs apt-get install python3-venv)"
        with open(os.path.join(a.venv, ".gitignore"), "w") as f:
            f.write("*\n")
    probe = subprocess.run([vpy, "-c", "import pyvips"], capture_output=True)
    if probe.returncode != 0:
        print(f"# pip install pyvips pyvips-binary into {a.venv}", file=sys.stderr, flush=True)
        pip = subprocess.run([vpy, "-m", "pip", "install", "-q", "pyvips", "pyvips-binary"])
        if pip.returncode != 0:
            return hint + f"  (automatic pip install into {a.venv} failed, rc={pip.returncode})"
    print(f"# re-executing under {vpy}", file=sys.stderr, flush=True)
    env = dict(os.environ, **{REEXEC_ENV: "1"})
    os.execve(vpy, [vpy, os.path.abspath(__file__)] + sys.argv[1:], env)
    return hint  # not reached


def check_prerequisites(a):
    """Every missing prerequisite with the exact remedy; exits 2 if anything is missing."""
    missing = []
    for tool, fix in (("wrk", "wrk: apt-get install wrk"),
                      ("taskset", "taskset: apt-get install util-linux")):
        if shutil.which(tool) is None:
            missing.append(fix)
    for f in ("s3bench.py", "vips_bench.py", "benchlib.py"):
        if not os.path.exists(os.path.join(a.shared_bench, f)):
            missing.append(f"{f}: not in {a.shared_bench} (pass --shared-bench DIR)")
    if not os.path.isfile(a.image):
        missing.append(f"source image {a.image} (pass --image FILE)")
    if not a.skip_strata or a.memory:
        if not os.access(a.binary, os.X_OK):
            missing.append(f"{a.binary}: run `cargo build --release` in {REPO}")
    if not a.skip_vips or a.memory:
        hint = ensure_pyvips(a)
        if hint:
            missing.append(hint)
    if missing:
        print("missing prerequisites:\n  - " + "\n  - ".join(missing), file=sys.stderr)
        raise SystemExit(2)


def import_benchlib(shared_bench):
    global bl
    sys.path.insert(0, shared_bench)
    import benchlib  # noqa: E402  (the reference helpers, unmodified)
    bl = benchlib


# ---------------------------------------------------------------- server
class Server:
    """A Strata process on a fresh data dir; stdout/stderr go to log files."""

    def __init__(self, binary, workdir, name, workers, cpus=None):
        self.dir = os.path.join(workdir, name)
        os.makedirs(os.path.join(self.dir, "data"))
        self.config = os.path.join(self.dir, "strata.toml")
        with open(self.config, "w") as f:
            f.write(f"[transform]\nworkers = {workers}\nqueue = 64\n"
                    f"cache_max_bytes = 1073741824\nmax_source_pixels = 50000000\n")
        self.log_out = os.path.join(self.dir, "stdout.log")
        self.log_err = os.path.join(self.dir, "stderr.log")
        cmd = [binary, "serve", "--listen", "127.0.0.1:0", "--data", os.path.join(self.dir, "data"),
               "--config", self.config]
        if cpus is not None:
            cmd = ["taskset", "-c", str(cpus)] + cmd  # taskset execs: the pid is Strata's
        env = dict(os.environ, STRATA_ROOT_ACCESS_KEY=ACCESS_KEY, STRATA_ROOT_SECRET_KEY=SECRET_KEY)
        self.cmd = cmd
        self._err = open(self.log_err, "wb")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self._err, env=env)
        self.pid = self.proc.pid
        self.endpoint = None
        ready = threading.Event()
        self._reader = threading.Thread(target=self._read_stdout, args=(ready,), daemon=True)
        self._reader.start()
        if not ready.wait(30) or self.endpoint is None:
            self.stop()
            raise SystemExit(f"strata did not print 'listening on' within 30 s (rc={self.proc.returncode}); "
                             f"stderr tail:\n{self.stderr_tail()}")

    def _read_stdout(self, ready):
        with open(self.log_out, "wb") as log:
            for line in self.proc.stdout:
                log.write(line)
                log.flush()
                text = line.decode(errors="replace").strip()
                if self.endpoint is None and text.startswith("listening on "):
                    self.endpoint = text.split("listening on ", 1)[1].strip().rstrip("/")
                    ready.set()
        ready.set()  # EOF: the process is gone

    def alive(self):
        return self.proc.poll() is None

    def status_kib(self, field):
        try:
            with open(f"/proc/{self.pid}/status") as f:
                for ln in f:
                    if ln.startswith(field + ":"):
                        return int(ln.split()[1])
        except OSError:
            return None
        return None

    def stderr_tail(self, n=20):
        try:
            with open(self.log_err, "rb") as f:
                return "\n".join(f.read().decode(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def stop(self):
        """SIGTERM, then SIGKILL after 15 s. Returns (returncode, VmHWM MiB before exit)."""
        hwm = self.status_kib("VmHWM")
        self.threads_at_stop = self.status_kib("Threads")  # a count, not KiB
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(5)
        self._err.close()
        return self.proc.returncode, (hwm / 1024 if hwm else None)


# ---------------------------------------------------------------- S3 helpers
def put(ps, bucket, key, body):
    st, _, b = bl.http("PUT", ps.presign("PUT", bucket, key), body=body)
    if st != 200:
        raise SystemExit(f"PUT {bucket}/{key} -> HTTP {st}: {b[:300]!r}")


def create_bucket(ps, bucket):
    st, _, b = bl.http("PUT", ps.presign("PUT", bucket))
    if st not in (200, 409):
        raise SystemExit(f"CreateBucket {bucket} -> HTTP {st}: {b[:300]!r}")


def xform_path(ps, bucket, key, query):
    q = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))
    return ps.presign("GET", bucket, key, extra_query=q, full_url=False)


def jpeg_size(data):
    """(width, height) from the first SOFn marker of a JPEG, or None."""
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            return None
        marker, seglen = data[i + 1], int.from_bytes(data[i + 2:i + 4], "big")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            return int.from_bytes(data[i + 7:i + 9], "big"), int.from_bytes(data[i + 5:i + 7], "big")
        i += 2 + seglen
    return None


def probe_get(endpoint, path, what):
    st, hd, body = bl.http("GET", endpoint + path, timeout=120)
    hd = {k.lower(): v for k, v in hd.items()}
    if st != 200:
        raise SystemExit(f"{what}: GET {path[:100]} -> HTTP {st}: {body[:300]!r}")
    return {"status": st, "cache": hd.get("x-strata-cache"), "content_type": hd.get("content-type"),
            "bytes": len(body), "size": jpeg_size(body) if body[:2] == b"\xff\xd8" else None}


# ---------------------------------------------------------------- phase 1: Strata, one worker, one core
def run_s3bench(a, srv, workdir):
    """The reference s3bench.py (GET 4 KiB + webp 200x150 cold/warm) against the running server."""
    out = os.path.join(workdir, "s3bench.json")
    cmd = [sys.executable, os.path.join(a.shared_bench, "s3bench.py"),
           "--endpoint", srv.endpoint, "--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY,
           "--label", "strata-1w1c", "--bucket", "s3bench", "--server-pid", str(srv.pid),
           "--runs", str(a.runs), "--duration", str(a.duration), "--conc", str(a.conc),
           "--loadgen-cpu", a.loadgen_cpu, "--tests", "get4k",
           "--transform-query", WEBP_QUERY, "--transform-image", a.image,
           "--quiet-timeout", str(a.quiet_timeout), "--quiet-max-busy", str(a.quiet_max_busy),
           "--settle", str(a.settle), "--json-out", out]
    print(f"# s3bench: {' '.join(cmd)}", file=sys.stderr, flush=True)
    p = subprocess.run(cmd)
    if p.returncode != 0 or not os.path.exists(out):
        return {"error": f"s3bench.py exited {p.returncode}", "cmd": cmd}
    with open(out) as f:
        res = json.load(f)
    res["cmd"] = cmd
    return res


def setup_own_tests(a, srv, ps):
    """Objects and URL lists for plain GET 16 KiB and the 800 px JPEG cold / warm tests."""
    bucket = "e2e"
    create_bucket(ps, bucket)
    plain = random.Random(7).randbytes(16384)
    put(ps, bucket, "obj-16k", plain)
    st, _, got = bl.http("GET", srv.endpoint + ps.presign("GET", bucket, "obj-16k", full_url=False))
    if st != 200 or got != plain:
        raise SystemExit(f"GET obj-16k -> HTTP {st}, {len(got)} B (expected the 16384 B written)")
    with open(a.image, "rb") as f:
        src = f.read()
    put(ps, bucket, "img/src.jpg", src)
    warm = xform_path(ps, bucket, "img/src.jpg", JPEG_QUERY.format(w=800))
    first = probe_get(srv.endpoint, warm, "800 px warm probe")
    second = probe_get(srv.endpoint, warm, "800 px warm probe (2nd)")
    print(f"# 800 px jpeg probe: {first} then cache={second['cache']}", file=sys.stderr, flush=True)
    keys = []
    for i in range(a.jpeg_cold_copies):
        k = f"img/cold-{i:04d}.jpg"
        put(ps, bucket, k, src)  # the derivative cache is keyed by (bucket, key, version)
        keys.append(k)
    combos = [(k, w) for k in keys for w in JPEG_COLD_WIDTHS]
    random.Random(42).shuffle(combos)
    per = len(combos) // a.runs
    slices = [[xform_path(ps, bucket, k, JPEG_QUERY.format(w=w)) for (k, w) in combos[r * per:(r + 1) * per]]
              for r in range(a.runs)]
    cold_probe = probe_get(srv.endpoint, slices[0][0], "800 px cold probe")
    slices[0] = slices[0][1:]  # the probe consumed it
    return {"plain": ps.presign("GET", bucket, "obj-16k", full_url=False), "warm": warm, "cold": slices,
            "probe": {"warm_first": first, "warm_second": second, "cold": cold_probe,
                      "cold_distinct_urls_per_run": per}}


def measure(a, srv, url, paths, label, run):
    """One wrk measurement the way s3bench.py does it (settle, wait for quiet, sample, wrk)."""
    time.sleep(a.settle)
    if a.quiet_timeout > 0:
        bl.wait_quiet(a.quiet_max_busy, a.quiet_timeout, verbose=False)
    with bl.Sampler(srv.pid) as s:
        res = bl.run_wrk(url, conc=a.conc, duration=a.duration, paths=paths, cpu=a.loadgen_cpu or None)
    res.update(s.summary())
    res.pop("cmd", None)
    res["ok_rps"] = (res["requests"] - res["errors"]) / (res["duration_us"] / 1e6)
    if paths:
        res["distinct_urls"] = len(paths)
        res["wrapped"] = res["requests"] > len(paths)
    res["noisy"] = res["other_cpu_pct"] > 20
    print(f"# run {run + 1}/{a.runs} {label}: {res['rps']:.1f} req/s, p50 {res['lat_p50_us'] / 1000:.2f} ms, "
          f"p99 {res['lat_p99_us'] / 1000:.2f} ms, errors {res['errors']}, server cpu {res['server_cpu_pct']:.0f}%, "
          f"other cpu {res['other_cpu_pct']:.0f}%, rss peak {res['rss_peak_mib']:.1f} MiB"
          + (" WRAPPED" if res.get("wrapped") else ""), file=sys.stderr, flush=True)
    if not srv.alive():
        raise SystemExit(f"strata exited (rc={srv.proc.returncode}) during {label}; stderr tail:\n"
                         f"{srv.stderr_tail()}")
    return res


def run_own_tests(a, srv, ps):
    setup = setup_own_tests(a, srv, ps)
    tests = ("get16k", "jpeg800-cold", "jpeg800-warm")
    results = {t: [] for t in tests}
    for r in range(a.runs):
        for t in tests:
            if t == "get16k":
                url, paths = srv.endpoint + setup["plain"], None
            elif t == "jpeg800-warm":
                url, paths = srv.endpoint + setup["warm"], None
            else:
                url, paths = srv.endpoint + "/", setup["cold"][r]
            res = measure(a, srv, url, paths, t, r)
            if res["errors"] and t != "get16k":
                res["diagnosis"] = diagnose(a, srv, ps, r)
            results[t].append(res)
    return {"probe": setup["probe"], "results": results}


def diagnose(a, srv, ps, run):
    """wrk counts non-2xx answers without saying which: replay the load shape once (--conc
    concurrent GETs of never-requested transforms) and record what the server answers."""
    out, lock = [], threading.Lock()

    def one(i):
        path = xform_path(ps, "e2e", "img/src.jpg", JPEG_QUERY.format(w=600 + 50 * run + i))
        st, _, body = bl.http("GET", srv.endpoint + path, timeout=120)
        with lock:
            out.append({"status": st, "body": body[:160].decode(errors="replace") if st != 200 else ""})

    threads = [threading.Thread(target=one, args=(i,)) for i in range(a.conc)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    codes = {}
    for e in out:
        codes[str(e["status"])] = codes.get(str(e["status"]), 0) + 1
    sample = next((e["body"] for e in out if e["status"] != 200), "")
    print(f"# diagnosis after errors: {a.conc} concurrent fresh transforms -> {codes} {sample[:120]}",
          file=sys.stderr, flush=True)
    return {"codes": codes, "sample_body": sample}


def phase_strata(a, workdir, binary):
    srv = Server(binary, workdir, "strata-1w", workers=1, cpus=a.server_cpu)
    print(f"# strata (workers=1, core {a.server_cpu}) pid {srv.pid} at {srv.endpoint}", file=sys.stderr, flush=True)
    ps = bl.Presigner(srv.endpoint, ACCESS_KEY, SECRET_KEY)
    out = {"server_cmd": srv.cmd, "endpoint": srv.endpoint}
    try:
        out["s3bench"] = run_s3bench(a, srv, workdir)
        if not srv.alive():
            raise SystemExit(f"strata exited (rc={srv.proc.returncode}) during s3bench; stderr tail:\n"
                             f"{srv.stderr_tail()}")
        out["own"] = run_own_tests(a, srv, ps)
    finally:
        rc, hwm = srv.stop()
        out["exit_code"], out["vm_hwm_mib"], out["threads_at_stop"] = rc, hwm, srv.threads_at_stop
        out["stderr_tail"] = srv.stderr_tail()
    return out


# ---------------------------------------------------------------- phase 2: libvips, one core
def run_vips(a, workdir, name, extra):
    out = os.path.join(workdir, f"vips-{name}.json")
    cmd = [sys.executable, os.path.join(a.shared_bench, "vips_bench.py"), "--cpu", str(a.vips_cpu),
           "--duration", str(a.duration), "--runs", str(a.runs),
           "--quiet-timeout", str(a.quiet_timeout), "--quiet-max-busy", str(a.quiet_max_busy),
           "--json-out", out] + extra + [a.image]
    print(f"# vips_bench: {' '.join(cmd)}", file=sys.stderr, flush=True)
    p = subprocess.run(cmd)
    if p.returncode != 0 or not os.path.exists(out):
        return {"error": f"vips_bench.py exited {p.returncode}", "cmd": cmd}
    with open(out) as f:
        res = json.load(f)
    res["cmd"] = cmd
    return res


def phase_vips(a, workdir):
    return {
        "webp200": run_vips(a, workdir, "webp200", ["--width", "200", "--height", "150", "--crop", "centre",
                                                    "--format", "webp", "--q", "90"]),
        # height far beyond the source: the box is bounded by the width only (fit inside)
        "jpeg800": run_vips(a, workdir, "jpeg800", ["--width", "800", "--height", "100000", "--crop", "none",
                                                    "--format", "jpeg", "--q", "80"]),
    }


# ---------------------------------------------------------------- phase 3: memory, 50 MP sources
def make_big_jpeg(src_path, dst_path, noise_sigma=6):
    """The photo scaled up to 8660x5773, plus mild sensor-like noise so that the JPEG carries
    about as much entropy-coded data as a real 50 MP photo (a plain upscale is only ~2 MB)."""
    import pyvips
    im = pyvips.Image.new_from_file(src_path)
    big = im.resize(BIG_W / im.width, vscale=BIG_H / im.height)
    if (big.width, big.height) != (BIG_W, BIG_H):
        big = big.crop(0, 0, min(big.width, BIG_W), min(big.height, BIG_H))
    if noise_sigma:
        noise = pyvips.Image.gaussnoise(big.width, big.height, sigma=noise_sigma, mean=0)
        big = (big + noise).cast("uchar")
    big.jpegsave(dst_path, Q=85)
    return big.width, big.height


class RssSampler(threading.Thread):
    """VmRSS / VmHWM of one pid every `interval` s."""

    def __init__(self, srv, interval=0.1):
        super().__init__(daemon=True)
        self.srv, self.interval = srv, interval
        self.stop_ev = threading.Event()
        self.samples = []  # (t, rss_kib, hwm_kib)

    def run(self):
        t0 = time.monotonic()
        while not self.stop_ev.wait(self.interval):
            rss, hwm = self.srv.status_kib("VmRSS"), self.srv.status_kib("VmHWM")
            if rss is None:
                break
            self.samples.append((round(time.monotonic() - t0, 2), rss, hwm))


def cold_client(srv, ps, key, widths, deadline, log):
    """Back-to-back cold transforms of one 50 MP key until the deadline."""
    for w in widths:
        if time.monotonic() >= deadline or not srv.alive():
            return
        path = xform_path(ps, "mem", key, f"w={w}&f=webp")
        t0 = time.monotonic()
        try:
            st, hd, body = bl.http("GET", srv.endpoint + path, timeout=120)
        except OSError as e:  # connection reset / refused: the server went away
            log.append({"key": key, "w": w, "status": f"{type(e).__name__}: {e}", "s": time.monotonic() - t0})
            return
        hd = {k.lower(): v for k, v in hd.items()}
        entry = {"key": key, "w": w, "status": st, "cache": hd.get("x-strata-cache"),
                 "bytes": len(body), "s": round(time.monotonic() - t0, 3)}
        if st != 200:
            entry["body"] = body[:300].decode(errors="replace")
        log.append(entry)


def phase_memory(a, workdir, binary):
    big = os.path.join(workdir, "big-8660x5773.jpg")
    t0 = time.monotonic()
    size = make_big_jpeg(a.image, big)
    with open(big, "rb") as f:
        data = f.read()
    print(f"# memory: made {size[0]}x{size[1]} JPEG q85, {len(data) / MIB:.1f} MiB in "
          f"{time.monotonic() - t0:.1f} s", file=sys.stderr, flush=True)
    srv = Server(binary, workdir, "strata-mem", workers=2, cpus=None)
    ps = bl.Presigner(srv.endpoint, ACCESS_KEY, SECRET_KEY)
    out = {"source": {"px": f"{size[0]}x{size[1]}", "bytes": len(data)}, "server_cmd": srv.cmd,
           "workers": 2, "query": "w={400+i}&f=webp"}
    sampler = RssSampler(srv)
    try:
        create_bucket(ps, "mem")
        keys = ["big-a.jpg", "big-b.jpg"]
        for k in keys:
            put(ps, "mem", k, data)
        out["rss_idle_mib"] = (srv.status_kib("VmRSS") or 0) / 1024
        sampler.start()
        log = []
        deadline = time.monotonic() + a.memory_duration
        # two clients, disjoint widths, so every request is a miss and both workers stay busy
        threads = [threading.Thread(target=cold_client,
                                    args=(srv, ps, k, range(400 + i, 4000, 2), deadline, log))
                   for i, k in enumerate(keys)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        sampler.stop_ev.set()
        sampler.join()
        out["requests"] = log
    finally:
        sampler.stop_ev.set()
        alive = srv.alive()
        rc, hwm = srv.stop()
        out.update(alive_at_end=alive, exit_code=rc, vm_hwm_mib=hwm, threads_at_stop=srv.threads_at_stop,
                   stderr_tail=srv.stderr_tail())
    codes = {}
    for e in out.get("requests", []):
        codes[str(e["status"])] = codes.get(str(e["status"]), 0) + 1
    out["status_codes"] = codes
    out["cache_headers"] = sorted({str(e.get("cache")) for e in out.get("requests", [])})
    rss = [s[1] for s in sampler.samples]
    out["peak_vmrss_mib"] = max(rss) / 1024 if rss else None
    out["peak_mib"] = max(x for x in (out["peak_vmrss_mib"], hwm) if x is not None) if (rss or hwm) else None
    ok = [e["s"] for e in out.get("requests", []) if e["status"] == 200]
    out["latency_s_median"] = statistics.median(ok) if ok else None
    out["samples"] = len(sampler.samples)
    out["rss_series_mib"] = [(t, round(r / 1024, 1)) for t, r, _ in sampler.samples[::5]]
    return out


# ---------------------------------------------------------------- summary
def med(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def ratio(x, y):
    return x / y if x is not None and y else None


def fmt_ratio(r, target=None, at_least=True):
    if r is None:
        return "-"
    s = f"{r:.2f}x" if r < 10 else f"{r:.1f}x"
    if target is not None:
        s += " ok" if (r >= target if at_least else r < target) else " MISS"
    return s


def flags(runs):
    f = []
    if any(x["errors"] for x in runs):
        f.append(f"errors={sum(x['errors'] for x in runs)}")
    if any(x.get("wrapped") for x in runs):
        f.append("wrapped")
    if any(x["noisy"] for x in runs):
        f.append("noisy")
    if any(x["loadgen_cpu_pct"] > 90 for x in runs):
        f.append("wrk-bound")
    return f


def summarize(a, strata, vips):
    s3 = (strata or {}).get("s3bench", {}).get("results", {})
    own = (strata or {}).get("own", {}).get("results", {})

    def rps(runs):  # successful responses per second (wrk's rate counts non-2xx answers too)
        return med([x.get("ok_rps", x["rps"] * (1 - x["errors"] / max(x["requests"], 1))) for x in runs]) \
            if runs else None

    def clean(runs):
        """Cold runs that errored or wrapped around their URL list were partly cache hits or
        rejections: leave them out of the median while at least one clean run exists."""
        good = [x for x in runs or [] if not x["errors"] and not x.get("wrapped")]
        return good or runs

    def rss(*groups):
        vals = [x["rss_peak_mib"] for g in groups for x in (g or [])]
        return max(vals) if vals else None

    def per_cpu(runs):  # requests per server CPU-second: robust against other load on the box
        return med([x.get("ok_rps", x["rps"]) / (x["server_cpu_pct"] / 100)
                    for x in runs or [] if x["server_cpu_pct"] > 1])

    def vips_ops(key, field="ops_per_s"):
        r = (vips or {}).get(key, {}).get("results", {})
        return med(next(iter(r.values()))[field]) if r else None

    plain16 = rps(own.get("get16k"))
    cases = [("200x150 cover webp q90", s3.get("xform-cold"), s3.get("xform-warm"), "webp200"),
             ("800w jpeg q80", own.get("jpeg800-cold"), own.get("jpeg800-warm"), "jpeg800")]
    rows = []
    for name, cold_all, warm, vkey in cases:
        cold = clean(cold_all)
        c, w, vops, vcpu = rps(cold), rps(warm), vips_ops(vkey), vips_ops(vkey, "ops_per_cpu_s")
        rows.append({"case": name, "cold_rps": c, "vips_ops": vops, "cold_vs_vips": ratio(c, vops),
                     "cold_per_cpu_s": per_cpu(cold), "vips_per_cpu_s": vcpu,
                     "cold_vs_vips_per_cpu_s": ratio(per_cpu(cold), vcpu),
                     "warm_rps": w, "warm_over_cold": ratio(w, c), "plain16k_rps": plain16,
                     "warm_over_plain16k": ratio(w, plain16), "rss_peak_mib": rss(cold, warm),
                     "cold_p50_ms": med([x["lat_p50_us"] / 1000 for x in cold or []]),
                     "warm_p99_ms": med([x["lat_p99_us"] / 1000 for x in warm or []]),
                     "cold_runs_used": f"{len(cold or [])}/{len(cold_all or [])}",
                     "flags": sorted(set(flags(cold_all or []) + flags(warm or [])))
                     + (["cold-invalid"] if cold and any(x["errors"] or x.get("wrapped") for x in cold) else [])})
    plain = {"get4k_rps": rps(s3.get("get4k")), "get16k_rps": plain16,
             "get_flags": sorted(set(flags(s3.get("get4k") or []) + flags(own.get("get16k") or []))),
             "rss_peak_mib_all": rss(*s3.values(), *own.values()),
             "vm_hwm_mib": (strata or {}).get("vm_hwm_mib"),
             "threads_at_stop": (strata or {}).get("threads_at_stop")}
    return {"cases": rows, "plain": plain}


def print_summary(a, summary, memory, box, load_after):
    print(f"\nbox: {box.get('cpu')} x{box.get('nproc')}; load avg before {' '.join(box.get('loadavg_before', []))}, "
          f"after {' '.join(load_after)}")
    if not (a.skip_strata and a.skip_vips):
        print_throughput(a, summary)
    if memory:
        print_memory(a, memory)


def print_throughput(a, summary):
    n = bl.fmt_num
    print(f"\nStrata transform e2e: {a.runs} run(s) x {a.duration} s, conc {a.conc}, wrk on core {a.loadgen_cpu}; "
          f"Strata workers=1 on core {a.server_cpu}; libvips 1 thread on core {a.vips_cpu}")
    hdr = ["case", "cold req/s", "libvips ops/s", "cold/libvips", "per CPU-s: cold / libvips (ratio)",
           "warm req/s", "warm/cold (>=20x)", "plain GET 16 KiB req/s", "warm/plain (>=0.7)", "peak RSS MiB",
           "clean cold runs", "flags"]
    rows = [[r["case"], n(r["cold_rps"]), n(r["vips_ops"]), fmt_ratio(r["cold_vs_vips"]),
             f"{n(r['cold_per_cpu_s'])} / {n(r['vips_per_cpu_s'])} ({fmt_ratio(r['cold_vs_vips_per_cpu_s'])})",
             n(r["warm_rps"]),
             fmt_ratio(r["warm_over_cold"], 20), n(r["plain16k_rps"]), fmt_ratio(r["warm_over_plain16k"], 0.7),
             n(r["rss_peak_mib"]), r["cold_runs_used"], ",".join(r["flags"]) or "ok"] for r in summary["cases"]]
    bl.print_table(rows, hdr)
    p = summary["plain"]
    print(f"plain GET 4 KiB (s3bench): {n(p['get4k_rps'])} req/s; plain GET 16 KiB: {n(p['get16k_rps'])} req/s "
          f"[{','.join(p['get_flags']) or 'ok'}]; server peak RSS over the phase {n(p['rss_peak_mib_all'])} MiB "
          f"(sampled), VmHWM {n(p['vm_hwm_mib'])} MiB, {p['threads_at_stop']} threads at the end")


def print_memory(a, memory):
    n = bl.fmt_num
    ok = memory.get("peak_mib") is not None and memory["peak_mib"] < 300
    print(f"\nmemory: {memory['source']['px']} JPEG q85 ({memory['source']['bytes'] / MIB:.1f} MiB) x2 keys, "
          f"workers=2, 2 concurrent cold w=400+i&f=webp for {a.memory_duration:g} s")
    bl.print_table([[n(memory.get("rss_idle_mib")), n(memory.get("peak_vmrss_mib")), n(memory.get("vm_hwm_mib")),
                     "< 300 " + ("ok" if ok else "MISS"), json.dumps(memory["status_codes"]),
                     ",".join(memory["cache_headers"]), n(memory.get("latency_s_median")),
                     "yes" if memory["alive_at_end"] else f"NO (rc={memory['exit_code']})",
                     str(memory.get("threads_at_stop"))]],
                   ["RSS idle MiB", "peak VmRSS MiB (100 ms)", "VmHWM MiB", "target", "status codes",
                    "x-strata-cache", "median s/request", "server alive", "threads"])


# ---------------------------------------------------------------- main
def main(argv=None):
    a = parse_args(argv)
    check_prerequisites(a)
    import_benchlib(a.shared_bench)
    box = bl.box_info()
    print(f"# load average at start: {' '.join(box.get('loadavg_before', []))} "
          f"({box.get('nproc')} cores)", file=sys.stderr, flush=True)
    workdir = tempfile.mkdtemp(prefix="strata-e2e-")
    binary = os.path.join(workdir, "strata")
    report = {"args": vars(a), "box": box, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    strata = vips = memory = None
    try:
        if not a.skip_strata or a.memory:
            shutil.copy2(a.binary, binary)  # a concurrent cargo build may replace the original
            report["binary"] = {"path": a.binary, "mtime": time.strftime(
                "%Y-%m-%dT%H:%M:%S", time.localtime(os.path.getmtime(a.binary)))}
        if not a.skip_strata:
            strata = report["strata"] = phase_strata(a, workdir, binary)
        if not a.skip_vips:
            vips = report["vips"] = phase_vips(a, workdir)
        if a.memory:
            memory = report["memory"] = phase_memory(a, workdir, binary)
    finally:
        with open("/proc/loadavg") as f:
            load_after = f.read().split()[:3]
        report["loadavg_after"] = load_after
        report["summary"] = summarize(a, strata, vips)
        os.makedirs(os.path.dirname(os.path.abspath(a.json_out)), exist_ok=True)
        with open(a.json_out, "w") as f:
            json.dump(report, f, indent=1, default=str)
        if a.keep:
            print(f"# kept {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print_summary(a, report["summary"], memory, box, load_after)
    for name, v in (("s3bench", (strata or {}).get("s3bench")), ("vips webp200", (vips or {}).get("webp200")),
                    ("vips jpeg800", (vips or {}).get("jpeg800"))):
        if v and "error" in v:
            print(f"WARNING: {name}: {v['error']}")
    if strata and strata.get("exit_code") not in (0, None):
        print(f"WARNING: strata (throughput phase) exited with {strata['exit_code']} on SIGTERM")
    print(f"\nraw data: {a.json_out}")


if __name__ == "__main__":
    main()
