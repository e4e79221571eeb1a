# SPDX-License-Identifier: MIT
"""test_observe.py: the agent watching itself, through the real binary: the leak watchdog
(with the test-only LC_TEST_WATCHDOG_LEAK knob of LC_TESTS builds) and /health.

The watchdog runs with a 100 ms interval here, so its 60-sample ring spans 6 s and a leak of
one FD per sample is 600 FDs/min: flagged after the 10 samples it needs at least.
"""

import os

import pytest

from agent import Agent, have_binary, wait_until

if not have_binary():
    if os.environ.get("LC_REQUIRE_BIN"):
        raise RuntimeError("LC_BIN is not an executable: build first")
    pytest.skip("log_capturer binary not built", allow_module_level=True)

FAST_WATCHDOG = {"interval": "100ms", "window": "5s"}


@pytest.fixture
def make_agent(tmp_path):
    made = []

    def make(inputs=None, **kw):
        if inputs is None:
            logs = tmp_path / "logs"
            logs.mkdir(exist_ok=True)
            inputs = [{"type": "file", "name": "files", "paths": [str(logs / "*.log")]}]
        a = Agent(tmp_path, inputs, name=f"agent{len(made)}", **kw)
        made.append(a)
        return a

    yield make
    for a in made:
        a.cleanup()


def growth(a):
    """{resource: value} of log_capturer_watchdog_growth."""
    out = {}
    for (name, labels), v in a.metrics().items():
        if name == "log_capturer_watchdog_growth":
            out[dict(labels)["resource"]] = v
    return out


def test_watchdog_flags_injected_fd_leak(make_agent, monkeypatch):
    """One FD leaked per sample: the watchdog names fds_files in a warning, the growth gauge
    and /health (degraded, still 200: the agent works) within its window."""
    monkeypatch.setenv("LC_TEST_WATCHDOG_LEAK", "fd")
    a = make_agent(extra={"watchdog": FAST_WATCHDOG}).start()
    assert wait_until(lambda: growth(a).get("fds_files") == 1, 5), (
        f"not flagged: {growth(a)}\n{a.stderr()[-2000:]}")
    status, h = a.health()
    assert status == 200
    wd = h["components"]["watchdog"]
    assert wd["status"] == "degraded" and "fds_files grows" in wd["detail"], h
    assert h["status"] == "degraded"
    warns = [r for r in a.log_records()
             if r.get("component") == "watchdog" and "fds_files grows" in r.get("msg", "")]
    assert warns and "/min" in warns[0]["msg"]
    assert growth(a)["threads"] == 0
    assert a.stop() == 0


def test_watchdog_quiet_without_leak(make_agent, monkeypatch):
    """The same agent without the knob: 20 samples, nothing grows, /health says ok."""
    monkeypatch.delenv("LC_TEST_WATCHDOG_LEAK", raising=False)
    a = make_agent(extra={"watchdog": FAST_WATCHDOG}).start()
    assert wait_until(lambda: a.metric("log_capturer_watchdog_samples_total") >= 20, 10)
    assert set(growth(a).values()) == {0}, growth(a)
    status, h = a.health()
    assert status == 200 and h["components"]["watchdog"]["status"] == "ok", h
    assert not [r for r in a.log_records() if r.get("component") == "watchdog"]
    assert a.stop() == 0
