# Shared start of the bench shell scripts (sourced from the workspace
# root): builds route and vnet, makes a scratch directory, and stops every
# process started with `start` (and removes the directory) on exit.
cargo build --release --quiet -p route -p vnet
BIN=target/release
DIR=$(mktemp -d)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$DIR"
}
trap cleanup EXIT

# Runs a command in the background, stopped on exit.
start() { "$@" & PIDS+=($!); }
