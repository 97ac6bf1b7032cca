# Sourced by ./test.sh: makes sure the Debian packages the tests use are installed.
#
#   curl       tests/api/tls.rs (HTTP/2 and certificate checks with a second client)
#   diffutils  cmp, in the conformance scenarios
#   make       build scripts of C dependencies
#   chromium   conformance/browser_scenarios.py (headless)
#   s3cmd      conformance/cli_tools_scenarios.py
#   rclone     conformance/cli_tools_scenarios.py
#   python3, python3-venv   conformance/run.sh makes its venv with `python3 -m venv`
#
# Nothing else: the Rust build needs only the toolchain and a C compiler (no cmake, no nasm).
# As root, what is missing is installed (`apt-get update` once, then one `apt-get install`);
# otherwise the script stops at once with the one command to run.

ensure_deps() {
    local need=()
    command -v curl >/dev/null || need+=(curl)
    command -v cmp >/dev/null || need+=(diffutils)
    command -v make >/dev/null || need+=(make)
    command -v chromium >/dev/null || command -v chromium-browser >/dev/null || need+=(chromium)
    command -v s3cmd >/dev/null || need+=(s3cmd)
    command -v rclone >/dev/null || need+=(rclone)
    if ! command -v python3 >/dev/null; then
        need+=(python3 python3-venv)
    else
        # `python3 -m venv` needs ensurepip, which Debian ships separately (python3-venv).
        # Try it for real rather than guessing from the module list.
        local probe
        probe="$(mktemp -d)"
        if ! python3 -m venv "$probe/v" >/dev/null 2>&1; then
            need+=(python3-venv)
        fi
        rm -rf "$probe"
    fi
    if [[ ${#need[@]} -eq 0 ]]; then
        return 0
    fi
    if [[ $(id -u) -ne 0 ]]; then
        echo "== test.sh: missing Debian packages: ${need[*]}. Install them with:" >&2
        echo "    sudo apt-get install -y --no-install-recommends ${need[*]}" >&2
        exit 1
    fi
    if ! command -v apt-get >/dev/null; then
        echo "== test.sh: missing ${need[*]} and no apt-get to install them with" >&2
        exit 1
    fi
    echo "== test.sh: installing ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
}

ensure_deps
