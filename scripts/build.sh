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
# Quiet when all is well; the whole output when something fails.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if [[ ! -f $dir/build.ninja ]] && ! meson setup "$dir" "${opts[@]}" >"$log" 2>&1; then
  cat "$log" >&2
  echo "build: meson setup failed" >&2
  exit 1
fi
if ! ninja -C "$dir" >"$log" 2>&1; then
  cat "$log" >&2
  echo "build: compilation failed" >&2
  exit 1
fi
echo "$dir"
