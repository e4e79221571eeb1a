# SPDX-License-Identifier: MIT
"""test_cli.py: the command line, the HTTP endpoints, the agent's own log and its thread count."""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time

import pytest

from agent import (REPO, Agent, Writer, append_lines, count_lines, have_binary, http_get,
                   free_port, run_cli, to_yaml, wait_until)

if not have_binary():
    if os.environ.get("LC_REQUIRE_BIN"):
        raise RuntimeError("LC_BIN is not an executable: build first")
    pytest.skip("log_capturer binary not built", allow_module_level=True)


@pytest.fixture
def agent(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    a = Agent(tmp_path, [{"type": "file", "name": "logs", "paths": [str(logs / "*.log")],
                          "start_at": "beginning", "rescan_interval": "250ms"}])
    a.logs = logs
    yield a
    a.cleanup()


def project_version():
    m = re.search(r"project\(log_capturer VERSION ([0-9.]+)", (REPO / "CMakeLists.txt").read_text())
    return m.group(1)


def test_version():
    p = run_cli("--version")
    assert p.returncode == 0, p.stderr
    assert project_version() in p.stdout, p.stdout


def test_help():
    p = run_cli("--help")
    assert p.returncode == 0, p.stderr
    for word in ("run", "check-config", "--once", "-c"):
        assert word in p.stdout, f"--help does not mention {word}:\n{p.stdout}"


@pytest.mark.parametrize("args", [["--no-such-flag"], ["no-such-command"],
                                  ["run", "-c"], ["check-config"]])
def test_usage_errors(args):
    p = run_cli(*args)
    assert p.returncode != 0, f"{args} exited 0"
    assert p.stderr.strip(), f"{args}: nothing on stderr"


def test_check_config_good_and_bad(tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text(f"state_dir: {tmp_path}/s\ninputs:\n  - type: file\n    name: a\n"
                    f"    paths: [\"{tmp_path}/*.log\"]\noutputs:\n  - type: stdout\n    name: o\n")
    p = run_cli("check-config", str(good))
    assert p.returncode == 0, p.stderr
    assert "ok" in p.stdout.lower()

    bad = tmp_path / "bad.yaml"
    bad.write_text(good.read_text() + "nonsense: 1\n")
    p = run_cli("check-config", str(bad))
    assert p.returncode == 2
    assert re.search(re.escape(str(bad)) + r":9:1: .*nonsense", p.stderr), p.stderr


def test_metrics_health_ready(agent):
    agent.start()
    append_lines(agent.logs / "a.log", [f"m seq={i}" for i in range(10)])
    assert wait_until(lambda: count_lines(agent.out_path) == 10, 10)

    st, body, headers = http_get(agent.port, "/metrics")
    assert st == 200
    ctype = {k.lower(): v for k, v in headers.items()}.get("content-type", "")
    assert ctype.startswith("text/plain"), ctype
    m = agent.metrics()
    names = {n for n, _ in m}
    for want in ("process_open_fds", "process_resident_memory_bytes", "process_max_fds",
                 "process_cpu_seconds_total", "process_start_time_seconds",
                 "log_capturer_threads"):
        assert want in names, f"{want} missing from /metrics"
    assert agent.metric("log_capturer_input_lines_total", input="logs") == 10
    assert agent.metric("log_capturer_output_records_total", output="out") == 10
    assert agent.metric("log_capturer_threads") == agent.threads()
    assert abs(agent.metric("process_open_fds") - agent.fds()) <= 3

    st, hb = agent.health()
    assert st == 200 and isinstance(hb, dict), hb
    assert http_get(agent.port, "/ready")[0] == 200
    assert http_get(agent.port, "/no/such/path")[0] == 404
    assert agent.stop() == 0


@pytest.mark.skipif(not shutil.which("promtool"), reason="promtool not installed")
def test_promtool_check_metrics(agent):
    agent.start()
    append_lines(agent.logs / "a.log", ["x"])
    assert wait_until(lambda: count_lines(agent.out_path) == 1, 10)
    _, body, _ = http_get(agent.port, "/metrics")
    p = subprocess.run(["promtool", "check", "metrics"], input=body, capture_output=True,
                       timeout=30)
    assert p.returncode == 0, (p.stdout + p.stderr).decode()
    assert agent.stop() == 0


def listening_addrs(port):
    """Local addresses of LISTEN sockets on port, from /proc/net/tcp{,6}."""
    out = []
    for f in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = open(f).read().splitlines()[1:]
        except FileNotFoundError:
            continue
        for row in rows:
            cols = row.split()
            addr, p = cols[1].split(":")
            if int(p, 16) == port and cols[3] == "0A":
                out.append((f, addr))
    return out


def test_http_listens_on_loopback_only(agent):
    agent.start()
    addrs = listening_addrs(agent.port)
    assert addrs, "nothing listens on the configured port"
    for f, addr in addrs:
        assert f == "/proc/net/tcp" and addr == "0100007F", f"listening on {f} {addr}"
    assert agent.stop() == 0


def test_threads_constant_while_writing(agent):
    agent.start()
    before = agent.threads()
    seen = {before}
    writers = [Writer(agent.logs / f"w{n}.log", 10000, f"file={n}", rate=5000, chunk=100)
               for n in range(6)]
    for w in writers:
        w.start()
    deadline = time.monotonic() + 60
    while any(w.is_alive() for w in writers) and time.monotonic() < deadline:
        seen.add(agent.threads())
        time.sleep(0.05)
    for w in writers:
        w.join_checked()
    assert wait_until(lambda: count_lines(agent.out_path) >= 60000, 60)
    after = agent.threads()
    assert seen == {before} and after == before, \
        f"threads: {before} before, {sorted(seen)} during, {after} after"
    assert agent.metric("log_capturer_threads") == after
    assert agent.stop() == 0


def test_own_log_is_json_lines(agent):
    agent.start()
    assert agent.stop() == 0
    lines = [l for l in agent.stderr().splitlines() if l.strip()]
    assert lines, "the agent logged nothing at start and stop"
    for l in lines:
        v = json.loads(l)
        assert isinstance(v, dict), l
        assert "level" in v and "time" in v, l
        assert "msg" in v or "message" in v, l


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signals_stop_cleanly(agent, sig):
    agent.start()
    append_lines(agent.logs / "a.log", ["one", "two"])
    assert wait_until(lambda: count_lines(agent.out_path) == 2, 10)
    assert agent.stop(sig=sig) == 0
    assert http_get_fails(agent.port)


def http_get_fails(port):
    try:
        http_get(port, "/health", timeout=1)
    except OSError:
        return True
    return False


def port_in_use(port):
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_embedded_default_runs_once(tmp_path):
    """No -c: the embedded default (tail /var/log, print to stdout) starts,
    reads what exists to its end, and exits 0 with --once."""
    if port_in_use(9431):
        pytest.skip("the embedded default's port 9431 is in use")
    state = tmp_path / "state"
    p = run_cli("run", "--once", env={"LC_STATE_DIR": str(state)}, timeout=60)
    assert p.returncode == 0, p.stderr[-3000:]
    assert state.is_dir(), "no state directory created"


def test_second_agent_on_same_state_dir_is_refused(agent, tmp_path):
    """Two agents on one state_dir would ship every line twice: the second exits 1, clearly."""
    agent.start()
    other = tmp_path / "other.yaml"
    cfg = dict(agent.config, listen="off")
    other.write_text(to_yaml(cfg))
    p = run_cli("run", "-c", str(other), timeout=20)
    assert p.returncode == 1, p.stderr
    assert "in use by another log_capturer" in p.stderr
    assert agent.proc.poll() is None  # the first one runs on
    agent.stop()


@pytest.mark.parametrize("what", ["output_unopenable", "port_in_use"])
def test_startup_failure_exits_1_without_crash(tmp_path, what):
    logs = tmp_path / "logs"
    logs.mkdir()
    blocker = None
    cfg = {"state_dir": str(tmp_path / "state"), "listen": f"127.0.0.1:{free_port()}",
           "inputs": [{"type": "file", "name": "f", "paths": [str(logs / "*.log")]}],
           "outputs": [{"type": "file", "name": "out", "path": str(tmp_path / "out.ndjson")}]}
    if what == "output_unopenable":
        cfg["outputs"][0]["path"] = str(tmp_path / "no" / "such" / "dir" / "out.ndjson")
    else:
        blocker = socket.socket()
        blocker.bind(("127.0.0.1", 0))
        blocker.listen(1)
        cfg["listen"] = f"127.0.0.1:{blocker.getsockname()[1]}"
    path = tmp_path / "c.yaml"
    path.write_text(to_yaml(cfg))
    try:
        p = run_cli("run", "-c", str(path), timeout=20)
    finally:
        if blocker:
            blocker.close()
    assert p.returncode == 1, p.stderr
    assert '"level":"error"' in p.stderr
    assert "stopped" in p.stderr.splitlines()[-1]
