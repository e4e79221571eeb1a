# SPDX-License-Identifier: MIT
"""fairness.py: measurement, not a test (issue 13): one container flooding (`yes`, 3M lines) and
7 logging 10 lines/s, one docker input (argv[1]: api or file) into the fake Loki; prints the
quiet containers' latency (when the harness saw an entry at the fake, polled every 0.1 s from
before the first container starts, minus its docker timestamp) p50/p99/max against
batch_wait + 1 s = 2 s, overall and by when the line was written (5 s buckets from the moment
the last quiet container started; negative: while they were being started).
Run: LC_BIN=build/log_capturer /usr/bin/python3 tests/soak/fairness.py api|file
"""
import shutil
import sys
import threading
import time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
import agent as ag  # noqa: E402
import docker_harness as dh  # noqa: E402
from fake_loki import FakeLoki  # noqa: E402


def pct(v, q):
    v = sorted(v)
    return v[min(len(v) - 1, int(q * len(v)))]


mode = sys.argv[1] if len(sys.argv) > 1 else "api"
w = Path(__file__).resolve().parents[2] / "build" / ("fairness-" + mode)
shutil.rmtree(w, ignore_errors=True)
w.mkdir(parents=True)
eng = dh.DockerEngine()
eng.start()
fk = FakeLoki()
fk.start()
stop = threading.Event()
seen = {}
nflood = [0]
paused = []  # the agent's log_capturer_pipeline_paused, sampled every second


def poll():
    off = 0
    while not stop.is_set():
        with fk._lock:  # only the new entries: copying a million each turn slowed the fake
            ents = fk._entries[off:]
        t = time.time()
        for e in ents:
            name = e["labels"].get("container_name")
            if name == "flood":
                nflood[0] += 1
            else:
                seen.setdefault(e["line"], (t, e["ts"] / 1e9, name))
        off += len(ents)
        if int(t * 10) % 10 == 0:
            try:
                paused.append(ag.metric_sum(a.metrics(), "log_capturer_pipeline_paused") or 0)
            except OSError:
                pass
        time.sleep(0.1)


try:
    inp = {"type": "docker", "name": "d", "mode": mode, "socket": eng.sock, "root": eng.data_root,
           "start_at": "beginning", "max_age": "0"}
    a = ag.Agent(w, [inp], [{"type": "loki", "name": "loki", "url": fk.url}],
                 extra={"batch_wait": "1s", "checkpoint_interval": "1s"})
    a.start()
    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    flood = eng.run_container("flood", ["sh", "-c", "yes 'flood xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                                        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx' | head -n 3000000"])
    quiet = [eng.run_container(f"q{i}", dh.logger_cmd(200, rate=10, streams=("stdout",),
                                                      tag=f"q{i}")) for i in range(7)]
    t_start = time.time()
    time.sleep(25)
    stop.set()
    poller.join(30)
    vals = list(seen.values())
    lat = [t - ts for t, ts, _ in vals]
    if lat:
        print(f"mode={mode} quiet lines seen={len(lat)} p50={pct(lat, 0.5):.2f}s "
              f"p99={pct(lat, 0.99):.2f}s max={max(lat):.2f}s flood lines delivered={nflood[0]} "
              f"in 25 s; limit batch_wait+1 = 2.0 s")
        steady = [t - ts for t, ts, _ in vals if ts >= t_start]
        if steady:
            print(f"  written after every container started: n={len(steady)} "
                  f"p50={pct(steady, 0.5):.2f}s p99={pct(steady, 0.99):.2f}s max={max(steady):.2f}s")
        buckets = {}
        for t, ts, _ in vals:
            buckets.setdefault(int((ts - t_start) // 5) * 5, []).append(t - ts)
        print(f"  inputs paused (outputs full) in {sum(1 for x in paused if x)} of "
              f"{len(paused)} one-second samples")
        print("  by write time: " + ", ".join(f"{k}s: p99 {pct(v, 0.99):.2f}s n={len(v)}"
                                              for k, v in sorted(buckets.items())))
    else:
        print("no quiet lines seen")
    a.stop()
finally:
    stop.set()
    eng.close()
    fk.stop()
