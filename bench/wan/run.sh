#!/usr/bin/env bash
# Time to first byte over a slow link between the vnets and the route,
# with spare data connections off and on, plain and TLS.
#
#   bench/wan/run.sh [DELAY_MS] [COUNT]     (defaults: 10 ms each way, 30)
#
# Everything runs on 127.0.0.1. slowlink.py stands in for the wide-area
# link (the vnets reach the route only through it); the client and the
# echo service sit next to their vnets, as on a LAN.
set -euo pipefail
cd "$(dirname "$0")/../.."
DELAY_MS=${1:-10}
COUNT=${2:-30}
BASE=${WAN_BASE_PORT:-27900}
ROUTE_PORT=$BASE LINK_PORT=$((BASE + 1)) ECHO_PORT=$((BASE + 2)) USE_PORT=$((BASE + 3))

. bench/scripts.sh

start python3 bench/wan/firstbyte.py serve "$ECHO_PORT" 2>"$DIR/echo.log"
start python3 bench/wan/slowlink.py "$LINK_PORT" "$ROUTE_PORT" "$DELAY_MS" 2>"$DIR/slowlink.log"

# Waits until a connection through the use echoes (bounded).
until_echo() {
    for _ in $(seq 100); do
        if timeout 5 python3 bench/wan/firstbyte.py measure "$USE_PORT" 1 >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.2
    done
    echo "no echo through the use; logs in $DIR" >&2
    exit 1
}

printf '%-6s %-7s %s\n' tls spares "time to first byte, median of $COUNT (ms)"
for tls in false true; do
    printf '[route]\nip=127.0.0.1\nport=%s\ntls=%s\n' "$ROUTE_PORT" "$tls" >"$DIR/route.ini"
    RUST_LOG=info "$BIN/route" "$DIR/route.ini" >"$DIR/route.log" 2>&1 &
    route=$!
    PIDS+=($route)
    pin=""
    for _ in $(seq 50); do
        if grep -q "listening" "$DIR/route.log"; then break; fi
        sleep 0.1
    done
    if [ "$tls" = true ]; then
        pin="fingerprint=$(grep -o 'fingerprint=[0-9a-f]*' "$DIR/route.log" | head -1 | cut -d= -f2)"
    fi
    for spares in 0 4; do
        link=$(printf '[route]\nip=127.0.0.1\nport=%s\ntls=%s\n%s\n' "$LINK_PORT" "$tls" "$pin")
        printf '%s\n[vnet]\nname=home\ndirect=off\nspares=%s\n[serve.echo]\nserveid=700\nip=127.0.0.1\nport=%s\n' \
            "$link" "$spares" "$ECHO_PORT" >"$DIR/home.ini"
        printf '%s\n[vnet]\nname=office\ndirect=off\nspares=%s\n[use.echo]\nserveid=700\nip=127.0.0.1\nport=%s\n' \
            "$link" "$spares" "$USE_PORT" >"$DIR/office.ini"
        "$BIN/vnet" "$DIR/home.ini" >"$DIR/home.log" 2>&1 &
        home=$!
        "$BIN/vnet" "$DIR/office.ini" >"$DIR/office.log" 2>&1 &
        office=$!
        PIDS+=($home $office)
        until_echo
        python3 bench/wan/firstbyte.py measure "$USE_PORT" 3 >/dev/null # warm up
        printf '%-6s %-7s %s\n' "$tls" "$spares" "$(python3 bench/wan/firstbyte.py measure "$USE_PORT" "$COUNT")"
        kill "$home" "$office"
        wait "$home" "$office" 2>/dev/null || true
    done
    kill "$route"
    wait "$route" 2>/dev/null || true
done
