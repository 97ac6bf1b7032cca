#!/usr/bin/env python3
"""What an online backup's snapshot costs the requests that run beside it, for two builds
side by side in one run (e.g. before and after a change to the write gate).

    conformance/.venv/bin/python benches/backup_pause.py --before OLD_BIN --after target/release/strata

Needs boto3 (the conformance venv has it). For each build: a server on a fresh temp data dir
(unpinned: the stall is about tokio workers, which a pinned single core would hide), one
bucket filled with --objects small objects (so the snapshot has metadata to walk). Each run
then, per build in alternating order: reader threads GET random objects and writer threads
PUT new ones for --window s of warm-up, then `strata backup --to DIR` runs through the
server's admin API while they go on, then --window s more. Every request's start time and
latency is kept; the table reports GET and PUT latency (p50, p99, max) inside the backup
window and outside it, the backup's wall time, and the after/before ratio of the worst GET
inside the window. Medians over --runs. Raw data goes to target/bench-backup-pause.json.
"""

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import boto3
from botocore.config import Config

BUCKET = "backup-pause"
ACCESS, SECRET = "benchbackupkey", "benchbackupsecret0123456789abcdefghijk"


def start_server(binary, data):
    """Starts `binary serve` on an ephemeral port; returns (process, port)."""
    env = dict(os.environ, STRATA_ROOT_ACCESS_KEY=ACCESS, STRATA_ROOT_SECRET_KEY=SECRET)
    proc = subprocess.Popen(
        [binary, "serve", "--listen", "127.0.0.1:0", "--data", data],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    for line in proc.stdout:
        if line.startswith("listening on"):
            port = int(line.strip().rsplit(":", 1)[1])
            break
    else:
        raise SystemExit(f"{binary} did not start")
    threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
    return proc, port


def client(port):
    return boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{port}",
        aws_access_key_id=ACCESS,
        aws_secret_access_key=SECRET,
        region_name="us-east-1",
        config=Config(max_pool_connections=32, retries={"max_attempts": 1}, s3={"addressing_style": "path"}),
    )


def fill(port, n, threads=8):
    c = client(port)
    c.create_bucket(Bucket=BUCKET)
    def work(start):
        cc = client(port)
        for i in range(start, n, threads):
            cc.put_object(Bucket=BUCKET, Key=f"obj/{i:07d}", Body=b"x" * 64)
    ts = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    [t.start() for t in ts]
    [t.join() for t in ts]


def pct(xs, p):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))]


def measure(binary, port, n, window, readers, writers):
    stop = threading.Event()
    samples = []  # (kind, start, latency)
    lock = threading.Lock()

    def reader():
        c = client(port)
        while not stop.is_set():
            t0 = time.monotonic()
            c.get_object(Bucket=BUCKET, Key=f"obj/{random.randrange(n):07d}")["Body"].read()
            with lock:
                samples.append(("GET", t0, time.monotonic() - t0))

    def writer(w):
        c = client(port)
        i = 0
        while not stop.is_set():
            t0 = time.monotonic()
            c.put_object(Bucket=BUCKET, Key=f"new/{w}/{i}", Body=b"y" * 64)
            i += 1
            with lock:
                samples.append(("PUT", t0, time.monotonic() - t0))

    ts = [threading.Thread(target=reader) for _ in range(readers)]
    ts += [threading.Thread(target=writer, args=(w,)) for w in range(writers)]
    [t.start() for t in ts]
    time.sleep(window)
    target = tempfile.mkdtemp(prefix="strata-bk-")
    env = dict(os.environ, STRATA_ROOT_ACCESS_KEY=ACCESS, STRATA_ROOT_SECRET_KEY=SECRET)
    b0 = time.monotonic()
    subprocess.run(
        [binary, "backup", "--to", target, "--endpoint", f"http://127.0.0.1:{port}"],
        env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    b1 = time.monotonic()
    time.sleep(window)
    stop.set()
    [t.join() for t in ts]
    shutil.rmtree(target, ignore_errors=True)
    # A request is "in the window" if it was running at any time during the backup.
    def split(kind):
        inside = [l for k, s, l in samples if k == kind and s < b1 and s + l > b0]
        outside = [l for k, s, l in samples if k == kind and not (s < b1 and s + l > b0)]
        return inside, outside
    out = {"backup_s": b1 - b0}
    for kind in ("GET", "PUT"):
        inside, outside = split(kind)
        out[kind] = {
            "inside": {"n": len(inside), "p50": pct(inside, 50), "p99": pct(inside, 99), "max": max(inside, default=float("nan"))},
            "outside": {"n": len(outside), "p50": pct(outside, 50), "p99": pct(outside, 99), "max": max(outside, default=float("nan"))},
        }
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", required=True)
    ap.add_argument("--after", default="target/release/strata")
    ap.add_argument("--objects", type=int, default=30000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--window", type=float, default=2.0)
    ap.add_argument("--readers", type=int, default=4)
    ap.add_argument("--writers", type=int, default=4)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="strata-bench-bp-")
    builds = {}
    try:
        for name, path in (("before", a.before), ("after", a.after)):
            binary = os.path.join(tmp, f"strata-{name}")
            shutil.copy(path, binary)  # a build may replace the original meanwhile
            proc, port = start_server(binary, os.path.join(tmp, f"data-{name}"))
            builds[name] = (binary, port, proc)
            t0 = time.monotonic()
            fill(port, a.objects)
            print(f"{name}: filled {a.objects} objects in {time.monotonic() - t0:.1f} s", flush=True)
        results = {"before": [], "after": []}
        for run in range(a.runs):
            order = ["before", "after"] if run % 2 == 0 else ["after", "before"]
            for name in order:
                binary, port, _ = builds[name]
                r = measure(binary, port, a.objects, a.window, a.readers, a.writers)
                results[name].append(r)
                print(f"run {run + 1} {name}: backup {r['backup_s'] * 1000:.0f} ms, GET max inside "
                      f"{r['GET']['inside']['max'] * 1000:.1f} ms, PUT max inside {r['PUT']['inside']['max'] * 1000:.1f} ms",
                      flush=True)
    finally:
        for _, _, proc in builds.values():
            proc.terminate()
            proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    med = lambda name, f: statistics.median(f(r) for r in results[name])
    ms = lambda v: f"{v * 1000:.1f}"
    print(f"\nbackup beside {a.readers} GET and {a.writers} PUT threads, {a.objects} objects, median of {a.runs} runs (ms)")
    print("| build | backup | GET p50 in/out | GET p99 in/out | GET max in/out | PUT p99 in/out | PUT max in |")
    print("|---|---|---|---|---|---|---|")
    for name in ("before", "after"):
        g = lambda w, k: med(name, lambda r: r["GET"][w][k])
        p = lambda w, k: med(name, lambda r: r["PUT"][w][k])
        print(f"| {name} | {ms(med(name, lambda r: r['backup_s']))} | {ms(g('inside','p50'))} / {ms(g('outside','p50'))} | "
              f"{ms(g('inside','p99'))} / {ms(g('outside','p99'))} | {ms(g('inside','max'))} / {ms(g('outside','max'))} | "
              f"{ms(p('inside','p99'))} / {ms(p('outside','p99'))} | {ms(p('inside','max'))} |")
    ratio = med("after", lambda r: r["GET"]["inside"]["max"]) / med("before", lambda r: r["GET"]["inside"]["max"])
    print(f"\nworst GET during the backup, after/before: {ratio:.2f}x")
    os.makedirs("target", exist_ok=True)
    with open("target/bench-backup-pause.json", "w") as f:
        json.dump({"args": vars(a), "results": results}, f, indent=1)


if __name__ == "__main__":
    sys.exit(main())
