#!/usr/bin/env bash
# Builds tt. Usage: scripts/build.sh [release|test]
#   release  build/       optimised, for the demo and the benchmarks
#   test     build-test/  AddressSanitizer + UndefinedBehaviorSanitizer
set -euo pipefail
cd "$(dirname "$0")/.."
kind=${1:-release}
case "$kind" in
  release) dir=build; opts=(--buildtype=release) ;;
  test) dir=build-test; opts=(--buildtype=debug -Db_sanitize=address,undefined -Db_lundef=false) ;;
  *) echo "usage: scripts/build.sh [release|test]" >&2; exit 2 ;;
esac
if [[ ! -f $dir/build.ninja ]]; then
  meson setup "$dir" "${opts[@]}" >/dev/null
fi
ninja -C "$dir" >/dev/null
echo "$dir"
