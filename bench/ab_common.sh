# Shared by bench/latency_ab.sh, bench/throughput_ab.sh and bench/resume.sh
# (sourced, from the repository's root): free ports, waiting for a port, a
# ttbench destination, killing by pid everything the script started, and the
# throughput scripts' measuring loop and medians.
bench=build/bench/ttbench
pids=()
kill_started() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 200); do ss -ltn "sport = :$1" | grep -q LISTEN && return 0; sleep 0.05; done; echo "port $1 never opened" >&2; exit 1; }
# Starts the destination (echo, sink and generator on $dest; a banner on
# $banner) and waits until it listens.
start_destination() {
    dest=$(free_port)
    banner=$(free_port)
    "$bench" serve --port "$dest" --banner-port "$banner" >/dev/null 2>&1 &
    pids+=($!)
    wait_port "$dest"
    wait_port "$banner"
}

# The measuring loop of bench/throughput_ab.sh and bench/resume.sh. The
# caller sets results (a file), bytes (ttbench's --bytes) and, from
# start_destination, dest.
tick=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# Milliseconds a process spent runnable but waiting for a CPU (schedstat's
# second field): what other work on the machine took from a run.
rq_wait() { awk '{printf "%d", $2 / 1e6}' "/proc/$1/schedstat"; }
# ab_measure LABEL SERVER_PID CLIENT_PID SOCKS_PORT: one stream of $bytes up
# and then one down through the client's SOCKS5 port with ttbench, each
# with the CPU ticks both tt processes spent and how long they waited for a
# CPU (from /proc); a line each on stdout and in $results.
ab_measure() {
    local label=$1 sp=$2 cp=$3 socks=$4 dir before after wait0 wait1 mbps
    for dir in up down; do
        before=$(($(cpu_ticks "$sp") + $(cpu_ticks "$cp")))
        wait0=$(($(rq_wait "$sp") + $(rq_wait "$cp")))
        mbps=$("$bench" throughput --socks "127.0.0.1:$socks" --target "127.0.0.1:$dest" --bytes "$bytes" \
            --dir "$dir" | sed -E 's/.*"MBps":([0-9.]+).*/\1/')
        after=$(($(cpu_ticks "$sp") + $(cpu_ticks "$cp")))
        wait1=$(($(rq_wait "$sp") + $(rq_wait "$cp")))
        echo "$label $dir $mbps $((after - before)) $((wait1 - wait0))" >>"$results"
        printf '%-7s %-4s %8s MB/s  %s CPU ticks  %s ms waiting for a CPU\n' "$label" "$dir" "$mbps" \
            "$((after - before))" "$((wait1 - wait0))"
    done
}
# ab_summary: the medians of each label in $results (in the order they
# first ran), MB/s and CPU seconds per GB, and each label's ratio to the
# first one.
ab_summary() {
    /usr/bin/python3 - "$results" "$bytes" "$tick" <<'PY'
import statistics, sys
path, size, tick = sys.argv[1], sys.argv[2], int(sys.argv[3])
mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
n = int(size[:-1]) * mult[size[-1]] if size[-1] in mult else int(size)
runs, cpu, labels, waits = {}, {}, [], []
for line in open(path):
    label, d, mbps, ticks, wait = line.split()
    if label not in labels:
        labels.append(label)
    runs.setdefault((label, d), []).append(float(mbps))
    cpu.setdefault((label, d), []).append(int(ticks) / tick / (n / 1e9))
    waits.append((int(wait), float(mbps), label, d))
med = {k: statistics.median(v) for k, v in runs.items()}
cmed = {k: statistics.median(v) for k, v in cpu.items()}
for label in labels:
    print("median %-6s up %6.0f MB/s %.2f CPU s/GB  down %6.0f MB/s %.2f CPU s/GB" % (
        label, med[(label, "up")], cmed[(label, "up")], med[(label, "down")],
        cmed[(label, "down")]))
# On a shared machine the slow runs are those whose processes waited for a
# CPU: the third of the runs that waited least and the third that waited
# most, with their speed against their configuration's median.
waits.sort()
third = max(1, len(waits) // 3)
for name, part in (("least", waits[:third]), ("most", waits[-third:])):
    print("the third of the runs that waited %s for a CPU (%d-%d ms): %.2fx their median speed" % (
        name, part[0][0], part[-1][0],
        statistics.median(m / med[(lb, d)] for _, m, lb, d in part)))
for d in ("up", "down"):
    for label in labels[1:]:
        print("%s / %s %s: %.2fx (CPU %.2fx)" % (
            label, labels[0], d, med[(label, d)] / med[(labels[0], d)],
            cmed[(label, d)] / cmed[(labels[0], d)]))
PY
}
