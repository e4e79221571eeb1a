# SPDX-License-Identifier: MIT
"""fairness.py: measurement, not a test (issue 13): one container flooding (`yes`, 3M lines) and
7 logging 10 lines/s, one docker input (argv[1]: api or file) into the fake Loki; prints the
quiet containers' latency (when the harness saw an entry at the fake, polled every 0.1 s, minus
its docker timestamp) p50/p99/max against batch_wait + 1 s = 2 s.
Run: LC_BIN=build/log_capturer /usr/bin/python3 tests/soak/fairness.py api|file
"""
import sys, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
import agent as ag, docker_harness as dh
from fake_loki import FakeLoki
import shutil
mode = sys.argv[1] if len(sys.argv) > 1 else "api"
w = Path(__file__).resolve().parents[2] / "build" / ("fairness-" + mode); shutil.rmtree(w, ignore_errors=True); w.mkdir(parents=True)
eng = dh.DockerEngine(); eng.start()
fk = FakeLoki(); fk.start()
try:
    inp = {"type": "docker", "name": "d", "mode": mode, "socket": eng.sock, "root": eng.data_root,
           "start_at": "beginning", "max_age": "0"}
    a = ag.Agent(w, [inp], [{"type": "loki", "name": "loki", "url": fk.url}],
                 extra={"batch_wait": "1s", "checkpoint_interval": "1s"})
    a.start()
    flood = eng.run_container("flood", ["sh", "-c", "yes 'flood xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx' | head -n 3000000"])
    quiet = [eng.run_container(f"q{i}", dh.logger_cmd(200, rate=10, streams=("stdout",), tag=f"q{i}")) for i in range(7)]
    seen = {}
    off = 0
    t_end = time.time() + 25
    while time.time() < t_end:
        ents = fk.entries()
        t = time.time()
        for e in ents[off:]:
            name = e["labels"].get("container_name")
            if name != "flood":
                seen.setdefault(e["line"], (t, e["ts"] / 1e9, name))
        off = len(ents)
        time.sleep(0.1)
    lat = sorted(t - ts for t, ts, _ in seen.values())
    nflood = sum(1 for e in fk.entries() if e["labels"].get("container_name") == "flood")
    if lat:
        p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))]
        print(f"mode={mode} quiet lines seen={len(lat)} p50={p(0.5):.2f}s p99={p(0.99):.2f}s max={lat[-1]:.2f}s flood lines delivered={nflood} in 25 s; limit batch_wait+1 = 2.0 s")
    else:
        print("no quiet lines seen")
    a.stop()
finally:
    eng.close(); fk.stop()
