#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# run.sh: runs the resource-stability soak (tests/soak/soak.py) against build/log_capturer.
# Usage: tests/soak/run.sh [--profile ci|long] [--minutes N] [--output file|loki] [--smoke]
#        [soak.py options]
# LC_BIN=path overrides the binary. tests/run-all.sh runs the one-minute --smoke; --profile ci
# (3 minutes, every input and fault at once) and --profile long (60 minutes) are separate
# commands. tests/soak/run.sh chaos [chaos.py options]: the
# kill -9 chaos (tests/soak/chaos.py; run-all runs chaos --lines 100000 --kills 5).
set -euo pipefail
cd "$(dirname "$0")/../.."
export LC_BIN=${LC_BIN:-$PWD/build/log_capturer}
if [ ! -x "$LC_BIN" ]; then
    echo "soak: $LC_BIN not built: cmake -S . -B build && cmake --build build -j2" >&2
    exit 2
fi
if [ "${1:-}" = chaos ]; then # tests/soak/run.sh chaos [--lines N] [--kills K]: chaos.py
    shift
    exec /usr/bin/python3 tests/soak/chaos.py "$@"
fi
exec /usr/bin/python3 tests/soak/soak.py "$@"
