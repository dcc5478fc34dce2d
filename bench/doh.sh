#!/usr/bin/env bash
# Bulk throughput of dns+https:// (DNS over HTTPS to the resolver) against
# dns:// and dns+tls:// through the same unbound in the same run: one tt
# server authoritative for t.example.com, one unbound on 127.0.0.6 that
# answers plain DNS, DNS over TLS and DNS over HTTPS (/dns-query) on ports
# of its own (a certificate made here for resolver.test) with a stub zone
# to the tt server, and one tt client per scheme, each moving BYTES up and
# then down through its SOCKS5 port with ttbench. The schemes alternate
# ROUNDS times so that the machine's drift hits them alike; the medians
# come last.
#   bench/doh.sh [ROUNDS (3)] [BYTES (4M)] [-- options for the clients, e.g. --mux]
# TT=PATH measures another tt binary (default build/tt). Needs
# build/bench/ttbench (scripts/build.sh release) and unbound. Prints a line
# per run: scheme, direction, MB/s.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3} bytes=${2:-4M}
shift $(($# < 2 ? $# : 2))
[ "${1:-}" = "--" ] && shift
. bench/ab_common.sh
tt=${TT:-build/tt}
[[ -x $tt && -x $bench ]] || { echo "doh.sh: build/tt or $bench missing (scripts/build.sh release)" >&2; exit 1; }
tmp=$(mktemp -d)
results=$tmp/results
cleanup() {
    kill_started
    wait 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT
key=$("$tt" keygen)
start_destination

srv=$(free_port)
"$tt" server -k "$key" -l "dns://127.0.0.2:$srv/t.example.com" --allow 127.0.0.0/8 \
    >"$tmp/tt-server.log" 2>&1 &
pids+=($!)

host=127.0.0.6
dns_port=$(free_port) dot_port=$(free_port) doh_port=$(free_port)
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj /CN=resolver.test -addext subjectAltName=DNS:resolver.test \
    -keyout "$tmp/r.key" -out "$tmp/r.pem" >/dev/null 2>&1
cat >"$tmp/unbound.conf" <<CONF
server:
    interface: $host@$dns_port
    interface: $host@$dot_port
    interface: $host@$doh_port
    tls-port: $dot_port
    https-port: $doh_port
    http-endpoint: "/dns-query"
    tls-service-pem: "$tmp/r.pem"
    tls-service-key: "$tmp/r.key"
    do-ip6: no
    do-daemonize: no
    use-syslog: no
    logfile: "$tmp/unbound.log"
    chroot: ""
    username: ""
    directory: "$tmp"
    pidfile: "$tmp/unbound.pid"
    access-control: 127.0.0.0/8 allow
    do-not-query-localhost: no
stub-zone:
    name: "t.example.com"
    stub-addr: 127.0.0.2@$srv
remote-control:
    control-enable: no
CONF
unbound -d -c "$tmp/unbound.conf" &
pids+=($!)
for p in "$dns_port" "$dot_port" "$doh_port"; do wait_port "$p"; done
for _ in $(seq 100); do
    dig +short +time=1 +tries=1 @$host -p "$dns_port" t.example.com SOA 2>/dev/null | grep -q . && break
    sleep 0.05
done

run() { # SCHEME [client options]
    local scheme=$1 port cli cp dir mbps tls=(--ca "$tmp/r.pem" -n resolver.test)
    shift
    case $scheme in
    dns) port=$dns_port tls=() ;;
    dns+tls) port=$dot_port ;;
    dns+https) port=$doh_port ;;
    esac
    cli=$(free_port)
    "$tt" client -k "$key" -s "$scheme://$host:$port/t.example.com" "${tls[@]}" \
        -l "127.0.0.1:$cli" "$@" >"$tmp/tt-client.log" 2>&1 &
    cp=$!
    pids+=("$cp")
    wait_port "$cli"
    for dir in up down; do
        mbps=$("$bench" throughput --socks "127.0.0.1:$cli" --target "127.0.0.1:$dest" \
            --bytes "$bytes" --dir "$dir" |
            sed -E 's/.*"bytes":([0-9]+),"seconds":([0-9.]+).*/\1 \2/' |
            awk '{printf "%.2f", $1 / $2 / 1e6}')
        echo "$scheme $dir $mbps" >>"$results"
        printf '%-9s %-4s %8s MB/s\n' "$scheme" "$dir" "$mbps"
    done
    kill "$cp"
    wait "$cp" 2>/dev/null || true
}
for _ in $(seq "$rounds"); do
    for scheme in dns dns+tls dns+https; do
        run "$scheme" "$@"
    done
done
echo "medians over $rounds rounds of $bytes:"
for scheme in dns dns+tls dns+https; do
    for dir in up down; do
        awk -v s="$scheme" -v d="$dir" '$1 == s && $2 == d {print $3}' "$results" | sort -n |
            awk -v s="$scheme" -v d="$dir" '{v[NR] = $1} END {printf "%-9s %-4s %8s MB/s\n", s, d, v[int((NR + 1) / 2)]}'
    done
done
