#!/usr/bin/env bash
# Sequential connections (connect, 1-byte echo, close) through two builds of
# route and vnet, taking turns old-new, new-old, ..., so that the machine's
# drift during the run falls on both alike. Single bench runs of the
# connection rate swing by a third on a 2-core machine; this settles a
# before/after question in a few minutes.
#
#   bench/ab.sh OLD_DIR NEW_DIR [PAIRS] [CONNECTIONS]   (defaults: 8, 2500)
#
# Each directory holds `route` and `vnet` binaries, e.g. target/release of
# a git worktree at the old commit (`git worktree add ../old COMMIT`, then
# `cargo build --release` there). Prints every run (rate, time to first
# byte, CPU per connection of route, home and office) and the geometric
# means of new/old. Connections left in TIME_WAIT by earlier runs make
# later connects slower; taking turns evens that out, and as root
# `sysctl net.ipv4.tcp_max_tw_buckets=2000` for the run (put the old value
# back afterwards) removes it. Everything runs on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
OLD=$1 NEW=$2 PAIRS=${3:-8} CONNS=${4:-2500}
for dir in "$OLD" "$NEW"; do
    [ -x "$dir/route" ] && [ -x "$dir/vnet" ] || { echo "no route and vnet binaries in $dir" >&2; exit 2; }
done
cargo build --release --quiet -p bench
DIR=$(mktemp -d)
PIDS=()
stop_all() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    PIDS=()
}
trap 'exec 3>&-; stop_all; rm -rf "$DIR"' EXIT
start() { "$@" & PIDS+=($!); }
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# The echo target, alive while its stdin (fd 3 here) is open.
exec 3> >(exec target/release/bench --serve-echo >"$DIR/echo.port")
for _ in $(seq 50); do [ -s "$DIR/echo.port" ] && break; sleep 0.1; done
ECHO_PORT=$(grep -o '[0-9]\+' "$DIR/echo.port" | tail -1)

# One run: route and two vnets of build $2, $CONNS connections; prints a row.
run() {
    local name=$1 bin=$2 route_port use_port
    route_port=$(free_port) use_port=$(free_port)
    printf '[route]\nip=127.0.0.1\nport=%s\n' "$route_port" >"$DIR/route.ini"
    printf '[route]\nip=127.0.0.1\nport=%s\n[vnet]\nname=home\ndirect=off\n[serve.echo]\nserveid=700\nip=127.0.0.1\nport=%s\n' \
        "$route_port" "$ECHO_PORT" >"$DIR/home.ini"
    printf '[route]\nip=127.0.0.1\nport=%s\n[vnet]\nname=office\ndirect=off\n[use.echo]\nserveid=700\nip=127.0.0.1\nport=%s\n' \
        "$route_port" "$use_port" >"$DIR/office.ini"
    local before=${#PIDS[@]}
    RUST_LOG=warn start "$bin/route" "$DIR/route.ini" >"$DIR/route.log" 2>&1
    for _ in $(seq 50); do (echo >"/dev/tcp/127.0.0.1/$route_port") 2>/dev/null && break; sleep 0.1; done
    RUST_LOG=warn start "$bin/vnet" "$DIR/home.ini" >"$DIR/home.log" 2>&1
    RUST_LOG=warn start "$bin/vnet" "$DIR/office.ini" >"$DIR/office.log" 2>&1
    python3 - "$name" "$use_port" "$CONNS" "${PIDS[@]:$before:3}" <<'PY' | tee -a "$DIR/rows"
import os, socket, sys, time
name, port, n, pids = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:]
def cpu():
    out = []
    for pid in pids:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        out.append((int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"))
    return out
def one():
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(b"x")
    ok = s.recv(1) == b"x"
    s.close()
    return ok
deadline = time.monotonic() + 15
while True:
    try:
        if one():
            break
    except OSError:
        pass
    if time.monotonic() > deadline:
        sys.exit(f"{name}: the mapping did not echo within 15 s")
    time.sleep(0.05)
for _ in range(200):
    one()
cpu0, t0, times = cpu(), time.perf_counter(), []
for _ in range(n):
    start = time.perf_counter()
    if not one():
        sys.exit(f"{name}: a connection did not echo")
    times.append(time.perf_counter() - start)
elapsed, cpu1 = time.perf_counter() - t0, cpu()
times.sort()
each = [(b - a) / n * 1e6 for a, b in zip(cpu0, cpu1)]
print(f"{name:4} {n / elapsed:8.0f} {times[n // 2] * 1e6:8.0f} {sum(each):8.0f}   "
      + " / ".join(f"{c:.0f}" for c in each))
PY
    for pid in "${PIDS[@]:$before}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]:$before}"; do wait "$pid" 2>/dev/null || true; done
    PIDS=("${PIDS[@]:0:$before}")
}

printf '%-4s %8s %8s %8s   %s\n' build conn/s "p50 µs" "CPU µs" "route / home / office, CPU µs per connection"
for pair in $(seq "$PAIRS"); do
    if [ $((pair % 2)) = 1 ]; then run old "$OLD"; run new "$NEW"; else run new "$NEW"; run old "$OLD"; fi
done
python3 - "$DIR/rows" <<'PY'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1])]
old = [r for r in rows if r[0] == "old"]
new = [r for r in rows if r[0] == "new"]
def mean_ratio(col):
    return statistics.geometric_mean(float(b[col]) / float(a[col]) for a, b in zip(old, new))
print(f"new/old, geometric mean of {len(old)} pairs: rate {mean_ratio(1):.2f}, "
      f"time to first byte {mean_ratio(2):.2f}, CPU per connection {mean_ratio(3):.2f}")
PY
