#!/usr/bin/env bash
# The full kill -9 durability run: 50 cycles of concurrent writes, overwrites, multipart
# uploads and deletes, each ended by SIGKILL at a random moment, then a restart and a check
# that nothing acknowledged was lost (tests/api/kill_cycles.rs). Prints
# `crash cycles: C, operations acknowledged: A, verified: V, lost: 0`.
# STRATA_CRASH_CYCLES / STRATA_CRASH_SEED override the cycle count / the random seed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export STRATA_CRASH_CYCLES="${STRATA_CRASH_CYCLES:-50}"
exec cargo test --release --test api kill_cycles -- --nocapture
