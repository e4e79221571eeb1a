#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# build.sh: the log_capturer container image, from Debian packages only (no registry).
#
#  1. base: a minimal Debian bookworm root, mmdebstrap --variant=essential plus the runtime
#     libraries of packages.txt, from the Debian mirror; cached as a tarball (a few minutes
#     the first time), imported with `docker import` as log_capturer-base:bookworm;
#  2. the image: Dockerfile.import on top of it adds the binary, the configuration and the
#     non-root user log_capturer (uid 10001) in group docker (gid --docker-gid).
# deploy/image/Dockerfile builds the same layout FROM debian:bookworm-slim, for people with
# registry access.
#
# Usage: deploy/image/build.sh [--bin FILE] [--tag NAME] [--docker-gid GID] [--base-only]
#   --bin FILE        the binary (default: a Release build in build-image/, made if missing)
#   --tag NAME        image name (default log_capturer:latest)
#   --docker-gid GID  gid of the group that may read the Docker socket (default 999)
#   --base-only       only make (or find) the cached base tarball, print its path
#   --base-path       print where the cached base is (or would be), make nothing
# Environment: LC_IMAGE_CACHE (default /var/cache/log_capturer-image): where the base goes;
#   LC_IMAGE_BASE: use this base tarball instead;
#   DEBIAN_MIRROR (default http://deb.debian.org/debian); DOCKER_HOST as for the docker CLI.
# Needs: mmdebstrap (the first time), docker.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BIN="" TAG=log_capturer:latest DOCKER_GID=999 BASE_ONLY=0
while [ $# -gt 0 ]; do
    case $1 in
    --bin) BIN=$2; shift 2 ;;
    --tag) TAG=$2; shift 2 ;;
    --docker-gid) DOCKER_GID=$2; shift 2 ;;
    --base-only) BASE_ONLY=1; shift ;;
    --base-path) BASE_ONLY=2; shift ;;
    -h | --help) sed -n '3,23p' "$0"; exit 0 ;;
    *) echo "build.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
CACHE=${LC_IMAGE_CACHE:-/var/cache/log_capturer-image}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
mapfile -t PKGS < <(grep -v '^#' "$HERE/packages.txt" | grep .)
include=$(IFS=,; echo "${PKGS[*]}")
# The base's name changes with what goes into it.
key=$(printf '%s\n' "$include" "$MIRROR" v2 | sha256sum | cut -c1-12)
BASE_TAR=${LC_IMAGE_BASE:-$CACHE/bookworm-essential-$key.tar}
BASE_IMAGE=log_capturer-base:bookworm-$key

make_base() {
    [ -s "$BASE_TAR" ] && return 0
    command -v mmdebstrap >/dev/null || {
        echo "build.sh: mmdebstrap is not installed (apt-get install mmdebstrap)" >&2
        return 1
    }
    mkdir -p "$CACHE"
    echo "build.sh: making the base root (mmdebstrap, a few minutes)..." >&2
    # No documentation, manual pages or translations: an image never shows them.
    # Copyright files stay. ($1 in the hook is mmdebstrap's, not ours.)
    # shellcheck disable=SC2016
    # /usr merged by mmdebstrap's hook, not by the usrmerge package (which brings perl); no
    # Recommends.
    mmdebstrap --variant=essential --mode=root --include="$include" \
        --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
        --aptopt='APT::Install-Recommends "false"' \
        --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
        --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
        --dpkgopt='path-include=/usr/share/doc/*/copyright' \
        --customize-hook='rm -rf "$1"/var/cache/debconf/*-old "$1"/var/log/*.log "$1"/var/log/apt' \
        bookworm "$CACHE/.partial-$key.tar" "$MIRROR" >&2
    mv "$CACHE/.partial-$key.tar" "$BASE_TAR"
}

if [ $BASE_ONLY = 2 ]; then
    echo "$BASE_TAR"
    exit 0
fi
make_base
if [ $BASE_ONLY = 1 ]; then
    echo "$BASE_TAR"
    exit 0
fi

if [ -z "$BIN" ]; then
    BIN=$ROOT/build-image/log_capturer
    if [ ! -x "$BIN" ]; then
        cmake -S "$ROOT" -B "$ROOT/build-image" -DCMAKE_BUILD_TYPE=Release -DLC_TESTS=OFF >/dev/null
        cmake --build "$ROOT/build-image" -j"$(nproc)" --target log_capturer >/dev/null
    fi
fi

if ! docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
    docker import --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        "$BASE_TAR" "$BASE_IMAGE" >/dev/null
fi

# The build context: the binary, the configuration, and passwd/group with our user added
# (no RUN step: the image is built without a network).
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
install -m 0755 "$BIN" "$ctx/log_capturer"
strip "$ctx/log_capturer" 2>/dev/null || true
install -m 0644 "$HERE/config.yaml" "$ctx/config.yaml"
tar -xf "$BASE_TAR" -C "$ctx" ./etc/passwd ./etc/group
{
    grep -v '^log_capturer:' "$ctx/etc/passwd"
    echo "log_capturer:x:10001:10001:log_capturer:/var/lib/log_capturer:/usr/sbin/nologin"
} >"$ctx/passwd"
{
    grep -v -e '^log_capturer:' -e '^docker:' "$ctx/etc/group" |
        awk -F: -v g="$DOCKER_GID" '$3 != g'
    echo "log_capturer:x:10001:"
    echo "docker:x:$DOCKER_GID:log_capturer"
} >"$ctx/group"
mkdir -m 0700 "$ctx/state"
cp "$HERE/Dockerfile.import" "$ctx/Dockerfile"
docker build -q --network none --build-arg BASE="$BASE_IMAGE" -t "$TAG" "$ctx" >/dev/null
echo "build.sh: $TAG: $(docker image inspect -f '{{.Size}}' "$TAG") bytes (base $BASE_IMAGE)"
