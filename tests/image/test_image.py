# SPDX-License-Identifier: MIT
"""test_image.py: the container image (deploy/image/build.sh) on a real Docker engine (the
harness's private one): run with the engine's socket mounted read-only and host networking,
it follows two other containers and delivers their lines to the fake Loki; `docker stop`
drains it within shutdown_timeout (exit 0, positions saved in the state volume); started
again, it resumes where it stopped: every line arrives.

Run by tests/image/run.sh (LC_IMAGE_BASE = the cached base tarball, LC_BIN = the binary)."""

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "tests" / "integration"))

from agent import free_port, http_get, wait_until  # noqa: E402
from docker_harness import DockerEngine, DockerUnavailable, expected_lines, logger_cmd  # noqa: E402
from fake_loki import FakeLoki  # noqa: E402

BASE = os.environ.get("LC_IMAGE_BASE", "")
BIN = os.environ.get("LC_BIN", str(REPO / "build" / "log_capturer"))
TAG = "log_capturer:test"
LINES = 1000         # per container, at RATE lines/s: ~20 s of logging
RATE = 50
SHUTDOWN_TIMEOUT = 5  # the agent's; docker stop waits longer

pytestmark = [pytest.mark.docker,
              pytest.mark.skipif(not os.path.isfile(BASE),
                                 reason="LC_IMAGE_BASE must name the base tarball "
                                        "(tests/image/run.sh sets it)")]


@pytest.fixture(scope="module")
def engine():
    eng = DockerEngine()
    try:
        eng.start()
    except DockerUnavailable as e:
        pytest.fail(f"Docker engine unavailable: {e}", pytrace=False)
    yield eng
    eng.close()


@pytest.fixture(scope="module")
def image(engine):
    gid = os.stat(engine.sock).st_gid
    t0 = time.monotonic()
    p = subprocess.run(["bash", str(REPO / "deploy/image/build.sh"), "--bin", BIN, "--tag", TAG,
                        "--docker-gid", str(gid)], env=engine.env(), capture_output=True,
                       text=True, timeout=600)
    assert p.returncode == 0, p.stdout + p.stderr
    size = int(engine.cli("image", "inspect", "-f", "{{.Size}}", TAG).stdout.strip())
    print(f"image {TAG}: {size} bytes ({size / 2**20:.1f} MiB), built in "
          f"{time.monotonic() - t0:.0f}s")
    return TAG


@pytest.fixture
def loki():
    f = FakeLoki()
    f.start()
    yield f
    f.stop()


def delivered(loki):
    return [e["line"] for e in loki.entries()]


def test_image_layout(engine, image):
    cfg = engine.cli("image", "inspect", "-f",
                     "{{.Config.User}} {{json .Config.Entrypoint}} {{json .Config.Volumes}}",
                     image).stdout
    assert cfg.startswith("log_capturer "), cfg
    assert '"/usr/bin/log_capturer"' in cfg and "/var/lib/log_capturer" in cfg, cfg
    out = engine.cli("run", "--rm", "--network", "none", "--entrypoint", "/bin/sh", image, "-c",
                     "id; log_capturer version; "
                     "log_capturer check-config /etc/log_capturer/config.yaml").stdout
    assert "uid=10001(log_capturer)" in out and "docker" in out, out
    assert "libcurl" in out and out.strip().endswith("ok"), out


def test_follows_containers_drains_on_stop_and_resumes(engine, image, loki, tmp_path):
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    os.chown(state, 10001, 10001)
    port = free_port()
    engine.cli("run", "-d", "--name", "lcagent", "--network", "host",
               "-v", f"{engine.sock}:/var/run/docker.sock:ro",
               "-v", f"{state}:/var/lib/log_capturer",
               "-e", f"LOKI_URL={loki.url}", "-e", f"LC_LISTEN=127.0.0.1:{port}",
               "-e", "LC_SELF_NAME=lcagent", "-e", f"LC_SHUTDOWN_TIMEOUT={SHUTDOWN_TIMEOUT}s",
               image)

    def agent_log():
        p = engine.cli("logs", "lcagent", check=False)
        return (p.stdout + p.stderr)[-4000:]

    def ready():
        try:
            return http_get(port, "/ready", timeout=1)[0] == 200
        except OSError:
            return False
    assert wait_until(ready, 60), agent_log()
    # the two containers it follows, started once it runs
    a = engine.run_container("app-a", logger_cmd(LINES, rate=RATE, streams=("stdout",), tag="a"))
    b = engine.run_container("app-b", logger_cmd(LINES, rate=RATE, streams=("stderr",), tag="b"))
    assert a and b

    def some_of_each():
        lines = delivered(loki)
        return (sum(1 for x in lines if x.startswith("a ")) >= 50
                and sum(1 for x in lines if x.startswith("b ")) >= 50)
    assert wait_until(some_of_each, 60), agent_log()

    # docker stop: SIGTERM, the agent drains and exits 0 before docker's own 20 s
    t0 = time.monotonic()
    engine.cli("stop", "-t", "20", "lcagent", timeout=60)
    took = time.monotonic() - t0
    st = engine.inspect("lcagent")["State"]
    assert st["ExitCode"] == 0, (st, agent_log())
    assert took < SHUTDOWN_TIMEOUT + 3, f"docker stop took {took:.1f}s\n{agent_log()}"
    assert "shutdown deadline reached" not in agent_log()
    db = state / "checkpoints.db"
    assert db.exists() and db.stat().st_mode & 0o777 == 0o600
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as c:
        tables = [r[0] for r in c.execute("select name from sqlite_master where type='table'")]
        rows = sum(c.execute(f"select count(*) from {t}").fetchone()[0] for t in tables)
    assert rows >= 2, (tables, rows)  # a position for each container
    at_stop = len(delivered(loki))
    assert at_stop < 2 * LINES, "the loggers finished before the stop: nothing to resume"

    time.sleep(1.5)  # the loggers write on while the agent is down
    engine.cli("start", "lcagent")
    assert wait_until(ready, 30), agent_log()
    want = set(expected_lines(LINES, "stdout", tag="a")) | set(expected_lines(LINES, "stderr",
                                                                              tag="b"))

    def all_there():
        return want <= set(delivered(loki))
    assert wait_until(all_there, 120), \
        f"missing {len(want - set(delivered(loki)))} lines\n{agent_log()}"
    got = delivered(loki)
    dup = len(got) - len(set(got))
    print(f"delivered {len(got)} lines for {len(want)}, {dup} repeated; {at_stop} before stop; "
          f"docker stop took {took:.1f}s")
    assert len(set(got) - want) == 0, set(got) - want
    engine.cli("stop", "-t", "20", "lcagent", timeout=60)
    assert engine.inspect("lcagent")["State"]["ExitCode"] == 0, agent_log()
