#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# chaos.sh: kill -9 chaos across file, docker api and docker file mode (tests/soak/chaos.py).
# Usage: tests/soak/chaos.sh [--lines N] [--kills K] [chaos.py options]
# Default 1,000,000 lines and 10 kills (a separate command); tests/run-all.sh runs
# --lines 100000 --kills 5. LC_BIN=path overrides the binary. Needs root (a private engine).
set -euo pipefail
cd "$(dirname "$0")/../.."
export LC_BIN=${LC_BIN:-$PWD/build/log_capturer}
if [ ! -x "$LC_BIN" ]; then
    echo "chaos: $LC_BIN not built: cmake -S . -B build && cmake --build build -j2" >&2
    exit 2
fi
exec /usr/bin/python3 tests/soak/chaos.py "$@"
