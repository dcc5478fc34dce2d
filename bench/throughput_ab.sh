#!/usr/bin/env bash
# Compares the single-stream throughput and CPU cost of two tt binaries (say,
# before and after a change) on the same machine, alternating them ROUNDS
# times so that the machine's own drift hits both alike: each run starts a
# fresh tt server and client on loopback (tt://, cipher METHOD) and moves
# BYTES up and then down through the client's SOCKS5 port with ttbench,
# reading the CPU time of both tt processes from /proc before and after.
#   bench/throughput_ab.sh OLD_TT NEW_TT [ROUNDS (5)] [METHOD (chacha20-poly1305)] [BYTES (512M)] [-- options for both ends]
# CLIENT_OPTS in the environment adds options for the client only (say,
# CLIENT_OPTS=--mux). SCHEME=tcp runs the tcp:// carrier (no key, no
# METHOD) instead of tt://.
# Needs build/bench/ttbench (scripts/build.sh release). Prints a line per
# run, the medians of each binary and the ratio of new to old at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
old=$1 new=$2 rounds=${3:-5} method=${4:-chacha20-poly1305} bytes=${5:-512M}
shift $(($# < 5 ? $# : 5))
[ "${1:-}" = "--" ] && shift
. bench/ab_common.sh
key=$("$new" keygen)
results=$(mktemp)
cleanup() {
    kill_started
    rm -f "$results"
}
trap cleanup EXIT
start_destination
run() { # LABEL TT [options]
    local label=$1 tt=$2 srv cli sp cp
    shift 2
    srv=$(free_port)
    cli=$(free_port)
    local url="127.0.0.1:$srv" keyed=(-k "$key" -m "$method")
    if [ "${SCHEME:-tt}" = tcp ]; then
        url="tcp://127.0.0.1:$srv" keyed=()
    fi
    "$tt" server -l "$url" "${keyed[@]}" --allow 127.0.0.0/8 "$@" >/dev/null 2>&1 &
    sp=$!
    pids+=("$sp")
    wait_port "$srv"
    "$tt" client -s "$url" "${keyed[@]}" -l "127.0.0.1:$cli" "$@" ${CLIENT_OPTS:-} >/dev/null 2>&1 &
    cp=$!
    pids+=("$cp")
    wait_port "$cli"
    ab_measure "$label" "$sp" "$cp" "$cli"
    kill "$cp" "$sp"
    wait "$cp" "$sp" 2>/dev/null || true
}
for i in $(seq "$rounds"); do
    run old "$old" "$@"
    run new "$new" "$@"
done
ab_summary
