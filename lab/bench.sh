#!/usr/bin/env bash
# The direct path's benchmark in the lab: the route 40 ms (round trip)
# from each vnet on a 20 Mbit/s link, the two vnets 5 ms apart on 200
# Mbit/s links; vnet home on a public host (site a), vnet office behind
# endpoint-independent NAT (site b). Side by side in one run, for the raw
# network between the two hosts, a use through the route (direct=off)
# and a use on the direct path: throughput (iperf3, SECS seconds, each
# way), round trip of 64-byte echoes (median and p99 of ROUNDS), time to
# a new connection's first byte (median of CONNS), and the time from the
# first stream of a use to its direct link being up.
#
#   sudo lab/bench.sh [--bin DIR] [--linkemu PATH]
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lab/lib.sh
source lab/lib.sh

product_args 2,13 "$@"
SECS=${SECS:-5}
ROUNDS=${ROUNDS:-200}
CONNS=${CONNS:-20}
IPERF_PORT=5201
ECHO_PORT=7000
# office's uses: iperf3 and echo, each through the route and direct.
RELAY_IPERF=15201 DIRECT_IPERF=25201 RELAY_ECHO=17000 DIRECT_ECHO=27000

configs() {
    local head
    head=$(printf '[route]\nip=%s\nport=%s\ntoken=%s\n' "$(lab_addr route)" \
        "$PRODUCT_ROUTE_PORT" "$PRODUCT_TOKEN")
    printf '[route]\nip=0.0.0.0\nport=%s\ntoken=%s\n' "$PRODUCT_ROUTE_PORT" "$PRODUCT_TOKEN" \
        >"$LAB_DIR/route.ini"
    printf '%s\n[vnet]\nname=home\n[serve.iperf]\nserveid=701\nport=%s\n[serve.echo]\nserveid=702\nport=%s\n' \
        "$head" "$IPERF_PORT" "$ECHO_PORT" >"$LAB_DIR/home.ini"
    {
        printf '%s\n[vnet]\nname=office\n' "$head"
        printf '[use.iperf-relay]\nserveid=701\nport=%s\ndirect=off\n' "$RELAY_IPERF"
        printf '[use.iperf-direct]\nserveid=701\nport=%s\n' "$DIRECT_IPERF"
        printf '[use.echo-relay]\nserveid=702\nport=%s\ndirect=off\n' "$RELAY_ECHO"
        printf '[use.echo-direct]\nserveid=702\nport=%s\n' "$DIRECT_ECHO"
    } >"$LAB_DIR/office.ini"
}

# iperf3 from office's host to HOST:PORT for SECS seconds; Mbit/s
# received (REVERSE=-R: the other way).
iperf() {
    local extra=()
    [[ -z ${3:-} ]] || extra=("$3")
    lab_exec b timeout $((SECS + 30)) iperf3 -c "$1" -p "$2" -t "$SECS" "${extra[@]}" -J |
        python3 -c 'import json,sys; print(round(json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"] / 1e6, 1))'
}

measure() {
    lab_exec b timeout 120 python3 lab/measure.py "$@"
}

# One row: a path's figures, named NAME, reached at HOST:IPERF / HOST:ECHO.
row() {
    local name=$1 host=$2 iperf_port=$3 echo_port=$4 up down rtt ttfb
    up=$(iperf "$host" "$iperf_port")
    down=$(iperf "$host" "$iperf_port" -R)
    rtt=$(measure rtt "$host" "$echo_port" "$ROUNDS")
    ttfb=$(measure ttfb "$host" "$echo_port" "$CONNS")
    printf '%-8s %10s %10s %14s %10s\n' "$name" "$up" "$down" "$rtt" "$ttfb"
}

# Seconds from the first stream to "direct link up" in office's log.
time_to_direct() {
    local t0=$1 up
    wait_for 30 "the direct link" grep -q "direct link up" "$(lab_log office)" ||
        lab_fail "no direct link within 30 s"
    up=$(grep -m1 "direct link up" "$(lab_log office)" | cut -d' ' -f1)
    python3 -c 'import sys,datetime; t0=float(sys.argv[1]); up=datetime.datetime.fromisoformat(sys.argv[2].replace("Z","+00:00")).timestamp(); print(f"{up - t0:.2f}")' "$t0" "$up"
}

main() {
    product_binaries "$BIN_ARG"
    lab_up --route-delay 18.75 --route-rate 20 \
        --site a:none:1.25:200 --site b:eim:1.25:200 "${LINKEMU_ARGS[@]}"
    configs
    lab_bg a iperf timeout 900 iperf3 -s -p "$IPERF_PORT"
    lab_bg a echo python3 lab/measure.py serve "$ECHO_PORT"
    lab_wait_listen a "$IPERF_PORT" && lab_wait_listen a "$ECHO_PORT"
    lab_bg route route "$BIN/route" "$LAB_DIR/route.ini"
    lab_wait_listen route "$PRODUCT_ROUTE_PORT"
    lab_bg a home "$BIN/vnet" "$LAB_DIR/home.ini"
    lab_bg b office "$BIN/vnet" "$LAB_DIR/office.ini"
    local port
    for port in $RELAY_IPERF $DIRECT_IPERF $RELAY_ECHO $DIRECT_ECHO; do
        lab_wait_listen b "$port" 60 || lab_fail "office's use on $port never listened"
    done
    wait_for 60 "the echo serve through the route" measure ttfb 127.0.0.1 "$RELAY_ECHO" 1 ||
        lab_fail "the echo serve never answered through the route"
    local t0
    t0=$(date +%s.%N)
    measure ttfb 127.0.0.1 "$DIRECT_ECHO" 1 >/dev/null
    local to_direct
    to_direct=$(time_to_direct "$t0")
    echo "raw = iperf3 and echoes from office's host straight to home's (no vnet)"
    printf '%-8s %10s %10s %14s %10s\n' path "up Mbit/s" "down Mbit/s" "rtt p50/p99 ms" "ttfb ms"
    row raw "$(lab_addr a)" "$IPERF_PORT" "$ECHO_PORT"
    row relay 127.0.0.1 "$RELAY_IPERF" "$RELAY_ECHO"
    row direct 127.0.0.1 "$DIRECT_IPERF" "$DIRECT_ECHO"
    echo "first stream to direct link up: ${to_direct} s"
    grep -h "TCP lane\|direct link up" "$(lab_log office)" | sed 's/^/  office: /' | head -3
}

main
