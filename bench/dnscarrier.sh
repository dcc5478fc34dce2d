#!/usr/bin/env bash
# The dns:// carrier against dns2tcp and iodine (both Debian packages),
# through one real unbound, in the same run: bulk throughput down and up,
# connect + first echoed byte, and payload bytes per query (unbound's
# counters); the same for tt and dns2tcp with 50 ms more round trip between
# unbound and their servers (bench/udpdelay.py); tt also straight to its
# server, without a resolver.
#
# Usage: bench/dnscarrier.sh [BUILD_DIR (build)] [ROUNDS (3)]
#   ROWS=tt-unbound,dns2tcp-unbound   only these rows (ids as printed)
#   SCALE=0.5                         every row's byte counts times this
#   FIRSTBYTE=10                      connections timed per row and round
# Needs root: everything runs in two network namespaces the script creates
# and deletes. In the first, on its own loopback: unbound on 127.0.0.3:53
# (dns2tcpc and iodine ask port 53 only), the tt servers, dns2tcpd, the
# delay relays, every client and the destination. In the second, joined by a
# veth pair (10.53.0.1/30, 10.53.0.2/30): iodined, whose TUN device
# (10.54.0.1/27) cannot share a namespace with the client's (10.54.0.2),
# and a destination on 10.54.0.1. iodine runs with -r (no raw UDP mode: its
# queries go through unbound like the others').
# Prints a line per measurement as it goes, then the medians and ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
rounds=${2:-3}
tt=$build/tt
[[ -x $tt ]] || { echo "dnscarrier.sh: $tt missing (scripts/build.sh release)" >&2; exit 1; }
. bench/dns_common.sh
tmp=$dns_tmp
results=$tmp/results
key=$(head -c 32 /dev/urandom | base64)
ns=ttdnsb$$
nsi=ttdnsbi$$
dns_netns_add "$ns"
dns_netns_add "$nsi"
in_ns=("${dns_in[@]}")
in_nsi=(ip netns exec "$nsi")
ip link add vb0 netns "$ns" type veth peer name vb1 netns "$nsi"
ip -n "$ns" addr add 10.53.0.1/30 dev vb0
ip -n "$nsi" addr add 10.53.0.2/30 dev vb1
ip -n "$ns" link set vb0 up
ip -n "$nsi" link set vb1 up
delay_ms=25 # each way: 50 ms more round trip

# The destinations: one on the first namespace's loopback (behind tt and
# dns2tcp), one on iodined's tunnel address.
"${in_ns[@]}" bench/dnspeer.py serve 127.0.0.1 5201 & pids+=($!)

# Servers. Each zone has its own server process; the delayed zones reach
# theirs through a relay on 127.0.0.5.
tt_server() { # ADDR:PORT DOMAIN
    "${in_ns[@]}" "$tt" server -k "$key" -l "dns://$1/$2" -d 127.0.0.1:5201 --allow 127.0.0.0/8 \
        >"$tmp/tt-server-$2.log" 2>&1 &
    pids+=($!)
    wait_log "$tmp/tt-server-$2.log" "listening on dns://"
}
dns2tcp_server() { # PORT DOMAIN
    mkdir -p "$tmp/empty"
    printf 'listen = 127.0.0.4\nport = %s\nuser = nobody\nchroot = %s\ndomain = %s\nresources = bench:127.0.0.1:5201\n' \
        "$1" "$tmp/empty" "$2" >"$tmp/dns2tcpd-$2.conf"
    "${in_ns[@]}" dns2tcpd -F -f "$tmp/dns2tcpd-$2.conf" >"$tmp/dns2tcpd-$2.log" 2>&1 & pids+=($!)
}
delay_relay() { # LISTEN TARGET
    "${in_ns[@]}" bench/udpdelay.py "$1" "$2" "$delay_ms" >>"$tmp/udpdelay.log" 2>&1 & pids+=($!)
}
tt_server 127.0.0.2:5300 t.example.com
tt_server 127.0.0.2:5301 s.example.com
delay_relay 127.0.0.5:5301 127.0.0.2:5301
dns2tcp_server 5300 d.example.com
dns2tcp_server 5301 e.example.com
delay_relay 127.0.0.5:5302 127.0.0.4:5301
"${in_nsi[@]}" iodined -f -c -P benchpass -l 10.53.0.2 -p 53 10.54.0.1/27 i.example.com \
    >"$tmp/iodined.log" 2>&1 & pids+=($!)
wait_log "$tmp/iodined.log" "Listening to dns"
"${in_nsi[@]}" bench/dnspeer.py serve 10.54.0.1 5201 & pids+=($!)

dns_stubs=(
    "t.example.com 127.0.0.2@5300"
    "s.example.com 127.0.0.5@5301"
    "d.example.com 127.0.0.4@5300"
    "e.example.com 127.0.0.5@5302"
    "i.example.com 10.53.0.2@53"
)
dns_unbound_start 127.0.0.3 53

# Clients. Each starts one client in the first namespace (its pid last in
# pids, so that an error mid-row still kills it) and sets `target`
# (ADDR PORT) to connect to through it; the row's other words are its
# arguments. A new row needs a line in `rows` below and, for a new kind of
# client, a function here (dns+tls:// and dns+https:// are client_tt with
# their URL, once unbound_extra, above dns_unbound_start, opens unbound's
# TLS and HTTPS ports).
client_tt() { # URL
    "${in_ns[@]}" "$tt" client -k "$key" -s "$1" -l none -L "127.0.0.1:$port" \
        >"$tmp/client-$id.log" 2>&1 &
    client=$!
    pids+=("$client")
    wait_log "$tmp/client-$id.log" "forward listening"
    target=(127.0.0.1 "$port")
}
client_dns2tcp() { # DOMAIN
    "${in_ns[@]}" dns2tcpc -z "$1" -r bench -l "$port" 127.0.0.3 >"$tmp/client-$id.log" 2>&1 &
    client=$!
    pids+=("$client")
    # Ready when it listens (a probe connection would open a tunnel).
    for _ in $(seq 200); do
        "${in_ns[@]}" ss -ltnH "sport = :$port" | grep -q LISTEN && break
        sleep 0.05
    done
    target=(127.0.0.1 "$port")
}
client_iodine() { # DOMAIN
    "${in_ns[@]}" iodine -f -r -P benchpass 127.0.0.3 "$1" >"$tmp/client-$id.log" 2>&1 &
    client=$!
    pids+=("$client")
    # It probes the path (encodings, fragment size) before it is ready.
    wait_log "$tmp/client-$id.log" "Connection setup complete" 60
    # What it chose, once: record types, encodings and fragment size.
    ((round > 1)) || grep -iE 'switching|fragsize|fragment size|using' "$tmp/client-$id.log" |
        sed 's/^/# iodine: /'
    target=(10.54.0.1 5201)
}

# The rows: ID (TOOL-PATH), KiB down, KiB up (times SCALE; sized for a few
# seconds to a minute each here), the client function and its arguments.
rows=(
    "tt-direct            16384 4096 client_tt dns://127.0.0.2:5300/t.example.com"
    "tt-unbound           16384 4096 client_tt dns://127.0.0.3/t.example.com"
    "dns2tcp-unbound       2048 1024 client_dns2tcp d.example.com"
    "iodine-unbound        2048  512 client_iodine i.example.com"
    "tt-unbound+50ms       2048  512 client_tt dns://127.0.0.3/s.example.com"
    "dns2tcp-unbound+50ms   192  128 client_dns2tcp e.example.com"
)
scale=${SCALE:-1}
firstbyte=${FIRSTBYTE:-10}

run_row() { # ROUND ID DOWN_KIB UP_KIB FUNCTION ARGS...
    local round=$1 down up mode n q tcp fail out
    id=$2 down=$3 up=$4
    shift 4
    "$@"
    dns_unbound_queries >/dev/null
    out=$("${in_ns[@]}" bench/dnspeer.py firstbyte "${target[@]}" "$firstbyte")
    read -r q tcp fail < <(dns_unbound_queries)
    echo "$round $id firstbyte $out $q $fail" | tee -a "$results"
    for mode in down up; do
        n=$down
        [[ $mode == up ]] && n=$up
        n=$(awk -v n="$n" -v s="$scale" 'BEGIN {printf "%d", n * s * 1024}')
        out=$("${in_ns[@]}" bench/dnspeer.py bulk "${target[@]}" "$mode" "$n")
        read -r q tcp fail < <(dns_unbound_queries)
        echo "$round $id $mode $out $q $tcp $n $fail" | tee -a "$results"
    done
    kill "$client"
    wait "$client" 2>/dev/null || true
    # Gone and reaped: its pid may now be someone else's.
    unset 'pids[-1]'
}

echo "# load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq "$rounds"); do
    i=0
    for row in "${rows[@]}"; do
        set -- $row
        i=$((i + 1))
        port=$((7000 + i))
        [[ -z ${ROWS:-} || ",$ROWS," == *",$1,"* ]] || continue
        run_row "$round" "$@"
    done
done
echo "# load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"

# Lines: "ROUND ID firstbyte MEDIAN_MS SAMPLES FAILED QUERIES SERVFAILS" and
# "ROUND ID down|up BYTES SECONDS MB/s QUERIES TCP_QUERIES BYTES_ASKED
# SERVFAILS" (QUERIES, TCP_QUERIES and SERVFAILS from unbound's counters).
/usr/bin/python3 - "$results" <<'PY'
import math, statistics, sys
fb, bulk, order = {}, {}, []
for line in open(sys.argv[1]):
    w = line.split()
    rid = w[1]
    if rid not in order:
        order.append(rid)
    if w[2] == "firstbyte":
        first = float(w[4].split(",")[0]) if w[4] != "-" else math.nan
        fb.setdefault(rid, []).append((float(w[3]), first, int(w[5])))
    else:
        got, secs, rate, q, asked = int(w[3]), float(w[4]), float(w[5]), int(w[6]), int(w[8])
        bulk.setdefault((rid, w[2]), []).append((rate, got / q if q else 0, q / secs, got < asked))
med = lambda v: statistics.median(v) if v else math.nan
print("medians over the rounds: connect + first echoed byte (ms; the client's first connection;"
      " connections failed), then down and up: MB/s, payload bytes per query, queries/s"
      " (transfers cut short)")
for rid in order:
    f = fb.get(rid, [])
    parts = ["%-21s %6.1f ms (first %6.1f, %d failed)" % (
        rid, med([x[0] for x in f]), med([x[1] for x in f]), sum(x[2] for x in f))]
    for d in ("down", "up"):
        v = bulk.get((rid, d), [])
        parts.append("%s %7.3f MB/s %5.0f B/q %6.0f q/s (%d)" % (
            d, med([x[0] for x in v]), med([x[1] for x in v]), med([x[2] for x in v]),
            sum(x[3] for x in v)))
    print("  ".join(parts))
for rid in order:
    tool, path = rid.split("-", 1)
    if tool != "tt":
        continue
    for other in order:
        if other != rid and other.split("-", 1)[1] == path:
            r = []
            for d in ("down", "up"):
                a, b = (med([x[0] for x in bulk.get((k, d), [])]) for k in (rid, other))
                r.append("%s %.1fx" % (d, a / b) if b > 0 else "%s (%s moved nothing)" % (d, other))
            print("%s / %s: %s" % (rid, other, ", ".join(r)))
PY
