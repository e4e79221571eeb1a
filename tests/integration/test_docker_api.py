# SPDX-License-Identifier: MIT
"""test_docker_api.py: the docker input's api mode against a real Docker engine (issue 4).

Each test runs the real agent binary (build/log_capturer, or LC_BIN) with a
`docker` input in mode api on the harness's private engine and a file output,
then compares what arrived with what the containers printed: every line once,
with the right container_name and stream labels. Numbers worth keeping (FDs
and threads around the churn, duplicates after kill -9, connections for 1000
inspects) are printed; run with -s to see them.
"""

import json
import os
import re
import sqlite3
import subprocess
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import agent as ag
from docker_harness import (IMAGE, DockerEngine, DockerUnavailable, _UnixHTTPConnection,
                            expected_lines, logger_cmd, silent_cmd, tty_cmd)

pytestmark = [
    pytest.mark.docker,
    pytest.mark.skipif(not ag.have_binary(), reason="build/log_capturer not built"),
]

REPO = Path(__file__).resolve().parents[2]
NUMBERS = REPO / "build" / "docker-churn-numbers.txt"


# ---------------------------------------------------------------- helpers

def docker_input(eng, **kw):
    inp = {"type": "docker", "name": "c", "mode": "api", "socket": eng.sock,
           "start_at": "beginning", "max_age": "0"}
    inp.update(kw)
    return inp


def new_agent(tmp_path, eng, name="agent", extra=None, **kw):
    return ag.Agent(tmp_path, [docker_input(eng, **kw)], extra=extra, name=name)


def post(eng, path, timeout=60):
    """POST on the engine's socket (the test drives the engine; the agent only GETs)."""
    c = _UnixHTTPConnection(eng.sock, timeout=ag.scaled(timeout))
    try:
        c.request("POST", path)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def by_stream(records):
    """{(container_name, stream): [line, ...]} in arrival order."""
    out = defaultdict(list)
    for r in records:
        out[(r["labels"].get("container_name"), r["labels"].get("stream"))].append(r["line"])
    return out


def compare(got, want):
    """(missing, duplicates, unexpected) of a list of lines against the expected list."""
    g, w = Counter(got), Counter(want)
    missing = sum((w - g).values())
    dups = sum(n - 1 for line, n in g.items() if n > 1 and line in w)
    unexpected = sum(n for line, n in g.items() if line not in w)
    return missing, dups, unexpected


def streams_gauge(a):
    return a.metric("log_capturer_docker_streams", input="c")


def api_streams(a):
    return a.metric("log_capturer_docker_api_streams_open", input="c")


def wait_events_connected(a, timeout=20):
    assert ag.wait_until(lambda: (api_streams(a) or 0) >= 1, timeout), \
        "the agent never opened the events stream:\n" + a.stderr()[-3000:]


def wait_output(a, n, timeout):
    """Waits until the output holds at least n records; returns the records."""
    ag.wait_until(lambda: len(a.output().records) >= n, timeout, interval=0.2)
    return a.output().records


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def fd_kinds(pid):
    """Counter of what the process's FDs point at (socket, anon_inode:[eventpoll], files)."""
    kinds = Counter()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            t = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        kinds[t.split(":[")[0] if t.startswith(("socket:", "pipe:")) else t] += 1
    return kinds


def ckpt_rows(a, prefix="docker:c:"):
    db = a.state_dir / "checkpoints.db"
    con = sqlite3.connect(str(db))
    try:
        return {k: (ts, seq) for k, ts, seq in
                con.execute("SELECT key, ts_ns, ts_seq FROM sources WHERE key LIKE ?",
                            (prefix + "%",))}
    finally:
        con.close()


# A container that counts its runs in its own filesystem: run k prints
# "<tag> run=<k> <stream> <i>" on both streams, so every start is distinct.
def counting_cmd(tag, lines, delay=0.2):
    return ["sh", "-c",
            "n=$(cat /runs 2>/dev/null || echo 0); n=$((n+1)); echo $n > /runs; "
            f"sleep {delay}; i=0; while [ $i -lt {lines} ]; do "
            f'echo "{tag} run=$n stdout $i"; echo "{tag} run=$n stderr $i" >&2; '
            "i=$((i+1)); done"]


def paced_logger_cmd(lines, rate, tag):
    """logger_cmd's lines (both streams) at `rate` lines/s each, paced by the wall clock
    (/proc/uptime, read without forking), so slow ticks are made up for."""
    per_tick = max(1, rate // 10)
    return ["sh", "-c",
            "read up _ < /proc/uptime; t0=${up%.*}${up#*.}; "
            f"i=0; n={int(lines)}; while [ $i -lt $n ]; do k=0; "
            f"while [ $k -lt {per_tick} ] && [ $i -lt $n ]; do "
            f'printf "{tag} stdout %06d\\n" $i; printf "{tag} stderr %06d\\n" $i >&2; '
            "i=$((i+1)); k=$((k+1)); done; "
            "read up _ < /proc/uptime; now=${up%.*}${up#*.}; "
            f"ahead=$((t0 + i * 100 / {rate} - now)); "
            "if [ $ahead -ge 100 ]; then sleep 1; elif [ $ahead -ge 10 ]; then sleep 0.$ahead; "
            "elif [ $ahead -gt 0 ]; then sleep 0.0$ahead; fi; done"]


def counting_expected(tag, runs, lines, stream):
    return [f"{tag} run={k} {stream} {i}" for k in range(1, runs + 1) for i in range(lines)]


# ---------------------------------------------------------------- scenarios

def test_eight_containers_steady(docker, tmp_path):
    """8 containers, 100 lines/s on stdout and on stderr each for 60 s: every line once,
    in order, with its container_name and stream; open streams == running containers."""
    n, lines, rate = 8, 6000, 100
    a = new_agent(tmp_path, docker)
    a.start()
    try:
        wait_events_connected(a)
        cpu0, t0 = cpu_seconds(a.pid), time.monotonic()
        [docker.run_container(f"steady{i}", paced_logger_cmd(lines, rate, f"s{i}"))
         for i in range(n)]
        samples = []
        deadline = time.monotonic() + ag.scaled(120)
        while time.monotonic() < deadline:
            running = len(docker.running_ids())
            g, s = streams_gauge(a), api_streams(a)
            g2 = streams_gauge(a)
            # only in the steady window: near the end a stream closes as its container
            # exits, a moment before `docker ps` stops listing it
            steady = time.monotonic() - t0 < lines / rate - 5
            if running == n and g == g2 and steady:
                samples.append((running, g, s))
            if running == 0:
                break
            time.sleep(2)
        cpu1, t1 = cpu_seconds(a.pid), time.monotonic()
        rss = rss_kib(a.pid)
        total = n * lines * 2
        recs = wait_output(a, total, 30)
        assert ag.wait_until(lambda: streams_gauge(a) == 0, 15)
        assert api_streams(a) == 1  # the events stream only
    finally:
        a.stop()
    print(f"\nsteady: {n} containers x 2 streams x {lines} lines in {t1 - t0:.1f} s; agent CPU "
          f"{cpu1 - cpu0:.2f} s ({100 * (cpu1 - cpu0) / (t1 - t0):.2f} % of a core), "
          f"RSS {rss / 1024:.1f} MiB; streams gauge while all ran: "
          f"{sorted(set((g, s) for _, g, s in samples))}")
    assert not a.output().bad
    assert samples, "never saw all 8 containers running"
    # open streams == followed containers (+1 events stream in the client's gauge)
    assert all(g == n and s == n + 1 for _, g, s in samples), samples
    got = by_stream(recs)
    for i in range(n):
        for st in ("stdout", "stderr"):
            want = expected_lines(lines, st, tag=f"s{i}")
            have = got.get((f"steady{i}", st), [])
            assert compare(have, want) == (0, 0, 0), (f"steady{i}", st, compare(have, want))
            assert have == want, f"steady{i} {st}: out of order"
    assert len(recs) == total


def client_test_binary():
    """The client's unit test binary, next to the agent binary or in build/."""
    for d in (Path(ag.LC_BIN).parent, REPO / "build"):
        if os.access(d / "test_docker_client", os.X_OK):
            return d / "test_docker_client"
    return None


def _connections_for_1000_inspects(eng, cid, exe):
    """Runs the client's unit test against the real daemon; fails unless it passed. Returns
    (connections opened by 1000 inspects, its printed line)."""
    env = dict(os.environ, LC_TEST_DOCKER_SOCK=eng.sock, LC_TEST_DOCKER_CID=cid,
               LC_TEST_FILTER="test_real_daemon")
    p = subprocess.run([str(exe)], env=env, capture_output=True, text=True,
                       timeout=ag.scaled(120))
    out = p.stdout[-3000:] + p.stderr[-2000:]
    assert p.returncode == 0, f"the client's real-daemon test failed:\n{out}"
    assert "[       OK ] test_real_daemon" in p.stdout, out
    m = re.search(r"1000 inspects opened (\d+) connection", p.stdout)
    assert m, f"the client's real-daemon test printed no measurement:\n{out}"
    return int(m.group(1)), m.group(0)


def test_churn_fds_threads_baseline(docker, tmp_path):
    """200 start/stop cycles of short-lived containers (40 containers x 5 runs, then
    removed): no line lost, FDs and threads back at their baseline, no stream left, and
    the destroyed containers' checkpoints deleted."""
    ncont, runs, lines = 40, 5, 10
    a = new_agent(tmp_path, docker)
    a.start()
    try:
        wait_events_connected(a)
        idle_fds, idle_threads = a.fds(), a.threads()
        # Warm-up: the pooled keep-alive connections for short requests get opened.
        warm = [docker.run_container(f"warm{i}", counting_cmd(f"w{i}", 2, delay=0))
                for i in range(4)]
        for w in warm:
            docker.wait(w)
        for w in warm:
            docker.rm(w)
        assert ag.wait_until(lambda: streams_gauge(a) == 0 and api_streams(a) == 1, 20)
        time.sleep(0.5)
        base_fds, base_threads = a.fds(), a.threads()
        base_kinds = fd_kinds(a.pid)
        m0 = a.metrics()

        def create(i):
            return docker.cli("create", "--network", "none", "--name", f"churn{i}", IMAGE,
                              *counting_cmd(f"c{i}", lines)).stdout.strip()

        with ThreadPoolExecutor(4) as ex:
            ids = list(ex.map(create, range(ncont)))
        peak = {"fds": 0, "threads": 0, "streams": 0}
        stop_sampling = threading.Event()

        def sample():
            while not stop_sampling.is_set():
                try:
                    peak["fds"] = max(peak["fds"], a.fds())
                    peak["threads"] = max(peak["threads"], a.threads())
                    peak["streams"] = max(peak["streams"], streams_gauge(a) or 0)
                except (OSError, AssertionError):
                    pass
                time.sleep(0.1)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        t0 = time.monotonic()

        def cycle(cid):
            for _ in range(runs):
                st, body = post(docker, f"/containers/{cid}/start")
                assert st == 204, body
                st, body = post(docker, f"/containers/{cid}/wait")
                assert st == 200, body

        with ThreadPoolExecutor(4) as ex:
            list(ex.map(cycle, ids))
        cycles_s = time.monotonic() - t0
        want_total = ncont * runs * lines * 2
        recs = wait_output(a, want_total + 16, 60)
        # every stream ends with its run; then the containers are destroyed
        assert ag.wait_until(lambda: streams_gauge(a) == 0, 20)
        with ThreadPoolExecutor(4) as ex:
            list(ex.map(lambda c: docker.rm(c), ids))
        assert ag.wait_until(lambda: streams_gauge(a) == 0 and api_streams(a) == 1, 20)
        stop_sampling.set()
        sampler.join(5)

        def settled():
            return a.fds() <= base_fds and a.threads() <= base_threads
        ag.wait_until(settled, 30, interval=0.5)
        after_fds, after_threads = a.fds(), a.threads()
        after_kinds = fd_kinds(a.pid)
        m1 = a.metrics()
    finally:
        a.stop()

    def delta(name, **lb):
        return (ag.metric_sum(m1, name, **lb) or 0) - (ag.metric_sum(m0, name, **lb) or 0)

    starts = delta("log_capturer_docker_stream_starts_total")
    ends = delta("log_capturer_docker_stream_ends_total")
    short_reqs = sum(delta("log_capturer_docker_api_requests_total", endpoint=e)
                     for e in ("inspect", "containers", "ping", "version"))
    conns_new = delta("log_capturer_docker_api_connections_total", kind="new")
    conns_reused = delta("log_capturer_docker_api_connections_total", kind="reused")
    short_new = conns_new - delta("log_capturer_docker_api_requests_total", endpoint="logs") \
        - delta("log_capturer_docker_api_requests_total", endpoint="events")
    rows = ckpt_rows(a)
    report = (
        f"docker api churn: {ncont * runs} start/stop cycles ({ncont} containers x {runs} runs, "
        f"then removed) in {cycles_s:.1f} s\n"
        f"  FDs:     idle {idle_fds}, baseline (after warm-up) {base_fds}, peak {peak['fds']}, "
        f"after {after_fds}\n"
        f"  threads: idle {idle_threads}, baseline {base_threads}, peak {peak['threads']}, "
        f"after {after_threads}\n"
        f"  log streams: started {starts:.0f}, ended {ends:.0f}, peak open {peak['streams']:.0f}, "
        f"open after 0\n"
        f"  short requests {short_reqs:.0f} (inspect/list/ping/version) over "
        f"{short_new:.0f} new connections (connections reused {conns_reused:.0f})\n"
        f"  FDs that differ (after - baseline): {dict(after_kinds - base_kinds)} "
        f"(baseline - after: {dict(base_kinds - after_kinds)})\n"
        f"  lines: {len(recs)} of {want_total} (+16 of the warm-up)\n")
    print("\n" + report)
    NUMBERS.parent.mkdir(parents=True, exist_ok=True)
    NUMBERS.write_text(report)
    assert not a.output().bad
    got = by_stream(recs)
    for i in range(ncont):
        for st in ("stdout", "stderr"):
            want = counting_expected(f"c{i}", runs, lines, st)
            have = got.get((f"churn{i}", st), [])
            assert compare(have, want) == (0, 0, 0), (f"churn{i}", st, compare(have, want))
    # Only the pool of keep-alive connections for short requests may have grown (libcurl's
    # connection cache, at most max_pool_conns = 4): every log stream's socket is closed.
    assert short_new <= 3
    assert after_fds <= base_fds + short_new, (base_fds, after_fds, short_new)
    assert after_kinds - base_kinds <= Counter({"socket": int(short_new)}), after_kinds
    assert after_threads <= base_threads, (base_threads, after_threads)
    assert starts == ends
    # a stopped container's followed stream is read once more, unfollowed (the daemon can end
    # a follow before the file's last lines; tests/soak/chaos.py lost them without this)
    assert delta("log_capturer_docker_stream_starts_total", reason="final") >= 1
    # destroyed containers leave no checkpoint row behind
    assert not [k for k in rows if any(k.endswith(i) for i in ids)], rows


def test_connections_for_1000_inspects(docker):
    """The client's measurement (tests/unit/test_docker_client.c) on the real daemon."""
    if client_test_binary() is None:
        pytest.skip("test_docker_client not built")
    # a running container that printed lines (the unit test lists and reads it)
    cid = docker.run_container("inspect1k", ["sh", "-c", "echo one; echo two; sleep 600"])
    ag.wait_until(lambda: docker.logs(cid)[0], 10, interval=0.2)
    opened, line = _connections_for_1000_inspects(docker, cid, client_test_binary())
    print("\nconnections opened for 1000 inspect calls: " + line)
    # one keep-alive connection serves them all (a new one at most if the daemon closed it)
    assert opened <= 1, line
    with open(NUMBERS, "a") as f:
        f.write(f"  {line}\n")


def live_restore_engine():
    """A private engine of its own with --live-restore (containers outlive a dockerd stop)."""
    try:
        eng = DockerEngine(extra_args=["--live-restore"])
        eng.start()
    except DockerUnavailable as e:
        if os.environ.get("LC_REQUIRE_DOCKER") == "1":
            pytest.fail(f"Docker engine required but unavailable: {e}", pytrace=False)
        pytest.skip(f"Docker engine unavailable: {e}")
    return eng


def test_daemon_restart_resumes(tmp_path):
    """dockerd stopped (SIGTERM) and started again, then killed (SIGKILL) and started again,
    while 3 containers log (live-restore keeps them running): the streams come back, no
    line is lost and, resuming in-process from what was read, none is repeated."""
    eng = live_restore_engine()
    a = new_agent(tmp_path, eng, reconnect_min="100ms", reconnect_max="1s")
    n, lines, rate = 3, 2500, 100
    try:
        a.start()
        wait_events_connected(a)
        ids = [eng.run_container(f"rs{i}", logger_cmd(lines, rate=rate, tag=f"r{i}"))
               for i in range(n)]
        assert ag.wait_until(lambda: streams_gauge(a) == n, 20)
        outages = []
        for how in ("stop", "kill"):
            time.sleep(4)
            t0 = time.monotonic()
            if how == "stop":
                eng.stop_daemon()
            else:
                eng.kill_daemon()
            time.sleep(2)
            eng.start_daemon()
            back = ag.wait_until(lambda: streams_gauge(a) == n and api_streams(a) == n + 1, 30)
            outages.append((how, round(time.monotonic() - t0, 2)))
            assert back, f"streams did not come back after dockerd {how}:\n{a.stderr()[-3000:]}"
            assert len(eng.running_ids()) == n
        for cid in ids:
            eng.wait(cid, timeout=120)
        recs = wait_output(a, n * lines * 2, 30)
        assert ag.wait_until(lambda: streams_gauge(a) == 0, 15)
        m = a.metrics()
    finally:
        a.stop()
        eng.close()
    resumes = ag.metric_sum(m, "log_capturer_docker_stream_starts_total", reason="resume")
    restarts = ag.metric_sum(m, "log_capturer_docker_stream_starts_total", reason="restart")
    errors = ag.metric_sum(m, "log_capturer_docker_stream_ends_total", reason="error")
    got = by_stream(recs)
    totals = [0, 0, 0]
    for i in range(n):
        for st in ("stdout", "stderr"):
            r = compare(got.get((f"rs{i}", st), []), expected_lines(lines, st, tag=f"r{i}"))
            totals = [x + y for x, y in zip(totals, r)]
    print(f"\ndaemon restarts {outages}: streams reopened (resume {resumes:.0f}, "
          f"restart {restarts:.0f}, broken {errors:.0f}); missing {totals[0]}, "
          f"duplicates {totals[1]}, unexpected {totals[2]}")
    assert not a.output().bad
    assert totals == [0, 0, 0]


def test_agent_kill9_restart(docker, tmp_path):
    """kill -9 of the agent while 4 containers log, then a restart on the same state:
    nothing is lost; the duplicates (what was delivered but not yet committed) are counted."""
    n, lines, rate = 4, 1500, 100
    a = new_agent(tmp_path, docker)
    a.start()
    try:
        wait_events_connected(a)
        ids = [docker.run_container(f"k9{i}", logger_cmd(lines, rate=rate, tag=f"k{i}"))
               for i in range(n)]
        assert ag.wait_until(lambda: streams_gauge(a) == n, 20)
        time.sleep(5)
        before = len(a.output().records)
        a.kill9()
        time.sleep(2)
        a.start()
        for cid in ids:
            docker.wait(cid, timeout=120)
        wait_output(a, n * lines * 2, 30)
        assert ag.wait_until(lambda: streams_gauge(a) == 0, 15)
        time.sleep(0.5)  # a last batch_wait
    finally:
        a.stop()
    out = a.output()
    got = by_stream(out.records)
    totals = [0, 0, 0]
    for i in range(n):
        for st in ("stdout", "stderr"):
            r = compare(got.get((f"k9{i}", st), []), expected_lines(lines, st, tag=f"k{i}"))
            totals = [x + y for x, y in zip(totals, r)]
    print(f"\nagent kill -9 after {before} records: missing {totals[0]}, duplicates {totals[1]} "
          f"(delivered, not yet committed), unexpected {totals[2]}, torn output lines "
          f"{len(out.bad)}")
    with open(NUMBERS, "a") as f:
        f.write(f"  kill -9: duplicates {totals[1]}, missing {totals[0]}\n")
    assert totals[0] == 0 and totals[2] == 0
    assert len(out.bad) <= 1  # the line being written when killed


def test_tty_big_line_silent_removed_renamed(docker, tmp_path):
    """A TTY container, a 1 MiB line (cut at max_line_bytes and counted), a container that
    never logs, one removed while followed, one renamed while followed, and one excluded."""
    a = new_agent(tmp_path, docker, exclude={"names": ["skip*"]})
    a.start()
    try:
        wait_events_connected(a)
        tty = docker.run_container("tty1", tty_cmd(50), tty=True)
        docker.run_container(
            "big1", ["sh", "-c", "sleep 0.5; head -c 1048576 /dev/zero | tr '\\000' a; echo; "
                     "echo after-big; sleep 3600"])
        silent = docker.run_container("silent1", silent_cmd())
        gone = docker.run_container("gone1", logger_cmd(100000, rate=50, tag="g",
                                                        streams=("stdout",)))
        ren = docker.run_container("old1", ["sh", "-c", "i=0; while true; do echo \"n $i\"; "
                                            "i=$((i+1)); sleep 0.05; done"])
        docker.run_container("skip1", logger_cmd(10, tag="x"))
        docker.wait(tty)
        assert ag.wait_until(lambda: streams_gauge(a) == 4, 20), streams_gauge(a)  # big silent gone old
        time.sleep(2)
        docker.rm(gone)
        assert ag.wait_until(lambda: streams_gauge(a) == 3, 10), streams_gauge(a)
        docker.rename(ren, "new1")
        ag.wait_until(lambda: any(r["labels"].get("container_name") == "new1"
                                  for r in a.output().records), 10)
        time.sleep(0.5)
        docker.rm(ren)
        assert ag.wait_until(lambda: any(r["line"] == "after-big" for r in a.output().records),
                             20)
        assert streams_gauge(a) == 2  # big and silent
        cut = a.metric("log_capturer_input_truncated_lines_total", input="c")
        m = a.metrics()
    finally:
        a.stop()
    recs = a.output().records
    got = by_stream(recs)
    assert got[("tty1", "stdout")] == [f"t {i}" for i in range(50)]
    bigs = got[("big1", "stdout")]
    assert bigs[1:] == ["after-big"]
    assert len(bigs[0]) == 256 * 1024 and set(bigs[0]) == {"a"}
    assert cut >= 1
    assert ("silent1", "stdout") not in got and ("silent1", "stderr") not in got
    g = got[("gone1", "stdout")]
    want = expected_lines(100000, "stdout", tag="g")
    assert g and g == want[:len(g)], "the removed container's lines are a gap-free prefix"
    old = got[("old1", "stdout")]
    new = got[("new1", "stdout")]
    seq = [int(x.split()[1]) for x in old + new]
    assert new and seq == list(range(len(seq))), "renamed: no line lost or repeated"
    assert not any(k[0] == "skip1" for k in got)
    assert ag.metric_sum(m, "log_capturer_docker_skipped_total", reason="excluded") >= 1
    assert ag.metric_sum(m, "log_capturer_docker_stream_ends_total", reason="shutdown") == 0
    rows = ckpt_rows(a)
    assert not [k for k in rows if k.endswith(gone) or k.endswith(ren)], rows
    assert any(k.endswith(silent) for k in rows)  # still running: kept


def test_switch_from_file_mode(docker, tmp_path):
    """Mode file reads a container, then the same input in mode api goes on from file
    mode's position: nothing lost, nothing repeated beyond a batch."""
    lines = 1500
    cid = docker.run_container("sw1", logger_cmd(lines, rate=100, tag="w", streams=("stdout",)))
    a = new_agent(tmp_path, docker, mode="file", root=docker.data_root)
    a.start()
    ag.wait_until(lambda: len(a.output().records) >= 300, 20, interval=0.2)
    a.stop()
    first = len(a.output().records)
    a.config["inputs"][0]["mode"] = "api"
    a.start()
    docker.wait(cid, timeout=60)
    wait_output(a, lines, 30)
    assert ag.wait_until(lambda: streams_gauge(a) == 0, 15)
    a.stop()
    got = by_stream(a.output().records)[("sw1", "stdout")]
    missing, dups, unexpected = compare(got, expected_lines(lines, "stdout", tag="w"))
    print(f"\nfile -> api after {first} lines: missing {missing}, duplicates {dups}")
    assert missing == 0 and unexpected == 0
    assert dups <= 100


# ---------------------------------------------------------------- faults a real daemon won't make

class FakeDocker:
    """A minimal Engine API on a unix socket: one running container whose log stream
    is cut mid-frame on the first request and carries a malformed frame header on the
    second; the third delivers the rest (split into 7-byte writes) and ends.
    With stall_after=N the first request instead sends N frames and then nothing
    while the connection stays open (a hung follow); the container's LogPath is
    log_path."""

    CID = "f" * 64

    def __init__(self, path, records, cut_after, bad_after, stall_after=None, log_path=""):
        import socketserver
        from http.server import BaseHTTPRequestHandler
        self.path = path
        self.records = records  # [(ts_ns, stream 1|2, text)]
        self.cut_after = cut_after
        self.bad_after = bad_after
        self.stall_after = stall_after
        self.log_path = log_path
        self.log_requests = []  # the since= of each logs request (None when absent)
        self.stop = threading.Event()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def address_string(self):
                return "unix"

            def _json(self, obj):
                body = json.dumps(obj).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _chunk(self, data):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                self.wfile.flush()

            def do_GET(self):
                from urllib.parse import parse_qs, urlsplit
                u = urlsplit(self.path)
                q = parse_qs(u.query)
                p = u.path.split("/v1.41", 1)[-1] if u.path.startswith("/v1") else u.path
                if p == "/_ping":
                    self.send_response(200)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"OK")
                elif p == "/version":
                    self._json({"ApiVersion": "1.41", "MinAPIVersion": "1.12",
                                "Version": "fake"})
                elif p == "/containers/json":
                    self._json([{"Id": fake.CID, "Names": ["/fake1"], "Image": "img",
                                 "State": "running", "Labels": {}}])
                elif p == f"/containers/{fake.CID}/json":
                    self._json({"Id": fake.CID, "Name": "/fake1", "Image": "sha256:0",
                                "LogPath": fake.log_path, "Config": {"Image": "img", "Tty": False,
                                                          "Labels": {}},
                                "State": {"Status": "running", "Running": True},
                                "HostConfig": {"LogConfig": {"Type": "json-file"}}})
                elif p == "/events":
                    self.send_response(200)
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    self.wfile.flush()
                    while not fake.stop.wait(0.05):
                        pass
                elif p == f"/containers/{fake.CID}/logs":
                    self._logs(q.get("since", [None])[0])
                else:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()

            def _logs(self, since):
                k = len(fake.log_requests)
                fake.log_requests.append(since)
                since_ns = 0
                if since:
                    s, ns = since.split(".")
                    since_ns = int(s) * 10**9 + int(ns)
                frames = [fake.frame(r) for r in fake.records if r[0] >= since_ns]
                self.send_response(200)
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                if k == 0 and fake.stall_after is not None:  # sends, then hangs
                    self._chunk(b"".join(frames[:fake.stall_after]))
                    fake.stop.wait(60)
                    self.close_connection = True
                    return
                if k < 2 and fake.stall_after is not None:
                    k = 2
                if k == 0:  # cut in the middle of a frame: the connection just drops
                    self._chunk(b"".join(frames[:fake.cut_after]) +
                                frames[fake.cut_after][:13])
                    self.close_connection = True
                    return
                if k == 1:  # a frame header no daemon sends (stream 9)
                    self._chunk(b"".join(frames[:fake.bad_after]) + b"\x09\0\0\0\0\0\0\x05abcde")
                    fake.stop.wait(5)  # the agent must hang up on its own
                    self.close_connection = True
                    return
                data = b"".join(frames)
                for i in range(0, len(data), 7):  # frames split across reads
                    self._chunk(data[i:i + 7])
                self.wfile.write(b"0\r\n\r\n")  # the container stopped
                self.wfile.flush()

        class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
            daemon_threads = True

        self.server = Server(path, Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @staticmethod
    def frame(r):
        ts, stream, text = r
        t = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts // 10**9))
        payload = f"{t}.{ts % 10**9:09d}Z {text}\n".encode()
        return bytes([stream, 0, 0, 0]) + len(payload).to_bytes(4, "big") + payload

    def close(self):
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()


def test_fake_daemon_cut_and_malformed_streams(tmp_path):
    """A stream cut mid-frame, then one with a malformed header: each is reopened at the
    newest record emitted of the stream that is behind (since=<its ts>), skipping the records
    already emitted, so with five lines sharing one timestamp nothing repeats or is lost."""
    base = 1_700_000_000_000_000_000
    ts = [base, base + 1000, base + 2000] + [base + 3000] * 5 + \
        [base + 4000 + 1000 * i for i in range(12)]
    records = [(t, 1 + (i % 2), f"fake {i:02d}") for i, t in enumerate(ts)]
    sock = str(tmp_path / "docker.sock")
    fake = FakeDocker(sock, records, cut_after=6, bad_after=6)
    a = ag.Agent(tmp_path, [{"type": "docker", "name": "c", "mode": "api", "socket": sock,
                             "start_at": "beginning", "max_age": "0",
                             "reconnect_min": "50ms", "reconnect_max": "200ms"}])
    try:
        a.start()
        recs = wait_output(a, len(records), 20)
        assert ag.wait_until(lambda: streams_gauge(a) == 0, 10)
        m = a.metrics()
    finally:
        a.stop()
        fake.close()
    got = [(r["labels"]["stream"], r["line"]) for r in recs]
    want = [("stdout" if s == 1 else "stderr", text) for _, s, text in records]
    assert sorted(got) == sorted(want), (got, fake.log_requests)
    # 1st: from the beginning; 2nd: the 3 lines at base+3000 were read, the newest of both
    # streams (skip 3 there); 3rd: after the bad header, the last stdout line read was at
    # base+4000, the last stderr one at base+3000: reopened at the stream that is behind
    # (Docker may write a stderr line after a later-stamped stdout one), what comes again
    # skipped (nothing repeats: the comparison above)
    t3 = base + 3000
    assert fake.log_requests[0] is None
    assert fake.log_requests[1] == f"{t3 // 10**9}.{t3 % 10**9:09d}"
    read = records[:fake.bad_after + 3]
    t_behind = min(max(t for t, s, _ in read if s == k) for k in (1, 2))
    assert t_behind == t3 and max(t for t, _, _ in read) == base + 4000
    assert fake.log_requests[2] == f"{t_behind // 10**9}.{t_behind % 10**9:09d}"
    assert ag.metric_sum(m, "log_capturer_docker_stream_ends_total", reason="error") == 2
    # the followed stream's normal end, then the final unfollowed read from the stream behind
    assert ag.metric_sum(m, "log_capturer_docker_stream_ends_total", reason="ended") == 2
    assert ag.metric_sum(m, "log_capturer_docker_stream_starts_total", reason="final") == 1
    t_end = min(max(t for t, s, _ in records if s == k) for k in (1, 2))
    assert fake.log_requests[3] == f"{t_end // 10**9}.{t_end % 10**9:09d}", fake.log_requests
    assert ag.metric_sum(m, "log_capturer_docker_stream_starts_total", reason="resume") == 2


def test_once_reads_what_exists(docker, tmp_path):
    """--once: the running containers' logs up to now are read (follow=0), then the agent exits."""
    cid = docker.run_container("once1", ["sh", "-c", "i=0; while [ $i -lt 200 ]; do "
                                         "echo \"o $i\"; i=$((i+1)); done; sleep 600"])
    ag.wait_until(lambda: len(docker.logs(cid)[0]) == 200, 20, interval=0.2)
    a = new_agent(tmp_path, docker)
    a.start(once=True)
    assert a.wait(60) == 0, a.stderr()[-3000:]
    got = by_stream(a.output().records)[("once1", "stdout")]
    assert got == [f"o {i}" for i in range(200)]
    # a second --once run starts at the checkpoint: nothing new, nothing repeated
    a.start(once=True)
    assert a.wait(60) == 0
    assert len(a.output().records) == 200


def _rfc3339(ns):
    """ns since the epoch -> Docker's RFC 3339 time with nanoseconds."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 10**9)) + f".{ns % 10**9:09d}Z"


REORD_CMD = "echo a; sleep 0.1; echo b >&2; sleep 0.2; echo c; sleep {}"


def _write_reordered(log_path):
    """Appends to a container's json-file a stderr record `d` stamped 1 ms before its last
    record (stdout `c`), as Docker does when its stderr copier stamps a line, its stdout one
    stamps and writes a later one, and then the stderr line is written."""
    recs = [json.loads(x) for x in open(log_path)]
    assert [r["log"] for r in recs] == ["a\n", "b\n", "c\n"], recs
    c_ns = _rfc3339_ns(recs[2]["time"])
    with open(log_path, "a") as f:
        f.write(json.dumps({"log": "d\n", "stream": "stderr", "time": _rfc3339(c_ns - 10**6)})
                + "\n")


def _check_reordered(a, name, what):
    got = by_stream(a.output().records)
    print(f"\nstderr written after a later stdout, {what}: "
          f"{ {k[1]: v for k, v in got.items() if k[0] == name} }")
    assert got[(name, "stdout")] == ["a", "c"]
    assert got[(name, "stderr")] == ["b", "d"]


def test_stderr_written_after_later_stdout_read_after_restart(docker, tmp_path):
    """Docker stamps a line when it reads it from the container and writes it to the json-file
    after, so a stderr line can follow a stdout line stamped later than it (the 1M-line chaos
    lost one such line). The agent reads a (stdout), b (stderr), c (stdout) of a container
    that then stops, and is stopped; a stderr record stamped between b and c is written after c
    (by hand, as the daemon's race does); at restart the agent reads the container from its
    checkpoint to its end: the record arrives, and nothing comes twice. Opened at the
    checkpoint's time (c's), the daemon's `since` would leave it out."""
    a = new_agent(tmp_path, docker)
    a.start()
    try:
        wait_events_connected(a)
        cid = docker.run_container("reord", REORD_CMD.format(1))
        docker.wait(cid, timeout=60)
        assert ag.wait_until(lambda: len(a.output().records) >= 3, ag.scaled(20))
        time.sleep(1)  # committed (checkpoint_interval)
    finally:
        a.stop()
    _write_reordered(docker.api_json(f"/containers/{cid}/json")["LogPath"])
    a.start()
    try:
        assert ag.wait_until(lambda: len(a.output().records) >= 4, ag.scaled(20))
        time.sleep(1)
    finally:
        a.stop()
    _check_reordered(a, "reord", "after a restart")


def test_stderr_written_after_later_stdout_read_at_reopen(tmp_path):
    """The same within one run of the agent: dockerd stopped (live-restore keeps the container
    running) while the record is written, and started again: the stream is reopened in-process,
    from what its two streams emitted; the record arrives and nothing comes twice."""
    eng = live_restore_engine()
    a = new_agent(tmp_path, eng, reconnect_min="100ms", reconnect_max="1s")
    try:
        a.start()
        wait_events_connected(a)
        cid = eng.run_container("reord2", REORD_CMD.format(60))
        assert ag.wait_until(lambda: len(a.output().records) >= 3, ag.scaled(20))
        log_path = eng.api_json(f"/containers/{cid}/json")["LogPath"]
        eng.stop_daemon()
        _write_reordered(log_path)
        eng.start_daemon()
        assert ag.wait_until(lambda: (a.metric("log_capturer_docker_stream_starts_total",
                                                input="c", reason="resume") or 0) >= 1,
                             ag.scaled(30)), a.stderr()[-2000:]
        ag.wait_until(lambda: len(a.output().records) >= 4, ag.scaled(10))
        time.sleep(1)
        eng.kill(cid)
    finally:
        a.stop()
        eng.close()
    _check_reordered(a, "reord2", "at an in-process reopen")


def _rfc3339_ns(s):
    """Docker's RFC 3339 time -> ns since the epoch (UTC)."""
    import calendar
    base, _, frac = s.rstrip("Z").partition(".")
    return calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S")) * 10**9 + \
        int((frac + "000000000")[:9])
