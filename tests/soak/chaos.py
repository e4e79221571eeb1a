# SPDX-License-Identifier: MIT
"""chaos.py: kill -9 the agent at random moments while it reads files, docker file mode and
docker api mode at once, restart it each time, and check that no line was lost.

Load: `--files` log files written by this process (paced) and `--containers` containers on a
private engine (tests/integration/docker_harness.py), json-file `max-size=1m max-file=5`,
each writing a known number of lines on both streams and exiting (removed only at the end).
The agent (checkpoint_interval 100ms, max_pending_bytes 1MiB) reads the files (input group
`file`) and the containers twice, `dapi` (mode api) and `dfile` (mode file), into the fake
Loki. Kills: `--kills` at random moments; every third one right after the fake answered a
push with 400 (the batch is then being written to the dead-letter queue), the others at
random times (with a 100 ms checkpoint interval, often during a checkpoint flush). After the
last restart everything is drained, the agent stopped, the DLQ replayed (`log_capturer dlq
replay`) and every line checked: written, delivered, lost (must be 0), duplicated (printed,
bounded by what can be in flight: kills x max_pending_bytes / line size, per input).

Run: tests/soak/run.sh chaos [--lines N] [--kills K]  (default 1,000,000 lines, 10 kills);
CI: --lines 100000 --kills 5. Exit 0 pass, 1 fail, 2 could not run.
"""

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1] / "tests" / "integration"))

import agent as ag  # noqa: E402
import soak  # noqa: E402
from containers import container_cmd  # noqa: E402

MAX_PENDING = 1 << 20
# The drain ends early when nothing was pending or sent for this long: longer than the docker
# input's longest reconnect backoff (reconnect_max, 30 s), so a stream waiting to be reopened
# gets its turn before what it has not read yet counts as lost.
QUIET_S = 40


def now():
    return time.monotonic()


class Chaos:
    def __init__(self, a):
        self.a = a
        self.work = Path(a.workdir).resolve()
        self.logdir = self.work / "logs"
        self.tracker = soak.Tracker()
        self.t0 = [now()]
        self.events = soak.Events(self.t0)
        self.stop = threading.Event()
        self.failures = []
        self.kills = []  # (t, kind)
        self.phase = "ok"

    # the collector and fake come from soak.py's Harness
    start_fake = soak.Harness.start_fake
    _fake_ready = soak.Harness._fake_ready

    def fake_stats(self):
        # a loaded machine: the Python fake may answer slowly
        st, body, _ = ag.http_get(self.fake_port, "/fake/stats", timeout=60)
        return json.loads(body)

    def file_writer(self, k, total, rate):
        key = f"f{k}"
        path = self.logdir / f"{key}.log"
        seq = 0
        t0 = now()
        with open(path, "a") as f:
            while seq < total and not self.stop.is_set():
                due = min(total, int((now() - t0) * rate)) - seq
                if due > 0:
                    n = min(due, 5000)
                    f.write("".join(soak.make_line(key, seq + i) + "\n" for i in range(n)))
                    f.flush()
                    self.tracker.wrote(f"file/{key}", n)
                    seq += n
                time.sleep(0.05)

    def config(self):
        common = {"start_at": "beginning", "max_age": "0", "socket": self.eng.sock}
        inputs = [
            {"type": "file", "name": "files", "start_at": "beginning",
             "paths": [str(self.logdir / "*.log")], "labels": {"job": "soak"}},
            {"type": "docker", "name": "dapi", "mode": "api", **common,
             "labels": {"job": "dapi"}},
            {"type": "docker", "name": "dfile", "mode": "file", "root": self.eng.data_root,
             **common, "labels": {"job": "dfile"}},
        ]
        out = {"type": "loki", "name": "loki", "url": f"http://127.0.0.1:{self.fake_port}",
               "encoding": "protobuf", "max_inflight": 4, "timeout": "5s",
               "retry": {"initial": "200ms", "max": "2s", "max_batches": 1000},
               "breaker": {"failures": 0}}
        extra = {"checkpoint_interval": "100ms", "batch_wait": "200ms",
                 "max_pending_bytes": "1MiB", "shutdown_timeout": "30s"}
        return inputs, [out], extra

    def kill_once(self, k):
        kind = "after-400" if k % 3 == 1 else "random"
        if kind == "after-400":
            before = self.fake_stats()["requests_by_status"].get("400", 0)
            soak.http_post_json(self.fake_port, "/fake/mode", {"mode": "400_too_old",
                                                               "count": 1})
            deadline = now() + 15
            while now() < deadline and \
                    self.fake_stats()["requests_by_status"].get("400", 0) <= before:
                time.sleep(0.005)
            else:
                if now() >= deadline:
                    kind = "after-400 (no 400 in 15 s: random)"
            time.sleep(random.uniform(0, 0.02))  # the DLQ append is on the disk worker now
        self.agent.kill9()
        self.kills.append((round(now() - self.t0[0], 1), kind))
        print(f"[{now() - self.t0[0]:6.1f}s] kill -9 #{k + 1} ({kind})", flush=True)
        time.sleep(random.uniform(0.1, 1.0))
        soak.http_post_json(self.fake_port, "/fake/mode", {"mode": "ok"})
        self.agent.start(timeout=30)

    def run(self):
        a = self.a
        import shutil
        import docker_harness as dh
        if self.work.exists():
            shutil.rmtree(self.work)
        self.logdir.mkdir(parents=True)
        random.seed(a.seed)
        self.fake_proc = None
        self.eng = None
        self.agent = None
        try:
            dh.sweep_stale()
            self.eng = dh.DockerEngine()
            self.eng.start()
            self.start_fake()
            self.collector = soak.LokiCollector(self.fake_port, self.tracker)
            inputs, outputs, extra = self.config()
            self.agent = ag.Agent(self.work, inputs, outputs, extra=extra, name="agent")
            self.agent.start(timeout=30)
            self.t0[0] = now()
            # Half the lines in files, half in containers (each read by two docker inputs).
            file_lines = a.lines // 2
            per_c = (a.lines - file_lines) // (2 * a.containers)  # per stream
            dur = a.seconds
            writers = [threading.Thread(target=self.file_writer,
                                        args=(k, file_lines // a.files,
                                              file_lines / a.files / dur), daemon=True)
                       for k in range(a.files)]
            for t in writers:
                t.start()
            per_tick = max(1, int(per_c / dur / 10))
            cids = []
            self.cids = {}
            for c in range(a.containers):
                name = f"c{c}"
                for g in ("dapi", "dfile"):
                    for s in ("o", "e"):
                        self.tracker.wrote(f"{g}/{name}.r1.{s}", per_c)
                cids.append(self.eng.run_container(
                    name, container_cmd(name, per_c, per_tick, ("o", "e"), "exit 0"),
                    log_opts={"max-size": "1m", "max-file": "5"}))
            print(f"chaos: {a.lines} lines ({file_lines} in {a.files} files, {per_c} x 2 "
                  f"streams in {a.containers} containers, read by api and file mode), "
                  f"{a.kills} kills over ~{dur:.0f} s", flush=True)
            gaps = [random.uniform(0.5, 2.0) for _ in range(a.kills)]
            scale = dur * 0.9 / sum(gaps)
            for k in range(a.kills):
                time.sleep(gaps[k] * scale)
                self.kill_once(k)
            for t in writers:
                t.join(dur * 4 + 60)
            self.cids = {f"c{c}": cid for c, cid in enumerate(cids)}
            for cid in cids:
                self.eng.wait(cid, timeout=dur * 4 + 120)
            # drain
            deadline = now() + a.drain
            keys = list(self.tracker.written)
            quiet = None
            t_drain = now()
            self.drain_end = "deadline"
            while now() < deadline:
                try:
                    self.collector.poll()
                except OSError as e:  # slow fake: again
                    self.events.add("collect-retry", repr(e))
                    continue
                if all(self.tracker.delivered_through(k, self.tracker.written_of(k))
                       for k in keys):
                    self.drain_end = "everything delivered"
                    break
                m = self.agent.metrics()
                pend = ag.metric_sum(m, "log_capturer_output_pending_bytes") or 0
                recs = ag.metric_sum(m, "log_capturer_output_records_total") or 0
                if pend or quiet is None or quiet[1] != recs:
                    quiet = (now(), recs)
                elif now() - quiet[0] >= QUIET_S:
                    self.drain_end = f"nothing pending or sent for {QUIET_S} s"
                    break
                time.sleep(0.5)
            self.drain_end += f" after {now() - t_drain:.1f} s"
            self.m_last = self.agent.metrics()
            rc = self.agent.stop(timeout=60)
            if rc != 0:
                self.failures.append(f"agent exited {rc} on SIGTERM")
            self.collector.poll()
            p = ag.run_cli("dlq", "replay", "-c", str(self.agent.cfg_path), timeout=120)
            self.replay = (p.returncode, (p.stdout + p.stderr).strip().splitlines()[-2:])
            if p.returncode != 0:
                self.failures.append(f"dlq replay exited {p.returncode}")
            self.collector.poll()
            self.fake_final = self.fake_stats()
        except (RuntimeError, AssertionError, OSError, subprocess.SubprocessError) as e:
            self.failures.append(f"harness error: {e!r}"[:2000])
        finally:
            self.stop.set()
            if self.agent:
                self.agent.cleanup()
            if self.fake_proc:
                self.fake_proc.send_signal(signal.SIGINT)
                try:
                    self.fake_proc.wait(10)
                except subprocess.TimeoutExpired:
                    self.fake_proc.kill()
            if self.eng:
                self.eng.close()
        return self.report()

    def report(self):
        lines = []
        out = lines.append
        out("")
        out(f"=== chaos summary: lines={self.a.lines} kills={len(self.kills)} "
            f"({', '.join(f'{t}s {k}' for t, k in self.kills)})")
        out(f"{'input':<8} {'written':>10} {'delivered':>10} {'lost':>8} {'duplicated':>10} "
            f"{'dup bound':>10}")
        bound = len(self.kills) * MAX_PENDING // 100  # lines in flight per kill, per input
        total_lost = 0
        records = self.agent.log_records() if self.agent else []
        gap_note = ""
        for g in ("file", "dapi", "dfile"):
            w, u, lost, dup, ranges = self.tracker.totals(g)
            keys = set()
            if g == "dapi":  # rotated away while the agent was down: counted and logged
                keys, excused, logged, supp = soak.excuse_api_gaps(
                    self.tracker, ranges, records, getattr(self, "cids", {}))
                gap_note = (f"dapi: {logged} gaps logged{' (some suppressed)' if supp else ''}"
                            f", {excused} of {lost} lost lines inside them (excused)")
                lost -= excused
            total_lost += lost
            out(f"{g:<8} {w:>10} {u:>10} {lost:>8} {dup:>10} {bound:>10}")
            for key, r in sorted(ranges.items())[:8]:
                out(f"  lost in {key} (of {self.tracker.written.get(key)}): {', '.join(r)}"
                    f"{' (in a counted gap)' if key in keys else ''}")
            if dup > bound:
                self.failures.append(f"{g}: {dup} duplicates > bound {bound}")
        out(gap_note)
        m = getattr(self, "m_last", {})
        out(f"agent (last run): dead-lettered batches="
            f"{ag.metric_sum(m, 'log_capturer_loki_dead_lettered_batches_total')}"
            f" missed_containers={ag.metric_sum(m, 'log_capturer_docker_missed_containers_total')}"
            f" lost_generations="
            f"{ag.metric_sum(m, 'log_capturer_docker_lost_generations_total')}"
            f" api_gaps={ag.metric_sum(m, 'log_capturer_docker_api_gaps_total')}; "
            f"dlq replay: {getattr(self, 'replay', None)}")
        fs = getattr(self, "fake_final", None)
        if fs:
            out(f"fake loki: requests={fs.get('requests')} by_status="
                f"{fs.get('requests_by_status')}")
        out(f"drain: {getattr(self, 'drain_end', 'not reached')}")
        if total_lost:
            self.failures.append(f"{total_lost} lines lost")
        if self.failures:
            # what the agent warned of (the run-all summary shows the end of a failed step)
            warns = [r for r in records if r.get("level") in ("warn", "error")]
            out(f"agent warnings and errors: {len(warns)}, the last {min(len(warns), 12)}:")
            for r in warns[-12:]:
                out(f"  {r.get('component', '')}: {r.get('msg', '')}"[:300])
        for f in self.failures:
            out(f"FAIL: {f}")
        out(f"chaos: {'PASS' if not self.failures else 'FAIL'}")
        text = "\n".join(lines) + "\n"
        print(text, end="")
        (self.work / "summary.txt").write_text(text)
        return 0 if not self.failures else 1


def main(argv=None):
    ap = argparse.ArgumentParser(description="kill -9 chaos across file, docker api and file")
    ap.add_argument("--lines", type=int, default=1_000_000, help="lines written in total")
    ap.add_argument("--kills", type=int, default=10)
    ap.add_argument("--files", type=int, default=4)
    ap.add_argument("--containers", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=None,
                    help="writing time (default lines / 4000 per s)")
    ap.add_argument("--drain", type=float, default=180.0)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--workdir", default=str(HERE.parents[1] / "build" / "chaos"))
    a = ap.parse_args(argv)
    if a.seconds is None:
        a.seconds = max(20.0, a.lines / 4000.0)
    if a.seed is None:
        a.seed = int(time.time())
    print(f"chaos: seed {a.seed}", flush=True)
    if not ag.have_binary():
        print(f"chaos: no agent binary at {ag.LC_BIN}", file=sys.stderr)
        return 2
    return Chaos(a).run()


if __name__ == "__main__":
    sys.exit(main())
