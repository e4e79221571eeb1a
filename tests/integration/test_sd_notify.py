# SPDX-License-Identifier: MIT
"""test_sd_notify.py: the agent speaks systemd's notify protocol (Type=notify): a fake
NOTIFY_SOCKET (an AF_UNIX datagram socket, as systemd's) receives READY=1 once /ready is 200,
WATCHDOG=1 every half of WATCHDOG_USEC, RELOADING=1 then READY=1 around a SIGHUP reload, and
STOPPING=1 at SIGTERM. No Docker, a few seconds."""

import os
import signal
import socket
import time

import pytest

from agent import Agent, have_binary, http_get, scaled

if not have_binary():
    if os.environ.get("LC_REQUIRE_BIN"):
        raise RuntimeError("LC_BIN is not an executable: build first")
    pytest.skip("log_capturer binary not built", allow_module_level=True)

WATCHDOG_USEC = 200_000  # the agent must send WATCHDOG=1 every 100 ms


class FakeSystemd:
    """The receiving end of NOTIFY_SOCKET: collects every datagram with its arrival time."""

    def __init__(self, path):
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.05)
        self.messages = []  # (monotonic time, {key: value})

    def poll(self, seconds):
        """Receives for `seconds` (bounded)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            fields = dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)
            self.messages.append((time.monotonic(), fields))

    def wait_for(self, key, value, after=0, timeout=10):
        """Index of the first message after index `after` with key=value, or None."""
        deadline = time.monotonic() + scaled(timeout)
        while True:
            for i in range(after, len(self.messages)):
                if self.messages[i][1].get(key) == value:
                    return i
            if time.monotonic() >= deadline:
                return None
            self.poll(0.1)

    def close(self):
        self.sock.close()


@pytest.fixture
def fake_systemd(tmp_path, monkeypatch):
    # AF_UNIX paths are short: a directory of our own under /tmp, not pytest's deep tmp_path.
    import tempfile
    d = tempfile.mkdtemp(prefix="lcn-")
    fs = FakeSystemd(os.path.join(d, "notify"))
    monkeypatch.setenv("NOTIFY_SOCKET", fs.path)
    monkeypatch.setenv("WATCHDOG_USEC", str(WATCHDOG_USEC))
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    yield fs
    fs.close()
    os.unlink(fs.path)
    os.rmdir(d)


def test_ready_watchdog_reload_stopping(tmp_path, fake_systemd):
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "a.log").write_text("one\n")
    a = Agent(tmp_path, [{"type": "file", "name": "logs", "paths": [str(logs / "*.log")],
                          "start_at": "beginning"}])
    try:
        a.start(wait_ready=False)
        ready = fake_systemd.wait_for("READY", "1")
        assert ready is not None, f"no READY=1:\n{fake_systemd.messages}\n{a.stderr()[-2000:]}"
        # READY=1 means what /ready means: inputs and outputs started
        assert http_get(a.port, "/ready", timeout=2)[0] == 200
        assert "1 inputs, 1 outputs" in fake_systemd.messages[ready][1].get("STATUS", "")

        # WATCHDOG=1 keeps coming, every ~100 ms (half of WATCHDOG_USEC)
        fake_systemd.poll(1.0)
        dogs = [t for t, m in fake_systemd.messages if m.get("WATCHDOG") == "1"]
        assert len(dogs) >= 5, f"{len(dogs)} WATCHDOG=1 in ~1 s: {fake_systemd.messages}"
        gaps = [b - x for x, b in zip(dogs, dogs[1:])]
        assert max(gaps) < scaled(0.5), gaps

        # SIGHUP: RELOADING=1, then READY=1 once the configuration runs again
        n = len(fake_systemd.messages)
        a.proc.send_signal(signal.SIGHUP)
        rel = fake_systemd.wait_for("RELOADING", "1", after=n)
        assert rel is not None, fake_systemd.messages[n:]
        again = fake_systemd.wait_for("READY", "1", after=rel + 1)
        assert again is not None, fake_systemd.messages[n:]
        assert "MONOTONIC_USEC" in fake_systemd.messages[rel][1]
        # the watchdog runs on after the reload
        n = len(fake_systemd.messages)
        assert fake_systemd.wait_for("WATCHDOG", "1", after=n, timeout=2) is not None

        # SIGTERM: STOPPING=1, then a clean exit
        n = len(fake_systemd.messages)
        a.proc.send_signal(signal.SIGTERM)
        assert fake_systemd.wait_for("STOPPING", "1", after=n) is not None, \
            fake_systemd.messages[n:]
        assert a.wait(30) == 0, a.stderr()[-2000:]
    finally:
        if a.running():
            a.stop()
        a.cleanup()
    assert "one" in a.out_path.read_text()


def test_no_watchdog_without_watchdog_usec(tmp_path, fake_systemd, monkeypatch):
    monkeypatch.delenv("WATCHDOG_USEC")
    a = Agent(tmp_path, [{"type": "file", "name": "logs", "paths": [str(tmp_path / "*.log")]}])
    try:
        a.start(wait_ready=False)
        assert fake_systemd.wait_for("READY", "1") is not None, fake_systemd.messages
        fake_systemd.poll(0.5)
        assert not [m for _, m in fake_systemd.messages if "WATCHDOG" in m], \
            fake_systemd.messages
        assert a.stop() == 0
    finally:
        if a.running():
            a.stop()
        a.cleanup()
