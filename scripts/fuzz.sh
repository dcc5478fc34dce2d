#!/usr/bin/env bash
# Runs the libFuzzer harnesses for a while each.
#
# Usage: scripts/fuzz.sh [TARGET|all] [SECONDS]
#   TARGET   one of the harness names in fuzz/meson.build (default: all)
#   SECONDS  time per harness (default: 60)
#
# The harnesses are built in build-fuzz with clang, libFuzzer, ASan and UBSan;
# that directory is configured on first use and reused after. Each harness
# runs over a scratch copy of its seed corpus, so the inputs libFuzzer adds do
# not pile up in the repository. A crash stops the script with a non-zero
# status and leaves the crashing input under fuzz/findings/ (ignored by git).
set -euo pipefail

usage() {
    echo "usage: $0 [TARGET|all] [SECONDS]" >&2
    echo "targets: ${all_targets[*]}" >&2
    exit 2
}

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

# The harness list lives in fuzz/meson.build; read it from there so the two
# cannot drift apart.
read -r -a all_targets <<<"$(sed -n "s/^fuzz_harnesses *= *\[\(.*\)\].*/\1/p" fuzz/meson.build |
    tr -d "' " | tr ',' ' ')"
if [ "${#all_targets[@]}" -eq 0 ]; then
    echo "fuzz.sh: cannot find fuzz_harnesses in fuzz/meson.build" >&2
    exit 1
fi

target=${1:-all}
seconds=${2:-60}
[ $# -le 2 ] || usage
[[ "$seconds" =~ ^[1-9][0-9]*$ ]] || usage

if [ "$target" = all ]; then
    targets=("${all_targets[@]}")
else
    found=0
    for t in "${all_targets[@]}"; do
        [ "$t" = "$target" ] && found=1
    done
    [ "$found" -eq 1 ] || usage
    targets=("$target")
fi

build="build-fuzz"
if [ ! -f "$build/build.ninja" ]; then
    CC=clang meson setup "$build" -Dfuzzer=true -Db_sanitize=address,undefined -Db_lundef=false
fi
# Build only the harnesses asked for, so one broken harness does not keep the
# others from running.
ninja -C "$build" "${targets[@]/#/fuzz/fuzz_}"

scratch=$(mktemp -d "${TMPDIR:-/tmp}/tt-fuzz.XXXXXX")
trap 'rm -rf "$scratch"' EXIT

for t in "${targets[@]}"; do
    corpus="$scratch/$t"
    mkdir -p "$corpus"
    if [ -d "fuzz/corpus/$t" ]; then
        cp -R "fuzz/corpus/$t/." "$corpus/"
    fi
    findings="fuzz/findings/$t-$(date +%Y%m%d-%H%M%S)"
    mkdir -p "$findings"

    echo "== fuzz_$t for ${seconds}s"
    status=0
    "$build/fuzz/fuzz_$t" -max_total_time="$seconds" -print_final_stats=1 \
        -artifact_prefix="$findings/" "$corpus" || status=$?
    if [ "$status" -ne 0 ]; then
        echo "fuzz.sh: fuzz_$t failed (exit $status); crash input(s):" >&2
        for f in "$findings"/*; do
            [ -e "$f" ] && echo "  $f" >&2
        done
        echo "reproduce with: $build/fuzz/fuzz_$t <input>" >&2
        exit "$status"
    fi
    rmdir "$findings" 2>/dev/null || true
done
rmdir fuzz/findings 2>/dev/null || true
echo "fuzz.sh: no crashes in ${targets[*]} (${seconds}s each)"
