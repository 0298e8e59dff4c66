# shellcheck shell=bash
# The hosts' tables are associative arrays, where the $ of a variable in
# a subscript is needed: shellcheck, seeing this file alone, thinks not.
# shellcheck disable=SC2004
# Using a built lab: running programs in its hosts, looking up addresses,
# simulating network changes, and taking it all down again.

# Background programs: pids, and pid by name.
declare -ga LAB_BG_PIDS=()
declare -gA LAB_BG=()

# The namespace of host $1 (route, inet, or a site name).
lab_ns() {
    [[ -n ${LAB_NS[$1]+x} ]] || lab_die "no host \"$1\" (hosts: ${LAB_HOSTS[*]})" || return
    echo "${LAB_NS[$1]}"
}

# lab_exec HOST CMD...: runs CMD in HOST's namespace, in the foreground.
lab_exec() {
    local ns
    ns=$(lab_ns "$1") || return 1
    shift
    ip netns exec "$ns" "$@"
}

# lab_bg HOST NAME CMD...: starts CMD in HOST's namespace in the
# background, output to $LAB_DIR/NAME.log; it is stopped at lab_down (or
# by lab_stop NAME).
lab_bg() {
    local ns
    ns=$(lab_ns "$1") || return 1
    lab__spawn "$2" "$ns" "${@:3}"
}

# lab__spawn NAME NS CMD...: the same, for any namespace.
lab__spawn() {
    local name=$1 ns=$2
    shift 2
    [[ -z ${LAB_BG[$name]+x} ]] || lab_die "a background program is already named $name" || return
    # ip netns exec execs CMD, so $! is CMD's pid.
    ip netns exec "$ns" "$@" >"$LAB_DIR/$name.log" 2>&1 </dev/null &
    LAB_BG[$name]=$!
    LAB_BG_PIDS+=("$!")
}

# The pid of background program NAME.
lab_pid() {
    [[ -n ${LAB_BG[$1]+x} ]] || lab_die "no background program named $1" || return
    echo "${LAB_BG[$1]}"
}

# The log file of background program NAME.
lab_log() {
    echo "$LAB_DIR/$1.log"
}

# Stops background program NAME: TERM, then KILL after 3 s.
lab_stop() {
    local pid
    pid=$(lab_pid "$1") || return 1
    lab__kill "$pid"
}

# Whether background program NAME still runs.
lab_alive() {
    local pid
    pid=$(lab_pid "$1") || return 1
    kill -0 "$pid" 2>/dev/null
}

lab__kill() {
    kill -TERM "$1" 2>/dev/null || return 0
    wait_for 3 "pid $1 to exit" lab__gone "$1" || kill -KILL "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

lab__gone() {
    ! kill -0 "$1" 2>/dev/null
}

# lab_wait_listen HOST PORT [SECS] [tcp|udp]: waits (default 10 s) until
# something in HOST listens on PORT.
lab_wait_listen() {
    local host=$1 port=$2 secs=${3:-10} proto=${4:-tcp} flag=-Hltn
    [[ $proto == udp ]] && flag=-Hlun
    wait_for "$secs" "a $proto listener on port $port in $host" \
        lab__listening "$host" "$flag" "$port"
}

lab__listening() {
    [[ -n $(lab_exec "$1" ss "$2" "sport = :$3") ]]
}

# State that changes after lab_up, kept in files so that changes made in
# a subshell (inside $(...)) are seen by the whole script.
lab__put() {
    echo "$2" >"$LAB_DIR/state/$1"
}

lab__get() {
    cat "$LAB_DIR/state/$1"
}

# The address HOST's programs listen on: public for route, inet and
# sites of kind none; private for hosts behind NAT.
lab_addr() {
    lab_ns "$1" >/dev/null || return 1
    lab__get "addr-$1"
}

# The public address HOST's traffic appears from.
lab_wan() {
    lab_ns "$1" >/dev/null || return 1
    lab__get "wan-$1"
}

# lab_change_addr HOST [--wan | --flush]: a network change. Without an
# option, HOST gets a new address: a new private one behind NAT, a new
# public one otherwise. --wan gives a NAT site's gateway a new public
# address (which also drops its NAT mappings); --flush only forgets the
# gateway's NAT mappings (conntrack), so flows get new ones. Prints the
# new address (with --flush: the unchanged WAN address).
lab_change_addr() {
    local host=$1 what=${2:-host}
    lab_ns "$host" >/dev/null || return 1
    local kind=${LAB_KIND[$host]} i=${LAB_INDEX[$host]}
    [[ $host != inet ]] || lab_die "the internet's own address does not change" || return
    case $what in
        host) [[ -n ${LAB_GW[$host]+x} ]] && what=lan || what=wan ;;
        --wan) [[ -n ${LAB_GW[$host]+x} ]] && what=gwwan || what=wan ;;
        --flush)
            [[ -n ${LAB_GW[$host]+x} ]] || lab_die "$host ($kind) has no NAT to flush" || return
            command -v conntrack >/dev/null || lab_die "conntrack (the tool) is needed: apt-get install conntrack" || return
            ip netns exec "${LAB_GW[$host]}" conntrack -F >/dev/null 2>&1
            lab__get "wan-$host"
            return
            ;;
        *) lab_die "lab_change_addr: unknown option $what" || return ;;
    esac
    local moves new
    moves=$(($(lab__get "moves-$host") + 1))
    ((moves <= 9)) || lab_die "$host has changed address 9 times; no more free numbers" || return
    lab__put "moves-$host" "$moves"
    case $what in
        lan)
            new="198.19.$i.$((2 + moves))"
            lab__readdress "${LAB_NS[$host]}" eth0 "$(lab__get "addr-$host")" "$new" "198.19.$i.1"
            lab__put "addr-$host" "$new"
            ;;
        gwwan)
            new="198.18.0.$((10 + 10 * i + moves))"
            lab__readdress "${LAB_GW[$host]}" wan "$(lab__get "wan-$host")" "$new" 198.18.0.1
            lab__put "wan-$host" "$new"
            ;;
        wan)
            [[ $host != route ]] || i=0
            new="198.18.0.$((10 + 10 * i + moves))"
            lab__readdress "${LAB_NS[$host]}" eth0 "$(lab__get "addr-$host")" "$new" 198.18.0.1
            lab__put "addr-$host" "$new"
            lab__put "wan-$host" "$new"
            ;;
    esac
    echo "$new"
}

# lab__readdress NS DEV OLD NEW GATEWAY: moves DEV from OLD to NEW (/24)
# and restores the default route, which went with the old address.
lab__readdress() {
    local ns=$1 dev=$2 old=$3 new=$4 via=$5
    ip -n "$ns" addr del "$old/24" dev "$dev"
    ip -n "$ns" addr add "$new/24" dev "$dev"
    ip -n "$ns" route replace default via "$via"
}

# Says what failed, shows the end of every log, and exits 1 (the EXIT
# trap then takes the lab down).
lab_fail() {
    local log
    lab_say "FAIL: $*"
    for log in "$LAB_DIR"/*.log; do
        [[ -s $log ]] || continue
        echo "--- last lines of $(basename "$log") ---" >&2
        tail -n 15 "$log" >&2
    done
    exit 1
}

# The EXIT trap: the caller's lab_on_exit hook (if defined), then
# lab_down. A second Ctrl-C must not cut the cleanup short.
lab__on_exit() {
    local status=$?
    trap '' INT TERM
    if declare -F lab_on_exit >/dev/null; then lab_on_exit || true; fi
    lab_down
    trap - EXIT INT TERM
    exit "$status"
}

# Takes the lab down: background programs (TERM, then KILL), anything
# else still inside its namespaces, the namespaces, the work folder.
# Safe to call twice.
lab_down() {
    local pid ns
    for pid in "${LAB_BG_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${LAB_BG_PIDS[@]}"; do lab__kill "$pid"; done
    LAB_BG_PIDS=()
    LAB_BG=()
    for ns in "${LAB_NSES[@]}"; do lab__ns_del "$ns"; done
    LAB_NSES=()
    if [[ -n ${LAB_DIR:-} && -d $LAB_DIR ]]; then
        if [[ -n ${LAB_KEEP:-} ]]; then
            lab_say "kept the lab's files in $LAB_DIR (LAB_KEEP is set)"
        else
            rm -rf "$LAB_DIR"
        fi
    fi
}

# Kills whatever runs in namespace NS, then deletes it.
lab__ns_del() {
    local ns=$1 pids
    pids=$(ip netns pids "$ns" 2>/dev/null) || true
    # shellcheck disable=SC2086 # one pid per word
    [[ -z $pids ]] || kill -KILL $pids 2>/dev/null || true
    ip netns del "$ns" 2>/dev/null || true
}

# Whether process PID runs (a zombie whose parent died unreaped does not).
lab__running() {
    local state
    state=$(ps -o stat= -p "$1" 2>/dev/null) && [[ $state != Z* ]]
}

# The namespaces whose names start with the lab's prefix.
lab__leftovers() {
    ip netns list 2>/dev/null | awk '{ print $1 }' | grep "^$LAB_PREFIX" || true
}

# Removes what a crashed run left: its namespaces (and what runs in them)
# and work folders whose lab process is gone. For lab/lab.sh down.
lab_down_leftovers() {
    local ns dir
    for ns in $(lab__leftovers); do
        lab_say "removing namespace $ns"
        lab__ns_del "$ns"
    done
    for dir in "${TMPDIR:-/tmp}"/vlab.*; do
        [[ -f $dir/lab.pid ]] || continue
        lab__running "$(cat "$dir/lab.pid")" && continue
        lab_say "removing $dir"
        rm -rf "$dir"
    done
}
