#!/usr/bin/env bash
# Runs the lab's self-test, then the lab tests of the product, each under
# a time limit, and prints a summary.
#
#   lab/run-tests.sh [--bin DIR] [TEST...]
#
# TEST names scripts in lab/ (default: selftest, relay-lossy and the
# direct-* scenarios). --bin DIR is
# passed to the product tests (route and vnet from DIR instead of a cargo
# build). Needs root; installs missing tools with apt-get.
#
# Exit status: 0 if all passed, 1 if any failed. When this machine cannot
# run the lab (not root, no network namespaces), it prints a loud SKIPPED
# line and exits 0, or 77 if LAB_REQUIRED=1 is set.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lab/lib.sh
source lab/lib.sh

DEFAULT_TESTS=(selftest relay-lossy direct-eim direct-public direct-sym direct-udpblock direct-change)
TEST_TIMEOUT=${TEST_TIMEOUT:-900} # seconds per test script
# Tools the lab and its tests use, and the Debian package of each.
declare -A PACKAGE_OF=(
    [ip]=iproute2 [ss]=iproute2 [tc]=iproute2 [nft]=nftables [ethtool]=ethtool
    [iperf3]=iperf3 [python3]=python3 [curl]=curl [ping]=iputils-ping
    [conntrack]=conntrack [ps]=procps [timeout]=coreutils [awk]=gawk
)

# Prints the SKIPPED line and exits (0, or 77 when LAB_REQUIRED=1).
skip() {
    echo "============================================================"
    echo "SKIPPED: lab tests not run: $*"
    echo "============================================================"
    [[ ${LAB_REQUIRED:-} == 1 ]] && exit "$LAB_SKIP"
    exit 0
}

# Installs the packages of missing tools (apt-get, only if something is
# missing).
install_tools() {
    local tool packages=()
    for tool in "${!PACKAGE_OF[@]}"; do
        command -v "$tool" >/dev/null || packages+=("${PACKAGE_OF[$tool]}")
    done
    ((${#packages[@]} == 0)) && return
    command -v apt-get >/dev/null || skip "missing tools (${packages[*]}) and no apt-get to install them"
    echo "installing: ${packages[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}" >/dev/null
}

main() {
    local bin_args=() tests=() name
    while (($#)); do
        case $1 in
            --bin) bin_args=(--bin "${2:?--bin needs a folder}") && shift 2 ;;
            -h | --help) sed -n '2,14s/^# \{0,1\}//p' "$0" && exit 0 ;;
            *) tests+=("$1") && shift ;;
        esac
    done
    ((${#tests[@]})) || tests=("${DEFAULT_TESTS[@]}")
    for name in "${tests[@]}"; do
        [[ -x lab/$name.sh ]] || lab_die "no test lab/$name.sh"
    done
    ((EUID == 0)) || skip "not running as root (network namespaces need root)"
    install_tools
    local why
    why=$(lab_unsupported)
    [[ -z $why ]] || skip "$why"
    [[ -z $(lab__leftovers) ]] || lab_die "an earlier lab's namespaces exist; run lab/lab.sh down"
    echo "building linkemu" >&2
    cargo build --quiet --release -p linkemu
    local linkemu=${CARGO_TARGET_DIR:-target}/release/linkemu
    run_all "$linkemu" "${bin_args[@]}" -- "${tests[@]}"
}

# run_all LINKEMU [--bin DIR] -- TEST...: runs each test, then the summary.
run_all() {
    local linkemu=$1 bin_args=() results=() failed=0 skipped=0 name rc t0 args
    shift
    while [[ $1 != -- ]]; do bin_args+=("$1") && shift; done
    shift
    for name in "$@"; do
        args=(--linkemu "$linkemu")
        [[ $name == selftest ]] || args+=("${bin_args[@]}")
        echo "==> lab/$name.sh" >&2
        t0=$SECONDS
        # --foreground keeps the test in our process group, so Ctrl-C
        # reaches it and its own cleanup runs.
        rc=0
        timeout --foreground -k 30 "$TEST_TIMEOUT" "lab/$name.sh" "${args[@]}" || rc=$?
        case $rc in
            0) results+=("PASS     $name ($((SECONDS - t0)) s)") ;;
            "$LAB_SKIP") results+=("SKIPPED  $name") && skipped=$((skipped + 1)) ;;
            124) results+=("FAIL     $name (timed out after ${TEST_TIMEOUT} s)") && failed=$((failed + 1)) ;;
            130 | 143) echo "interrupted" >&2 && exit "$rc" ;;
            *) results+=("FAIL     $name (exit $rc, $((SECONDS - t0)) s)") && failed=$((failed + 1)) ;;
        esac
    done
    echo
    printf '%s\n' "${results[@]}"
    [[ -z $(lab__leftovers) ]] || {
        echo "FAIL     leftover namespaces: $(lab__leftovers | tr '\n' ' ')"
        failed=$((failed + 1))
    }
    ((skipped == 0)) || echo "SKIPPED: $skipped test(s) could not run here"
    ((failed == 0))
}

main "$@"
