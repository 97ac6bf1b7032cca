#!/usr/bin/env bash
# Real-client conformance run: starts a fresh Strata server and drives it with
# real clients: the aws CLI, boto3, headless Chromium, s3cmd and rclone (see conformance/*.py).
#
#   bash conformance/run.sh
#
# Environment knobs (all optional):
#   STRATA_BIN          use this server binary instead of target/release/strata
#   CONFORMANCE_ONLY    regex: run only matching scenario names (both suites)
#   CONFORMANCE_SUITES  space-separated subset of: aws_cli boto3 browser metrics cli_tools
#                       (default: all)
#   PYTHON              interpreter used to create the venv (default: python3)
#   KEEP_TMP=1          keep the temp dir (server data + logs) for inspection
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
cd "$ROOT"

RUN_START=$SECONDS
phase_start=$SECONDS
phase() { # phase NAME  -- prints timing of the previous phase
    local now=$SECONDS
    if [[ -n "${PHASE_NAME:-}" ]]; then
        echo "== conformance: ${PHASE_NAME} took $((now - phase_start))s"
    fi
    PHASE_NAME="$1"
    phase_start=$now
    [[ -n "$1" ]] && echo "== conformance: $1"
    return 0
}

# ---------------------------------------------------------------- venv
phase "python venv + clients"
VENV="$HERE/.venv"
PYTHON="${PYTHON:-python3}"
if [[ ! -x "$VENV/bin/python" ]] || ! "$VENV/bin/python" -c 'import sys' 2>/dev/null; then
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$HERE/requirements.txt"
"$VENV/bin/aws" --version

# ---------------------------------------------------------------- binary
phase "server binary"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
if [[ -n "${STRATA_BIN:-}" ]]; then
    BIN="$STRATA_BIN"
else
    BIN="$TARGET_DIR/release/strata"
    # Build when missing, or when sources are newer than the binary (cargo is
    # a no-op then anyway, but this avoids invoking it at all in the common case).
    if [[ ! -x "$BIN" ]] || [[ -n "$(find src Cargo.toml Cargo.lock -newer "$BIN" -print -quit 2>/dev/null)" ]]; then
        cargo build --release --bin strata
    fi
fi
[[ -x "$BIN" ]] || { echo "conformance: server binary $BIN not found" >&2; exit 1; }
export STRATA_BIN="$BIN"

# ---------------------------------------------------------------- server
phase "start server"
TMP="$(mktemp -d "${TMPDIR:-/tmp}/strata-conformance.XXXXXX")"
mkdir -p "$TMP/data" "$TMP/scratch" "$TMP/results"
SERVER_OUT="$TMP/server.stdout"
SERVER_ERR="$TMP/server.stderr"
SERVER_PID=""

cleanup() {
    local rc=$?
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    if [[ "${KEEP_TMP:-0}" == 1 ]]; then
        echo "conformance: kept $TMP"
    else
        rm -rf "$TMP"
    fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

export STRATA_ROOT_ACCESS_KEY="${STRATA_ROOT_ACCESS_KEY:-conformanceroot}"
export STRATA_ROOT_SECRET_KEY="${STRATA_ROOT_SECRET_KEY:-conformance-root-secret-not-for-production}"

"$BIN" serve --listen 127.0.0.1:0 --data "$TMP/data" >"$SERVER_OUT" 2>"$SERVER_ERR" &
SERVER_PID=$!

ENDPOINT=""
for _ in $(seq 300); do   # up to 30 s
    if line="$(grep -m1 -E '^listening on https?://127\.0\.0\.1:[0-9]+$' "$SERVER_OUT" 2>/dev/null)"; then
        ENDPOINT="${line#listening on }"
        break
    fi
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        break
    fi
    sleep 0.1
done
if [[ -z "$ENDPOINT" ]]; then
    echo "!!!!!!!!!! conformance: server did not print 'listening on http(s)://127.0.0.1:PORT' within 30s" >&2
    echo "--- server stdout:" >&2; tail -n 50 "$SERVER_OUT" >&2 || true
    echo "--- server stderr:" >&2; tail -n 50 "$SERVER_ERR" >&2 || true
    echo "0 passed, 1 failed"
    exit 1
fi
echo "server pid $SERVER_PID at $ENDPOINT (data $TMP/data)"
export STRATA_ENDPOINT="$ENDPOINT"
export CONFORMANCE_SCRATCH="$TMP/scratch"

# ---------------------------------------------------------------- suites
total_passed=0
total_failed=0
failed_names=()
run_suite() { # run_suite NAME SCRIPT
    local name="$1" script="$2" rc=0 counts="$TMP/results/$1"
    phase "suite $name"
    CONFORMANCE_RESULTS="$counts" "$VENV/bin/python" "$HERE/$script" || rc=$?
    if [[ -s "$counts" ]]; then
        local p f
        read -r p f <"$counts"
        total_passed=$((total_passed + p))
        total_failed=$((total_failed + f))
        mapfile -t -O "${#failed_names[@]}" failed_names < <(tail -n +2 "$counts")
        if [[ $rc -ne 0 && $f -eq 0 ]]; then
            total_failed=$((total_failed + 1)); failed_names+=("$name (exit $rc)")
        fi
    else
        echo "!!!!!!!!!! conformance: suite $name crashed before reporting (exit $rc)"
        total_failed=$((total_failed + 1)); failed_names+=("$name (crashed, exit $rc)")
    fi
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        echo "!!!!!!!!!! conformance: the server died during suite $name"
    fi
}

SUITES="${CONFORMANCE_SUITES:-aws_cli boto3 browser metrics cli_tools}"
for s in $SUITES; do
    case "$s" in
        aws_cli) run_suite aws-cli aws_cli_scenarios.py ;;
        boto3) run_suite boto3 boto3_scenarios.py ;;
        browser) run_suite browser browser_scenarios.py ;;
        metrics) run_suite metrics metrics_scenarios.py ;;
        cli_tools) run_suite cli-tools cli_tools_scenarios.py ;;
        *) echo "unknown suite $s" >&2; exit 2 ;;
    esac
    # The server must survive every suite.
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        total_failed=$((total_failed + 1)); failed_names+=("server process exited")
        break
    fi
done
phase ""

echo
echo "== conformance: total $((SECONDS - RUN_START))s"
if [[ $total_failed -ne 0 ]]; then
    echo "!!!!!!!!!! conformance FAILURES:"
    for n in "${failed_names[@]}"; do echo "  - $n"; done
    echo "--- last 80 lines of server stderr ($SERVER_ERR):"
    tail -n 80 "$SERVER_ERR" || true
fi
echo "$total_passed passed, $total_failed failed"
[[ $total_failed -eq 0 ]]
