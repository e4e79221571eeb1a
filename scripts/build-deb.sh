#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# build-deb.sh: builds the Debian package (debian/, dpkg-buildpackage -b -us -uc) from a copy of
# this tree and checks it with lintian (no errors allowed). Prints the .deb's path and size.
#
# Usage: scripts/build-deb.sh [OUT_DIR]      (default build-deb/)
# Environment: JOBS=N parallel compile jobs (default nproc); LC_LINTIAN=0 skips lintian.
# Needs: scripts/install-deps.sh --test (debhelper, lintian and the build dependencies).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
OUT=${1:-$ROOT/build-deb}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
JOBS=${JOBS:-$(nproc)}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# The source as committed plus work in progress, without build directories.
mkdir "$WORK/src"
git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' f; do
    [ -e "$f" ] && printf '%s\0' "$f"
done | tar -C "$ROOT" --null -T - -cf - | tar -C "$WORK/src" -xf -

t0=$(date +%s)
(cd "$WORK/src" && DEB_BUILD_OPTIONS="nocheck parallel=$JOBS" \
    dpkg-buildpackage -b -us -uc >"$WORK/build.log" 2>&1) || {
    tail -n 40 "$WORK/build.log" >&2
    echo "build-deb: dpkg-buildpackage failed" >&2
    exit 1
}
rm -f "$OUT"/log-capturer_*.deb
deb=$(find "$WORK" -maxdepth 1 -name 'log-capturer_*.deb' ! -name '*dbgsym*' | head -n 1)
cp "$deb" "$OUT/"
deb=$OUT/$(basename "$deb")
echo "build-deb: $deb: $(stat -c %s "$deb") bytes, built in $(($(date +%s) - t0))s"

if [ "${LC_LINTIAN:-1}" != 0 ]; then
    # Errors fail; warnings and the rest are shown.
    lintian --tag-display-limit 0 "$deb" | tee "$WORK/lintian.txt" || true
    if grep -q '^E: ' "$WORK/lintian.txt"; then
        echo "build-deb: lintian reports errors" >&2
        exit 1
    fi
    echo "build-deb: lintian: $(grep -c '^W: ' "$WORK/lintian.txt" || true) warnings, no errors"
fi
