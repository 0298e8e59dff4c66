# Background programs for the shell scripts (demo.sh,
# e2e/monitoring/check.sh): a work folder, programs started with their
# output logged in it, and a cleanup on every exit that stops them all
# (TERM, then KILL after 5 s) and removes the folder.
#
# Source it with SCRIPT set (the name messages start with); then
# `procs_begin NAME` makes $WORK and arms the cleanup.

die() {
    echo "$SCRIPT: $*" >&2
    exit 1
}

# Makes the work folder $WORK (its name starts with $1) and arms the
# cleanup; an interrupt exits 130, a TERM 143.
procs_begin() {
    WORK=$(mktemp -d -t "$1.XXXXXX")
    PIDS=()
    trap procs_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

procs_cleanup() {
    local pid
    trap - EXIT INT TERM
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$WORK"
}

# Starts a program in the background, logging to $WORK/NAME.log.
start() {
    local name=$1
    shift
    "$@" >"$WORK/$name.log" 2>&1 &
    PIDS+=("$!")
}

# Says what failed, shows the last lines of every log, and exits 1.
fail() {
    local log
    echo "$SCRIPT: $*" >&2
    for log in "$WORK"/*.log; do
        [[ -f $log ]] || continue
        echo "--- last lines of $(basename "$log") ---" >&2
        tail -n 20 "$log" >&2
    done
    exit 1
}
