#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# checksrc.sh: fails (exit 1) on calls to banned C functions in src/, printing file:line: call.
#
# Banned, and what to use instead:
#   strcpy strcat strncat sprintf vsprintf   unbounded or easy to misuse: snprintf, memcpy
#                                            with a checked length, struct lc_buf
#   strncpy                                  does not NUL-terminate on truncation and zero-pads:
#                                            snprintf, or memcpy + explicit terminator
#   gets                                     unbounded: fgets / getline
#   atoi atol atoll atof                     no error reporting: strtol/strtoll/strtod + errno
#   strtok                                   hidden static state: strtok_r, or a manual scan
#   tmpnam tempnam mktemp                    racy: mkstemp / mkdtemp
#   asctime ctime localtime gmtime           static buffers: the _r variants
#   alloca                                   unbounded stack use: a capped buffer
#
# A line may opt out with the comment `checksrc: allow` and a reason, e.g.
#   n = atoi(s); /* checksrc: allow (s is validated to [0-9]{1,3} above) */
# Usage: scripts/checksrc.sh [DIR_OR_FILE...]   (default: src)
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2

BANNED='strcpy|strcat|strncat|strncpy|sprintf|vsprintf|gets|atoi|atol|atoll|atof|strtok'
BANNED+='|tmpnam|tempnam|mktemp|asctime|ctime|localtime|gmtime|alloca'

targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(src)

# -w would treat '_' as a word character too, so lc_strcpy or strtok_r never match; the
# (^|[^A-Za-z0-9_]) prefix keeps member calls like ->gets( out as well.
hits=$(grep -rnE --include='*.c' --include='*.h' \
    "(^|[^A-Za-z0-9_.>])(${BANNED})[[:space:]]*\(" "${targets[@]}" |
    grep -v 'checksrc: allow' |
    # skip comment lines (block comment bodies and // lines)
    grep -vE '^[^:]+:[0-9]+:[[:space:]]*(\*|/\*|//)')

if [ -n "$hits" ]; then
    echo "$hits" | sed -E "s/^([^:]+:[0-9]+):[[:space:]]*/\1: banned function: /"
    n=$(echo "$hits" | wc -l)
    echo "checksrc: $n banned call(s) (see scripts/checksrc.sh for the replacements)" >&2
    exit 1
fi
echo "checksrc: ok"
exit 0
