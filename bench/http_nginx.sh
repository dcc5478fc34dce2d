#!/usr/bin/env bash
# Measures http:// through Debian's nginx in front of tt (docs/HTTP.md):
# a download (curl through tt's SOCKS5 port, from a second nginx server
# block that serves a file) and an upload (to a sink that counts), ROUNDS
# times each, for one nginx setting:
#   direct  no nginx: the client dials tt's listener
#   stock   location /tun { proxy_pass ...; }
#   tuned   + proxy_http_version 1.1, proxy_buffering off,
#           proxy_request_buffering off
#   tuned64 + proxy_buffer_size 64k, proxy_buffers 4 64k (what nginx
#           relays an unbuffered answer in)
#
# Usage: bench/http_nginx.sh MODE [BUILD_DIR] [MB] [ROUNDS]
#        (default: build, 200, 3). Prints "down N MB/s" and "up N MB/s".
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:?usage: bench/http_nginx.sh direct|stock|tuned|tuned64 [BUILD_DIR] [MB] [ROUNDS]}
build=${2:-build}
mb=${3:-200}
rounds=${4:-3}
tt=$build/tt
[[ -x $tt ]] || { echo "http_nginx.sh: $tt missing (scripts/build.sh release)" >&2; exit 1; }
tmp=$(mktemp -d)
chmod 755 "$tmp" # nginx's workers (nobody) read the file and write request bodies here
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  [[ -f $tmp/nginx.pid ]] && kill "$(cat "$tmp/nginx.pid")" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

free_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
wait_port() {
  for _ in $(seq 200); do
    (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "http_nginx.sh: nothing listens on $1" >&2
  exit 1
}

head -c $((mb << 20)) /dev/urandom >"$tmp/big.bin"
front=$(free_port) tun=$(free_port) files=$(free_port) sink=$(free_port) socks=$(free_port)
fwd=$(free_port)
case $mode in
  direct|stock) tuning="" ;;
  tuned) tuning='proxy_http_version 1.1; proxy_set_header Connection ""; proxy_buffering off; proxy_request_buffering off; proxy_read_timeout 300s;' ;;
  tuned64) tuning='proxy_http_version 1.1; proxy_set_header Connection ""; proxy_buffering off; proxy_request_buffering off; proxy_read_timeout 300s; proxy_buffer_size 64k; proxy_buffers 4 64k;' ;;
  *) echo "http_nginx.sh: unknown mode $mode" >&2; exit 2 ;;
esac
mkdir -p -m 777 "$tmp/body" "$tmp/proxy"
cat >"$tmp/nginx.conf" <<EOF
worker_processes 1;
pid $tmp/nginx.pid;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $tmp/body;
    proxy_temp_path $tmp/proxy;
    server {
        listen 127.0.0.1:$front;
        location /tun { proxy_pass http://127.0.0.1:$tun; $tuning }
    }
    server {
        listen 127.0.0.1:$files;
        root $tmp;
    }
}
EOF
nginx -p "$tmp" -c "$tmp/nginx.conf" -e "$tmp/error.log"
wait_port "$front"

# The sink answers with the count of bytes it read.
/usr/bin/python3 -c '
import socket, sys, threading
s = socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(8)
def h(c):
    n = 0
    while True:
        d = c.recv(1 << 20)
        if not d:
            break
        n += len(d)
    c.sendall(b"%d\n" % n); c.close()
while True:
    c, _ = s.accept(); threading.Thread(target=h, args=(c,), daemon=True).start()
' "$sink" &
pids+=($!)
key=$(head -c 32 /dev/urandom | base64)
"$tt" server -l "http://127.0.0.1:$tun/tun" -k "$key" --allow 127.0.0.0/8 2>"$tmp/server.log" &
pids+=($!)
wait_port "$tun"
to=$front
[[ $mode == direct ]] && to=$tun
"$tt" client -s "http://127.0.0.1:$to/tun" -k "$key" -l "127.0.0.1:$socks" \
  -L "127.0.0.1:$fwd=127.0.0.1:$sink" 2>"$tmp/client.log" &
pids+=($!)
wait_port "$socks"
wait_port "$sink"

for _ in $(seq "$rounds"); do
  curl -sS -o /dev/null -w '%{speed_download}\n' --socks5-hostname "127.0.0.1:$socks" \
    "http://127.0.0.1:$files/big.bin" | awk '{printf "down %.0f MB/s\n", $1 / 1e6}'
  /usr/bin/python3 -c '
import socket, sys, time
c = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
buf, n = b"\0" * (1 << 20), int(sys.argv[2])
t = time.monotonic()
for _ in range(n):
    c.sendall(buf)
c.shutdown(socket.SHUT_WR)
got = int(c.recv(64))
dt = time.monotonic() - t
assert got == n << 20, got
print("up %.0f MB/s" % (n * (1 << 20) / dt / 1e6))
' "$fwd" "$mb"
done
