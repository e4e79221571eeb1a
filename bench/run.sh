#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# One command for the end-to-end benchmark (bench/bench.py has the details):
# builds a Release agent in build-rel (unless LC_BIN is set), generates the data
# with the shared generator (fixed seed), runs the agent --once into null and into
# a local 204 sink (protobuf+snappy and JSON+gzip, max_inflight 1/4/16), 5 runs
# each, and prints medians and [min-max].
#   bench/run.sh [--quick] [--runs N] [--size-mib N] [--sink c|nginx] [--idle] [--latency] [--stages] [--help]
# Not part of tests/run-all.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${LC_BIN:-}" ]; then
    if [ ! -f build-rel/CMakeCache.txt ]; then
        cmake -S . -B build-rel -DCMAKE_BUILD_TYPE=Release >/dev/null
    fi
    nice cmake --build build-rel -j2 --target log_capturer >/dev/null
    export LC_BIN=$PWD/build-rel/log_capturer
fi
exec /usr/bin/python3 bench/bench.py "$@"
