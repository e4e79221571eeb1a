# SPDX-License-Identifier: MIT
"""test_docker_harness.py: the private Docker engine starts, runs busybox containers, and leaves nothing behind."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from docker_harness import (DockerEngine, DockerUnavailable, big_line_cmd, expected_lines,
                            logger_cmd, mounts_under, silent_cmd, tty_cmd)

pytestmark = pytest.mark.docker


def _engine_or_skip():
    try:
        eng = DockerEngine()
        t = eng.start()
    except DockerUnavailable as e:
        if os.environ.get("LC_REQUIRE_DOCKER") == "1":
            pytest.fail(f"Docker engine required but unavailable: {e}", pytrace=False)
        pytest.skip(f"Docker engine unavailable: {e}")
    return eng, t


def test_engine_lifecycle_leaves_nothing_behind():
    eng, startup = _engine_or_skip()
    try:
        print(f"\nengine start-up (containerd + dockerd + image import): {startup:.2f} s")
        assert os.path.exists(eng.sock)
        assert float(eng.api_version()) >= 1.41
        t0 = time.monotonic()
        cid = eng.run_container("lc-h1", logger_cmd(50, streams=("stdout", "stderr"), tag="h"),
                                labels={"com.docker.compose.project": "p1"})
        assert eng.wait(cid, timeout=60) == 0
        print(f"container run to exit: {time.monotonic() - t0:.2f} s")
        out, err = eng.logs(cid)
        assert out == expected_lines(50, "stdout", tag="h")
        assert err == expected_lines(50, "stderr", tag="h")
        info = eng.inspect(cid)
        assert info["Name"] == "/lc-h1"
        assert info["Config"]["Labels"]["com.docker.compose.project"] == "p1"
        assert info["Config"]["Tty"] is False
        assert info["HostConfig"]["NetworkMode"] == "none"
        # A running container, so teardown has a shim, a netns mount and cgroups to clean.
        eng.run_container("lc-h2", silent_cmd())
        assert len(eng.running_ids()) == 1
    finally:
        t0 = time.monotonic()
        eng.close()
        print(f"engine teardown: {time.monotonic() - t0:.2f} s")
    assert eng.leftovers() == []
    assert mounts_under(eng.root) == []


def test_logs_rate_tty_big_line(docker):
    cid = docker.run_container("lc-rate", logger_cmd(30, rate=100, tag="r"))
    docker.wait(cid, timeout=30)
    out, err = docker.logs(cid, timestamps=True)
    assert [line.split(" ", 1)[1] for line in out] == expected_lines(30, "stdout", tag="r")
    assert [line.split(" ", 1)[1] for line in err] == expected_lines(30, "stderr", tag="r")
    assert all(line[:4].isdigit() and line[29] == "Z" for line in out)  # RFC3339Nano, 9 digits

    tid = docker.run_container("lc-tty", tty_cmd(3), tty=True)
    docker.wait(tid, timeout=30)
    status, body = docker.api_get(f"/containers/{tid}/logs?stdout=1&stderr=1")
    assert status == 200
    assert body == b"t 0\r\nt 1\r\nt 2\r\n"  # raw, no multiplexing header

    bid = docker.run_container("lc-big", big_line_cmd(1 << 20), log_opts={"max-size": "4m"})
    docker.wait(bid, timeout=60)
    out, _ = docker.logs(bid)
    assert out == ["a" * (1 << 20)]


def test_daemon_restart_keeps_state(private_docker_engine):
    eng = private_docker_engine
    cid = eng.run_container("lc-restart", logger_cmd(5, tag="z"))
    eng.wait(cid)
    t = eng.restart_daemon()
    print(f"\ndockerd restart: {t:.2f} s")
    out, _ = eng.logs(cid)
    assert out == expected_lines(5, "stdout", tag="z")


def test_stale_engine_of_a_killed_run_is_swept():
    # A test process killed with -9 leaves dockerd, containerd, a shim, mounts and
    # cgroups behind; the next run's sweep removes them (and only them).
    code = (
        "import os, signal, docker_harness as h\n"
        "e = h.DockerEngine()\n"
        "e.start()\n"
        "e.run_container('lc-stale', h.silent_cmd())\n"
        "print(e.root, flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    p = subprocess.run([sys.executable, "-c", code], cwd=os.path.dirname(__file__),
                       capture_output=True, text=True, timeout=120)
    root = p.stdout.strip()
    if not root:
        pytest.skip(f"could not start an engine in a child: {p.stderr[-500:]}")
    assert os.path.isdir(root) and mounts_under(root)
    from docker_harness import pids_referencing, sweep_stale
    assert pids_referencing(root)
    sweep_stale()
    assert not os.path.exists(root)
    assert mounts_under(root) == []
    assert pids_referencing(root) == []


def _unit_binary(name):
    """The newest build of a unit test binary (LC_BUILD_DIR, else any <repo>/build*/)."""
    repo = Path(__file__).resolve().parents[2]
    if os.environ.get("LC_BUILD_DIR"):
        p = Path(os.environ["LC_BUILD_DIR"]) / name
        return p if os.access(p, os.X_OK) else None
    found = [p for p in repo.glob(f"build*/{name}") if os.access(p, os.X_OK)]
    return max(found, key=lambda p: p.stat().st_mtime) if found else None


def test_api_client_against_real_engine(docker):
    # The C client's own unit test, pointed at the real dockerd: negotiation,
    # list, inspect, a logs stream, and the connections 1000 inspects open.
    binary = _unit_binary("test_docker_client")
    if not binary:
        pytest.skip("test_docker_client is not built")
    script = logger_cmd(20, tag="a")[2] + "; sleep 120"
    cid = docker.run_container("lc-api", script, labels={"x": "y"})
    deadline = time.monotonic() + 30
    while len(docker.logs(cid)[0]) < 20 and time.monotonic() < deadline:
        time.sleep(0.05)
    short = docker.run_container("lc-api-short", logger_cmd(20, rate=10, tag="s"))  # ~2 s
    env = dict(os.environ, LC_TEST_DOCKER_SOCK=docker.sock, LC_TEST_DOCKER_CID=cid,
               LC_TEST_DOCKER_SHORT_CID=short, LC_TEST_FILTER="test_real_daemon")
    p = subprocess.run([str(binary)], env=env, capture_output=True, text=True, timeout=300)
    print(p.stdout[-2000:])
    assert p.returncode == 0, p.stdout + p.stderr
    assert "[       OK ] test_real_daemon" in p.stdout
    assert "real daemon: 1000 inspects opened" in p.stdout
