#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs every Debian package log_capturer needs to build, run and test.
# Idempotent: installs only what is missing, and runs apt-get update only then.
set -euo pipefail

build_pkgs=(build-essential cmake pkg-config git
    libuv1-dev libcurl4-openssl-dev libyaml-dev libsqlite3-dev
    libmicrohttpd-dev zlib1g-dev libsnappy-dev libprotobuf-c-dev protobuf-c-compiler
    libjansson-dev
    libpcre2-dev libsystemd-dev)
test_pkgs=(libcmocka-dev python3 python3-pytest clang libclang-rt-14-dev
    docker.io busybox-static procps prometheus hyperfine clang-format clang-tidy valgrind
    mandoc groff-base systemd python3-yaml debhelper lintian mmdebstrap
    systemd-journal-remote)
test_pkgs+=(e2fsprogs) # mkfs.ext4, e2fsck: tests/integration/test_disk_faults.py

want=("${build_pkgs[@]}")
if [ "${1:-}" = "--test" ]; then
    want+=("${test_pkgs[@]}")
fi

missing=()
for p in "${want[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO=sudo
echo "install-deps: installing ${missing[*]}" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
