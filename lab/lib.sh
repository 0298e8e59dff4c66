# shellcheck shell=bash source-path=SCRIPTDIR
# The network lab: a small internet in Linux network namespaces on this
# one machine, for testing route and vnet across NATs, delay, loss and
# limited bandwidth. Source it, then call lab_up; see lab/README.md.
#
#   source lab/lib.sh
#   lab_up --route-delay 20 --site a:eim:1.25:200 --site b:sym:1.25:200
#   lab_exec a ping -c 3 "$(lab_addr route)"
#
# Every namespace's name starts with $LAB_PREFIX (default "vl-"), so
# `lab/lab.sh down` can find what a crashed run left. Nothing is attached
# to the root namespace: the lab's addresses (198.18.0.0/15) exist only
# inside it.
#
# The pieces live in lab/lib/: util.sh (waiting, messages), topo.sh
# (building), link.sh (the emulated links), run.sh (running programs in
# hosts, changing addresses, teardown).

LAB_HOME=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LAB_PREFIX=${LAB_PREFIX:-vl-}
# Exit status meaning "this machine cannot run the lab" (as automake's).
# shellcheck disable=SC2034 # used by the scripts that source this
LAB_SKIP=77

# shellcheck source=lib/util.sh
source "$LAB_HOME/lib/util.sh"
# shellcheck source=lib/link.sh
source "$LAB_HOME/lib/link.sh"
# shellcheck source=lib/topo.sh
source "$LAB_HOME/lib/topo.sh"
# shellcheck source=lib/run.sh
source "$LAB_HOME/lib/run.sh"
# shellcheck source=lib/product.sh
source "$LAB_HOME/lib/product.sh"
