#!/usr/bin/env bash
# --resume over tt:// against plain tt:// (and tt:// --mux, which --resume
# implies), single-stream throughput up and down through the client's SOCKS5
# port with ttbench, alternating the three ROUNDS times so that the shared
# machine's drift hits all alike. Each run starts a fresh server and client
# on loopback.
#   bench/resume.sh [TT (build/tt)] [ROUNDS (5)] [BYTES (512M)]
# With CARRIER=wss: plain wss://, --mux, --resume, and split wss:// (-s
# wss://.../up --down wss://.../down, two listeners of one server): split
# paths against plain wss.
# Needs build/bench/ttbench (scripts/build.sh release). Prints a line per run
# (with the CPU ticks of client and server, read from /proc) and the medians
# with the ratio of --resume to plain tt://; on a shared machine the CPU per
# byte is the steadier figure.
set -euo pipefail
cd "$(dirname "$0")/.."
tt=${1:-build/tt} rounds=${2:-5} bytes=${3:-512M}
. bench/ab_common.sh
key=$("$tt" keygen)
results=$(mktemp)
cleanup() {
    kill_started
    rm -f "$results"
}
trap cleanup EXIT
start_destination
carrier=${CARRIER:-tt}
export TT_STATE_DIR=${TT_STATE_DIR:-$(mktemp -d)}
run() { # LABEL [client options]
    local label=$1 srv srv2 cli sp cp url
    shift
    srv=$(free_port)
    srv2=$(free_port)
    cli=$(free_port)
    if [ "$carrier" = wss ]; then
        url="wss://127.0.0.1:$srv/up"
        "$tt" server -l "$url" -l "wss://127.0.0.1:$srv2/down" -k "$key" --allow 127.0.0.0/8 \
            >/dev/null 2>&1 &
    else
        url="127.0.0.1:$srv"
        "$tt" server -l "$url" -k "$key" --allow 127.0.0.0/8 >/dev/null 2>&1 &
    fi
    sp=$!
    pids+=("$sp")
    wait_port "$srv"
    [ "$carrier" = wss ] && wait_port "$srv2"
    [ "$label" = split ] && set -- "$@" --down "wss://127.0.0.1:$srv2/down"
    [ "$carrier" = wss ] && set -- "$@" --insecure-skip-verify
    "$tt" client -s "$url" -k "$key" -l "127.0.0.1:$cli" "$@" >/dev/null 2>&1 &
    cp=$!
    pids+=("$cp")
    wait_port "$cli"
    ab_measure "$label" "$sp" "$cp" "$cli"
    kill "$cp" "$sp"
    wait "$cp" "$sp" 2>/dev/null || true
}
for i in $(seq "$rounds"); do
    run plain
    run mux --mux
    run resume --resume
    [ "$carrier" = wss ] && run split
    true
done
ab_summary
