# shellcheck shell=bash
# The product in the lab: route and vnet binaries, their configs, a web
# server to reach, fetches through a use, and what a vnet says about its
# path (through `vnet ctl`). For the test scripts; needs lab/lib.sh.

PRODUCT_ROUTE_PORT=7749
PRODUCT_WEB_PORT=8000
PRODUCT_USE_PORT=18000
PRODUCT_TOKEN=lab-product-token

# product_args LINES "$@": reads a test script's options into BIN_ARG
# (--bin DIR) and LINKEMU_ARGS (--linkemu PATH); anything else prints
# lines LINES (e.g. 2,13) of the script's header comment and exits 2.
# shellcheck disable=SC2034 # read by the scripts that call it
product_args() {
    local usage=$1
    shift
    BIN_ARG=""
    LINKEMU_ARGS=()
    while (($#)); do
        case $1 in
            --bin) BIN_ARG=${2:?--bin needs a folder} ;;
            --linkemu) LINKEMU_ARGS=(--linkemu "${2:?--linkemu needs a path}") ;;
            *) sed -n "${usage}s/^# \{0,1\}//p" "$0" >&2 && exit 2 ;;
        esac
        shift 2
    done
}

# product_binaries [DIR]: sets BIN to DIR, or builds route and vnet
# (release) and sets BIN to their folder.
product_binaries() {
    BIN=${1:-}
    if [[ -z $BIN ]]; then
        echo "building route and vnet (cargo build --release)" >&2
        cargo build --quiet --release -p route -p vnet
        BIN=${CARGO_TARGET_DIR:-target}/release
    fi
    [[ $BIN == /* ]] || BIN=$PWD/$BIN
    [[ -x $BIN/route && -x $BIN/vnet ]] || lab_die "no route and vnet binaries in $BIN"
}

# product_start HOME_SITE OFFICE_SITE [VNET_LINES]: the route on the
# route host, a web server of a ~2 MB file and vnet home serving it as 700
# on HOME_SITE, vnet office using it on OFFICE_SITE; VNET_LINES go into
# both `[vnet]` sections. Returns once a page came through the use.
product_start() {
    local home=$1 office=$2 lines=${3:-} route_ip
    route_ip=$(lab_addr route)
    printf '[route]\nip=0.0.0.0\nport=%s\ntoken=%s\n' "$PRODUCT_ROUTE_PORT" "$PRODUCT_TOKEN" \
        >"$LAB_DIR/route.ini"
    local head
    head=$(printf '[route]\nip=%s\nport=%s\ntoken=%s\n' "$route_ip" "$PRODUCT_ROUTE_PORT" "$PRODUCT_TOKEN")
    printf '%s\n[vnet]\nname=home\n%b\n[serve.web]\nserveid=700\nport=%s\n' \
        "$head" "$lines" "$PRODUCT_WEB_PORT" >"$LAB_DIR/home.ini"
    printf '%s\n[vnet]\nname=office\n%b\n[use.web]\nserveid=700\nport=%s\n' \
        "$head" "$lines" "$PRODUCT_USE_PORT" >"$LAB_DIR/office.ini"
    mkdir -p "$LAB_DIR/site"
    head -c $((2 * 1024 * 1024)) /dev/urandom >"$LAB_DIR/site/file.bin"
    echo ready >"$LAB_DIR/site/ready.txt"
    # The web server's life is bounded even if the lab's cleanup is skipped.
    lab_bg "$home" web timeout 900 python3 -m http.server "$PRODUCT_WEB_PORT" \
        --bind 127.0.0.1 --directory "$LAB_DIR/site"
    lab_wait_listen "$home" "$PRODUCT_WEB_PORT"
    lab_bg route route "$BIN/route" "$LAB_DIR/route.ini"
    lab_wait_listen route "$PRODUCT_ROUTE_PORT"
    OFFICE_SITE=$office
    lab_bg "$home" home env RUST_LOG=info,vnet=debug "$BIN/vnet" "$LAB_DIR/home.ini"
    lab_bg "$office" office env RUST_LOG=info,vnet=debug "$BIN/vnet" "$LAB_DIR/office.ini"
    lab_wait_listen "$office" "$PRODUCT_USE_PORT" 60 || lab_fail "office's use never listened"
    wait_for 60 "a page through the use" product_fetch ready.txt "$LAB_DIR/ready.got" ||
        lab_fail "no page came through the use within 60 s"
}

# product_fetch NAME FILE [CURL_ARGS...]: fetches NAME through office's
# use into FILE (bounded in time).
product_fetch() {
    local name=$1 file=$2
    shift 2
    lab_exec "$OFFICE_SITE" curl -fsS --noproxy '*' --max-time 60 "$@" \
        -o "$file" "http://127.0.0.1:$PRODUCT_USE_PORT/$name"
}

# product_fetch_same [TAG]: fetches the 2 MB file and checks it is
# byte-identical to the original.
product_fetch_same() {
    local got=$LAB_DIR/got-${1:-x}
    product_fetch file.bin "$got" || return 1
    cmp -s "$LAB_DIR/site/file.bin" "$got"
}

# product_path: office's path for its use, as `vnet ctl show use json`
# says: direct or relay.
product_path() {
    lab_exec "$OFFICE_SITE" "$BIN/vnet" ctl "$LAB_DIR/office.ini" show use json |
        python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["path"])'
}

# product_is_direct: whether office's use goes direct now.
product_is_direct() {
    [[ $(product_path) == direct ]]
}

# product_route_frames: frames the route's link has carried so far, both
# ways (what a transfer through the route adds to).
product_route_frames() {
    lab_link_stats route | awk -F= '/^(up|down)\.forwarded=/ { n += $2 } END { print n + 0 }'
}

# product_count WORDS...: how many lines of office's log contain WORDS.
product_count() {
    grep -c -- "$*" "$(lab_log office)" || true
}
