#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# run.sh: the deployment tests that need the minimal Debian base of deploy/image/build.sh:
#   tests/image/test_deb.py    the .deb installs into a clean root (chroot), check-config, unit
#   tests/image/test_image.py  the image on the harness's private Docker engine: follows two
#                              containers into the fake Loki, docker stop drains, restart resumes
# Making the base takes a few minutes (mmdebstrap from the Debian mirror), so by default this
# runs only when the base is cached and says "skipped" otherwise (tests/run-all.sh relies on
# that); --build-base makes it first.
#
# Usage: tests/image/run.sh [--build-base] [--deb FILE] [pytest args...]
# Environment: LC_BIN (default build/log_capturer), LC_IMAGE_CACHE (see build.sh).
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 2
ROOT=$(pwd)
DEB="" BUILD_BASE=0
args=()
while [ $# -gt 0 ]; do
    case $1 in
    --build-base) BUILD_BASE=1; shift ;;
    --deb) DEB=$2; shift 2 ;;
    *) args+=("$1"); shift ;;
    esac
done
base=$(bash deploy/image/build.sh --base-path) || exit 2
if [ ! -s "$base" ]; then
    if [ $BUILD_BASE = 0 ]; then
        echo "image tests: skipped: no cached base $base (make it: deploy/image/build.sh --base-only)"
        exit 0
    fi
    bash deploy/image/build.sh --base-only >/dev/null || exit 1
fi
find_deb() { find "$ROOT/build-deb" -name 'log-capturer_*.deb' 2>/dev/null | head -n 1; }
if [ -z "$DEB" ]; then
    DEB=$(find_deb)
    if [ -z "$DEB" ]; then
        bash scripts/build-deb.sh "$ROOT/build-deb" || exit 1
        DEB=$(find_deb)
    fi
fi
MARKERS=$'markers=\n docker: needs a Docker daemon or the fake Docker harness'
LC_IMAGE_BASE=$base LC_DEB=$DEB LC_BIN=${LC_BIN:-$ROOT/build/log_capturer} \
    timeout --kill-after=30 900 /usr/bin/python3 -m pytest -q -p no:cacheprovider -rfEs \
    --durations=8 -s -o "$MARKERS" "${args[@]}" tests/image
