#!/usr/bin/env bash
# Compares the connect latency of two tt binaries (say, before and after a
# change) on the same machine, alternating them ROUNDS times so that the
# machine's own drift hits both alike: each run starts a fresh tt server and
# client on loopback (tt:// by default) and has ttbench time COUNT
# connections (connect + SOCKS5 CONNECT + one echoed byte; with
# MODE=firstbyte in the environment: until the destination's banner byte).
#   bench/latency_ab.sh OLD_TT NEW_TT [ROUNDS (3)] [COUNT (2000)] [-- client options]
# Needs build/bench/ttbench (scripts/build.sh release). Prints one JSON line
# per run, labelled. SCHEME=tcp runs the tcp:// carrier (no key) instead.
set -euo pipefail
cd "$(dirname "$0")/.."
old=$1 new=$2 rounds=${3:-3} count=${4:-2000}
shift $(( $# < 4 ? $# : 4 ))
[ "${1:-}" = "--" ] && shift
. bench/ab_common.sh
key=latency-ab-key
trap kill_started EXIT
start_destination
run() { # LABEL TT [client options]
    local label=$1 tt=$2 srv cli sp cp
    shift 2
    srv=$(free_port); cli=$(free_port)
    local url="127.0.0.1:$srv" keyed=(-k "$key")
    if [ "${SCHEME:-tt}" = tcp ]; then
        url="tcp://127.0.0.1:$srv" keyed=()
    fi
    "$tt" server -l "$url" "${keyed[@]}" --allow 127.0.0.0/8 >/dev/null 2>&1 & sp=$!
    pids+=("$sp")
    wait_port "$srv"
    "$tt" client -s "$url" "${keyed[@]}" -l "127.0.0.1:$cli" "$@" >/dev/null 2>&1 & cp=$!
    pids+=("$cp")
    wait_port "$cli"
    printf '%s ' "$label"
    if [ "${MODE:-latency}" = firstbyte ]; then
        "$bench" firstbyte --socks "127.0.0.1:$cli" --banner "127.0.0.1:$banner" --count "$count" \
            --warmup 20
    else
        "$bench" latency --socks "127.0.0.1:$cli" --target "127.0.0.1:$dest" --count "$count" \
            --warmup 50
    fi
    kill "$cp" "$sp"; wait "$cp" "$sp" 2>/dev/null || true
}
for i in $(seq "$rounds"); do
    run old "$old" "$@"
    run new "$new" "$@"
done
