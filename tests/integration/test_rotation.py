# SPDX-License-Identifier: MIT
"""test_rotation.py: rotation faster than a rescan, and rotation while the agent is down (issue 15).

Docker file mode against the private engine (json-file, max-size=64k, max-file=3) and the
plain file input with rename rotation. Every line is numbered, so loss and duplication are
counted exactly; numbers go to docker-file-numbers.txt next to the binary.
"""

import collections
import os
import random
import signal
import threading
import time
from pathlib import Path

import pytest

from agent import Writer, count_lines, have_binary, split_seq, wait_until
from docker_harness import expected_lines, logger_cmd
from fake_loki import FakeLoki
from test_docker_file import by_stream, problems, record_numbers  # numbers: docker-file-numbers.txt
from test_files import make_agent  # noqa: F401 (a fixture)

if not have_binary():
    pytest.skip("log_capturer binary not built", allow_module_level=True)

ROTATE = {"max-size": "64k", "max-file": "3"}


def docker_input(eng, **kw):
    d = {"type": "docker", "name": "c", "mode": "file", "root": eng.data_root,
         "socket": eng.sock, "start_at": "beginning", "max_age": 0}
    d.update(kw)
    return d


def lost_and_dup(got, expected):
    c = collections.Counter(got)
    return (sum(1 for x in expected if x not in c),
            sum(v - 1 for v in c.values() if v > 1))


def run_fast_writers(docker, a, prefix, n, lines, log_opts, pad=0, timeout=60):
    """Runs n containers, each printing `lines` numbered lines as fast as sh can, waits for
    them and for their lines to arrive; returns the containers' names."""
    names = [f"{prefix}{i}" for i in range(n)]
    ids = [docker.run_container(nm, logger_cmd(lines, streams=("stdout",), tag=nm, pad=pad),
                                log_opts=log_opts) for nm in names]
    for cid in ids:
        docker.wait(cid, timeout=timeout)
    wait_until(lambda: count_lines(a.out_path) >= n * lines, 30, interval=0.1)
    time.sleep(1)
    return names


def fast_writers_lost_and_dup(a, names, lines, pad=0):
    """Lines lost and duplicated over the containers of run_fast_writers (agent stopped)."""
    got = by_stream(a.output().records)
    lost = dup = 0
    for nm in names:
        m, d = lost_and_dup(got[(nm, "stdout")], expected_lines(lines, "stdout", tag=nm, pad=pad))
        lost, dup = lost + m, dup + d
    return lost, dup


@pytest.mark.docker
def test_docker_fast_rotation_loses_no_generation(docker, make_agent):
    """3 containers, each 3000 short lines as fast as sh can, rotated at 64k and kept
    3 deep: every generation lives well under a second, and the agent's default 1 s rescan
    alone would miss some. All 9000 lines arrive, each once; no gap counted."""
    n, lines = 3, 3000
    a = make_agent([docker_input(docker)])
    a.start()
    names = run_fast_writers(docker, a, "fr", n, lines, ROTATE)
    gaps = a.metric("log_capturer_docker_lost_generations_total", input="c") or 0
    rotations = a.metric("log_capturer_file_rotations_total", input="c", kind="rename")
    assert a.stop(30) == 0
    lost, dup = fast_writers_lost_and_dup(a, names, lines)
    record_numbers("docker_fast_rotation", f"{n} containers x {lines} lines, {rotations:.0f} "
                   f"rotations: lost {lost} of {n * lines}, duplicated {dup}, gaps counted {gaps}")
    assert (lost, dup) == (0, 0)
    assert rotations >= n * 3, "max-size not reached: the test proves less than it says"
    assert gaps == 0
    assert not problems(a), problems(a)[:3]


def rotate_past_stopped_agent(docker, make_agent, mode, name, metric):
    """Starts an agent (docker `mode`) and a container logging slowly, stops the agent, makes
    the container write 8000 lines (~5 rotations of 64k, max-file=3 keeps 2 rotated) and
    restarts the agent; returns (agent, container id, burst numbers delivered, warnings about
    the loss) once `metric` counted the gap and the agent stopped."""
    a = make_agent([docker_input(docker, mode=mode)])
    a.start()
    cid = docker.run_container(name, "i=0; while [ ! -f /tmp/go ]; do echo wait $i; "
                               "i=$((i+1)); sleep 0.05; done; "
                               "i=0; while [ $i -lt 8000 ]; do echo burst $i; i=$((i+1)); done;"
                               " sleep 600", log_opts=ROTATE)
    assert wait_until(lambda: count_lines(a.out_path) >= 5, 20)
    assert (a.metric(metric, input="c") or 0) == 0
    assert a.stop(30) == 0
    docker.cli("exec", cid, "touch", "/tmp/go")  # ~5 rotations of 64k while down
    wait_until(lambda: False, 2)
    log = docker.inspect(cid)["LogPath"]
    assert os.path.exists(log + ".2")
    a.start()
    assert wait_until(lambda: (a.metric(metric, input="c") or 0) >= 1, 10)
    a.span_ms = a.metric("log_capturer_docker_api_gap_milliseconds_total", input="c")
    time.sleep(1)
    assert a.stop(30) == 0
    lines = [r["line"] for r in a.output().records]
    burst = [int(x.split()[1]) for x in lines if x.startswith("burst ")]
    gap = [r for r in problems(a) if "lost in rotation" in r.get("msg", "")]
    assert gap and cid[:12] in gap[0]["msg"], problems(a)
    assert burst == list(range(burst[0], 8000)), "not a contiguous end"
    assert burst[0] > 0
    return a, cid, burst, gap


@pytest.mark.docker
def test_docker_generations_gone_while_down_are_counted(docker, make_agent):
    """The agent is stopped while 5 generations rotate (max-file=3 keeps 2 rotated): the
    ones deleted are gone for any reader; the restarted agent counts the gap and says
    which container and time range; everything still on disk arrives."""
    a, cid, burst, gap = rotate_past_stopped_agent(
        docker, make_agent, "file", "gap", "log_capturer_docker_lost_generations_total")
    record_numbers("docker_gap_while_down", f"8000 lines in ~5 rotations while down: "
                   f"{len(burst)} still on disk and delivered; warning: {gap[0]['msg']}")


@pytest.mark.docker
def test_docker_api_lines_rotated_away_while_down_are_counted(docker, make_agent):
    """Api mode, the same: the Engine API cannot return what rotation deleted; the restarted
    agent counts the gap (log_capturer_docker_api_gaps_total and its span) and says which
    container and time range; everything the daemon still has arrives, in order."""
    a, cid, burst, gap = rotate_past_stopped_agent(
        docker, make_agent, "api", "agap", "log_capturer_docker_api_gaps_total")
    record_numbers("docker_api_gap_while_down", f"8000 lines in ~5 rotations while down: "
                   f"{len(burst)} still in the log and delivered; gap span {a.span_ms} ms; "
                   f"warning: {gap[0]['msg']}")
    assert len(gap) == 1, gap  # one restart, one gap
    assert a.span_ms is not None and a.span_ms >= 0


def run_rotated_while_down(make_agent, tmp_path, inputs, write, kills, restart_pause):
    """Runs `write` (a callable that blocks until done, calling hook(k) before rotation k)
    while the agent is killed -9 at rotation k in `kills` and restarted after a random
    pause; then a clean stop and a final --once run. Returns the agent."""
    a = make_agent(inputs)
    # batch_wait 1s (the default): lines are in flight at each kill; a file's row is stored
    # within checkpoint_interval (200 ms here) of its opening, well before its rotation
    del a.config["batch_wait"]
    a.start()
    rng = random.Random(15)
    down, up = threading.Event(), threading.Event()
    up.set()

    def hook(k):
        if k in kills:
            assert up.wait(60), "the agent did not come back"
            time.sleep(rng.uniform(0, 0.2))  # some lines read but not yet acknowledged
            a.kill9()
            up.clear()
            down.set()

    t = threading.Thread(target=write, args=(hook,), daemon=True)
    t.start()
    for _ in kills:
        assert down.wait(60), "writer did not rotate"
        down.clear()
        time.sleep(rng.uniform(0.05, restart_pause))
        a.start()
        up.set()
    t.join(120)
    assert not t.is_alive()
    time.sleep(0.5)
    assert a.stop(30) == 0
    a.start(once=True)
    assert a.wait(60) == 0
    return a


def judge_restarts(a, key, what, seqs, total):
    """Records and checks a run of run_rotated_while_down: nothing lost, each renamed file
    finished at start said so, no warning."""
    lost, dup = lost_and_dup(seqs, range(total))
    moved = sum(1 for r in a.log_records() if "rotated while the agent was down" in
                r.get("msg", ""))
    record_numbers(key, f"{what}: lost {lost}, duplicated {dup}, {moved} renamed files "
                   f"finished at start")
    assert lost == 0
    assert moved >= 1
    assert not problems(a), problems(a)[:3]


def test_file_rotated_while_down_keeps_its_tail(make_agent, tmp_path):
    """A writer appends 60,000 lines to app.log and renames it to app.log.<n> every 10,000;
    the agent is killed -9 just before five of the rotations and restarted after the rename:
    at start it finds the renamed file by identity and reads it to its end, then app.log."""
    logs = tmp_path / "logs"
    logs.mkdir()
    p = logs / "app.log"
    p.touch()
    total, every = 60000, 10000
    w = Writer(p, total, "rd", rate=12000, chunk=200, rotate="rename", rotate_every=every)

    def write(hook):
        w.before_rotate = hook
        w.run()

    inp = {"type": "file", "name": "rd", "paths": [str(p)], "start_at": "beginning"}
    a = run_rotated_while_down(make_agent, tmp_path, [inp], write, {1, 2, 3, 4, 5}, 0.4)
    assert w.error is None
    judge_restarts(a, "file_rotated_while_down", f"{total} lines, rotated every {every}, "
                   "kill -9 before 5 rotations",
                   [split_seq(x)[1] for x in a.output_lines() if split_seq(x)], total)


@pytest.mark.docker
def test_docker_rotated_while_down_keeps_its_tail(docker, make_agent, tmp_path):
    """The same in docker file mode: killed -9 five times, each time while lines of the
    current -json.log are in flight, and restarted once it was rotated to .1."""
    lines = 8000
    a = make_agent([docker_input(docker)])
    del a.config["batch_wait"]
    a.start()
    cid = docker.run_container("rdw", "while [ ! -f /tmp/go ]; do sleep 0.05; done; "
                               f"i=0; while [ $i -lt {lines} ]; do echo rdw $i; i=$((i+1)); "
                               "if [ $((i % 50)) = 0 ]; then sleep 0.1; fi; done; sleep 600",
                               log_opts={"max-size": "32k", "max-file": "10"})
    log = docker.inspect(cid)["LogPath"]
    rng = random.Random(15)

    def inode():
        try:
            return os.stat(log).st_ino
        except OSError:
            return None

    def rotation(ino):
        return wait_until(lambda: inode() not in (ino, None), 10, interval=0.005)

    docker.cli("exec", cid, "touch", "/tmp/go")
    kills = 0
    for _ in range(5):
        if not rotation(inode()) or not rotation(inode()):  # up across a rotation first
            break
        time.sleep(rng.uniform(0.2, 0.6))  # lines read, in a batch not yet delivered
        a.kill9()
        assert rotation(inode())
        a.start()
        kills += 1
    assert wait_until(lambda: f"rdw {lines - 1}" in docker.logs(cid)[0], 60, interval=0.2)
    time.sleep(0.5)
    assert a.stop(30) == 0
    a.start(once=True)
    assert a.wait(60) == 0
    assert kills == 5
    judge_restarts(a, "docker_rotated_while_down", f"{lines} lines, kill -9 {kills} times, "
                   "each time down across a rotation",
                   [int(r["line"].split()[1]) for r in a.output().records
                    if r["line"].startswith("rdw ")], lines)


def test_max_rotated_files_defers_the_successor(make_agent, tmp_path):
    """max_rotated_files: 1, and a slow Loki (1 s per push) that fills max_pending_bytes so
    the renamed file still has unread data when its successor appears: the successor is not opened (counted, logged)
    until the renamed one was read to its end; nothing is lost or reordered."""
    logs = tmp_path / "logs"
    logs.mkdir()
    p = logs / "app.log"
    p.touch()
    loki = FakeLoki()
    loki.start()
    loki.configure(delay=1.0)
    inp = {"type": "file", "name": "mr", "paths": [str(p)], "start_at": "beginning",
           "max_rotated_files": 1, "rotate_wait": "200ms", "rescan_interval": "100ms",
           "poll_interval": "50ms", "read_bytes": "4KiB", "max_line_bytes": "1KiB"}
    out = {"type": "loki", "name": "loki", "url": loki.url, "max_inflight": 1}
    # the slow Loki holds the reader back once 1 MiB is pending: lines of 900 bytes fill it
    a = make_agent([inp], outputs=[out], extra={"batch_bytes": "8KiB", "batch_wait": "50ms",
                                                "max_pending_bytes": "1MiB"})
    total = 6000
    try:
        a.start()
        # the second rotation waits for the deferred file to be opened: a file rotated away
        # before it was opened is a counted gap, not what this test is about
        w = Writer(p, total, "mr " + "x" * 900, rate=4000, chunk=100, rotate="rename",
                   rotate_every=2000,
                   before_rotate=lambda k: k < 2 or wait_until(
                       lambda: a.stderr().count("tailing ") >= 2, 30))
        w.start()
        assert wait_until(lambda: a.metric("log_capturer_file_rotated_deferred_total",
                                           input="mr"), 20, interval=0.02), "never deferred"
        held = a.metric("log_capturer_file_rotated_open_files", input="mr")
        assert wait_until(lambda: a.metric("log_capturer_file_rotated_open_files",
                                           input="mr") == 1, 5), held
        loki.configure(delay=0)  # the renamed file drains, then its successor is opened
        w.join_checked()
        assert loki.wait_entries(total, 60) >= total
        assert a.stop(30) == 0
        lines = [e["line"] for e in loki.entries()]
    finally:
        loki.stop()
    seqs = [split_seq(x)[1] for x in lines]
    assert lost_and_dup(seqs, range(total)) == (0, 0)
    assert seqs == sorted(seqs), "out of order across a rotation"
    assert any("max_rotated_files" in r.get("msg", "") for r in problems(a))


def _json_lines(tag, first, n, t0_ns):
    """n json-file lines "<tag> <i>" from i = first, 1 ms apart from t0_ns."""
    out = []
    for i in range(first, first + n):
        sec, frac = divmod(t0_ns + i * 10**6, 10**9)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
        out.append(f'{{"log":"{tag} {i}\\n","stream":"stdout","time":"{stamp}.{frac:09d}Z"}}\n')
    return "".join(out)


def test_docker_generation_deleted_unseen_is_counted(make_agent, tmp_path):
    """Docker's rotation replayed on a json-file tree (no engine), max-file=3, 100 lines per
    generation, 1 ms apart, while the agent is frozen (SIGSTOP): container `keep` rotates 3
    times (the file being read is deleted, but its successor is still there: nothing lost,
    nothing counted), container `lose` 4 times (its second generation was created and
    deleted unseen: counted once, by the pause in line times, and logged)."""
    root = tmp_path / "docker"
    t0 = time.time_ns() - 10 * 10**9
    ids = {"keep": "a" * 64, "lose": "b" * 64}
    logs = {}
    for name, cid in ids.items():
        d = root / "containers" / cid
        d.mkdir(parents=True)
        logs[name] = d / f"{cid}-json.log"
        (d / "config.v2.json").write_text(
            f'{{"ID":"{cid}","Name":"/{name}","Config":{{"Image":"img","Labels":{{}}}},'
            f'"LogPath":"{logs[name]}"}}')
        logs[name].write_text(_json_lines(name, 0, 100, t0))
    a = make_agent([{"type": "docker", "name": "c", "mode": "file", "root": str(root),
                     "socket": str(tmp_path / "none.sock"), "start_at": "beginning",
                     "max_age": 0}])
    a.start()
    assert wait_until(lambda: count_lines(a.out_path) >= 200, 10)
    os.kill(a.pid, signal.SIGSTOP)
    try:
        for name, rotations in (("keep", 3), ("lose", 4)):
            p = str(logs[name])
            for k in range(1, rotations + 1):
                if os.path.exists(p + ".2"):
                    os.unlink(p + ".2")
                if os.path.exists(p + ".1"):
                    os.rename(p + ".1", p + ".2")
                os.rename(p, p + ".1")
                Path(p).write_text(_json_lines(name, 100 * k, 100, t0))
    finally:
        os.kill(a.pid, signal.SIGCONT)
    assert wait_until(lambda: count_lines(a.out_path) >= 200 + 300 + 300, 10)
    time.sleep(0.5)
    gaps = a.metric("log_capturer_docker_lost_generations_total", input="c")
    assert a.stop(30) == 0
    got = by_stream(a.output().records)
    keep = [int(x.split()[1]) for x in got[("keep", "stdout")]]
    lose = [int(x.split()[1]) for x in got[("lose", "stdout")]]
    assert keep == list(range(400))
    assert lose == list(range(100)) + list(range(200, 500))
    assert gaps == 1
    warned = [r["msg"] for r in problems(a) if "lost in rotation" in r["msg"]]
    assert len(warned) == 1 and ids["lose"] in warned[0], warned


@pytest.mark.docker
def test_docker_api_fast_rotation_loses_no_generation(docker, make_agent):
    """Api mode, 3 containers, each 6000 lines of 100 bytes as fast as sh can, rotated at 64k
    and kept 20 deep: about 17 generations each, every one living a few ms, and all of them
    still on disk at the end (1.1 MB of 1.3 MB kept), so nothing may be lost. The daemon
    leaves out whole generations of a stream behind its log by two rotations or more (before
    the fix: 2118 and 7499 of 18000 lines lost, no gap counted); the agent sees the rotation
    times between two records and reopens the stream from its last line. A generation fills
    within one tick of the kernel's coarse file clock, so two rotated files can share an
    mtime: they are two rotations (before that fix: 360 lines lost in one run of four, no gap
    counted). All 18000 lines arrive, each once."""
    n, lines = 3, 6000
    a = make_agent([docker_input(docker, mode="api")])
    a.start()
    names = run_fast_writers(docker, a, "ar", n, lines, {"max-size": "64k", "max-file": "20"},
                             pad=90, timeout=120)
    gaps = a.metric("log_capturer_docker_api_gaps_total", input="c") or 0
    reopened = a.metric("log_capturer_docker_stream_ends_total", input="c", reason="skipped")
    assert a.stop(30) == 0
    lost, dup = fast_writers_lost_and_dup(a, names, lines, pad=90)
    record_numbers("docker_api_fast_rotation", f"{n} containers x {lines} lines, rotated at "
                   f"64k, 20 kept: lost {lost} of {n * lines}, duplicated {dup}, gaps counted "
                   f"{gaps}, streams reopened over a left-out generation {reopened}")
    assert (lost, dup) == (0, 0), (lost, dup, gaps, reopened)
    assert gaps == 0  # nothing was rotated away: a gap would be a false alarm
