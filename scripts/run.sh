#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs what the agent needs, builds it, and runs it. Without arguments it
# runs the embedded default configuration: tail /var/log/syslog and
# /var/log/*.log, print JSON lines on stdout. Arguments go to the agent
# (e.g. `-c config.yaml`, `--once`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" --target log_capturer >/dev/null
exec ./build/log_capturer "$@"
