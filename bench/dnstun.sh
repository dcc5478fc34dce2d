#!/usr/bin/env bash
# Measures the DNS datagram layers (src/link/dnsc.c, dnss.c) with
# tests/tools/dnstun-echo: datagrams and bytes per second up (echo and up
# modes) and down (down mode), directly to the server and through a real
# unbound on loopback, with the loss and duplicates each run saw.
#
# Usage: bench/dnstun.sh [BUILD_DIR] [COUNT]   (default: build, 20000)
# Prints one JSON line per run, prefixed with where it went.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
count=${2:-20000}
tool=$build/tests/tools/dnstun-echo
domain=t.example.com
[[ -x $tool ]] || { echo "dnstun.sh: $tool missing (scripts/build.sh release)" >&2; exit 1; }
. bench/dns_common.sh
tmp=$dns_tmp

"$tool" server 127.0.0.2 0 "$domain" >"$tmp/server.out" 2>"$tmp/server.err" &
pids+=($!)
wait_log "$tmp/server.err" listening
port=$(sed -n 's/listening udp \([0-9]*\).*/\1/p' "$tmp/server.err")
[[ -n $port ]] || { cat "$tmp/server.err" >&2; exit 1; }

ub_port=$((20000 + RANDOM % 10000))
dns_stubs=("$domain 127.0.0.2@$port")
dns_unbound_start 127.0.0.1 "$ub_port"

for via in direct unbound; do
  if [[ $via == direct ]]; then res=127.0.0.2:$port; else res=127.0.0.1:$ub_port; fi
  for mode in echo up down; do
    for inflight in 16 64; do
      printf '%s inflight=%s ' "$via" "$inflight"
      timeout 300 "$tool" client "$domain" "$mode" "$count" 0 "$res" "$inflight"
    done
  done
done
kill "${pids[0]}"
wait "${pids[0]}" || true
printf 'server '
cat "$tmp/server.out"
