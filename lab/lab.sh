#!/usr/bin/env bash
# The lab by hand.
#
#   lab/lab.sh up LAB_UP_OPTIONS...   build a lab, print its hosts, keep it
#                                     until Ctrl-C (then take it down)
#   lab/lab.sh exec HOST CMD...       run CMD in a host of a running lab
#                                     (HOST: route, inet or a site name)
#   lab/lab.sh list                   the lab's namespaces that exist now
#   lab/lab.sh down                   remove what a crashed run left behind
#
# LAB_PREFIX (default vl-) must match the lab's. See lab/README.md.
set -euo pipefail
# shellcheck source=lab/lib.sh
source "$(dirname "$0")/lib.sh"

usage() {
    sed -n '2,12s/^# \{0,1\}//p' "$0"
}

# Prints the hosts of the lab just built, one line each.
show_hosts() {
    local host
    printf '%-8s %-10s %-16s %-16s %s\n' HOST KIND ADDRESS PUBLIC NAMESPACE
    for host in "${LAB_HOSTS[@]}"; do
        printf '%-8s %-10s %-16s %-16s %s\n' "$host" "${LAB_KIND[$host]}" \
            "$(lab_addr "$host")" "$(lab_wan "$host")" "$(lab_ns "$host")"
    done
}

cmd=${1:-}
(($#)) && shift
case $cmd in
    up)
        lab_up "$@"
        show_hosts
        echo "Try: $0 exec route ping -c 3 198.18.0.1   (Ctrl-C here takes the lab down)"
        # Idle until interrupted; the EXIT trap takes the lab down.
        while :; do sleep 60; done
        ;;
    exec)
        (($# >= 2)) || { usage >&2 && exit 2; }
        host=$1
        shift
        ns="${LAB_PREFIX}$host"
        ip netns list | awk '{ print $1 }' | grep -qx "$ns" || lab_die "no namespace $ns: is a lab up?"
        exec ip netns exec "$ns" "$@"
        ;;
    list) lab__leftovers ;;
    down) lab_down_leftovers ;;
    -h | --help | help) usage ;;
    *)
        usage >&2
        exit 2
        ;;
esac
