#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# run-all.sh: installs test dependencies, builds, and runs every test: unit tests (ctest), the
# integration suite (pytest, docker tests included), both again under ASan+UBSan, and each fuzz
# target for a short time. Exits non-zero on any failure; the last line is a summary.
#
# Environment knobs (all optional):
#   JOBS=N                 parallel build/ctest jobs (default: nproc)
#   LC_SKIP_DEPS=1         do not run scripts/install-deps.sh --test
#   LC_SKIP_ASAN=1         skip the sanitizer build and runs
#   LC_SKIP_FUZZ=1         skip the fuzz targets
#   LC_FUZZ_SECONDS=N      seconds per fuzz target (default 20)
#   LC_ASAN_PYTEST_ARGS    pytest args under ASan (default: -m "not docker")
#   LC_ASAN_RSS_LIMIT_MB   memory bound the Loki suite checks under ASan (default 96)
#   PYTEST_ARGS            extra pytest args for both runs (e.g. "-k kill9")
#   LC_BUILD_DIR=DIR       build directory (default build; also DIR-asan, DIR-fuzz)
# shellcheck disable=SC2317  # functions run through step()
set -uo pipefail

cd "$(dirname "$0")/.." || exit 1
ROOT=$(pwd)
JOBS=${JOBS:-$(nproc)}
PY=/usr/bin/python3
FUZZ_SECONDS=${LC_FUZZ_SECONDS:-20}
B=${LC_BUILD_DIR:-build}
T0=$(date +%s)
# Markers, registered on the command line so they work with or without a conftest/ini.
MARKERS=$'markers=\n slow: long-running integration tests (may be left out under ASan)\n docker: needs a Docker daemon or the fake Docker harness'
PYTEST_BASE=(-q -p no:cacheprovider -rfEs --durations=12 -o "$MARKERS")

declare -a RESULTS=() FAILED_STEPS=()
FAILED=0
# Each step's output is also kept here, so that the summary can show the end of a failed one
# (CI shows only the head and the tail of the whole output).
STEP_LOGS=$(mktemp -d /tmp/run-all-steps.XXXXXX)

log() { printf '\n=== %s [%ss]\n' "$*" "$(($(date +%s) - T0))"; }

# step NAME CMD...: runs CMD, records pass/fail and duration, never exits.
step() {
    local name=$1
    shift
    log "$name"
    local s
    s=$(date +%s)
    # tee, not a pipe: the step's exit status stays its own, and a daemon a step leaves
    # running with the output inherited holds only tee, not this script
    "$@" > >(tee "$STEP_LOGS/$name.log") 2>&1
    local rc=$?
    local d
    d=$(($(date +%s) - s))
    if [ $rc -eq 0 ]; then
        RESULTS+=("$name: ok (${d}s)")
    else
        RESULTS+=("$name: FAILED rc=$rc (${d}s)")
        FAILED_STEPS+=("$name")
        FAILED=1
    fi
    return "$rc"
}

skip() { RESULTS+=("$1: skipped ($2)"); }

configure_build() { # DIR CMAKE_ARGS...
    local dir=$1
    shift
    cmake -S "$ROOT" -B "$ROOT/$dir" -DLC_TESTS=ON -DLC_WERROR=ON "$@" >/dev/null &&
        cmake --build "$ROOT/$dir" -j"$JOBS"
}

run_ctest() { # DIR
    ctest --test-dir "$ROOT/$1" --output-on-failure -j"$JOBS" --timeout 300
}

run_pytest() { # BIN TIMEOUT_SCALE EXTRA_ARGS...
    local bin=$1 scale=$2
    shift 2
    # shellcheck disable=SC2086
    LC_BIN="$bin" LC_REQUIRE_BIN=1 LC_TIMEOUT_SCALE="$scale" \
        timeout --kill-after=30 2400 "$PY" -m pytest "${PYTEST_BASE[@]}" "$@" ${PYTEST_ARGS:-} \
        "$ROOT/tests/integration"
}

# Each fuzz target for FUZZ_SECONDS, on a scratch copy of its seed corpus (if any).
run_fuzzers() {
    local dir=$1 rc=0 n=0
    local work
    work=$(mktemp -d)
    for src in "$ROOT"/tests/fuzz/fuzz_*.c; do
        [ -e "$src" ] || continue
        local name
        name=$(basename "$src" .c)
        local corpus="$work/$name"
        mkdir -p "$corpus"
        if [ -d "$ROOT/tests/fuzz/corpus/$name" ]; then
            cp -r "$ROOT/tests/fuzz/corpus/$name/." "$corpus/"
        fi
        local dict=()
        [ -f "$ROOT/tests/fuzz/$name.dict" ] && dict=(-dict="$ROOT/tests/fuzz/$name.dict")
        # The json-file decoder is the agent's hot path on untrusted input: at least 60 s.
        local secs=$FUZZ_SECONDS
        [ "$name" = fuzz_docker_json ] && [ "$secs" -lt 60 ] && secs=60
        echo "--- $name (${secs}s)"
        if ! (cd "$work" && timeout --kill-after=10 $((secs + 60)) \
            "$ROOT/$dir/$name" -max_total_time="$secs" -print_final_stats=1 \
            -rss_limit_mb=1024 "${dict[@]}" "$corpus" 2>&1 | tail -n 25); then
            echo "!!! $name failed"
            rc=1
        fi
        n=$((n + 1))
    done
    rm -rf "$work"
    echo "fuzz: $n targets"
    return "$rc"
}

fuzz_targets() {
    local t=()
    for src in "$ROOT"/tests/fuzz/fuzz_*.c; do
        [ -e "$src" ] && t+=("$(basename "$src" .c)")
    done
    echo "${t[@]:-}"
}

# --- 1. dependencies ------------------------------------------------------------
if [ -z "${LC_SKIP_DEPS:-}" ]; then
    step "deps" bash "$ROOT/scripts/install-deps.sh" --test || {
        echo "run-all: FAIL: could not install dependencies" >&2
        exit 1
    }
else
    skip deps LC_SKIP_DEPS
fi

# --- 2. release build, unit and integration tests ------------------------------
# Release (-O3) finds warnings the other builds do not (format truncation, overflow analysis);
# it is only compiled, the tests run on the builds below.
step "release-build" configure_build "$B-release" -DCMAKE_BUILD_TYPE=Release

if step "build" configure_build "$B" -DCMAKE_BUILD_TYPE=RelWithDebInfo; then
    step "unit" run_ctest "$B"
    # instructions per line of decode + batch + encode vs the committed baseline (< 1 minute)
    step "icount" env LC_BUILD_DIR="$B" bash "$ROOT/tests/perf/icount.sh"
    # clang-format, banned functions, clang-tidy (on the compile commands of this build)
    step "lint" env LC_BUILD_DIR="$B" bash "$ROOT/scripts/lint.sh"
    step "integration" run_pytest "$ROOT/$B/log_capturer" 1
    # One minute of the resource-stability soak (rotations, churn, faults); the long soak is
    # a separate command (tests/soak/run.sh --minutes 60).
    step "soak-smoke" env LC_BIN="$ROOT/$B/log_capturer" bash "$ROOT/tests/soak/run.sh" \
        --minutes 1 --smoke --output loki
    # Three scenarios under valgrind (clean shutdown of the file path and of the Loki path
    # under a 429 storm): any invalid access or definite leak fails them (about 40 s).
    LC_WRAPPER="valgrind -q --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=99" \
        step "valgrind" run_pytest "$ROOT/$B/log_capturer" 5 \
        -k "sigterm_restart_gives_no_duplicates or shutdown_drains_pending_batch or 429_storm"
    # kill -9 five times while files, docker api and docker file mode are read (100,000
    # lines, about a minute); the 1,000,000-line run is tests/soak/run.sh chaos.
    step "chaos-ci" env LC_BIN="$ROOT/$B/log_capturer" bash "$ROOT/tests/soak/run.sh" \
        chaos --lines 100000 --kills 5
    # The Debian package: dpkg-buildpackage and lintian (about a minute).
    step "deb" bash "$ROOT/scripts/build-deb.sh" "$ROOT/$B-deb"
    # The .deb in a clean root and the container image on the private Docker engine; they
    # need the minimal Debian base (mmdebstrap, a few minutes: deploy/image/build.sh
    # --base-only), so they run only when it is cached.
    if [ -s "$(bash "$ROOT/deploy/image/build.sh" --base-path)" ]; then
        step "deploy-image" env LC_BIN="$ROOT/$B/log_capturer" bash "$ROOT/tests/image/run.sh" \
            --deb "$(find "$ROOT/$B-deb" -name 'log-capturer_*.deb' 2>/dev/null | head -n 1)"
    else
        skip deploy-image "no cached base: deploy/image/build.sh --base-only"
    fi
else
    skip unit "build failed"
    skip icount "build failed"
    skip lint "build failed"
    skip integration "build failed"
    skip soak-smoke "build failed"
    skip valgrind "build failed"
    skip chaos-ci "build failed"
    skip deb "build failed"
    skip deploy-image "build failed"
fi

# --- 3. the same under AddressSanitizer + UndefinedBehaviorSanitizer -------------
if [ -z "${LC_SKIP_ASAN:-}" ]; then
    export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
    export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
    if step "asan-build" configure_build "$B-asan" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLC_SANITIZE=ON; then
        step "asan-unit" run_ctest "$B-asan"
        # The suite takes about 2x as long under ASan (measured: 432 s -> 812 s, most tests
        # are paced by their writers). The Docker scenarios (a real engine, minutes of wall
        # time each) run once, on the build above; under ASan the agent runs the file, CLI and
        # Loki suites (about 6 minutes).
        if [ -n "${LC_ASAN_PYTEST_ARGS+x}" ]; then
            read -r -a asan_args <<<"$LC_ASAN_PYTEST_ARGS"
        else
            asan_args=(-m "not docker")
        fi
        # ASan keeps freed memory in quarantine (up to 256 MiB) and pads every allocation, so
        # the memory bounds the suite checks on the plain build (64 MiB) do not hold under it.
        LC_RSS_LIMIT_MB="${LC_ASAN_RSS_LIMIT_MB:-96}" \
            step "asan-integration" run_pytest "$ROOT/$B-asan/log_capturer" 3 "${asan_args[@]}"
        [ ${#asan_args[@]} -gt 0 ] && RESULTS+=("  (asan-integration ran with: ${asan_args[*]})")
    else
        skip asan-unit "asan build failed"
        skip asan-integration "asan build failed"
    fi
else
    skip asan LC_SKIP_ASAN
fi

# --- 4. fuzz targets (clang, libFuzzer, with ASan+UBSan) ------------------------
targets=$(fuzz_targets)
if [ -n "${LC_SKIP_FUZZ:-}" ]; then
    skip fuzz LC_SKIP_FUZZ
elif [ -z "$targets" ]; then
    skip fuzz "no tests/fuzz/fuzz_*.c"
else
    # shellcheck disable=SC2086
    if step "fuzz-build" bash -c "cmake -S '$ROOT' -B '$ROOT/$B-fuzz' -DCMAKE_C_COMPILER=clang \
            -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLC_FUZZ=ON -DLC_SANITIZE=ON -DLC_TESTS=OFF -DLC_WERROR=ON >/dev/null \
            && cmake --build '$ROOT/$B-fuzz' -j$JOBS --target $targets"; then
        step "fuzz" run_fuzzers "$B-fuzz"
    else
        skip fuzz "fuzz build failed"
    fi
fi

# --- summary --------------------------------------------------------------------
total=$(($(date +%s) - T0))
# The last lines of each failed step (at most three), just before the summary.
[ ${#FAILED_STEPS[@]} -gt 0 ] && sleep 1 # tee writes the last lines of a step a moment late
for name in "${FAILED_STEPS[@]:0:3}"; do
    echo
    echo "=== the end of failed step $name"
    tail -n 20 "$STEP_LOGS/$name.log" | cut -c 1-240
done
rm -rf "$STEP_LOGS"
echo
echo "=== run-all summary"
for r in "${RESULTS[@]}"; do echo "  $r"; done
for f in "$B/kill9-duplicates.txt" "$B-asan/kill9-duplicates.txt"; do
    [ -f "$f" ] && echo "  $f: $(head -n 1 "$f")"
done
if [ $FAILED -eq 0 ]; then
    echo "run-all: PASS in ${total}s"
else
    echo "run-all: FAIL in ${total}s"
fi
exit $FAILED
