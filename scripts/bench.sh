#!/usr/bin/env bash
# Runs tt's benchmark: installs what is missing, builds the release build
# (build/tt and build/bench/ttbench), then runs bench/run.py, which compares
# tt's plain carrier (tcp://) with direct loopback, microsocks and
# shadowsocks-libev, and its encrypted one (tt://) with shadowsocks-libev,
# stunnel (TLS 1.3) and ssh -D (tt:// also with --early-reply --mux: the
# "-fast" rows), and measures memory per idle connection.
# Arguments go to bench/run.py: --quick (about 70 s), --rounds N,
# --systems a,b, --idle 0, --json FILE, ... (bench/run.py --help). Takes
# about 7 minutes by default. Needs root for its private sshd (ssh-* rows).
# --group web runs the web carriers' comparison instead: tls://, wss:// and
# --mux against stunnel, v2ray (VLESS over WebSocket+TLS) and
# shadowsocks-libev with v2ray-plugin (about 7 minutes); --group all runs
# both.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
build=$(scripts/build.sh release)
exec /usr/bin/python3 bench/run.py --tt "$build/tt" --ttbench "$build/bench/ttbench" "$@"
