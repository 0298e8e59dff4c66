#!/usr/bin/env bash
# Quick start: one route and two vnets on this machine.
#
#   vnet "home"   registers a local web server (python3 http.server) as serve 700
#   vnet "office" maps serve 700 onto a local port, through the route
#
#   ./demo.sh           start everything, print how to try it, run until Ctrl-C
#   ./demo.sh --check   fetch the page once through the mapping, then stop (exit 0 on success)
#
# Ports can be changed with ROUTE_PORT (default 7749), WEB_PORT (8000) and
# USE_PORT (18000). Needs cargo, python3 and curl.
set -euo pipefail

ROUTE_PORT=${ROUTE_PORT:-7749}
WEB_PORT=${WEB_PORT:-8000}
USE_PORT=${USE_PORT:-18000}
READY_TIMEOUT=20 # seconds to wait for the page to come through

usage() {
    sed -n '2,11s/^# \{0,1\}//p' "$0"
}

MODE=run
case "${1:-}" in
    "") ;;
    --check) MODE=check ;;
    -h | --help)
        usage
        exit 0
        ;;
    *)
        echo "demo.sh: unknown argument: $1" >&2
        usage >&2
        exit 2
        ;;
esac

SCRIPT=demo.sh
# shellcheck source=e2e/procs.sh
source "$(dirname "$0")/e2e/procs.sh"

for tool in cargo python3 curl; do
    command -v "$tool" >/dev/null || die "$tool is required but not installed"
done

for name in ROUTE_PORT WEB_PORT USE_PORT; do
    value=${!name}
    [[ $value =~ ^[0-9]+$ ]] && ((value >= 1 && value <= 65535)) ||
        die "$name=$value is not a port number (1-65535)"
done
if ((ROUTE_PORT == WEB_PORT || ROUTE_PORT == USE_PORT || WEB_PORT == USE_PORT)); then
    die "ROUTE_PORT, WEB_PORT and USE_PORT must differ (now $ROUTE_PORT, $WEB_PORT, $USE_PORT)"
fi

# Whether 127.0.0.1:PORT can be listened on.
port_free() {
    python3 - "$1" <<'EOF'
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
EOF
}

for name in ROUTE_PORT WEB_PORT USE_PORT; do
    port_free "${!name}" ||
        die "port ${!name} on 127.0.0.1 is in use; stop what holds it, or choose another port: $name=PORT ./demo.sh"
done

cd "$(dirname "$0")"
echo "Building route and vnet (cargo build --release; the first build takes a few minutes)..."
cargo build --release --bins
TARGET_DIR=${CARGO_TARGET_DIR:-target}
[[ $TARGET_DIR == /* ]] || TARGET_DIR=$PWD/$TARGET_DIR
BIN=$TARGET_DIR/release
[[ -x $BIN/route && -x $BIN/vnet ]] || die "built binaries not found in $BIN"

procs_begin vnet-demo
trap 'echo; echo "Stopping."; exit 130' INT

# Fails if any started program has exited.
check_alive() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill -0 "$pid" 2>/dev/null || fail "a demo process (pid $pid) exited unexpectedly"
    done
}

mkdir "$WORK/site"
cat >"$WORK/site/index.html" <<EOF
<!doctype html>
<title>vnet demo</title>
<p>Hello through vnet: served by python3 http.server on 127.0.0.1:$WEB_PORT (vnet home, serve 700), reached via 127.0.0.1:$USE_PORT (vnet office).</p>
EOF
MARKER="Hello through vnet"

cat >"$WORK/home.ini" <<EOF
[route] ; the route listens here, and both vnets connect here
ip=127.0.0.1
port=$ROUTE_PORT

[vnet]
name=home

[serve.web] ; the local web server, registered as static serve 700
serveid=700
port=$WEB_PORT
info=demo web page
EOF

cat >"$WORK/office.ini" <<EOF
[route]
ip=127.0.0.1
port=$ROUTE_PORT

[vnet]
name=office

[use.web] ; serve 700, wherever it runs in the group, on a local port
serveid=700
port=$USE_PORT
EOF

# Whether something accepts connections on 127.0.0.1:PORT.
listening() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

echo "Starting a web server on 127.0.0.1:$WEB_PORT, a route on 127.0.0.1:$ROUTE_PORT, vnets home and office..."
start web python3 -m http.server "$WEB_PORT" --bind 127.0.0.1 --directory "$WORK/site"
# The web server first, so vnet home finds it when it registers it.
for _ in $(seq 50); do
    listening "$WEB_PORT" && break
    check_alive
    sleep 0.1
done
start route "$BIN/route" "$WORK/home.ini"
# Let the route listen before the vnets dial it, so they need no retry.
for _ in $(seq 50); do
    grep -qs "route listening" "$WORK/route.log" && break
    check_alive
    sleep 0.1
done
start home "$BIN/vnet" "$WORK/home.ini"
start office "$BIN/vnet" "$WORK/office.ini"

URL="http://127.0.0.1:$USE_PORT/"
fetch() {
    curl -fsS --noproxy '*' --max-time 5 "$URL"
}

ready=false
for _ in $(seq $((READY_TIMEOUT * 5))); do
    if page=$(fetch 2>/dev/null) && [[ $page == *"$MARKER"* ]]; then
        ready=true
        break
    fi
    check_alive
    sleep 0.2
done
$ready || fail "the page did not come through $URL within ${READY_TIMEOUT}s"

if [[ $MODE == check ]]; then
    echo "$page"
    echo "OK: the page served by vnet home (127.0.0.1:$WEB_PORT) came through vnet office at $URL via the route on 127.0.0.1:$ROUTE_PORT"
    exit 0
fi

cat <<EOF

vnet demo is running:
  route         listening on 127.0.0.1:$ROUTE_PORT
  vnet home     serves 127.0.0.1:$WEB_PORT (python3 http.server) as serve 700
  vnet office   maps serve 700 onto 127.0.0.1:$USE_PORT

Try it:
  curl http://127.0.0.1:$USE_PORT/

Logs (removed when the demo stops):
  $WORK/route.log
  $WORK/home.log
  $WORK/office.log
  $WORK/web.log

Press Ctrl-C to stop.
EOF

while true; do
    check_alive
    sleep 1
done
