#!/usr/bin/env bash
# One command from a fresh Debian 12 machine to a working tunnel on loopback:
# installs what is missing, builds, then starts a small web site, a tt server
# and a tt client, and prints how to try it. Ctrl-C stops everything.
#   scripts/demo.sh           run until Ctrl-C
#   scripts/demo.sh --check   fetch the page through the tunnel once and exit
set -euo pipefail
cd "$(dirname "$0")/.."
check=0
[[ ${1:-} == --check ]] && check=1

SOCKS_PORT=${TT_DEMO_SOCKS_PORT:-1080}
SERVER_PORT=${TT_DEMO_SERVER_PORT:-8443}
WEB_PORT=${TT_DEMO_WEB_PORT:-8000}

scripts/install-deps.sh
echo "building tt ..."
build=$(scripts/build.sh release)
tt="$PWD/$build/tt"

for port in "$SOCKS_PORT" "$SERVER_PORT" "$WEB_PORT"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "demo: port $port on 127.0.0.1 is in use; set TT_DEMO_SOCKS_PORT, TT_DEMO_SERVER_PORT or TT_DEMO_WEB_PORT" >&2
    exit 1
  fi
done

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_port() {
  for _ in $(seq 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  echo "demo: nothing is listening on 127.0.0.1:$1; see the log above" >&2
  exit 1
}

mkdir "$work/www"
echo "Hello through the tt tunnel." > "$work/www/index.html"
/usr/bin/python3 -m http.server "$WEB_PORT" --bind 127.0.0.1 --directory "$work/www" \
  >"$work/web.log" 2>&1 &
pids+=($!)
# A fresh random key for this demo; a real pair shares one from 'tt keygen'.
export TT_KEY
TT_KEY=$("$tt" keygen)
"$tt" server -l "127.0.0.1:$SERVER_PORT" --allow 127.0.0.0/8 &
pids+=($!)
wait_port "$SERVER_PORT"
"$tt" client -s "127.0.0.1:$SERVER_PORT" -l "127.0.0.1:$SOCKS_PORT" &
pids+=($!)
wait_port "$SOCKS_PORT"
wait_port "$WEB_PORT"

url="http://127.0.0.1:$WEB_PORT/"
if ((check)); then
  body=$(curl -sS --max-time 10 --socks5-hostname "127.0.0.1:$SOCKS_PORT" "$url")
  if [[ $body == "Hello through the tt tunnel." ]]; then
    echo "demo: ok, the page came through the tunnel"
    exit 0
  fi
  echo "demo: unexpected answer through the tunnel: $body" >&2
  exit 1
fi

cat <<MSG

  tt demo is running: client -> (tt/1, encrypted) -> server -> a small web site,
  all on loopback.
  SOCKS5 proxy: 127.0.0.1:$SOCKS_PORT
  Try:  curl --socks5-hostname 127.0.0.1:$SOCKS_PORT $url
  (The demo server allows loopback destinations; a real server refuses them.)
  Press Ctrl-C to stop.

MSG
wait -n "${pids[@]}"
