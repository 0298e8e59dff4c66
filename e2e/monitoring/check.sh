#!/usr/bin/env bash
# The route's status as its users' tools see it, end to end with the real
# binaries: a route with status= and status_token=, two vnets, a web
# server and traffic through a use; then
#
#   - promtool (Debian's prometheus package) checks /metrics,
#   - a real Prometheus server scrapes the route with the token, and a
#     query to its HTTP API returns the serve's byte counter,
#   - headless Chromium loads the page (basic auth), its rendered DOM
#     shows the serve table with a hostile serve info as plain text, and
#     its screenshot is kept in ARTIFACTS (default target/ci-artifacts).
#
#   e2e/monitoring/check.sh [BIN_DIR]   (default: target/release, built if missing)
#
# Everything listens on 127.0.0.1 on free ports; every wait is bounded;
# all processes and the work folder are removed on exit.
set -euo pipefail
cd "$(dirname "$0")/../.."

BIN=${1:-target/release}
ARTIFACTS=${ARTIFACTS:-target/ci-artifacts}
TOKEN="status-t0ken"
HOSTILE='<script>alert("owned")</script>'

SCRIPT=monitoring
# shellcheck source=../procs.sh
source e2e/procs.sh

for tool in promtool prometheus curl python3; do
    command -v "$tool" >/dev/null || die "$tool is needed (apt-get install prometheus curl)"
done
CHROMIUM=$(command -v chromium || command -v chromium-browser || true)
[[ -n $CHROMIUM ]] || die "chromium is needed (apt-get install chromium)"
if [[ ! -x $BIN/route || ! -x $BIN/vnet ]]; then
    cargo build --release --bins
    BIN=target/release
fi
BIN=$(cd "$BIN" && pwd)
mkdir -p "$ARTIFACTS"
ARTIFACTS=$(cd "$ARTIFACTS" && pwd)

procs_begin vnet-monitoring

# Free ports on 127.0.0.1, one per argument name.
read -r ROUTE_PORT STATUS_PORT WEB_PORT USE_PORT PROM_PORT < <(python3 - <<'EOF'
import socket
socks = [socket.socket() for _ in range(5)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
)

# Runs CHECK (a command) every 0.2 s until it succeeds, for at most SECS.
wait_for() {
    local what=$1 secs=$2
    shift 2
    for _ in $(seq $((secs * 5))); do
        "$@" && return 0
        sleep 0.2
    done
    fail "timed out after ${secs}s waiting for $what"
}

mkdir "$WORK/site"
head -c 1048576 /dev/urandom >"$WORK/site/blob.bin"
cat >"$WORK/route.ini" <<EOF
[route]
ip=127.0.0.1
port=$ROUTE_PORT
status=127.0.0.1:$STATUS_PORT
status_token=$TOKEN
EOF
cat >"$WORK/home.ini" <<EOF
[route]
ip=127.0.0.1
port=$ROUTE_PORT
[vnet]
name=home
[serve.web]
serveid=700
port=$WEB_PORT
info=$HOSTILE
EOF
cat >"$WORK/office.ini" <<EOF
[route]
ip=127.0.0.1
port=$ROUTE_PORT
[vnet]
name=office
# The route's counters are under test: streams go through it.
direct=off
[use.web]
serveid=700
port=$USE_PORT
EOF

start web python3 -m http.server "$WEB_PORT" --bind 127.0.0.1 --directory "$WORK/site"
start route "$BIN/route" "$WORK/route.ini"
wait_for "the route" 10 grep -qs "route listening" "$WORK/route.log"
start home "$BIN/vnet" "$WORK/home.ini"
start office "$BIN/vnet" "$WORK/office.ini"

through_use() {
    curl -fsS --noproxy '*' --max-time 5 -o "$WORK/got.bin" "http://127.0.0.1:$USE_PORT/blob.bin" 2>/dev/null
}
wait_for "a download through the use" 20 through_use
for _ in 1 2; do through_use || fail "a download through the use failed"; done
cmp -s "$WORK/site/blob.bin" "$WORK/got.bin" || fail "the download differs from the file"
echo "monitoring: 3 downloads of 1 MiB through serve 700"

status_get() {
    curl -fsS --noproxy '*' --max-time 5 -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$STATUS_PORT$1"
}
code=$(curl -s --noproxy '*' -o /dev/null -w '%{http_code}' "http://127.0.0.1:$STATUS_PORT/metrics")
[[ $code == 401 ]] || fail "/metrics without the token answered $code, not 401"

# The route counts a stream's bytes as they move; the last download's
# stream may still be closing, so wait for all three.
down_at_least=$((3 * 1048576))
counted() {
    status_get /api/status >"$WORK/status.json" &&
        python3 - "$WORK/status.json" "$down_at_least" <<'EOF'
import json, sys
serve = json.load(open(sys.argv[1]))["groups"][0]["serves"][0]
sys.exit(0 if serve["streams_total"] >= 3 and serve["bytes_down"] >= int(sys.argv[2]) else 1)
EOF
}
wait_for "the route's counters" 10 counted

status_get /metrics >"$WORK/metrics.txt" || fail "/metrics failed"
promtool check metrics <"$WORK/metrics.txt" || fail "promtool check metrics found problems"
echo "monitoring: promtool check metrics is clean"

printf '%s' "$TOKEN" >"$WORK/token"
cat >"$WORK/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: vnet-route
    authorization:
      credentials_file: $WORK/token
    static_configs:
      - targets: ["127.0.0.1:$STATUS_PORT"]
EOF
start prometheus prometheus --config.file="$WORK/prometheus.yml" \
    --storage.tsdb.path="$WORK/tsdb" --web.listen-address="127.0.0.1:$PROM_PORT"
QUERY='vnet_route_bytes_total{job="vnet-route",serve="700",direction="down"}'
queried() {
    curl -fsS --noproxy '*' --max-time 5 -G "http://127.0.0.1:$PROM_PORT/api/v1/query" \
        --data-urlencode "query=$QUERY" >"$WORK/query.json" 2>/dev/null &&
        python3 - "$WORK/query.json" "$down_at_least" <<'EOF'
import json, sys
result = json.load(open(sys.argv[1]))["data"]["result"]
sys.exit(0 if result and float(result[0]["value"][1]) >= int(sys.argv[2]) else 1)
EOF
}
wait_for "Prometheus to scrape the byte counter" 60 queried
echo "monitoring: Prometheus answers $QUERY = $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["data"]["result"][0]["value"][1])' "$WORK/query.json")"

PAGE="http://status:$TOKEN@127.0.0.1:$STATUS_PORT/"
chrome() {
    timeout 60 "$CHROMIUM" --headless --no-sandbox --disable-gpu --no-first-run \
        --user-data-dir="$WORK/chromium" --window-size=1280,900 "$@" 2>>"$WORK/chromium.log"
}
chrome --dump-dom "$PAGE" >"$WORK/dom.html" || fail "chromium could not load the page"
python3 - "$WORK/dom.html" "$HOSTILE" <<'EOF' || fail "the rendered page is not as expected"
import sys
from html.parser import HTMLParser

class Page(HTMLParser):
    """Collects the text of each row of the serves table, and scripts."""
    def __init__(self):
        super().__init__()
        self.rows, self.scripts, self.in_serves, self.row = [], [], False, None
    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table" and attrs.get("class") == "serves":
            self.in_serves = True
        elif tag == "tr" and self.in_serves:
            self.row = []
        elif tag == "script":
            self.scripts.append(attrs.get("src"))
    def handle_endtag(self, tag):
        if tag == "table":
            self.in_serves = False
        elif tag == "tr" and self.row is not None:
            self.rows.append(" | ".join(t.strip() for t in self.row if t.strip()))
            self.row = None
    def handle_data(self, data):
        if self.row is not None:
            self.row.append(data)

page = Page()
page.feed(open(sys.argv[1]).read())
hostile = sys.argv[2]
print("serves table as rendered:")
for row in page.rows:
    print("   ", row)
assert page.rows[0].startswith("id | vnet | name"), page.rows
# Which vnet joins first (and so its id) is a race: any id.
import re
row = re.compile(r"700 \| \d+ home \| web \| ")
assert any(row.match(r) and hostile in r for r in page.rows), "serve 700 with its info as text"
assert page.scripts == ["/refresh.js"], f"scripts on the page: {page.scripts}"
EOF
chrome --screenshot="$ARTIFACTS/status-page.png" "$PAGE" >/dev/null || fail "chromium could not take a screenshot"
[[ -s $ARTIFACTS/status-page.png ]] || fail "no screenshot"
echo "monitoring: Chromium shows the serve table; screenshot in $ARTIFACTS/status-page.png"
echo "monitoring: all checks passed"
