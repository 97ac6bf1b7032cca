#!/usr/bin/env bash
# Lints the Dockerfile (no Docker engine runs in CI) and checks that what it names exists:
# every COPY source, the binary it starts and the command it runs, and the health endpoint
# its HEALTHCHECK calls. Run by test.sh with hadolint from the conformance venv:
#   bash deploy/check-container.sh path/to/hadolint path/to/strata
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
HADOLINT="${1:?hadolint binary}"
STRATA="${2:?strata binary}"
fail=0
say() { echo "container check: $*"; }

"$HADOLINT" --failure-threshold info Dockerfile && say "hadolint: clean" || { say "hadolint found problems"; fail=1; }

# COPY sources (build context paths; --from=… copies come from an earlier stage).
while read -r src; do
    [[ -e "$src" ]] && say "COPY source $src exists" || { say "COPY source $src is missing"; fail=1; }
done < <(grep -E '^COPY ' Dockerfile | grep -v -- '--from=' | sed -E 's/^COPY +//' | awk '{for (i = 1; i < NF; i++) print $i}')

# The binary the runtime stage starts is the one cargo builds, and its command exists.
grep -q '^name = "strata"' Cargo.toml && grep -q 'ENTRYPOINT \["/usr/local/bin/strata"\]' Dockerfile \
    || { say "ENTRYPOINT does not name the strata binary"; fail=1; }
cmd=$(grep -E '^CMD ' Dockerfile | sed -E 's/^CMD \["([a-z-]+)".*/\1/')
"$STRATA" "$cmd" --help >/dev/null && say "strata $cmd exists" || { say "strata $cmd is not a command"; fail=1; }

# The HEALTHCHECK endpoint is one the server answers.
grep -q '/_strata/health' src/http/server.rs && grep -q '/_strata/health' Dockerfile \
    || { say "HEALTHCHECK endpoint is not served"; fail=1; }
exit $fail
