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
# (with the CPU ticks of client and server, and how long they waited for a
# CPU, read from /proc) and the medians with the ratio of --resume to plain
# tt://; on a shared machine the CPU per byte is the steadier figure, and the
# wait shows which runs other work slowed down.
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
tick=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# Milliseconds a process spent runnable but waiting for a CPU (schedstat's
# second field): what other work on the machine took from this run.
rq_wait() { awk '{printf "%d", $2 / 1e6}' "/proc/$1/schedstat"; }
start_destination
carrier=${CARRIER:-tt}
export TT_STATE_DIR=${TT_STATE_DIR:-$(mktemp -d)}
run() { # LABEL [client options]
    local label=$1 srv srv2 cli sp cp dir mbps before after url
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
    for dir in up down; do
        before=$(($(cpu_ticks "$sp") + $(cpu_ticks "$cp")))
        wait0=$(($(rq_wait "$sp") + $(rq_wait "$cp")))
        mbps=$("$bench" throughput --socks "127.0.0.1:$cli" --target "127.0.0.1:$dest" --bytes "$bytes" \
            --dir "$dir" | sed -E 's/.*"MBps":([0-9.]+).*/\1/')
        after=$(($(cpu_ticks "$sp") + $(cpu_ticks "$cp")))
        wait1=$(($(rq_wait "$sp") + $(rq_wait "$cp")))
        echo "$label $dir $mbps $((after - before)) $((wait1 - wait0))" >>"$results"
        printf '%-7s %-4s %8s MB/s  %s CPU ticks  %s ms waiting for a CPU\n' "$label" "$dir" "$mbps" \
            "$((after - before))" "$((wait1 - wait0))"
    done
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
/usr/bin/python3 - "$results" "$bytes" "$tick" <<'PY'
import statistics, sys
path, size, tick = sys.argv[1], sys.argv[2], int(sys.argv[3])
mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
n = int(size[:-1]) * mult[size[-1]] if size[-1] in mult else int(size)
runs, cpu, waits = {}, {}, []
for line in open(path):
    label, d, mbps, ticks, wait = line.split()
    runs.setdefault((label, d), []).append(float(mbps))
    cpu.setdefault((label, d), []).append(int(ticks) / tick / (n / 1e9))
    waits.append((int(wait), float(mbps), label, d))
med = {k: statistics.median(v) for k, v in runs.items()}
cmed = {k: statistics.median(v) for k, v in cpu.items()}
labels = []
for label, _ in runs:
    if label not in labels:
        labels.append(label)
for label in labels:
    print("median %-6s up %6.0f MB/s %.2f CPU s/GB  down %6.0f MB/s %.2f CPU s/GB" % (
        label, med[(label, "up")], cmed[(label, "up")], med[(label, "down")],
        cmed[(label, "down")]))
# On a shared machine the slow runs are those whose processes waited for a
# CPU: the runs ordered by that wait, with their speed against their
# configuration's median.
waits.sort()
third = max(1, len(waits) // 3)
for name, part in (("least", waits[:third]), ("most", waits[-third:])):
    print("the third of the runs that waited %s for a CPU (%d-%d ms): %.2fx their median speed" % (
        name, part[0][0], part[-1][0],
        statistics.median(m / med[(lb, d)] for _, m, lb, d in part)))
for d in ("up", "down"):
    for label in labels[1:]:
        print("%s / plain %s: %.2fx (CPU %.2fx)" % (
            label, d, med[(label, d)] / med[("plain", d)],
            cmed[(label, d)] / cmed[("plain", d)]))
PY
