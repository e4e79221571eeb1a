# SPDX-License-Identifier: MIT
"""containers.py: container churn for the soak (tests/soak/soak.py --docker, profiles ci/long).

Runs on the private engine of tests/integration/docker_harness.py. `slots` threads each cycle
through: create a container, let it write a known number of lines, stop it, remove it, pause,
again. Every line reads "soak src=<name>.r<run>.<o|e> seq=<i> ..." so the harness checks
delivery line by line, once per docker input (api mode and file mode read the same containers).

Kinds (slot i gets KINDS[i % len(KINDS)]):
  plain    json-file max-size small (rotations every few seconds), both streams, then
           `docker stop` + `docker rm`
  restart  --restart on-failure:2: writes, exits 1, is restarted by the daemon twice (3 runs,
           each numbered by a counter in the container's filesystem), then `docker rm`
  tty      -t: one raw stream (the terminal adds \\r\\n), then stop + rm
  bounce   `docker restart` after its first run (a second run), then stop + rm

A run is over when its last line is in the container's json-file log (read by the harness
from the engine's data root, the ground truth of what the daemon recorded) or the container
exited; only then is the container stopped, so the number of lines written is exact.
"""

import json
import os
import threading
import time

KINDS = ("plain", "restart", "plain", "tty", "plain", "bounce", "plain", "restart")


def container_cmd(name, lines, per_tick, streams, end):
    """busybox sh: run number from /runs, `lines` lines per stream, `per_tick` per 100 ms."""
    body = []
    for s in streams:
        redir = " >&2" if s == "e" else ""
        body.append(f'printf "soak src={name}.r%d.{s} seq=%d pad=xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'
                    f'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\\n" $n $i{redir}')
    return ["sh", "-c",
            "n=$(cat /runs 2>/dev/null || echo 0); n=$((n+1)); echo $n > /runs; sleep 0.3; "
            f"i=0; k=0; while [ $i -lt {int(lines)} ]; do " + "; ".join(body) +
            f"; i=$((i+1)); k=$((k+1)); if [ $k -ge {per_tick} ]; then k=0; sleep 0.1; fi; "
            f"done; {end}"]


class ContainerChurn(threading.Thread):
    """Churns containers in `slots` parallel cycles until h.stop_writing; records what each
    run wrote in h.tracker under every group in `groups` (one per docker input)."""

    def __init__(self, h, eng, slots, lines, rate, groups, pause=1.0, max_size="16k"):
        super().__init__(daemon=True, name="container-churn")
        self.h = h
        self.eng = eng
        self.slots = slots
        self.lines = lines
        self.per_tick = max(1, int(rate // 10))
        self.groups = groups
        self.pause = pause
        self.max_size = max_size
        self.error = None
        self.key = "containers"
        self.lock = threading.Lock()
        self.counts = {"created": 0, "runs": 0, "stopped": 0, "removed": 0, "restarted": 0}
        self.cids = {}  # container name -> id
        self.threads = []

    def count(self, k, n=1):
        with self.lock:
            self.counts[k] = self.counts.get(k, 0) + n

    def run(self):
        self.threads = [threading.Thread(target=self._slot, args=(i,), daemon=True,
                                         name=f"slot{i}") for i in range(self.slots)]
        for t in self.threads:
            t.start()
        for t in self.threads:
            t.join()

    def wrote(self, name, run, streams):
        for g in self.groups:
            for s in streams:
                self.h.tracker.wrote(f"{g}/{name}.r{run}.{s}", self.lines)

    def _log_path(self, cid):
        return os.path.join(self.eng.data_root, "containers", cid, f"{cid}-json.log")

    def _run_done(self, cid, name, run, stream):
        """True when the run's last line is in the current json-file log (its tail)."""
        want = f"src={name}.r{run}.{stream} seq={self.lines - 1} ".encode()
        try:
            with open(self._log_path(cid), "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - 16384))
                return want in f.read()
        except OSError:
            return False

    def _wait(self, pred, timeout, what):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if pred():
                return True
            time.sleep(0.2)
        self.h.events.add("container-timeout", what, True)
        return False

    def _state(self, cid):
        try:
            st = self.eng.inspect(cid)
        except (OSError, RuntimeError, ValueError):
            return {}, 0
        return st.get("State", {}), st.get("RestartCount", 0)

    def _slot(self, i):
        kind = KINDS[i % len(KINDS)]
        gen = 0
        try:
            while not self.h.stop_writing.is_set():
                name = f"s{i}g{gen}"
                gen += 1
                self._cycle(kind, name)
                self.h.stop_writing.wait(self.pause)
        except BaseException as e:  # reported by the harness
            self.error = e
            self.h.events.add("writer-error", f"containers slot {i}: {e!r}", True)

    def _cycle(self, kind, name):
        eng = self.eng
        streams = ("o",) if kind == "tty" else ("o", "e")
        runs_timeout = self.lines / (self.per_tick * 10) * 4 + 30
        opts = {"max-size": self.max_size, "max-file": "3"}
        extra = ["--restart", "on-failure:2"] if kind == "restart" else []
        end = "exit 1" if kind == "restart" else "exec sleep 3600"
        runs = 3 if kind == "restart" else (2 if kind == "bounce" else 1)
        # Written before it starts: a run is never cut short (we wait for its last line).
        for r in range(1, runs + 1):
            self.wrote(name, r, streams)
        cid = eng.run_container(name, container_cmd(name, self.lines, self.per_tick, streams,
                                                    end),
                                tty=(kind == "tty"), log_opts=opts, extra=extra)
        with self.lock:
            self.cids[name] = cid  # the agent's api gap warnings name the id
        self.count("created")
        try:
            if kind == "restart":
                def exited_thrice():
                    st, rc = self._state(cid)
                    return st.get("Status") == "exited" and rc >= 2
                self._wait(exited_thrice, runs_timeout * 3, f"{name}: 3 runs")
                self.count("runs", 3)
                self.count("restarted", 2)
            else:
                self._wait(lambda: self._run_done(cid, name, 1, streams[-1]), runs_timeout,
                           f"{name}: run 1")
                self.count("runs")
                if kind == "bounce":
                    eng.cli("restart", "-t", "1", cid, timeout=60)
                    self.count("restarted")
                    self._wait(lambda: self._run_done(cid, name, 2, streams[-1]), runs_timeout,
                               f"{name}: run 2")
                    self.count("runs")
                eng.stop(cid, timeout=1)
                self.count("stopped")
        finally:
            eng.rm(cid)
            self.count("removed")

    def summary(self):
        with self.lock:
            return json.dumps(self.counts, sort_keys=True)
