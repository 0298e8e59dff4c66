# shellcheck shell=bash
# Small helpers the rest of the lab leans on: messages, waiting for a
# condition with a deadline, checking that this machine can run the lab.

# Prints a message on stderr, prefixed with the lab's name.
lab_say() {
    echo "lab: $*" >&2
}

# Says what is wrong and fails the calling function (with set -e: the
# script).
lab_die() {
    lab_say "error: $*"
    return 1
}

# wait_for SECONDS WHAT CMD...: runs CMD every 50 ms until it succeeds,
# or fails saying WHAT it waited for once SECONDS (fractions allowed)
# have passed. The poll interval only paces the checks; the deadline is
# what bounds the wait.
wait_for() {
    local secs=$1 what=$2
    shift 2
    local deadline
    deadline=$(($(lab__now_us) + $(awk -v s="$secs" 'BEGIN { printf "%d", s * 1000000 }')))
    until "$@" >/dev/null 2>&1; do
        if (($(lab__now_us) >= deadline)); then
            lab_say "timed out after ${secs}s waiting for $what"
            return 1
        fi
        sleep 0.05
    done
}

# Microseconds since the epoch, without a subprocess.
lab__now_us() {
    local t=$EPOCHREALTIME
    echo "${t/[.,]/}"
}

# Why this machine cannot run the lab, or nothing if it can. Namespaces
# need root (or CAP_SYS_ADMIN and CAP_NET_ADMIN) and iproute2's netns.
lab_unsupported() {
    if ((EUID != 0)); then
        echo "not running as root (network namespaces need root)"
        return
    fi
    if ! command -v ip >/dev/null || ! ip netns list >/dev/null 2>&1; then
        echo "no 'ip netns' (install iproute2)"
        return
    fi
    local probe="${LAB_PREFIX}probe$$"
    if ! ip netns add "$probe" 2>/dev/null; then
        echo "cannot create a network namespace here (a container without CAP_SYS_ADMIN?)"
        return
    fi
    if ! ip -n "$probe" link add name p0 type veth peer name p1 2>/dev/null; then
        ip netns del "$probe" 2>/dev/null || true
        echo "cannot create veth pairs in a namespace (no veth support?)"
        return
    fi
    ip netns del "$probe"
}

# Fails with a message when a tool the lab needs is missing.
lab__need_tools() {
    local tool missing=()
    for tool in ip tc nft ethtool python3 awk; do
        command -v "$tool" >/dev/null || missing+=("$tool")
    done
    ((${#missing[@]} == 0)) ||
        lab_die "missing tools: ${missing[*]} (apt-get install iproute2 nftables ethtool python3 gawk)" || return
}

# Whether $1 is a non-negative decimal number (fractions allowed).
lab__is_number() {
    [[ $1 =~ ^[0-9]+(\.[0-9]+)?$ ]]
}

# Checks that a named value is a number in [0, MAX].
lab__check_number() {
    local name=$1 value=$2 max=$3
    lab__is_number "$value" || lab_die "$name: \"$value\" is not a number" || return
    awk -v v="$value" -v m="$max" 'BEGIN { exit !(v <= m) }' ||
        lab_die "$name: $value is more than $max" || return
}
