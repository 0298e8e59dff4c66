#!/usr/bin/env bash
# The direct path between two vnets in the lab: vnet home on site a
# serves a web server, vnet office on site b uses it, the route sits on a
# public host 20 ms away. One scenario per run:
#
#   eim       both sites behind endpoint-independent NAT: the link comes
#             up; fetches go direct (the route's link carries almost
#             nothing) and arrive byte-identical. Then UDP between the
#             sites is dropped: a fetch on the link is cut (curl fails,
#             never a short file taken as whole), new fetches work through
#             the route within a heartbeat, and after the sites can talk
#             again the pair goes direct once more.
#   public    home on a public host, office behind eim NAT: direct.
#   sym       both behind symmetric NAT: punching fails, the pair stays on
#             the relay (one "no direct link" line, no flood) and works.
#   udpblock  office's gateway drops UDP: relay, works.
#   change    both eim; once direct, office's host gets a new address: its
#             connections die, it reconnects, and goes direct again.
#
#   lab/direct.sh SCENARIO [--bin DIR] [--linkemu PATH]
#
# VNET_LINES (e.g. 'secret=a-long-random-string') go into both vnets'
# [vnet] sections.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lab/lib.sh
source lab/lib.sh

SCENARIO=${1:-}
shift || true
product_args 2,25 "$@"
START=$SECONDS

# Fetches the 2 MB file through the use; fails the test unless it is
# byte-identical. Prints how many frames the route's link carried.
fetch_checked() {
    local before after
    before=$(product_route_frames)
    product_fetch_same "$1" || lab_fail "fetch $1 failed or differs from the original"
    after=$(product_route_frames)
    echo $((after - before))
}

# A 2 MB fetch through the route takes ~1500 frames on its link; one on
# the direct link only the control traffic around it.
FEW_FRAMES=200

expect_direct() {
    # From the first stream (product_start's page) to the use going direct.
    local t0
    t0=$(lab__now_us)
    wait_for 30 "office's use going direct" product_is_direct ||
        lab_fail "no direct link within 30 s: $(grep -h 'direct' "$(lab_log office)" | tail -3)"
    echo "  direct within $((($(lab__now_us) - t0) / 1000)) ms of the first stream's end" >&2
    local frames
    for i in 1 2; do
        frames=$(fetch_checked "direct$i")
        ((frames < FEW_FRAMES)) || lab_fail "a direct fetch crossed the route: $frames frames"
        echo "  direct fetch $i: 2 MB identical, route link carried $frames frames" >&2
    done
}

expect_relay() {
    # The attempt fails within its 10 s; then one log line says so.
    wait_for 30 "office giving up on a direct link" office_logged "no direct link" ||
        lab_fail "no 'no direct link' line within 30 s"
    [[ $(product_path) == relay ]] || lab_fail "the use says $(product_path), not relay"
    local frames
    frames=$(fetch_checked relay)
    ((frames >= FEW_FRAMES)) || lab_fail "a relayed fetch did not cross the route ($frames frames)"
    echo "  relayed fetch: 2 MB identical, route link carried $frames frames" >&2
    local lines
    lines=$(product_count "no direct link")
    ((lines <= 2)) || lab_fail "$lines 'no direct link' lines: attempts are not backing off"
}

# The link stops carrying UDP: a fetch on it is cut, new ones go through
# the route; once UDP passes again, the pair goes direct again.
expect_fallback() {
    local got=$LAB_DIR/got-cut rc=0
    # A slow fetch (200 KB/s), cut a second in.
    product_fetch file.bin "$got" --limit-rate 200k &
    local fetch=$!
    wait_for 10 "the slow fetch under way" test -s "$got" || lab_fail "the slow fetch did not start"
    lab_block a b udp
    wait "$fetch" || rc=$?
    ((rc != 0)) || lab_fail "the fetch on the dead link ended as if complete"
    echo "  fetch on the dead link: curl exit $rc after $(stat -c %s "$got" 2>/dev/null || echo 0) bytes" >&2
    local t0=$SECONDS
    wait_for 30 "a fetch after the link died" product_fetch_same after-cut ||
        lab_fail "no fetch through the route within 30 s of the link dying"
    echo "  new fetches work again after $((SECONDS - t0)) s" >&2
    wait_for 30 "the link down in office's log" office_logged "direct link down" ||
        lab_fail "office never noticed the link died"
    lab_unblock a b
    # The next attempt waits out a short backoff; fetches ask for it.
    wait_for 60 "direct again after the sites can talk" product_direct_again ||
        lab_fail "not direct again within 60 s"
}

# office_logged WORDS...: whether office's log has a line with WORDS.
office_logged() {
    (($(product_count "$@") >= 1))
}

# One fetch (a stream asks for a link when none is up), then whether the
# use goes direct.
product_direct_again() {
    product_fetch ready.txt "$LAB_DIR/again.got" >/dev/null 2>&1 || true
    product_is_direct
}

main() {
    local home_nat office_nat
    case $SCENARIO in
        eim | change) home_nat=eim office_nat=eim ;;
        public) home_nat=none office_nat=eim ;;
        sym) home_nat=sym office_nat=sym ;;
        udpblock) home_nat=eim office_nat=udpblock ;;
        *) sed -n '2,25s/^# \{0,1\}//p' "$0" >&2 && exit 2 ;;
    esac
    product_binaries "$BIN_ARG"
    lab_up --route-delay 20 --route-rate 20 \
        --site "a:$home_nat:2.5:200" --site "b:$office_nat:2.5:200" "${LINKEMU_ARGS[@]}"
    product_start a b "${VNET_LINES:-}"
    case $SCENARIO in
        eim)
            expect_direct
            echo "  office's view (vnet ctl office.ini show use / show vnets):" >&2
            lab_exec b "$BIN/vnet" ctl "$LAB_DIR/office.ini" show use | sed 's/^/    /' >&2
            lab_exec b "$BIN/vnet" ctl "$LAB_DIR/office.ini" show vnets | sed 's/^/    /' >&2
            expect_fallback
            ;;
        public) expect_direct ;;
        sym | udpblock) expect_relay ;;
        change)
            expect_direct
            local new
            new=$(lab_change_addr b)
            echo "  office's host moved to $new" >&2
            wait_for 60 "a fetch after the move" product_fetch_same after-move ||
                lab_fail "no fetch within 60 s of the move"
            wait_for 60 "direct again after the move" product_direct_again ||
                lab_fail "not direct again within 60 s of the move"
            ;;
    esac
    echo "direct $SCENARIO: PASS ($((SECONDS - START)) s)"
}

main
