"""Tiny scenario harness shared by the conformance drivers.

Each driver registers scenario functions with ``Suite.scenario``; ``Suite.main``
runs them all, reports every failure loudly (what was run, what was expected,
what came back) and prints ``N passed, M failed``.

Environment read here:
  STRATA_ENDPOINT        http://127.0.0.1:PORT of a running server (required)
  STRATA_ROOT_ACCESS_KEY / STRATA_ROOT_SECRET_KEY   root credentials (required)
  CONFORMANCE_SCRATCH    directory for temporary files (default: a new temp dir)
  CONFORMANCE_ONLY       regex; run only scenarios whose name matches
  CONFORMANCE_RESULTS    file to write "passed failed" counts into (for run.sh)
  CONFORMANCE_KNOWN_DEVIATIONS  comma-separated tags (or "all") of `deviation(...)` blocks
                         whose failures are reported but tolerated. Never set for Strata; it
                         exists to validate the scenarios themselves against a reference
                         server (e.g. moto) that lacks some S3 behaviour.
"""

import contextlib
import os
import re
import shlex
import sys
import tempfile
import time
import traceback


class Failure(Exception):
    """A scenario assertion failed (message is already formatted)."""


def fmt_cmd(cmd):
    if isinstance(cmd, (list, tuple)):
        return " ".join(shlex.quote(str(c)) for c in cmd)
    return str(cmd)


def tail(text, limit=1500):
    if text is None:
        return ""
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError:
            return f"<{len(text)} bytes of binary data: {bytes(text[:48])!r}...>"
    text = text.strip()
    if len(text) > limit:
        return "..." + text[-limit:]
    return text


def fail(what, expected, got, command=None, extra=None):
    lines = [what]
    if command is not None:
        lines.append("  command:  " + fmt_cmd(command))
    lines.append("  expected: " + str(expected))
    lines.append("  got:      " + str(got))
    if extra:
        lines.append("  detail:   " + tail(extra).replace("\n", "\n            "))
    raise Failure("\n".join(lines))


def check(cond, what, expected, got, command=None, extra=None):
    if not cond:
        fail(what, expected, got, command=command, extra=extra)


def eq(got, expected, what, command=None, extra=None):
    if got != expected:
        fail(what, repr(expected), repr(got), command=command, extra=extra)


def env_required(name):
    value = os.environ.get(name)
    if not value:
        print(f"conformance: environment variable {name} is required", file=sys.stderr)
        sys.exit(2)
    return value


KNOWN_DEVIATIONS = {t for t in re.split(r"[,\s]+", os.environ.get("CONFORMANCE_KNOWN_DEVIATIONS", "")) if t}
TOLERATED = []  # (tag, first line of the failure) of every tolerated deviation


@contextlib.contextmanager
def deviation(tag):
    """Checks of S3 behaviour that a reference server used to validate these scenarios is
    known to lack (tag names the behaviour). Strict unless the tag is listed in
    CONFORMANCE_KNOWN_DEVIATIONS; then a failure (or any exception) inside the block is
    printed and the scenario continues after the block."""
    try:
        yield
    except Exception as e:  # noqa: BLE001 - Failure, ClientError, ... alike
        if tag not in KNOWN_DEVIATIONS and "all" not in KNOWN_DEVIATIONS:
            raise
        first = " | ".join(l.strip() for l in str(e).strip().splitlines()[:3]) or type(e).__name__
        TOLERATED.append((tag, first))
        print(f"    KNOWN DEVIATION [{tag}] tolerated: {first[:300]}", flush=True)


class Suite:
    def __init__(self, name):
        self.name = name
        self.scenarios = []
        self.endpoint = env_required("STRATA_ENDPOINT").rstrip("/")
        self.access_key = env_required("STRATA_ROOT_ACCESS_KEY")
        self.secret_key = env_required("STRATA_ROOT_SECRET_KEY")
        scratch = os.environ.get("CONFORMANCE_SCRATCH")
        if scratch:
            os.makedirs(scratch, exist_ok=True)
            self.scratch = tempfile.mkdtemp(prefix=name + "-", dir=scratch)
        else:
            self.scratch = tempfile.mkdtemp(prefix="strata-" + name + "-")
        self._bucket_seq = 0

    def scenario(self, fn):
        self.scenarios.append(fn)
        return fn

    def bucket_name(self, hint):
        """A fresh, valid, unique bucket name for this run."""
        self._bucket_seq += 1
        hint = re.sub(r"[^a-z0-9-]", "-", hint.lower()).strip("-")[:40]
        return f"{self.name[:8]}-{hint}-{self._bucket_seq}".replace("_", "-")

    def main(self):
        only = os.environ.get("CONFORMANCE_ONLY")
        selected = [s for s in self.scenarios if not only or re.search(only, s.__name__)]
        passed, failed = 0, []
        suite_start = time.monotonic()
        for fn in selected:
            name = fn.__name__
            print(f"[{self.name}] RUN  {name}", flush=True)
            start = time.monotonic()
            try:
                fn()
            except Failure as e:
                elapsed = time.monotonic() - start
                failed.append(name)
                self._report(name, elapsed, str(e))
            except Exception:  # a crash in the scenario is a failure too
                elapsed = time.monotonic() - start
                failed.append(name)
                self._report(name, elapsed, "unexpected exception:\n" + traceback.format_exc())
            else:
                passed += 1
                print(f"[{self.name}] PASS {name} ({time.monotonic() - start:.1f}s)", flush=True)
        total = time.monotonic() - suite_start
        print()
        print(f"[{self.name}] finished in {total:.1f}s")
        if failed:
            print(f"[{self.name}] FAILED scenarios: {', '.join(failed)}")
        if TOLERATED:
            tags = sorted({t for t, _ in TOLERATED})
            print(f"[{self.name}] tolerated {len(TOLERATED)} known deviation(s): {', '.join(tags)}")
        print(f"{self.name}: {passed} passed, {len(failed)} failed", flush=True)
        results = os.environ.get("CONFORMANCE_RESULTS")
        if results:
            with open(results, "w") as f:
                f.write(f"{passed} {len(failed)}\n")
                for name in failed:
                    f.write(f"{self.name}.{name}\n")
        return 1 if failed else 0

    def _report(self, name, elapsed, message):
        bar = "!" * 78
        print(bar, flush=True)
        print(f"[{self.name}] FAIL {name} ({elapsed:.1f}s)")
        for line in message.rstrip().splitlines():
            print("    " + line)
        print(bar, flush=True)


def tamper_presigned(url):
    """Return {description: tampered URL} for a SigV4 or SigV2 presigned URL."""
    out = {}
    m = re.search(r"([?&](?:X-Amz-Signature|Signature)=)([^&]+)", url)
    check(m, "presigned URL carries a signature parameter", "X-Amz-Signature= or Signature=", url)
    value = m.group(2)
    flipped = "1" if value[0] == "0" else "0"  # valid in both hex (v4) and base64 (v2)
    out["signature changed"] = url[:m.start(2)] + flipped + value[1:] + url[m.end(2):]
    if "X-Amz-Expires=" in url:
        out["expiry changed"] = re.sub(r"X-Amz-Expires=\d+", "X-Amz-Expires=604800", url)
    else:
        out["expiry changed"] = re.sub(r"([?&]Expires=)(\d+)", lambda e: e.group(1) + str(int(e.group(2)) + 1000), url)
    return out
