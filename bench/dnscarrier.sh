#!/usr/bin/env bash
# Bulk throughput of the dns:// carrier, down and up, directly to the tt
# server and through a real unbound on loopback, and of dns2tcp through the
# same unbound in the same run (iodine: see docs/BENCHMARKS.md).
#
# Usage: bench/dnscarrier.sh [BUILD_DIR] [DOWN_MB] [UP_MB]   (default: build 8 2)
# Needs root (unbound answers dns2tcpc on 127.0.0.3 port 53, the only port
# dns2tcpc asks). Prints one line per run: tool, path, direction, bytes,
# seconds, MB/s.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
down_mb=${2:-8}
up_mb=${3:-2}
tt=$build/tt
[[ -x $tt ]] || { echo "dnscarrier.sh: $tt missing (scripts/build.sh release)" >&2; exit 1; }
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
key=$(head -c 32 /dev/urandom | base64)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_log() { for _ in $(seq 200); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.05; done; cat "$1" >&2; return 1; }

# The destination: "down N" is answered with N bytes, "up N" reads N bytes
# and answers "ok". The measuring side times from its request to the end.
cat >"$tmp/peer.py" <<'PY'
import os, socket, sys, threading, time
def serve(port):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port)); s.listen(16)
    blob = os.urandom(1 << 20)
    def one(c):
        with c:
            # The request line byte by byte: a buffered reader would take
            # the upload's first bytes with it.
            line = b""
            while not line.endswith(b"\n"):
                ch = c.recv(1)
                if not ch: return
                line += ch
            mode, n = line.split(); n = int(n)
            if mode == b"down":
                while n > 0:
                    k = min(n, len(blob)); c.sendall(blob[:k]); n -= k
            else:
                while n > 0:
                    d = c.recv(65536)
                    if not d: return
                    n -= len(d)
                c.sendall(b"ok\n")
    while True:
        c, _ = s.accept(); threading.Thread(target=one, args=(c,), daemon=True).start()
def measure(port, mode, n):
    t = time.monotonic()
    c = socket.create_connection(("127.0.0.1", port), timeout=300)
    c.sendall(b"%s %d\n" % (mode.encode(), n))
    if mode == "down":
        got = 0
        while got < n:
            d = c.recv(65536)
            if not d: break
            got += len(d)
    else:
        blob = os.urandom(65536); left = n
        while left > 0:
            k = min(left, len(blob)); c.sendall(blob[:k]); left -= k
        got = n if c.recv(3) == b"ok\n" else 0
    dt = time.monotonic() - t
    print("%d %.2f %.3f" % (got, dt, got / dt / 1e6))
if sys.argv[1] == "serve": serve(int(sys.argv[2]))
else: measure(int(sys.argv[2]), sys.argv[3], int(sys.argv[4]))
PY
dest=$(free_port)
python3 "$tmp/peer.py" serve "$dest" & pids+=($!)

tt_port=$(free_port)
"$tt" server -k "$key" -l "dns://127.0.0.2:$tt_port/t.example.com" -d "127.0.0.1:$dest" \
  --allow 127.0.0.0/8 >"$tmp/tt-server.log" 2>&1 & pids+=($!)
wait_log "$tmp/tt-server.log" "listening on dns://"

d2t_port=$(free_port)
mkdir -p "$tmp/empty"
cat >"$tmp/dns2tcpd.conf" <<CONF
listen = 127.0.0.4
port = $d2t_port
user = nobody
chroot = $tmp/empty
domain = d.example.com
resources = bench:127.0.0.1:$dest
CONF
have_d2t=0
if command -v dns2tcpd >/dev/null; then
  dns2tcpd -F -f "$tmp/dns2tcpd.conf" >"$tmp/dns2tcpd.log" 2>&1 & pids+=($!)
  have_d2t=1
fi

cat >"$tmp/unbound.conf" <<CONF
server:
    interface: 127.0.0.3@53
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
    # dns2tcpd answers only its tunnel names: a resolver minimising names
    # (RFC 9156) asks it for d.example.com first, gets nothing and gives up.
    # Off for both, so that both go through the same resolver the same way.
    qname-minimisation: no
stub-zone:
    name: "t.example.com"
    stub-addr: 127.0.0.2@$tt_port
stub-zone:
    name: "d.example.com"
    stub-addr: 127.0.0.4@$d2t_port
remote-control:
    control-enable: no
CONF
unbound -d -c "$tmp/unbound.conf" & pids+=($!)
for _ in $(seq 100); do
  dig +short +time=1 +tries=1 @127.0.0.3 t.example.com SOA >/dev/null 2>&1 && break
  sleep 0.05
done

run() { # tool path fwd_port
  local tool=$1 path=$2 port=$3
  for mode in down up; do
    local mb=$down_mb
    [[ $mode == up ]] && mb=$up_mb
    read -r got secs rate < <(python3 "$tmp/peer.py" measure "$port" "$mode" $((mb << 20)))
    echo "$tool $path $mode $got ${secs}s ${rate} MB/s"
  done
}

for path in direct unbound; do
  res=127.0.0.2:$tt_port
  [[ $path == unbound ]] && res=127.0.0.3:53
  fwd=$(free_port)
  "$tt" client -k "$key" -s "dns://$res/t.example.com" -l none -L "127.0.0.1:$fwd" \
    >"$tmp/tt-client-$path.log" 2>&1 & pids+=($!)
  wait_log "$tmp/tt-client-$path.log" "forward listening"
  run tt "$path" "$fwd"
done

if ((have_d2t)); then
  fwd=$(free_port)
  dns2tcpc -z d.example.com -r bench -l "$fwd" 127.0.0.3 >"$tmp/dns2tcpc.log" 2>&1 & pids+=($!)
  for _ in $(seq 100); do
    python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$fwd),0.2)" 2>/dev/null && break
    sleep 0.1
  done
  run dns2tcp unbound "$fwd"
fi

# dns+tcp:// and dns+tls:// (issue 14): the same tt server through a second
# unbound that answers plain DNS on 127.0.0.5:53 and DNS over TLS on
# 127.0.0.5:853 (a certificate made here for resolver.test), against dns://
# through that same unbound in the same run. Its own unbound, so that the
# rows above are measured exactly as before.
dot_rows() {
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj /CN=resolver.test -addext subjectAltName=DNS:resolver.test \
    -keyout "$tmp/dot.key" -out "$tmp/dot.pem" >/dev/null 2>&1
  mkdir -p "$tmp/dot"
  cat >"$tmp/dot/unbound.conf" <<CONF
server:
    interface: 127.0.0.5@53
    interface: 127.0.0.5@853
    tls-port: 853
    tls-service-pem: "$tmp/dot.pem"
    tls-service-key: "$tmp/dot.key"
    do-ip6: no
    do-daemonize: no
    use-syslog: no
    logfile: "$tmp/dot/unbound.log"
    chroot: ""
    username: ""
    directory: "$tmp/dot"
    pidfile: "$tmp/dot/unbound.pid"
    access-control: 127.0.0.0/8 allow
    do-not-query-localhost: no
    # As the unbound above, so that the dns:// rows compare.
    qname-minimisation: no
stub-zone:
    name: "t.example.com"
    stub-addr: 127.0.0.2@$tt_port
remote-control:
    control-enable: no
CONF
  unbound -d -c "$tmp/dot/unbound.conf" & pids+=($!)
  for _ in $(seq 100); do
    dig +short +time=1 +tries=1 +tls +tls-hostname=resolver.test @127.0.0.5 -p 853 \
      t.example.com SOA >/dev/null 2>&1 && break
    sleep 0.05
  done
  local scheme port fwd extra
  for scheme in dns dns+tcp dns+tls; do
    port=53 extra=()
    [[ $scheme == dns+tls ]] && port=853 extra=(--ca "$tmp/dot.pem" -n resolver.test)
    fwd=$(free_port)
    "$tt" client -k "$key" -s "$scheme://127.0.0.5:$port/t.example.com" "${extra[@]}" -l none \
      -L "127.0.0.1:$fwd" >"$tmp/tt-client-$scheme.log" 2>&1 & pids+=($!)
    wait_log "$tmp/tt-client-$scheme.log" "forward listening"
    run "tt-$scheme" unbound-2 "$fwd"
  done
}
dot_rows
