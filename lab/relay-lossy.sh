#!/usr/bin/env bash
# The relay path (direct=off) through a bad route link: a route behind 100 ms (one way)
# and 5 % loss (each way), vnet "home" on site a (eim NAT) serving a web
# server, vnet "office" on site b (symmetric NAT) using it. Several
# fetches of a ~200 KB file through the use must be byte-identical to the
# original, each within a time bound. Exit 0 on success, 1 on failure,
# 77 if this machine cannot run the lab.
#
#   lab/relay-lossy.sh [--bin DIR] [--linkemu PATH]
#
# --bin DIR takes route and vnet from DIR (e.g. target/release); without
# it they are built with cargo (release). FETCHES (default 3) sets how many
# fetches, FETCH_TIMEOUT (default 90) the seconds each may take.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lab/lib.sh
source lab/lib.sh

product_args 2,14 "$@"
FETCHES=${FETCHES:-3}
FETCH_TIMEOUT=${FETCH_TIMEOUT:-90}
ROUTE_PORT=7749
WEB_PORT=8000
USE_PORT=18000
SIZE=$((200 * 1024))
START=$SECONDS

# Writes the route's and both vnets' configs into the lab's folder.
configs() {
    local route_ip
    route_ip=$(lab_addr route)
    cat >"$LAB_DIR/route.ini" <<EOF
[route]
ip=0.0.0.0
port=$ROUTE_PORT
token=lab-relay-lossy
EOF
    cat >"$LAB_DIR/home.ini" <<EOF
[route]
ip=$route_ip
port=$ROUTE_PORT
token=lab-relay-lossy

[vnet]
name=home
direct=off

[serve.web]
serveid=700
port=$WEB_PORT
info=lab web server
EOF
    cat >"$LAB_DIR/office.ini" <<EOF
[route]
ip=$route_ip
port=$ROUTE_PORT
token=lab-relay-lossy

[vnet]
name=office
direct=off

[use.web]
serveid=700
port=$USE_PORT
EOF
}

# Fetches PATH through office's use into FILE, within FETCH_TIMEOUT.
fetch() {
    lab_exec b curl -fsS --noproxy '*' --max-time "$FETCH_TIMEOUT" \
        -o "$2" "http://127.0.0.1:$USE_PORT/$1"
}

# Fails the test if a program of the lab has stopped.
check_alive() {
    local name
    for name in route home office web; do
        lab_alive "$name" || lab_fail "$name exited unexpectedly"
    done
}

main() {
    product_binaries "$BIN_ARG"
    lab_up --route-delay 100 --route-loss 5 \
        --site a:eim:1.25:200 --site b:sym:1.25:200 "${LINKEMU_ARGS[@]}"
    configs
    mkdir "$LAB_DIR/site"
    head -c "$SIZE" /dev/urandom >"$LAB_DIR/site/file.bin"
    echo "ready" >"$LAB_DIR/site/ready.txt"
    # The web server's life is bounded even if the lab's cleanup is skipped.
    lab_bg a web timeout 600 python3 -m http.server "$WEB_PORT" \
        --bind 127.0.0.1 --directory "$LAB_DIR/site"
    lab_wait_listen a "$WEB_PORT"
    lab_bg route route "$BIN/route" "$LAB_DIR/route.ini"
    lab_wait_listen route "$ROUTE_PORT"
    lab_bg a home "$BIN/vnet" "$LAB_DIR/home.ini"
    lab_bg b office "$BIN/vnet" "$LAB_DIR/office.ini"
    # Over this link joining takes a few round trips, and the serve must be
    # registered before the use can reach it: wait for a whole small page.
    lab_wait_listen b "$USE_PORT" 60 || lab_fail "office's use never listened"
    wait_for 90 "a page through the use" fetch ready.txt "$LAB_DIR/ready.got" ||
        lab_fail "no page came through the use within 90 s"
    echo "relay ready after $((SECONDS - START)) s; fetching $FETCHES x $SIZE bytes" >&2
    local i t0 ms
    for ((i = 1; i <= FETCHES; i++)); do
        t0=$(lab__now_us)
        fetch file.bin "$LAB_DIR/got$i" || lab_fail "fetch $i failed"
        ms=$((($(lab__now_us) - t0) / 1000))
        cmp -s "$LAB_DIR/site/file.bin" "$LAB_DIR/got$i" ||
            lab_fail "fetch $i differs from the original ($(stat -c %s "$LAB_DIR/got$i") bytes)"
        echo "  fetch $i: $SIZE bytes identical, $ms ms" >&2
        check_alive
    done
    echo "route link counters:" >&2
    grep -E '^(up|down)\.(forwarded|lost)=' "$LAB_DIR/link-route.ctl.status" | tr '\n' ' ' >&2
    echo >&2
    echo "relay-lossy: PASS ($FETCHES fetches byte-identical, $((SECONDS - START)) s)"
}

main
