#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# lint.sh: the static checks CI runs: clang-format (no changes allowed), scripts/checksrc.sh
# (banned functions) and clang-tidy (.clang-tidy, warnings as errors) on src/. Exit 0 only when
# all pass; the last line is a summary.
#
# Usage: scripts/lint.sh [--no-tidy] [--no-format] [--no-checksrc]
# Environment:
#   LC_BUILD_DIR=DIR   where compile_commands.json is (default build; configured if missing)
#   JOBS=N             parallel clang-tidy processes (default nproc)
#   CLANG_FORMAT, CLANG_TIDY   the tools (default clang-format, clang-tidy)
# Needs the Debian packages clang-format and clang-tidy.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
ROOT=$(pwd)
B=${LC_BUILD_DIR:-build}
case $B in /*) ;; *) B=$ROOT/$B ;; esac
JOBS=${JOBS:-$(nproc)}
CLANG_FORMAT=${CLANG_FORMAT:-clang-format}
CLANG_TIDY=${CLANG_TIDY:-clang-tidy}
do_format=1 do_checksrc=1 do_tidy=1
for a in "$@"; do
    case $a in
    --no-format) do_format=0 ;;
    --no-checksrc) do_checksrc=0 ;;
    --no-tidy) do_tidy=0 ;;
    -h | --help)
        sed -n '3,12p' "$0"
        exit 0
        ;;
    *)
        echo "lint: unknown argument $a" >&2
        exit 2
        ;;
    esac
done

declare -a RESULTS=()
FAILED=0
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

need() {
    if ! command -v "$1" >/dev/null 2>&1; then
        echo "lint: $1 not found (apt-get install -y $2)" >&2
        exit 2
    fi
}

# --- clang-format ----------------------------------------------------------------
if [ $do_format -eq 1 ]; then
    need "$CLANG_FORMAT" clang-format
    echo "=== clang-format ($("$CLANG_FORMAT" --version | grep -oE '[0-9]+\.[0-9.]+' | head -1))"
    mapfile -t files < <(find src tests/unit tests/fuzz bench -maxdepth 2 -type f \
        \( -path 'src/*.[ch]' -o -path 'tests/unit/*.[ch]' -o -path 'tests/fuzz/*.[ch]' \
        -o -path 'bench/*.c' \) -not -path 'tests/fuzz/corpus/*' | sort)
    bad=()
    for f in "${files[@]}"; do
        if ! "$CLANG_FORMAT" --dry-run --Werror "$f" >"$WORK/fmt.out" 2>&1; then
            n=$(grep -c 'error:' "$WORK/fmt.out")
            echo "  $f: $n place(s) differ from clang-format"
            bad+=("$f")
        fi
    done
    if [ ${#bad[@]} -eq 0 ]; then
        RESULTS+=("format: ok (${#files[@]} files)")
    else
        echo "  fix with: $CLANG_FORMAT -i ${bad[*]}"
        RESULTS+=("format: FAILED (${#bad[@]} of ${#files[@]} files)")
        FAILED=1
    fi
fi

# --- checksrc -------------------------------------------------------------------
if [ $do_checksrc -eq 1 ]; then
    echo "=== checksrc"
    if bash scripts/checksrc.sh src; then
        RESULTS+=("checksrc: ok")
    else
        RESULTS+=("checksrc: FAILED")
        FAILED=1
    fi
fi

# --- clang-tidy -----------------------------------------------------------------
if [ $do_tidy -eq 1 ]; then
    need "$CLANG_TIDY" clang-tidy
    echo "=== clang-tidy ($("$CLANG_TIDY" --version | grep -oE '[0-9]+\.[0-9.]+' | head -1), $B)"
    if [ ! -f "$B/compile_commands.json" ]; then
        echo "  configuring $B for compile_commands.json"
        cmake -S "$ROOT" -B "$B" >/dev/null || exit 2
    fi
    # Sources include the header generated from loki_push.proto: build the library once.
    if [ -f src/output/loki_push.proto ] && [ ! -f "$B/gen/loki_push.pb-c.h" ]; then
        echo "  building $B (generated headers)"
        cmake --build "$B" -j"$JOBS" --target lc >/dev/null || exit 2
    fi
    # Only sources the database knows (a file added since the last configure is reported).
    /usr/bin/python3 - "$B/compile_commands.json" "$ROOT" >"$WORK/tidy.files" <<'EOF'
import json, os, sys
db, root = sys.argv[1], sys.argv[2]
known = {os.path.realpath(os.path.join(e["directory"], e["file"])) for e in json.load(open(db))}
for dp, _, fs in sorted(os.walk(os.path.join(root, "src"))):
    for f in sorted(fs):
        p = os.path.join(dp, f)
        if f.endswith(".c"):
            print(("" if os.path.realpath(p) in known else "MISSING ") + os.path.relpath(p, root))
EOF
    missing=$(grep -c '^MISSING ' "$WORK/tidy.files")
    grep '^MISSING ' "$WORK/tidy.files" | sed 's/^MISSING /  not in compile_commands.json (re-run cmake): /'
    grep -v '^MISSING ' "$WORK/tidy.files" >"$WORK/tidy.list"
    mkdir -p "$WORK/tidy"
    # One clang-tidy per file, JOBS at a time; each writes WORK/tidy/<file>.out and .rc.
    # shellcheck disable=SC2016  # expanded by the inner sh
    xargs -a "$WORK/tidy.list" -P "$JOBS" -I{} sh -c \
        'f="$1"; o="$2/$(echo "$f" | tr / _)"; "$3" -p "$4" --quiet --warnings-as-errors="*" "$f" >"$o.out" 2>&1; echo $? >"$o.rc"' \
        _ {} "$WORK/tidy" "$CLANG_TIDY" "$B"
    tidy_bad=0
    : >"$WORK/tidy.all"
    while read -r f; do
        o="$WORK/tidy/$(echo "$f" | tr / _)"
        rc=$(cat "$o.rc" 2>/dev/null || echo 1)
        # Keep diagnostics; drop clang-tidy's "N warnings generated" chatter.
        grep -vE '^[0-9]+ warnings? (and [0-9]+ errors? )?generated|^Suppressed [0-9]+ warnings|^Use -header-filter|^Error while processing' \
            "$o.out" >>"$WORK/tidy.all"
        [ "$rc" -ne 0 ] && tidy_bad=$((tidy_bad + 1))
    done <"$WORK/tidy.list"
    # A header's findings repeat for every file that includes it: print each once.
    /usr/bin/python3 - "$WORK/tidy.all" "$ROOT/" <<'EOF'
import re, sys
seen, block, out = set(), [], []
head = re.compile(r"^(/\S+|\S+\.[ch]):\d+:\d+: (warning|error):")
def flush():
    if block and block[0] not in seen:
        seen.add(block[0]); out.extend(block)
for line in open(sys.argv[1], errors="replace"):
    line = line.rstrip("\n").replace(sys.argv[2], "")
    if head.match(line):
        flush(); block = [line]
    elif block:
        block.append(line)
flush()
print("\n".join(out))
counts = {}
for l in seen:
    m = re.search(r"\[([^\]]+)\]$", l)
    k = m.group(1).replace(",-warnings-as-errors", "") if m else "?"
    counts[k] = counts.get(k, 0) + 1
for k, v in sorted(counts.items(), key=lambda kv: -kv[1]):
    print(f"  {v:4d} {k}")
EOF
    n=$(wc -l <"$WORK/tidy.list")
    if [ "$tidy_bad" -eq 0 ] && [ "$missing" -eq 0 ]; then
        RESULTS+=("clang-tidy: ok ($n files)")
    else
        RESULTS+=("clang-tidy: FAILED ($tidy_bad of $n files with findings, $missing not in the database)")
        FAILED=1
    fi
fi

echo
echo "=== lint summary"
for r in "${RESULTS[@]}"; do echo "  $r"; done
if [ $FAILED -eq 0 ]; then echo "lint: PASS"; else echo "lint: FAIL"; fi
exit $FAILED
