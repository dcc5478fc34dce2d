#!/usr/bin/env bash
# One command for the whole test suite: installs what is missing, builds the
# sanitizer build, runs the unit tests and fuzz-corpus replays (meson test)
# and the end-to-end tests (pytest), and ends with "N passed, N failed".
# Extra arguments go to pytest (e.g. -k socks).
set -uo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh || exit 1
build=$(scripts/build.sh test) || exit 1

# Leaks are failures; UBSan findings stop the program so they cannot pass
# unnoticed.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:exitcode=86}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1:exitcode=87}
export TT_BIN="$PWD/$build/tt"

rm -f "$build/meson-logs/testlog.json" "$build/e2e-junit.xml"
meson test -C "$build" --no-rebuild --print-errorlogs
unit_rc=$?

/usr/bin/python3 -m pytest tests/e2e -q -p no:cacheprovider \
  --junitxml="$build/e2e-junit.xml" "$@"
e2e_rc=$?

/usr/bin/python3 tests/summary.py "$build/meson-logs/testlog.json" "$build/e2e-junit.xml"
sum_rc=$?
if ((unit_rc != 0 || e2e_rc != 0 || sum_rc != 0)); then
  exit 1
fi
