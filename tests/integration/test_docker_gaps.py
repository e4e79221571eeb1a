# SPDX-License-Identifier: MIT
"""test_docker_gaps.py: Docker-side gaps found against the real engine (issues 15, 18, 19).

Each test runs the real agent binary (build/log_capturer, or LC_BIN) with `docker`
inputs on the harness's private engine and a file output, and checks what a user
would: which containers' lines arrive, how many times, and what the agent said.
Run with -s to see the numbers.
"""

import collections
import json
import os
import re
import time
from datetime import datetime, timezone

import pytest

import agent as ag
from docker_harness import IMAGE, expected_lines, logger_cmd

pytestmark = [
    pytest.mark.docker,
    pytest.mark.skipif(not ag.have_binary(), reason="build/log_capturer not built"),
]


def docker_input(eng, mode, name="c", **kw):
    d = {"type": "docker", "name": name, "mode": mode, "socket": eng.sock,
         "root": eng.data_root, "start_at": "beginning", "max_age": "0"}
    if mode == "file":
        d.update({"rescan_interval": "250ms", "poll_interval": "100ms"})
    d.update(kw)
    return d


def log_time(record):
    """The wall time (s since the epoch) of one of the agent's log records."""
    t = datetime.strptime(record["time"], "%Y-%m-%dT%H:%M:%S.%fZ")
    return t.replace(tzinfo=timezone.utc).timestamp()


def lines_by(records, key):
    """{labels[key]: Counter(line)}"""
    out = collections.defaultdict(collections.Counter)
    for r in records:
        out[r["labels"].get(key)][r["line"]] += 1
    return out


def warnings(a, text):
    return [r for r in a.log_records()
            if r.get("level") in ("warn", "error") and text in (r.get("msg") or r.get("message")
                                                               or str(r))]


# ------------------------------------------------------------------ issue 15.1: label filters

# container -> labels
LABELLED = {
    "a": {"bars": "9", "team": "core"},
    "b": {"logging": "off"},
    "c": {"app.tier": "front"},
    "d": {},
}

# input name -> (include.labels, exclude.labels, labels_allowlist, containers expected)
LABEL_CASES = {
    "inc_key": (["bars"], [], [], {"a"}),
    "inc_kv": (["bars=9"], [], [], {"a"}),
    "inc_kv_other": (["bars=8"], [], [], set()),
    "inc_glob_kv": (["app.*=fr*"], [], [], {"c"}),
    "inc_glob_both": (["ba?s=[0-9]"], [], [], {"a"}),
    "inc_allow": (["bars=9"], [], ["team"], {"a"}),
    "exc_key": ([], ["logging"], [], {"a", "c", "d"}),
    "exc_kv": ([], ["logging=off"], [], {"a", "c", "d"}),
    "exc_globs": ([], ["log*=of?", "app.*"], [], {"a", "d"}),
    "exc_allow": ([], ["logging=off"], ["zzz", "team"], {"a", "c", "d"}),
}


@pytest.mark.parametrize("mode", ["api", "file"])
def test_label_filters_match_all_labels(docker, tmp_path, mode):
    """include.labels / exclude.labels by key, key=value and globs on both, with and without
    labels_allowlist: each input ships exactly its containers (issue 15, part 1)."""
    prefix = f"lf{mode[0]}-"
    for c, labels in LABELLED.items():
        docker.run_container(prefix + c, f"for i in 1 2 3; do echo {c} line $i; done; sleep 60",
                             labels=labels)
    inputs = []
    for name, (inc, exc, allow, _) in LABEL_CASES.items():
        inp = docker_input(docker, mode, name=name, labels={"case": name},
                           include={"names": [prefix + "*"], "labels": inc},
                           exclude={"labels": exc}, labels_allowlist=allow)
        if not inc:
            del inp["include"]["labels"]
        if not exc:
            del inp["exclude"]
        if not allow:
            del inp["labels_allowlist"]
        inputs.append(inp)
    a = ag.Agent(tmp_path, inputs, name=f"agent-{mode}")
    a.start()
    try:
        want = sum(3 * len(exp) for *_, exp in LABEL_CASES.values())
        ag.wait_until(lambda: len(a.output().records) >= want, ag.scaled(30), interval=0.2)
        time.sleep(2)  # anything extra would have arrived by now
        recs = a.output().records
    finally:
        a.stop()
    got = collections.defaultdict(collections.Counter)
    for r in recs:
        got[r["labels"]["case"]][r["labels"]["container_name"]] += 1
    for name, (*_, exp) in LABEL_CASES.items():
        have = dict(got.get(name, {}))
        assert have == {prefix + c: 3 for c in exp}, (mode, name, have)
    # the allowlist still decides which labels are attached, filters or not
    inc_allow = [r["labels"] for r in recs if r["labels"]["case"] == "inc_allow"]
    assert inc_allow and all(lb.get("team") == "core" and "bars" not in lb for lb in inc_allow)
    print(f"\nlabel filters ({mode}): {len(recs)} lines, {len(LABEL_CASES)} inputs as expected")


# ------------------------------------------------------------------ issue 18: rotation replays

def test_api_rotation_replays_skipped(docker, tmp_path):
    """Api mode follows two loggers whose json-file rotates often: a max-size=10k max-file=1
    one printing 400 numbered lines at 20/s, and a max-size=64k one at 200 lines/s for about
    25 s (the issue's 2-minute run, shortened to keep CI fast). Every line arrives exactly
    once; the daemon's re-emitted lines are counted as skipped replays (issue 18)."""
    a = ag.Agent(tmp_path, [docker_input(docker, "api", include={"names": ["rr-*"]})])
    a.start()
    try:
        assert ag.wait_until(lambda: (a.metric("log_capturer_docker_api_streams_open",
                                               input="c") or 0) >= 1, ag.scaled(20))
        docker.run_container("rr-small", logger_cmd(400, rate=20, streams=("stdout",), tag="s"),
                             log_opts={"max-size": "10k", "max-file": "1"})
        docker.run_container("rr-64k", logger_cmd(5000, rate=200, streams=("stdout",), tag="b",
                                                  pad=100),
                             log_opts={"max-size": "64k", "max-file": "2"})
        want = {"rr-small": expected_lines(400, "stdout", tag="s"),
                "rr-64k": expected_lines(5000, "stdout", tag="b", pad=100)}
        total = sum(len(v) for v in want.values())
        deadline = time.monotonic() + ag.scaled(90)
        while time.monotonic() < deadline and docker.running_ids():
            time.sleep(0.5)
        ag.wait_until(lambda: len(a.output().records) >= total, ag.scaled(20), interval=0.2)
        time.sleep(1)
        recs = a.output().records
        replayed = a.metric("log_capturer_docker_replayed_lines_skipped_total", input="c")
    finally:
        a.stop()
    got = lines_by(recs, "container_name")
    summary = {}
    for name, lines in want.items():
        c = got.get(name, collections.Counter())
        dups = sum(n - 1 for n in c.values() if n > 1)
        missing = sum(1 for x in lines if x not in c)
        summary[name] = (sum(c.values()), len(c), dups, missing)
    print(f"\nrotation replays: (arrived, unique, duplicates, missing) {summary}; "
          f"replays skipped {replayed}")
    for name, lines in want.items():
        c = got.get(name, collections.Counter())
        assert summary[name][2:] == (0, 0), (name, summary[name])
        assert sum(c.values()) == len(lines), (name, summary[name])
    assert replayed is not None, "log_capturer_docker_replayed_lines_skipped_total missing"


# ------------------------------------------------------------------ issue 15.3: --rm containers

def test_api_short_lived_rm_containers_all_read(docker, tmp_path):
    """200 `docker run --rm` containers each printing one line (6 at a time), agent in api
    mode: every line arrives or its container is counted and named as missed (a race only GET
    /logs has: the daemon removed the log first), at least 95% arrive, FDs and threads back to their
    baseline, no stream left open (issue 15, part 3), and the leak watchdog, sampling every
    second, flags nothing (issue 10)."""
    from concurrent.futures import ThreadPoolExecutor
    n = 200
    # The leak watchdog samples every second over the churn (issue 10: a churn of 200
    # containers is not flagged); RSS growth while the allocator warms up is not its subject.
    # When the churn starts, the sockets in flight step up from none to a level (a stream, the
    # final read, an inspect per container, 6 at a time): in a window of seconds a step reads
    # as growth, so only what the watchdog says once its 30 s window holds churn alone is
    # judged (a leak keeps growing then); that every socket closes is checked below (FDs back
    # at baseline). max_fds_per_min 6: the level wavers by a few sockets as containers come
    # and go.
    wd_window_s = 30
    wd = {"interval": "1s", "window": f"{wd_window_s}s", "max_rss_per_min": "64MiB",
          "max_fds_per_min": 6}
    a = ag.Agent(tmp_path, [docker_input(docker, "api", include={"names": ["rm-*"]})],
                 extra={"watchdog": wd})
    a.start()
    try:
        assert ag.wait_until(lambda: (a.metric("log_capturer_docker_api_streams_open",
                                               input="c") or 0) >= 1, ag.scaled(20))
        # warm-up: the pooled connections for short requests get opened
        for i in range(3):
            docker.cli("run", "--rm", "--network", "none", "--name", f"rm-warm{i}", IMAGE,
                       "sh", "-c", f"echo warm {i}")
        ag.wait_until(lambda: len(a.output().records) >= 3, ag.scaled(10))
        ag.wait_until(lambda: a.metric("log_capturer_docker_streams", input="c") == 0, 20)
        time.sleep(0.5)
        base_fds, base_threads = a.fds(), a.threads()
        # a warm-up container the daemon removed before its log was read is counted too; only
        # the churn's own are compared with its lines below
        missed0 = a.metric("log_capturer_docker_missed_containers_total", input="c") or 0
        t0 = time.monotonic()
        judged_from = time.time() + wd_window_s + 5  # the window holds churn samples only

        engine_rm_races = []

        def run(i):
            try:
                docker.cli("run", "--rm", "--network", "none", "--name", f"rm-{i}",
                           "--cidfile", tmp_path / f"cid-{i}", IMAGE, "sh", "-c",
                           f"echo churn {i}", timeout=60)
            except RuntimeError as e:
                # dockerd (vfs) sometimes fails the --rm removal while a log reader still
                # has the directory ("unable to remove filesystem ... directory not empty"):
                # the container ran and printed; only its removal failed (removed below)
                if "unable to remove filesystem" not in str(e):
                    raise
                engine_rm_races.append(i)

        with ThreadPoolExecutor(6) as ex:
            list(ex.map(run, range(n)))
        run_s = time.monotonic() - t0
        for i in engine_rm_races:
            docker.cli("rm", "-f", f"rm-{i}", check=False)
        ag.wait_until(lambda: len(a.output().records) >= n + 3, ag.scaled(30), interval=0.2)
        assert ag.wait_until(lambda: a.metric("log_capturer_docker_streams", input="c") == 0, 20)
        ag.wait_until(lambda: a.fds() <= base_fds and a.threads() <= base_threads, 10,
                      interval=0.5)
        fds, threads = a.fds(), a.threads()
        missed = (a.metric("log_capturer_docker_missed_containers_total", input="c") or 0) - missed0
        recs = a.output().records
        samples = a.metric("log_capturer_watchdog_samples_total")
        growth = {dict(lb)["resource"]: v for (name, lb), v in a.metrics().items()
                  if name == "log_capturer_watchdog_growth"}
        wd_status = a.health()[1]["components"]["watchdog"]["status"]
    finally:
        a.stop()
    wd_all = [r for r in a.log_records() if r.get("component") == "watchdog"]
    wd_warns = [r["msg"] for r in wd_all if log_time(r) >= judged_from]
    print(f"\nwatchdog: {len(wd_all)} warnings in all, {len(wd_warns)} once its window held "
          f"churn alone ({run_s - wd_window_s - 5:.0f} s of the churn judged): "
          f"{[r['msg'] for r in wd_all][:3]}")
    assert run_s > wd_window_s + 15, "the churn was too short to judge the watchdog"
    assert samples >= 20 and set(growth.values()) == {0} and wd_status == "ok" and not wd_warns, (
        samples, growth, wd_status, wd_warns)
    got = collections.Counter(r["line"] for r in recs if r["line"].startswith("churn "))
    arrived = sum(1 for i in range(n) if got.get(f"churn {i}"))
    print(f"\n--rm churn (api): {arrived} of {n} containers' lines in {run_s:.1f} s, "
          f"duplicates {sum(v - 1 for v in got.values())}, missed counted {missed}, "
          f"removals the engine failed {len(engine_rm_races)}; "
          f"FDs {base_fds} -> {fds}, threads {base_threads} -> {threads}")
    if arrived != n or missed:
        print("\n".join(str(r) for r in a.log_records() if r.get("level") != "info"))
    # Nothing silent: a container the daemon removed before its log could be read to its end (a
    # race only GET /logs has; it shows on a loaded machine) is counted and logged, one by one.
    # Every container whose line is missing is named in such a warning. One whose stream broke
    # after its line was read may be counted too (the Engine API cannot tell whether it printed
    # more): a false alarm, but only then, and its warning says so.
    ids = {f"rm-{i}": (tmp_path / f"cid-{i}").read_text().strip()
           for i in range(n) if (tmp_path / f"cid-{i}").exists()}
    warned, suppressed = {}, 0
    for r in a.log_records():
        m = re.match(r"container ([0-9a-f]{12}): (.*)", r.get("msg", ""))
        if r.get("level") == "warn" and m and m.group(2).endswith(" lost"):
            warned[m.group(1)] = m.group(2)
            suppressed += r.get("suppressed", 0)
    lost = [i for i in range(n) if not got.get(f"churn {i}")]
    if lost or warned:
        print(f"lines missing of {lost}; warned of {warned}")
    assert missed >= len(lost), (missed, lost)
    # (the agent's log keeps 5 lines per message in 10 s: past that, the count alone is checked)
    if not suppressed:
        silent = [i for i in lost if ids.get(f"rm-{i}", "?")[:12] not in warned]
        assert not silent, f"containers whose line is missing and nothing said so: {silent}"
        read = {ids.get(f"rm-{i}", "?")[:12] for i in range(n) if got.get(f"churn {i}")}
        alarms = {k: v for k, v in warned.items() if k in read}
        assert all("after the last line read" in v for v in alarms.values()), alarms
        assert missed == len(lost) + len(alarms), (missed, lost, alarms)
    assert arrived >= n * 0.95, arrived
    assert all(v == 1 for v in got.values())
    # only the pool of keep-alive connections for short requests (max_pool_conns = 4, one
    # already open after the warm-up) may have grown; every log stream's socket is closed
    assert fds <= base_fds + 3 and threads <= base_threads, (base_fds, fds, base_threads, threads)


def test_api_containers_ended_while_agent_down(docker, tmp_path):
    """Api mode, agent stopped while two containers still print: one exits (kept), the other
    exits and is removed. On restart the kept one's remaining lines are read from the
    checkpoint (every line exactly once); the removed one is counted as missed and logged
    (issue 15, part 3)."""
    a = ag.Agent(tmp_path, [docker_input(docker, "api", include={"names": ["dr-*"]})])
    a.start()
    try:
        assert ag.wait_until(lambda: (a.metric("log_capturer_docker_api_streams_open",
                                               input="c") or 0) >= 1, ag.scaled(20))
        keep = docker.run_container("dr-keep", logger_cmd(60, rate=10, streams=("stdout",),
                                                          tag="k"))
        gone = docker.run_container("dr-gone", logger_cmd(60, rate=10, streams=("stdout",),
                                                          tag="g"))
        assert ag.wait_until(lambda: len(a.output().records) >= 10, ag.scaled(20))
    finally:
        a.stop()
    before = len(a.output().records)
    docker.wait(keep)
    docker.wait(gone)
    docker.rm(gone)
    a.start()
    try:
        ag.wait_until(lambda: sum(1 for r in a.output().records
                                  if r["line"].startswith("k ")) >= 60, ag.scaled(20))
        time.sleep(1)
        missed = a.metric("log_capturer_docker_missed_containers_total", input="c")
        recs = a.output().records
    finally:
        a.stop()
    got = collections.Counter(r["line"] for r in recs if r["line"].startswith("k "))
    want = expected_lines(60, "stdout", tag="k")
    print(f"\nended while down: {before} lines before the stop; kept container "
          f"{sum(got.values())} lines ({len(got)} unique) of 60; removed one: missed {missed}")
    assert got == collections.Counter(want)
    assert missed == 1
    assert warnings(a, "removed while the agent was down")


# ------------------------------------------------------------------ issue 19: logging drivers

class CountingProxy:
    """A unix-socket relay in front of the daemon's socket that records every request line
    (method and path) the agent sends, to count requests per container."""

    def __init__(self, target, path):
        import re
        import socket
        import threading
        self.target, self.path = target, path
        self.requests = []
        self._re = re.compile(rb"(GET|POST|PUT|DELETE|HEAD) (\S+) HTTP/1\.[01]\r\n")
        self._lock = threading.Lock()
        self._srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._srv.bind(path)
        self._srv.listen(64)
        self._stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        import socket
        import threading
        while not self._stop:
            try:
                cli, _ = self._srv.accept()
            except OSError:
                return
            up = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                up.connect(self.target)
            except OSError:
                cli.close()
                continue
            threading.Thread(target=self._pump, args=(cli, up, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(up, cli, False), daemon=True).start()

    def _pump(self, src, dst, record):
        import socket
        buf = b""
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if record:
                    buf = (buf + data)[-8192:]
                    for m in self._re.finditer(buf):
                        self._request(src, m.group(1).decode(), m.group(2).decode())
                    last = buf.rfind(b"\r\n")
                    buf = buf[last + 2:] if last >= 0 else buf
                if not self._may_pass(dst, data, record):
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()

    def _request(self, src, method, path):
        with self._lock:
            self.requests.append((method, path))

    def _may_pass(self, dst, data, record):
        """Whether a chunk goes on (a subclass may hold it back first)."""
        return True

    def about(self, cid):
        with self._lock:
            return [r for r in self.requests if cid in r[1]]

    def close(self):
        self._stop = True
        self._srv.close()


# name -> (log driver, log opts, readable in api mode, readable in file mode)
SYSLOG = {"syslog-address": "udp://127.0.0.1:5514"}
DRIVERS = {
    "json": ("json-file", {}, True, True),
    "local": ("local", {}, True, False),
    "none": ("none", {}, False, False),
    "sysdual": ("syslog", SYSLOG, True, False),  # dual logging: the daemon's cache reads back
    "sysnocache": ("syslog", dict(SYSLOG, **{"cache-disabled": "true"}), False, False),
}


@pytest.mark.parametrize("mode", ["api", "file"])
def test_log_drivers_readable_or_said_once(docker, tmp_path, mode):
    """One container per logging driver (json-file, local, none, syslog with and without dual
    logging), 40 lines each, in both modes: the readable ones deliver every line; each
    unreadable one gives exactly one warning naming its driver, the log_driver skip counter,
    a /health note, and at most one request to the daemon (issue 19)."""
    prefix = f"ld{mode[0]}-"
    proxy = CountingProxy(docker.sock, str(tmp_path / "proxy.sock"))
    a = ag.Agent(tmp_path, [docker_input(docker, mode, socket=proxy.path,
                                         include={"names": [prefix + "*"]})])
    a.start()
    ids = {}
    try:
        assert ag.wait_until(lambda: (a.metric("log_capturer_docker_api_streams_open",
                                               input="c") or 0) >= 1, ag.scaled(20))
        for name, (drv, opts, *_) in DRIVERS.items():
            ids[name] = docker.run_container(
                prefix + name, f"i=0; while [ $i -lt 40 ]; do echo {name} $i; i=$((i+1)); done; "
                "sleep 60", log_driver=drv, log_opts=opts)
        col = 2 if mode == "api" else 3
        readable = [n for n, v in DRIVERS.items() if v[col]]
        unreadable = [n for n, v in DRIVERS.items() if not v[col]]
        ag.wait_until(lambda: len(a.output().records) >= 40 * len(readable), ag.scaled(30),
                      interval=0.2)
        time.sleep(3)  # time enough for retries, if any were made
        recs = a.output().records
        skipped = a.metric("log_capturer_docker_skipped_total", input="c", reason="log_driver")
        gauge = a.metric("log_capturer_docker_unreadable_containers", input="c")
        _, health = a.health()
    finally:
        a.stop()
        proxy.close()
    got = lines_by(recs, "container_name")
    warned = {n: [r for r in a.log_records() if r.get("level") == "warn"
                  and ids[n][:12] in r.get("msg", "") and "logging driver" in r.get("msg", "")]
              for n in DRIVERS}
    reqs = {n: proxy.about(ids[n]) for n in DRIVERS}
    print(f"\nlog drivers ({mode}): lines {{{', '.join(f'{n}: {sum(got[prefix + n].values())}' for n in DRIVERS)}}}; "
          f"warnings {{{', '.join(f'{n}: {len(w)}' for n, w in warned.items())}}}; "
          f"requests {{{', '.join(f'{n}: {len(r)}' for n, r in reqs.items())}}}; "
          f"skipped {skipped}; health {health}")
    for n in readable:
        assert got[prefix + n] == collections.Counter(f"{n} {i}" for i in range(40)), n
        assert not warned[n], (n, warned[n])
    for n in unreadable:
        assert not got.get(prefix + n), n
        assert len(warned[n]) == 1, (n, warned[n])
        assert DRIVERS[n][0] in warned[n][0]["msg"], warned[n]
        assert len(reqs[n]) <= 1 + (1 if mode == "api" and n == "sysnocache" else 0), \
            (n, reqs[n])
        assert not [r for r in reqs[n] if "/logs" in r[1]][1:], (n, reqs[n])
    assert skipped == len(unreadable)
    assert gauge == len(unreadable)
    assert f"{len(unreadable)} container(s) unreadable" in json.dumps(health), health


# ------------------------------------------------------------------ issue 18: stalled streams

def test_stalled_stream_reopened(tmp_path):
    """The fake daemon's stream sends 5 lines and then nothing, connection open, while the
    container's log file grows: after stream_stall_timeout the agent reopens it from the
    last line read (since = 1 s before its timestamp: the other stream may have a line
    written after it and stamped before), counts and logs it; every line arrives once
    (issue 18)."""
    from test_docker_api import FakeDocker
    base = 1_700_000_000_000_000_000
    records = [(base + 1000 * i, 1, f"stall {i:02d}") for i in range(12)]
    log_path = tmp_path / "fake-json.log"
    log_path.write_text("x" * 100)
    fake = FakeDocker(str(tmp_path / "docker.sock"), records, cut_after=0, bad_after=0,
                      stall_after=5, log_path=str(log_path))
    a = ag.Agent(tmp_path, [{"type": "docker", "name": "c", "mode": "api",
                             "socket": fake.path, "start_at": "beginning", "max_age": "0",
                             "stream_stall_timeout": "2s"}])
    try:
        a.start()
        assert ag.wait_until(lambda: len(a.output().records) >= 5, ag.scaled(20))
        time.sleep(1.5)  # quiet; the agent notes the file's size
        with open(log_path, "a") as f:
            f.write("y" * 100)  # the daemon wrote more, the stream did not say
        assert ag.wait_until(lambda: len(a.output().records) >= len(records), ag.scaled(20))
        time.sleep(0.5)
        m = a.metrics()
    finally:
        a.stop()
        fake.close()
    got = [r["line"] for r in a.output().records]
    stalls = ag.metric_sum(m, "log_capturer_docker_stream_ends_total", reason="stalled")
    print(f"\nstalled stream: {len(got)} lines of {len(records)}, stalls {stalls}, "
          f"requests since= {fake.log_requests}")
    assert sorted(got) == [r[2] for r in records]
    assert stalls == 1
    # reopened 1 s before the last line read (records[4]): only stdout was read, and a first
    # stderr line stamped before it could have been written after it; what came again was
    # skipped (every line once, above)
    t = records[4][0] - 10**9
    assert fake.log_requests[1] == f"{t // 10**9}.{t % 10**9:09d}"
    assert warnings(a, "sent nothing for")


# ------------------------------------ a removed container's unread tail (api mode, soak)

def _removed_tail(docker, tmp_path, fake, behind, n=1, **opts):
    """n containers each write TAIL_N lines of about 1 KiB at once and keep running; the
    agent (api mode, Loki output, docker input options opts) is held behind when `behind`
    (the fake Loki down: outputs fill, the stream pauses), then the containers are stopped
    (-t 1) and removed, and Loki comes back. Returns a list, per container, of dicts: id,
    missing (expected lines that never arrived), extra (lines that arrived more than once, or
    were not expected), lost (the container's 'lost' warnings) and said (the line counts of its
    'lines read from its log file' info lines); each also has the totals missed
    (missed_containers_total), recovered (tail_recovered_lines_total), unheld
    (skipped_total{reason="max_held_logs"}) and held_max (the most api_held_logs seen)."""
    base = "tail-behind" if behind else "tail-ok"
    names = [base] if n == 1 else [f"{base}-{k}" for k in range(n)]
    out = {"type": "loki", "name": "loki", "url": fake.url, "max_inflight": 1}
    a = ag.Agent(tmp_path, [docker_input(docker, "api", include={"names": [base + "*"]},
                                              max_line_bytes="16KiB", **opts)],
                 outputs=[out], extra={"batch_bytes": "64KiB", "batch_wait": "50ms",
                                       "max_pending_bytes": "1MiB"})
    a.start()
    held_max = 0
    try:
        assert ag.wait_until(lambda: (a.metric("log_capturer_docker_api_streams_open",
                                               input="c") or 0) >= 1, ag.scaled(20))
        if behind:
            fake.down()
        cids = [docker.run_container(name, logger_cmd(TAIL_N, streams=("stdout",), tag=name,
                                                      pad=TAIL_PAD)[2] + "; sleep 600")
                for name in names]
        for cid in cids:
            assert ag.wait_until(lambda: len(docker.logs(cid)[0]) >= TAIL_N, ag.scaled(30),
                                 interval=0.5), "the container did not print its lines"
        if not behind:
            ag.wait_until(lambda: len(fake.entries()) >= TAIL_N * n, ag.scaled(30), interval=0.2)
        time.sleep(1)
        for cid in cids:
            docker.stop(cid, 1)
            held_max = max(held_max, a.metric("log_capturer_docker_api_held_logs", input="c"))
        for cid in cids:
            docker.rm(cid, force=False)
        held_max = max(held_max, a.metric("log_capturer_docker_api_held_logs", input="c"))
        if behind:
            fake.up()
        assert ag.wait_until(lambda: a.metric("log_capturer_docker_streams", input="c") == 0,
                             ag.scaled(30), interval=0.2)
        # delivered: nothing pending at the output, and the count still for 2 s
        seen = [-1, time.monotonic()]

        def settled():
            k = len(fake.entries())
            if k != seen[0] or a.metric("log_capturer_output_pending_bytes", output="loki"):
                seen[:] = [k, time.monotonic()]
            return time.monotonic() - seen[1] >= 2

        assert ag.wait_until(settled, ag.scaled(60), interval=0.2), "the output never drained"
        totals = {
            "missed": a.metric("log_capturer_docker_missed_containers_total", input="c") or 0,
            "recovered": a.metric("log_capturer_docker_api_tail_recovered_lines_total",
                                  input="c") or 0,
            "unheld": a.metric("log_capturer_docker_skipped_total", input="c",
                               reason="max_held_logs") or 0,
            "held_max": held_max,
            "held_end": a.metric("log_capturer_docker_api_held_logs", input="c")}
    finally:
        a.stop()
    got = collections.Counter(e["line"] for e in fake.entries())
    res = []
    for name, cid in zip(names, cids):
        want = expected_lines(TAIL_N, "stdout", tag=name, pad=TAIL_PAD)
        missing = [x for x in want if x not in got]
        wanted = set(want)
        extra = [x for x, k in got.items() if x in wanted and k > 1]
        lost = [r.get("msg") for r in warnings(a, "lost") if cid[:12] in (r.get("msg") or "")]
        said = [int(m.group(1)) for r in a.log_records()
                for m in [re.search(r"container " + cid[:12] + r": removed while its log stream "
                                    r"was behind: (\d+) lines read from its log file",
                                    r.get("msg") or "")] if m]
        print(f"\n{name}: {TAIL_N - len(missing)}/{TAIL_N} lines arrived ({len(extra)} extra), "
              f"said {said}, warnings {lost}")
        res.append(dict(totals, id=cid, missing=missing, extra=extra, lost=lost, said=said))
    alien = [x for x in got if not any(x.startswith(f"{nm} ") for nm in names)]
    assert not alien, alien[:3]
    print(f"totals: {totals}")
    return res


TAIL_N, TAIL_PAD = 2000, 1000


def test_api_removed_while_behind_tail_recovered(docker, tmp_path, fake):
    """Api mode: two containers stopped and removed while the agent's streams of them are
    behind (outputs full during a Loki outage): the daemon's follower ends with the file, so
    their unread last lines are read from their json-file logs, held open since they died
    (issue 13), one container after the other (a reader's buffers exist for its turn only).
    Every line arrives once after Loki is back, the recovered ones are counted and said in one
    info line per container, and neither is counted as missed."""
    rs = _removed_tail(docker, tmp_path, fake, behind=True, n=2)
    for r in rs:
        assert not r["missing"], (f"{len(r['missing'])} lines lost (first {r['missing'][0]!r})",
                                  r["lost"], r["missed"], r["recovered"])
        assert not r["extra"], r["extra"][:3]
        assert not r["lost"] and len(r["said"]) == 1, (r["lost"], r["said"])
    t = rs[0]
    assert t["missed"] == 0 and t["held_end"] == 0, t
    assert t["recovered"] > 0, "the streams reached the end: nothing was recovered"
    assert sum(r["said"][0] for r in rs) == t["recovered"], ([r["said"] for r in rs], t)


def test_api_removed_caught_up_nothing_counted(docker, tmp_path, fake):
    """The control: the agent keeps up, the container is stopped and removed: every line
    arrives, nothing is counted or said to be lost."""
    r = _removed_tail(docker, tmp_path, fake, behind=False)[0]
    assert not r["missing"] and not r["extra"], (r["missing"][:3], r["extra"][:3])
    assert not r["lost"] and r["missed"] == 0 and r["recovered"] == 0, r
    assert r["held_end"] == 0, r


def test_api_max_held_logs_limit(docker, tmp_path, fake):
    """max_held_logs at its limit: two containers removed while their streams are behind,
    max_held_logs 1. One log is held and its unread tail recovered; the other is not held:
    counted (skipped_total{reason="max_held_logs"}, missed_containers_total) and its lost range
    named. The held_logs gauge never passes 1 and is back at 0 at the end."""
    rs = _removed_tail(docker, tmp_path, fake, behind=True, n=2, max_held_logs=1)
    t = rs[0]
    assert t["held_max"] == 1 and t["held_end"] == 0, t
    assert t["unheld"] == 1 and t["missed"] == 1, t
    whole = [r for r in rs if not r["missing"]]
    cut = [r for r in rs if r["missing"]]
    assert len(whole) == 1 and len(cut) == 1, [len(r["missing"]) for r in rs]
    assert whole[0]["said"] == [t["recovered"]] and t["recovered"] > 0 and not whole[0]["lost"]
    # "removed before its log stream reached ... (TO)", or, when its stream had read nothing
    # yet (the pending budget was full before it started), "removed before its log could be read"
    assert len(cut[0]["lost"]) == 1 and "removed before its log" in cut[0]["lost"][0], cut[0]
    assert not cut[0]["said"]
    assert not any(r["extra"] for r in rs)


class HoldingProxy(CountingProxy):
    """A CountingProxy that can hold two things back, as a loaded daemon or agent delays
    them: the agent's /logs requests (not sent to the daemon until released) and the
    daemon's /events stream (its bytes not passed to the agent until released)."""

    def __init__(self, target, path):
        import threading
        self.logs_go, self.events_go = threading.Event(), threading.Event()
        self.logs_go.set()
        self.events_go.set()
        self._events_socks = set()
        super().__init__(target, path)

    def _request(self, src, method, path):
        super()._request(src, method, path)
        if "/events" in path:
            self._events_socks.add(src)

    def _may_pass(self, dst, data, record):
        if record and re.search(rb"GET \S+/logs\?", data):
            return self.logs_go.wait(60)
        if not record and dst in self._events_socks:
            return self.events_go.wait(60)
        return True


def test_api_log_removed_before_read_counted(docker, tmp_path):
    """Api mode: a container's json-file log is removed before the agent's stream read it and
    before the agent saw its `die` (the daemon's removal racing a loaded agent; found in CI:
    one --rm container of 200 whose open failed "no such file or directory", lost with
    nothing said). The daemon then answers the stream with nothing, as for a container that
    printed nothing; the agent counts the container as missed and names it (issue 13)."""
    proxy = HoldingProxy(docker.sock, str(tmp_path / "proxy.sock"))
    a = ag.Agent(tmp_path, [docker_input(docker, "api", socket=proxy.path,
                                         include={"names": ["gone-*"]})])
    a.start()
    try:
        assert ag.wait_until(lambda: (a.metric("log_capturer_docker_api_streams_open",
                                               input="c") or 0) >= 1, ag.scaled(20))
        proxy.logs_go.clear()
        cid = docker.run_container("gone-1", "echo gone line; sleep 2")
        assert ag.wait_until(lambda: any("/logs?" in p for _, p in proxy.about(cid)),
                             ag.scaled(10), interval=0.05), "no log stream was asked for"
        time.sleep(0.5)  # its LogPath learned (an inspect at its start)
        proxy.events_go.clear()
        docker.cli("wait", cid, timeout=30)
        log_path = docker.api_json(f"/containers/{cid}/json")["LogPath"]
        os.unlink(log_path)  # what the daemon's removal does first
        proxy.logs_go.set()
        assert ag.wait_until(lambda: (a.metric("log_capturer_docker_stream_starts_total",
                                               input="c", reason="final") or 0) >= 1,
                             ag.scaled(10), interval=0.1), "its stream never ended"
        proxy.events_go.set()
        time.sleep(0.5)  # its `die` seen
        docker.rm(cid, force=False)
        assert ag.wait_until(lambda: a.metric("log_capturer_docker_missed_containers_total",
                                              input="c"), ag.scaled(10), interval=0.1)
        time.sleep(1)
        missed = a.metric("log_capturer_docker_missed_containers_total", input="c")
        recs = a.output().records
    finally:
        a.stop()
        proxy.logs_go.set()
        proxy.events_go.set()
        proxy.close()
    said = [r["msg"] for r in warnings(a, cid[:12]) if r["msg"].endswith(" lost")]
    print(f"\nlog removed before read: lines {len(recs)}, missed {missed}, said {said}")
    assert not recs  # gone with its file: the daemon has nothing left to give
    assert missed == 1, missed
    assert len(said) == 1 and "its log file was removed before its stream read it" in said[0], said
