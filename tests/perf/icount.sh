#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Instruction-count regression check of the hot path (decode + batch + encode) on a fixed
# sample: runs build/lc_icount under callgrind (only its icount_run() is counted), prints
# instructions per line for protobuf+snappy and JSON+gzip, and fails if one grew by more
# than 10 % over tests/perf/icount-baseline.txt. Counts do not depend on the machine's load,
# only on the code, the compiler and the libraries (the baseline is for Debian bookworm's gcc
# 12, RelWithDebInfo, as tests/run-all.sh builds, and for this CPU kind: glibc picks its
# memcpy/memchr variants by CPU features).
#   tests/perf/icount.sh [--update]     (LC_BUILD_DIR: the build directory, default build)
set -euo pipefail
cd "$(dirname "$0")/../.."
B=${LC_BUILD_DIR:-build}
bin=$B/lc_icount
base=tests/perf/icount-baseline.txt
limit=${LC_ICOUNT_LIMIT:-1.10}
command -v valgrind >/dev/null || { echo "icount: valgrind is not installed" >&2; exit 2; }
[ -x "$bin" ] || { echo "icount: $bin not built (cmake --build $B --target lc_icount)" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
rc=0
declare -A now
for mode in protobuf json; do
    arg=""
    [ "$mode" = json ] && arg=--json
    valgrind --tool=callgrind --toggle-collect=icount_run --callgrind-out-file="$tmp/cg.$mode" \
        "$bin" $arg >"$tmp/out.$mode" 2>"$tmp/err.$mode" || { cat "$tmp/err.$mode" >&2; exit 2; }
    lines=$(awk '{print $2}' "$tmp/out.$mode")
    ir=$(awk '/^summary:/ {print $2}' "$tmp/cg.$mode")
    [ -n "$ir" ] && [ "$lines" -gt 0 ] || { echo "icount: no count for $mode" >&2; exit 2; }
    now[$mode]=$((ir / lines))
done
if [ "${1:-}" = --update ]; then
    {
        echo "# instructions per line, decode + batch + encode (tests/perf/icount.sh --update)"
        for mode in protobuf json; do echo "$mode ${now[$mode]}"; done
    } >"$base"
    echo "icount: baseline written: protobuf ${now[protobuf]}, json ${now[json]} instructions/line"
    exit 0
fi
for mode in protobuf json; do
    was=$(awk -v m="$mode" '$1 == m {print $2}' "$base")
    [ -n "$was" ] || { echo "icount: no baseline for $mode in $base" >&2; exit 2; }
    verdict=$(awk -v n="${now[$mode]}" -v b="$was" -v l="$limit" \
        'BEGIN {printf "%+.1f%% %s", (n / b - 1) * 100, (n > b * l) ? "FAIL" : "ok"}')
    echo "icount: $mode ${now[$mode]} instructions/line (baseline $was): $verdict"
    case $verdict in *FAIL) rc=1 ;; esac
done
[ $rc = 0 ] || echo "icount: the hot path grew by more than $(awk -v l="$limit" 'BEGIN{printf "%.0f", (l - 1) * 100}') %; if intended, run tests/perf/icount.sh --update and commit the baseline" >&2
exit $rc
