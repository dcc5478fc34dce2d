#!/usr/bin/env bash
# Runs tt's benchmark: installs what is missing, builds the release build
# (build/tt and build/bench/ttbench), then runs bench/run.py, which compares
# tt's plain carrier with direct loopback, microsocks and shadowsocks-libev.
# Arguments go to bench/run.py: --quick (about a minute), --rounds N,
# --json FILE, ... (bench/run.py --help). Takes about 5 minutes by default.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
build=$(scripts/build.sh release)
exec /usr/bin/python3 bench/run.py --tt "$build/tt" --ttbench "$build/bench/ttbench" "$@"
