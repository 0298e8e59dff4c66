#!/usr/bin/env bash
# Proves the lab does what lab/README.md says: delay, loss and rate of
# the links, the emulator's own throughput, each NAT kind's behaviour,
# hole punching, and the run-time changes (lab_set_link, lab_block,
# lab_change_addr). Prints a table; exit 0 only if every check passed,
# 77 if this machine cannot run the lab.
#
#   lab/selftest.sh [--linkemu PATH]
#
# Takes about a minute; every load is bounded (iperf3 -t 2, 400 pings).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lab/lib.sh
source lab/lib.sh

LINKEMU_ARGS=()
[[ ${1:-} == --linkemu ]] && LINKEMU_ARGS=(--linkemu "$2")

ROUTE_DELAY=5   # ms one way
ROUTE_RATE=100  # Mbit/s
A_DELAY=2 A_RATE=20
B_DELAY=3
REFLECT=3478    # probe.py reflectors listen here (UDP and TCP)
PROBE=(python3 lab/probe.py)

ROWS=()
FAILED=0
START=$SECONDS

# check NAME EXPECTED MEASURED VERDICT(0 = pass): one row of the table.
check() {
    local verdict=PASS
    (($4 == 0)) || { verdict=FAIL && FAILED=$((FAILED + 1)); }
    ROWS+=("$(printf '%-34s %-22s %-36s %s' "$1" "$2" "$3" "$verdict")")
    echo "  $verdict  $1: expected $2, measured $3" >&2
}

# Prints the table; runs on every exit (through lab_on_exit), so an
# unexpected error still shows what had passed.
lab_on_exit() {
    ((${#ROWS[@]})) || return 0
    echo
    printf '%-34s %-22s %-36s %s\n' CHECK EXPECTED MEASURED RESULT
    local row
    for row in "${ROWS[@]}"; do echo "$row"; done
    echo "selftest: ${#ROWS[@]} checks, $FAILED failed, $((SECONDS - START)) s"
}

# Whether X lies in [LO, HI] (decimals).
within() {
    awk -v x="$1" -v lo="$2" -v hi="$3" 'BEGIN { exit !(x >= lo && x <= hi) }'
}

# ping_stats FROM TO COUNT INTERVAL: prints "AVG_RTT_MS LOSS_PCT".
ping_stats() {
    local out
    out=$(lab_exec "$1" timeout 30 ping -q -n -c "$3" -i "$4" -W 1 "$2" || true)
    awk '/packet loss/ { for (i = 1; i <= NF; i++) if ($i ~ /%$/) loss = $i + 0 }
         /^rtt/ { split($4, r, "/"); avg = r[2] }
         END { printf "%s %s\n", (avg == "" ? "none" : avg), loss }' <<<"$out"
}

# check_rtt FROM TO_HOST EXPECTED_MS [ADDR]: the average RTT of 20 pings lies within
# [expected, expected + max(1.5 ms, 10 %)]; one warm-up ping first, so
# ARP does not count.
check_rtt() {
    local from=$1 to=$2 want=$3 addr=${4:-} avg loss hi rc
    [[ -n $addr ]] || addr=$(lab_addr "$to")
    lab_exec "$from" ping -q -c 1 -W 2 "$addr" >/dev/null || true
    read -r avg loss < <(ping_stats "$from" "$addr" 20 0.05)
    hi=$(awk -v w="$want" 'BEGIN { t = w * 0.1; printf "%.2f", w + (t > 1.5 ? t : 1.5) }')
    within "$avg" "$want" "$hi" && rc=0 || rc=1
    check "rtt $from -> $to ($addr)" "$want-$hi ms" "$avg ms (loss $loss%)" $rc
}

# iperf FROM TO_HOST PORT: prints the receiver's rate in Mbit/s of a 2 s
# TCP upload.
iperf() {
    lab_exec "$1" timeout 15 iperf3 -c "$(lab_addr "$2")" -p "$3" -t 2 -J |
        python3 -c 'import json,sys; print("%.1f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"] / 1e6))'
}

# check_rate FROM TO PORT LO HI NAME
check_rate() {
    local mbit rc
    mbit=$(iperf "$1" "$2" "$3") || mbit=0
    within "$mbit" "$4" "$5" && rc=0 || rc=1
    check "$6" "$4-$5 Mbit/s" "$mbit Mbit/s" $rc
}

# Prints the port part of IP:PORT lines of probe.py udp, one per line.
ports_seen() {
    awk '{ n = split($2, a, ":"); print a[n] }'
}

# Prints what a punch side's exit status says.
heard() {
    (($1 == 0)) && echo "got it" || echo "got nothing"
}

# punch A B PORT: a simultaneous UDP hole punch between hosts A and B,
# both using local port PORT; succeeds only if both received.
PUNCHES=0
punch() {
    local a=$1 b=$2 port=$3 n=$((PUNCHES += 1)) pa pb ra=0 rb=0
    local dir="$LAB_DIR/punch$n" reflector
    reflector="$(lab_addr route):$REFLECT"
    mkdir "$dir"
    lab_bg "$a" "punch$n-$a" "${PROBE[@]}" punch --bind "$port" --reflector "$reflector" \
        --me "$dir/$a" --peer "$dir/$b" --timeout 4
    lab_bg "$b" "punch$n-$b" "${PROBE[@]}" punch --bind "$port" --reflector "$reflector" \
        --me "$dir/$b" --peer "$dir/$a" --timeout 4
    pa=$(lab_pid "punch$n-$a") pb=$(lab_pid "punch$n-$b")
    wait "$pa" || ra=$?
    wait "$pb" || rb=$?
    PUNCH_OUT="$a $(heard "$ra"), $b $(heard "$rb")"
    ((ra == 0 && rb == 0))
}

main() {
    lab_up --route-delay "$ROUTE_DELAY" --route-rate "$ROUTE_RATE" \
        --site "a:eim:$A_DELAY:$A_RATE" --site "b:eim:$B_DELAY" \
        --site c:sym:2 --site d:sym:2 --site u:udpblock:1 --site p:none:0 \
        "${LINKEMU_ARGS[@]}"
    local host
    for host in route inet a; do
        lab_bg "$host" "reflect-$host" "${PROBE[@]}" serve "$REFLECT" --lifetime 300
    done
    lab_bg route iperf-route iperf3 -s -p 5201
    lab_bg inet iperf-inet iperf3 -s -p 5201
    for host in route inet a; do lab_wait_listen "$host" "$REFLECT"; done
    lab_wait_listen route 5201
    lab_wait_listen inet 5201

    echo "delay:" >&2
    check_rtt a route $((2 * (ROUTE_DELAY + A_DELAY)))
    check_rtt route b-gw $((2 * (ROUTE_DELAY + B_DELAY))) "$(lab_wan b)"
    check_rtt b a-gw $((2 * (A_DELAY + B_DELAY))) "$(lab_wan a)"
    check_rtt p inet 0
    lab_set_link p --delay 5
    check_rtt p inet 10
    lab_set_link p --delay 1.25
    check_rtt p inet 2.5
    lab_set_link p --delay 0

    echo "loss:" >&2
    local avg loss rc
    lab_set_link p --loss 5 --dir up
    read -r avg loss < <(ping_stats p "$(lab_addr inet)" 400 0.01)
    within "$loss" 2 9 && rc=0 || rc=1
    check "loss p up 5% (400 pings)" "2-9 %" "$loss % (rtt $avg ms)" $rc
    lab_set_link p --loss 0
    lab_set_link a --loss 100
    read -r avg loss < <(ping_stats a "$(lab_addr route)" 5 0.2)
    within "$loss" 100 100 && rc=0 || rc=1
    check "loss a 100% (5 pings)" "100 %" "$loss %" $rc
    lab_set_link a --loss 0
    read -r avg loss < <(ping_stats a "$(lab_addr route)" 5 0.2)
    within "$loss" 0 0 && rc=0 || rc=1
    check "loss a back to 0 (5 pings)" "0 %" "$loss %" $rc

    echo "rate:" >&2
    check_rate p inet 5201 200 100000 "linkemu throughput, 0 delay"
    check_rate a route 5201 $((A_RATE * 8 / 10)) $((A_RATE * 105 / 100)) "rate a -> route ($A_RATE Mbit/s)"
    check_rate p route 5201 $((ROUTE_RATE * 8 / 10)) $((ROUTE_RATE * 105 / 100)) "rate p -> route ($ROUTE_RATE Mbit/s)"

    echo "NAT:" >&2
    nat_checks

    echo "hole punching:" >&2
    punch a b 40000 && rc=0 || rc=1
    check "punch eim a <-> eim b" "both receive" "$(short "$PUNCH_OUT")" $rc
    punch c d 40000 && rc=1 || rc=0
    check "punch sym c <-> sym d" "no success" "$(short "$PUNCH_OUT")" $rc
    lab_block a b udp
    punch a b 40010 && rc=1 || rc=0
    check "punch a <-> b with lab_block udp" "no success" "$(short "$PUNCH_OUT")" $rc
    lab_unblock a b
    punch a b 40020 && rc=0 || rc=1
    check "punch a <-> b after lab_unblock" "both receive" "$(short "$PUNCH_OUT")" $rc

    echo "address changes:" >&2
    change_checks
    ((FAILED == 0))
}

# Trims a long measurement for the table.
short() {
    local s=$1
    ((${#s} <= 36)) || s="${s:0:33}..."
    echo "$s"
}

nat_checks() {
    local out ports rc r i
    r="$(lab_addr route):$REFLECT" i="$(lab_addr inet):$REFLECT"
    out=$(lab_exec a "${PROBE[@]}" udp --bind 40001 "$r" "$i") && rc=0 || rc=1
    ports=$(ports_seen <<<"$out" | sort -u | tr '\n' ' ')
    [[ $rc == 0 && $ports == "40001 " && $out == *"$(lab_wan a):40001"* ]] && rc=0 || rc=1
    check "eim a: one port for 2 dests" "40001 at both (kept)" "ports $ports" $rc
    out=$(lab_exec c "${PROBE[@]}" udp --bind 40001 "$r" "$i") && rc=0 || rc=1
    ports=$(ports_seen <<<"$out" | sort -u | tr '\n' ' ')
    [[ $rc == 0 && $(wc -w <<<"$ports") == 2 ]] && rc=0 || rc=1
    check "sym c: a port per dest" "2 different ports" "ports $ports" $rc
    out=$(lab_exec p "${PROBE[@]}" udp --bind 40001 "$r") && rc=0 || rc=1
    [[ $rc == 0 && $out == *" $(lab_addr p):40001" ]] && rc=0 || rc=1
    check "none p: seen as itself" "$(lab_addr p):40001" "${out#* }" $rc
    lab_exec u "${PROBE[@]}" udp --timeout 1.5 "$r" >/dev/null && rc=1 || rc=0
    check "udpblock u: UDP out" "no answer" "$( ((rc == 0)) && echo "no answer" || echo answered)" $rc
    out=$(lab_exec u "${PROBE[@]}" tcp "$r") && rc=0 || rc=1
    check "udpblock u: TCP out" "$(lab_wan u):*" "$out" $rc
    # QUIC stacks send with UDP GSO; the links must carry the segments.
    out=$(lab_exec a "${PROBE[@]}" gso "$r") && rc=0 || rc=1
    check "UDP GSO a -> route (10 segs)" "10/10 answered" "$out" $rc
    lab_set_link a --udp-loss 100
    lab_exec a "${PROBE[@]}" udp --timeout 1 "$r" >/dev/null && rc=1 || rc=0
    out=$(lab_exec a "${PROBE[@]}" tcp "$r") || rc=1
    check "lab_set_link a --udp-loss 100" "UDP lost, TCP passes" "$( ((rc == 0)) && echo "as expected" || echo "no")" $rc
    lab_set_link a --udp-loss 0
    # a's reflector answers at home, so a failure below is the NAT's doing.
    lab_exec a "${PROBE[@]}" tcp "127.0.0.1:$REFLECT" >/dev/null && rc=0 || rc=1
    check "a's own service, from a" "answers" "$( ((rc == 0)) && echo answers || echo fails)" $rc
    lab_exec route "${PROBE[@]}" tcp --timeout 2 "$(lab_addr a):$REFLECT" 2>/dev/null && rc=1 || rc=0
    check "route -> a private addr, TCP" "fails" "$( ((rc == 0)) && echo fails || echo connected)" $rc
    lab_exec route "${PROBE[@]}" tcp --timeout 2 "$(lab_wan a):$REFLECT" 2>/dev/null && rc=1 || rc=0
    check "route -> a WAN addr, TCP" "fails" "$( ((rc == 0)) && echo fails || echo connected)" $rc
}

change_checks() {
    local old new out rc r
    r="$(lab_addr route):$REFLECT"
    old=$(lab_wan a)
    new=$(lab_change_addr a --wan)
    out=$(lab_exec a "${PROBE[@]}" udp "$r") && rc=0 || rc=1
    [[ $rc == 0 && $new != "$old" && $out == *" $new:"* && $(lab_wan a) == "$new" ]] && rc=0 || rc=1
    check "lab_change_addr a --wan" "seen from $new" "${out#* }" $rc
    old=$(lab_addr a)
    new=$(lab_change_addr a)
    out=$(lab_exec a "${PROBE[@]}" udp "$r") && rc=0 || rc=1
    [[ $rc == 0 && $new != "$old" && $(lab_addr a) == "$new" &&
        $(lab_exec a ip -4 -o addr show dev eth0) == *" $new/"* ]] && rc=0 || rc=1
    check "lab_change_addr a (LAN)" "$new, still out" "$new, out as ${out#* }" $rc
    lab_change_addr a --flush >/dev/null && rc=0 || rc=1
    check "lab_change_addr a --flush" "conntrack flushed" "$( ((rc == 0)) && echo flushed || echo failed)" $rc
}

main
