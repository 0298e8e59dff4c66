#!/usr/bin/env bash
# Single-stream throughput with iperf3 (Debian's package), straight to the
# server and through a route and two vnets, rounds alternating.
#
#   bench/iperf3.sh [ROUNDS] [SECONDS]     (defaults: 5 rounds of 3 s)
#
# Prints each round and the medians, with the ratios to direct. Everything
# runs on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-5}
SECS=${2:-3}
BASE=${IPERF_BASE_PORT:-27950}
ROUTE_PORT=$BASE SERVER_PORT=$((BASE + 1)) USE_PORT=$((BASE + 2))

command -v iperf3 >/dev/null || { echo "iperf3 is not installed (apt-get install iperf3)" >&2; exit 2; }
. bench/scripts.sh

start iperf3 -s -p "$SERVER_PORT" >"$DIR/iperf3-server.log" 2>&1
printf '[route]\nip=127.0.0.1\nport=%s\n' "$ROUTE_PORT" >"$DIR/route.ini"
printf '[route]\nip=127.0.0.1\nport=%s\n[vnet]\nname=home\ndirect=off\n[serve.iperf3]\nserveid=700\nip=127.0.0.1\nport=%s\n' \
    "$ROUTE_PORT" "$SERVER_PORT" >"$DIR/home.ini"
printf '[route]\nip=127.0.0.1\nport=%s\n[vnet]\nname=office\ndirect=off\n[use.iperf3]\nserveid=700\nip=127.0.0.1\nport=%s\n' \
    "$ROUTE_PORT" "$USE_PORT" >"$DIR/office.ini"
start "$BIN/route" "$DIR/route.ini" >"$DIR/route.log" 2>&1
for _ in $(seq 50); do grep -q listening "$DIR/route.log" && break; sleep 0.1; done
start "$BIN/vnet" "$DIR/home.ini" >"$DIR/home.log" 2>&1
start "$BIN/vnet" "$DIR/office.ini" >"$DIR/office.log" 2>&1
for _ in $(seq 100); do grep -q "use open" "$DIR/office.log" && break; sleep 0.1; done

# Receiver's rate in Gbit/s of one iperf3 run.
rate() {
    timeout $((SECS + 20)) iperf3 -c 127.0.0.1 -p "$1" -t "$SECS" -f g ${2:-} |
        awk '/receiver/ { print $7 }'
}

printf '%-6s %10s %14s %16s\n' round direct "vnet upload" "vnet download"
for round in $(seq "$ROUNDS"); do
    d=$(rate "$SERVER_PORT") u=$(rate "$USE_PORT") r=$(rate "$USE_PORT" -R)
    printf '%-6s %10s %14s %16s\n' "$round" "$d" "$u" "$r"
    echo "$d $u $r" >>"$DIR/rates"
done
python3 - "$DIR/rates" <<'PY'
import statistics, sys
rows = [list(map(float, line.split())) for line in open(sys.argv[1])]
direct, up, down = (statistics.median(col) for col in zip(*rows))
print(f"median {direct:10.1f} {up:14.1f} {down:16.1f}   Gbit/s")
print(f"ratio  {1:10.2f} {up / direct:13.2f}x {down / direct:15.2f}x")
PY
