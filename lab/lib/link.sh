# shellcheck shell=bash
# Emulated links. Each one joins an interface in a host (or gateway)
# namespace to a port of the internet bridge through a "wire" namespace:
#
#   [host] IF ==veth== to-host [wire: linkemu, tbf] to-net ==veth== p-NAME [inet: br0]
#
# linkemu copies frames between l and r with the delay and loss of its
# control file; tbf on to-host and to-net (their egress) limits the rate.
# "up" is the host-to-internet direction, "down" the other.

# A link's settings live in its control file (linkemu reads it; the lab
# rewrites it), not in shell variables, so that changes made in a
# subshell, e.g. inside $(...), are not lost.

# How linkemu is started: with real-time priority where allowed, so its
# timers fire on time even while the machine is busy (a compile, the
# programs under test); the kernel's RT throttling still leaves the rest
# of the machine 5 % of every second. Without it, a loaded machine adds
# several ms to every delay.
lab__linkemu_prio() {
    LAB_LINKEMU_PRIO=()
    if chrt -f 10 true 2>/dev/null; then
        LAB_LINKEMU_PRIO=(chrt -f 10)
    elif nice -n -10 true 2>/dev/null; then
        LAB_LINKEMU_PRIO=(nice -n -10)
    fi
}

# Turns off the offloads that would hand linkemu frames bigger than the
# MTU (GRO/GSO/TSO) or with checksums left for hardware to fill in (tx).
lab__no_offload() {
    local ns=$1 dev=$2
    ip netns exec "$ns" ethtool -K "$dev" tso off gso off gro off tx off rx off >/dev/null 2>&1 ||
        lab_die "ethtool -K $dev in $ns failed" || return
    # Not every ethtool/kernel knows these names; the ones above matter most.
    ip netns exec "$ns" ethtool -K "$dev" tx-udp-segmentation off >/dev/null 2>&1 || true
}

# lab__link_create LINK NS IF ADDR/LEN DELAY RATE LOSS: builds the link
# LINK from interface IF (new, in NS, given ADDR) to the internet.
lab__link_create() {
    local link=$1 ns=$2 dev=$3 addr=$4 delay=$5 rate=$6 loss=$7
    local wire="${LAB_PREFIX}w-$link" inet="${LAB_PREFIX}inet" dir
    lab__ns_add "$wire"
    ip -n "$ns" link add name "$dev" type veth peer name to-host netns "$wire"
    ip -n "$wire" link add name to-net type veth peer name "p-$link" netns "$inet"
    lab__no_offload "$ns" "$dev"
    lab__no_offload "$wire" to-host
    lab__no_offload "$wire" to-net
    lab__no_offload "$inet" "p-$link"
    ip -n "$inet" link set dev "p-$link" master br0 up
    ip -n "$wire" link set dev to-host up
    ip -n "$wire" link set dev to-net up
    ip -n "$ns" addr add "$addr" dev "$dev"
    ip -n "$ns" link set dev "$dev" up
    {
        echo "gen=1"
        for dir in up down; do
            echo "$dir.delay_ms=$delay"
            echo "$dir.loss_pct=$loss"
            echo "$dir.udp_loss_pct=0"
        done
    } >"$LAB_DIR/link-$link.ctl"
    lab__spawn "link-$link" "$wire" "${LAB_LINKEMU_PRIO[@]}" "$LAB_LINKEMU" --left to-host --right to-net \
        --control "$LAB_DIR/link-$link.ctl"
    lab__link_wait "$link"
    for dir in up down; do lab__link_rate "$link" "$dir" "$rate"; done
}

# lab__link_write LINK "DIRS" KEY=VALUE...: rewrites LINK's control file
# with the settings given for each direction in DIRS ("up down", "up" or
# "down") and the next generation, then waits until linkemu has put it in
# force. The file is replaced by a rename, so linkemu never reads half.
lab__link_write() {
    local link=$1 dirs=$2 file="$LAB_DIR/link-$1.ctl" line key dir set
    shift 2
    local -A cfg=()
    while IFS='=' read -r key line; do cfg[$key]=$line; done <"$file"
    cfg[gen]=$((cfg[gen] + 1))
    for dir in $dirs; do
        for set in "$@"; do cfg[$dir.${set%%=*}]=${set#*=}; done
    done
    for key in "${!cfg[@]}"; do echo "$key=${cfg[$key]}"; done >"$file.tmp"
    mv "$file.tmp" "$file"
    lab__link_wait "$link"
}

# Waits until LINK's linkemu reports the generation of its control file
# in force.
lab__link_wait() {
    local link=$1 status="$LAB_DIR/link-$1.ctl.status" gen
    gen=$(sed -n 's/^gen=//p' "$LAB_DIR/link-$link.ctl")
    wait_for 5 "linkemu of link $link to apply generation $gen (see $LAB_DIR/link-$link.log)" \
        grep -qx "gen=$gen" "$status" || return 1
    if grep -q '^error=' "$status"; then
        lab_die "link $link refused its settings: $(grep '^error=' "$status")" || return
    fi
}

# Sets the rate limit of one direction of LINK (Mbit/s; 0: none) with a
# tbf on the wire's interface that sends that way, queueing at most
# $LAB_QUEUE_MS of traffic before dropping.
lab__link_rate() {
    local link=$1 dir=$2 rate=$3 wire="${LAB_PREFIX}w-$1" dev burst
    [[ $dir == up ]] && dev=to-net || dev=to-host
    if [[ $rate == 0 || $rate == 0.0 ]]; then
        ip netns exec "$wire" tc qdisc del dev "$dev" root 2>/dev/null || true
    else
        # One millisecond of traffic, but never less than two full frames.
        burst=$(awk -v r="$rate" 'BEGIN { b = r * 125; printf "%d", (b < 3028 ? 3028 : b) }')
        ip netns exec "$wire" tc qdisc replace dev "$dev" root tbf \
            rate "${rate}mbit" burst "$burst" latency "${LAB_QUEUE_MS}ms"
    fi
}

# lab_set_link LINK [--delay MS] [--loss PCT] [--udp-loss PCT]
#              [--rate MBIT] [--dir up|down|both]
# Changes a running link (LINK: route, a site name, or "all"); what is not
# given stays. --dir (default both) picks the direction: up is from the
# host (or gateway) to the internet. Returns once the change is in force.
lab_set_link() {
    local link=$1 dirs="up down" sets=() rate="" key value dir max
    shift
    if [[ $link == all ]]; then
        for link in "${LAB_LINKS[@]}"; do lab_set_link "$link" "$@" || return; done
        return
    fi
    [[ -f $LAB_DIR/link-$link.ctl ]] || lab_die "lab_set_link: no link \"$link\" (links: ${LAB_LINKS[*]})" || return
    while (($#)); do
        (($# >= 2)) || lab_die "lab_set_link: $1 needs a value" || return
        value=$2
        case $1 in
            --delay) key=delay_ms max=60000 ;;
            --loss) key=loss_pct max=100 ;;
            --udp-loss) key=udp_loss_pct max=100 ;;
            --rate) key=rate max=100000 ;;
            --dir) key=dir ;;
            *) lab_die "lab_set_link: unknown option $1" || return ;;
        esac
        case $key:$value in
            dir:up | dir:down) dirs=$value ;;
            dir:both) dirs="up down" ;;
            dir:*) lab_die "lab_set_link: --dir is up, down or both, not \"$value\"" || return ;;
            rate:*) lab__check_number "$1" "$value" "$max" && rate=$value || return ;;
            *) lab__check_number "$1" "$value" "$max" && sets+=("$key=$value") || return ;;
        esac
        shift 2
    done
    for dir in $dirs; do
        [[ -z $rate ]] || lab__link_rate "$link" "$dir" "$rate"
    done
    ((${#sets[@]} == 0)) || lab__link_write "$link" "$dirs" "${sets[@]}"
}

# Prints LINK's settings in force and its frame counters (linkemu's status
# file: forwarded, lost on purpose, overflowed its queue, refused by tbf).
lab_link_stats() {
    cat "$LAB_DIR/link-$1.ctl.status"
}

# lab_block A B [udp|tcp|all]: the internet drops that traffic between
# hosts A and B (both ways) until lab_unblock A B. Rules match the bridge
# ports, so they hold across address changes.
lab_block() {
    local a=$1 b=$2 what=${3:-all} match
    case $what in
        udp | tcp) match="ip protocol $what" ;;
        all) match="" ;;
        *) lab_die "lab_block: what to drop is udp, tcp or all, not \"$what\"" || return ;;
    esac
    local pa pb
    pa=$(lab__port "$a") && pb=$(lab__port "$b") || return 1
    # shellcheck disable=SC2086 # $match is several words on purpose
    {
        ip netns exec "${LAB_PREFIX}inet" nft add rule bridge lab forward \
            iifname "$pa" oifname "$pb" $match drop comment "\"$a:$b\""
        ip netns exec "${LAB_PREFIX}inet" nft add rule bridge lab forward \
            iifname "$pb" oifname "$pa" $match drop comment "\"$a:$b\""
    }
}

# Removes every lab_block rule between A and B.
lab_unblock() {
    local a=$1 b=$2 handle
    for handle in $(ip netns exec "${LAB_PREFIX}inet" nft -a list chain bridge lab forward |
        awk -v c1="\"$a:$b\"" -v c2="\"$b:$a\"" '$0 ~ "comment " c1 || $0 ~ "comment " c2 { print $NF }'); do
        ip netns exec "${LAB_PREFIX}inet" nft delete rule bridge lab forward handle "$handle"
    done
}

# The internet bridge port that host $1's traffic enters by.
lab__port() {
    local host=$1
    [[ -n ${LAB_KIND[$host]+x} && $host != inet ]] || lab_die "no host \"$host\"" || return
    echo "p-$host"
}
