#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Throughput and footprint of the file input: the agent reads a generated
# json-file-like plain log (1 GiB by default, page cache warm) with --once into
# the null output or a file output. Prints MiB/s, lines/s, CPU seconds per GiB
# and peak RSS for each run, then the medians (hyperfine for wall time,
# /usr/bin/time -v for CPU and RSS).
#   bench/bench_file.sh [SIZE_MIB] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
size=${1:-1024}
runs=${2:-5}
bin=${LC_BIN:-build/log_capturer}
data=bench/data
mkdir -p "$data"
# The file input reads the json-file lines as plain text lines: the same bytes
# the docker file mode will read, without decoding.
log=$data/docker-${size}m.log
command -v hyperfine >/dev/null || apt-get install -y -qq hyperfine >/dev/null
if [ ! -f "$log" ]; then
    /usr/bin/python3 ../shared/tools/gen_docker_log.py --size-mib "$size" --out "$log" >/dev/null
fi
bytes=$(stat -L -c %s "$log")
lines=$(wc -l <"$log")
cat_to() {
    cat >"$data/bench-$1.yaml" <<YAML
state_dir: $PWD/$data/state-$1
listen: "off"
log_level: warn
inputs:
  - {type: file, name: bench, paths: ["$PWD/$log"], start_at: beginning}
outputs:
  - $2
YAML
}
cat_to null '{type: "null", name: out}'
cat_to file "{type: file, name: out, path: $PWD/$data/out.ndjson}"
cat "$log" >/dev/null # warm the page cache
for out in null file; do
    echo "== file input -> $out output: $((bytes / 1048576)) MiB, $lines lines, $runs runs"
    hyperfine -N --runs "$runs" --export-json "$data/hyperfine-$out.json" \
        --prepare "rm -rf $data/state-$out $data/out.ndjson" \
        "$bin -c $data/bench-$out.yaml --once" >/dev/null
    cpu=(); rss=()
    for _ in $(seq "$runs"); do
        rm -rf "$data/state-$out" "$data/out.ndjson"
        /usr/bin/time -f "%U %S %M" -o "$data/time.txt" "$bin" -c "$data/bench-$out.yaml" --once
        read -r u s m <"$data/time.txt"
        cpu+=("$(awk "BEGIN{print $u + $s}")"); rss+=("$m")
    done
    /usr/bin/python3 - "$data/hyperfine-$out.json" "$bytes" "$lines" "${cpu[*]}" "${rss[*]}" <<'PY'
import json, statistics, sys
h = json.load(open(sys.argv[1]))["results"][0]
size, lines = int(sys.argv[2]), int(sys.argv[3])
cpu = [float(x) for x in sys.argv[4].split()]
rss = [int(x) for x in sys.argv[5].split()]
wall = statistics.median(h["times"])
print(f"   wall median {wall:.3f} s  ->  {size / 1048576 / wall:.0f} MiB/s, {lines / wall / 1e6:.2f} M lines/s")
print(f"   CPU median {statistics.median(cpu):.2f} s  ->  {statistics.median(cpu) / (size / 2**30):.2f} CPU s/GiB")
print(f"   peak RSS median {statistics.median(rss) / 1024:.1f} MiB")
PY
done
rm -f "$data/out.ndjson"
