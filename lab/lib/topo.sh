# shellcheck shell=bash
# The tables below are read in the other files of the lab.
# shellcheck disable=SC2034
# Building the lab: lab_up parses the topology, checks the machine, and
# creates the internet, the route's host and the sites.
#
# Addresses: the internet bridge is 198.18.0.1/24, the route 198.18.0.10;
# site number i (in --site order, from 1) has WAN address 198.18.0.(10+10i)
# and, behind NAT, the LAN 198.19.i.0/24 with its gateway at .1 and its
# host at .2. Address changes take the next numbers (.(10+10i+k), .(2+k)).

# What never changes after lab_up is kept in these tables; addresses,
# which lab_change_addr changes, are kept in files (see lab__put).
declare -gA LAB_NS=() LAB_GW=() LAB_KIND=() LAB_INDEX=()
declare -ga LAB_HOSTS=() LAB_LINKS=() LAB_NSES=()

lab__usage() {
    cat >&2 <<'EOF'
lab_up [--route-delay MS] [--route-rate MBIT] [--route-loss PCT]
       [--site NAME:NAT[:DELAY_MS[:RATE_MBIT[:LOSS_PCT]]]]...
       [--queue-ms MS] [--linkemu PATH]
  NAT is eim, sym, udpblock or none. DELAY is one-way, LOSS is per
  direction, RATE 0 means unlimited. Defaults: 0 ms, unlimited, 0 %.
EOF
}

# lab_up OPTIONS: builds the lab (see lab__usage); arms the cleanup on
# exit, Ctrl-C and SIGTERM. Returns $LAB_SKIP when the machine cannot.
lab_up() {
    local route_delay=0 route_rate=0 route_loss=0 sites=() why
    LAB_QUEUE_MS=${LAB_QUEUE_MS:-50}
    LAB_LINKEMU=${LAB_LINKEMU:-}
    while (($#)); do
        (($# >= 2)) || { lab__usage; lab_die "lab_up: $1 needs a value" || return; }
        case $1 in
            --route-delay) route_delay=$2 ;;
            --route-rate) route_rate=$2 ;;
            --route-loss) route_loss=$2 ;;
            --site) sites+=("$2") ;;
            --queue-ms) LAB_QUEUE_MS=$2 ;;
            --linkemu) LAB_LINKEMU=$2 ;;
            *) lab__usage && lab_die "lab_up: unknown option $1" || return ;;
        esac
        shift 2
    done
    lab__check_number --route-delay "$route_delay" 60000
    lab__check_number --route-rate "$route_rate" 100000
    lab__check_number --route-loss "$route_loss" 100
    lab__check_number --queue-ms "$LAB_QUEUE_MS" 10000
    # Cleanup first: an interrupt at any later point takes down what exists.
    lab__begin
    if why=$(lab_unsupported) && [[ -n $why ]]; then
        lab_say "SKIPPED: the lab cannot run here: $why"
        return "$LAB_SKIP"
    fi
    lab__need_tools
    [[ -z $(lab__leftovers) ]] ||
        lab_die "namespaces of an earlier lab exist ($(lab__leftovers | tr '\n' ' ')); remove them with lab/lab.sh down" || return
    lab__find_linkemu
    lab__linkemu_prio
    lab__internet
    lab__public_host route 198.18.0.10 "$route_delay" "$route_rate" "$route_loss"
    local spec i=0
    for spec in "${sites[@]}"; do
        i=$((i + 1))
        lab__site "$i" "$spec"
    done
    lab_say "up: ${LAB_HOSTS[*]} (files in $LAB_DIR)"
}

# Makes the work folder and arms the cleanup. An interrupt exits 130, a
# TERM 143, and the EXIT trap then takes everything down.
lab__begin() {
    LAB_DIR=$(mktemp -d -t vlab.XXXXXX)
    mkdir "$LAB_DIR/state"
    echo $$ >"$LAB_DIR/lab.pid"
    LAB_BG_PIDS=()
    trap lab__on_exit EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

# Uses --linkemu / $LAB_LINKEMU, or builds it with cargo.
lab__find_linkemu() {
    if [[ -n $LAB_LINKEMU ]]; then
        [[ -x $LAB_LINKEMU ]] || lab_die "linkemu \"$LAB_LINKEMU\" is not an executable" || return
        return
    fi
    local repo target
    repo=$(cd "$LAB_HOME/.." && pwd)
    target=${CARGO_TARGET_DIR:-$repo/target}
    [[ $target == /* ]] || target=$repo/$target
    command -v cargo >/dev/null || lab_die "no cargo to build linkemu; pass --linkemu PATH" || return
    lab_say "building linkemu (cargo build --release -p linkemu)"
    (cd "$repo" && cargo build --quiet --release -p linkemu) || lab_die "building linkemu failed" || return
    LAB_LINKEMU=$target/release/linkemu
}

# Adds namespace NS with loopback up and IPv6 off (its autoconfiguration
# chatter would cross the links and blur the counts).
lab__ns_add() {
    local ns=$1
    ip netns add "$ns"
    LAB_NSES+=("$ns")
    ip -n "$ns" link set dev lo up
    # shellcheck disable=SC2016 # $f is the inner shell's
    ip netns exec "$ns" sh -c 'for f in /proc/sys/net/ipv6/conf/*/disable_ipv6; do echo 1 >"$f"; done' 2>/dev/null || true
}

# The internet: one bridge, with an address of its own so that the
# namespace can also play a public host ("inet").
lab__internet() {
    local ns="${LAB_PREFIX}inet"
    lab__ns_add "$ns"
    ip -n "$ns" link add name br0 type bridge
    ip -n "$ns" addr add 198.18.0.1/24 dev br0
    ip -n "$ns" link set dev br0 up
    ip netns exec "$ns" nft -f - <<'EOF'
table bridge lab {
    chain forward {
        type filter hook forward priority 0; policy accept;
    }
}
EOF
    lab__host inet "$ns" inet 198.18.0.1 198.18.0.1 0
}

# Records a host: name, namespace, kind, address, WAN address, index.
lab__host() {
    LAB_HOSTS+=("$1")
    LAB_NS[$1]=$2
    LAB_KIND[$1]=$3
    lab__put "addr-$1" "$4"
    lab__put "wan-$1" "$5"
    lab__put "moves-$1" 0
    LAB_INDEX[$1]=$6
}

# A host directly on the internet through an emulated link: the route,
# or a site of NAT kind none.
lab__public_host() {
    local name=$1 addr=$2 delay=$3 rate=$4 loss=$5 index=${6:-0} kind=${7:-route}
    local ns="${LAB_PREFIX}$name"
    lab__ns_add "$ns"
    lab__link_create "$name" "$ns" eth0 "$addr/24" "$delay" "$rate" "$loss"
    ip -n "$ns" route add default via 198.18.0.1
    LAB_LINKS+=("$name")
    lab__host "$name" "$ns" "$kind" "$addr" "$addr" "$index"
}

# lab__site INDEX NAME:NAT[:DELAY[:RATE[:LOSS]]]
lab__site() {
    local i=$1 name nat delay rate loss
    IFS=: read -r name nat delay rate loss <<<"$2"
    delay=${delay:-0} rate=${rate:-0} loss=${loss:-0}
    [[ $name =~ ^[a-z][a-z0-9]{0,7}$ ]] ||
        lab_die "--site $2: the name is 1-8 lower-case letters or digits, starting with a letter" || return
    [[ $name != route && $name != inet && -z ${LAB_KIND[$name]+x} ]] ||
        lab_die "--site $2: the name $name is taken" || return
    ((i <= 22)) || lab_die "at most 22 sites" || return
    lab__check_number "--site $name delay" "$delay" 60000
    lab__check_number "--site $name rate" "$rate" 100000
    lab__check_number "--site $name loss" "$loss" 100
    local wan="198.18.0.$((10 + 10 * i))"
    case $nat in
        none) lab__public_host "$name" "$wan" "$delay" "$rate" "$loss" "$i" none ;;
        eim | sym | udpblock) lab__nat_site "$i" "$name" "$nat" "$wan" "$delay" "$rate" "$loss" ;;
        *) lab_die "--site $2: NAT kind is eim, sym, udpblock or none, not \"$nat\"" || return ;;
    esac
}

# A private site: a gateway on the internet doing NAT of kind NAT for a
# LAN with one host.
lab__nat_site() {
    local i=$1 name=$2 nat=$3 wan=$4 delay=$5 rate=$6 loss=$7
    local gw="${LAB_PREFIX}$name-gw" ns="${LAB_PREFIX}$name"
    lab__ns_add "$gw"
    lab__ns_add "$ns"
    lab__link_create "$name" "$gw" wan "$wan/24" "$delay" "$rate" "$loss"
    ip -n "$gw" route add default via 198.18.0.1
    ip -n "$gw" link add name lan type veth peer name eth0 netns "$ns"
    ip -n "$gw" addr add "198.19.$i.1/24" dev lan
    ip -n "$gw" link set dev lan up
    ip -n "$ns" addr add "198.19.$i.2/24" dev eth0
    ip -n "$ns" link set dev eth0 up
    ip -n "$ns" route add default via "198.19.$i.1"
    ip netns exec "$gw" sh -c 'echo 1 >/proc/sys/net/ipv4/ip_forward'
    lab__nat_rules "$gw" "$nat"
    LAB_LINKS+=("$name")
    lab__host "$name" "$ns" "$nat" "198.19.$i.2" "$wan" "$i"
    LAB_GW[$name]=$gw
}

# The gateway's nftables rules for NAT kind NAT.
lab__nat_rules() {
    local gw=$1 nat=$2 masq="masquerade" udp=""
    # fully-random: every new flow gets a random external port, so each
    # destination sees the host at a different port (symmetric NAT).
    [[ $nat == sym ]] && masq="masquerade fully-random"
    [[ $nat == udpblock ]] && udp="meta l4proto udp drop"
    ip netns exec "$gw" nft -f - <<EOF
table ip lab {
    chain postrouting {
        type nat hook postrouting priority srcnat; policy accept;
        oifname "wan" $masq
    }
    chain forward {
        type filter hook forward priority filter; policy accept;
        $udp
        ct state established,related accept
        # Nothing unsolicited reaches the LAN.
        iifname "wan" drop
    }
    chain input {
        type filter hook input priority filter; policy accept;
        ct state established,related accept
        # Dropped here, an unsolicited packet leaves no conntrack entry
        # behind: a hole-punch packet that arrives before ours has left
        # would otherwise hold the port and push our mapping elsewhere.
        iifname "wan" meta l4proto { tcp, udp } drop
    }
}
EOF
}
