# SPDX-License-Identifier: MIT
"""test_observe.py: the agent watching itself, through the real binary: the leak watchdog
(with the test-only LC_TEST_WATCHDOG_LEAK knob of LC_TESTS builds) and /health.

The watchdog runs with a 100 ms interval here, so its 60-sample ring spans 6 s and a leak of
one FD per sample is 600 FDs/min: flagged after the 10 samples it needs at least.
"""

import json
import time
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from agent import Agent, append_lines, have_binary, scaled, wait_until  # noqa: E402
from fake_loki import FakeLoki  # noqa: E402

if not have_binary():
    if os.environ.get("LC_REQUIRE_BIN"):
        raise RuntimeError("LC_BIN is not an executable: build first")
    pytest.skip("log_capturer binary not built", allow_module_level=True)

# RSS: a few seconds right after start-up see the allocator warm up (under ASan its quarantine
# fills), which per minute extrapolates to far more than 1 MiB/min; the RSS rule has its unit
# tests (tests/unit/test_watchdog.c), these are about FDs and threads.
FAST_WATCHDOG = {"interval": "100ms", "window": "5s", "max_rss_per_min": "4GiB"}


@pytest.fixture
def make_agent(tmp_path, request):
    """Agents of one test (by default with a file input on tmp_path/logs), killed at its end."""
    names = iter(range(100))

    def make(inputs=None, **kw):
        if inputs is None:
            (tmp_path / "logs").mkdir(exist_ok=True)
            inputs = [{"type": "file", "name": "files",
                       "paths": [str(tmp_path / "logs" / "*.log")]}]
        a = Agent(tmp_path, inputs, name=f"agent{next(names)}", **kw)
        request.addfinalizer(a.cleanup)
        return a
    return make


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


# ----------------------------------------------------------------------------- /health

@pytest.fixture
def fake(request):
    loki = FakeLoki()
    request.addfinalizer(loki.stop)
    loki.start(0)
    return loki


def loki_output(fake, **over):
    out = {"type": "loki", "name": "loki", "url": fake.url, "timeout": "1s",
           "retry": {"initial": "100ms", "max": "300ms"},
           "breaker": {"failures": 2, "cooldown": "300ms"}}
    out.update(over)
    return out


def test_health_lists_every_component(make_agent, fake, tmp_path):
    """One object: each input with its sources and lines, each output with its breaker, retry
    queue and DLQ fill, the checkpoint store and the watchdog; 200 and no reasons when all ok."""
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "a.log").touch()
    (logs / "b.log").touch()
    a = make_agent([{"type": "file", "name": "files", "paths": [str(logs / "*.log")]}],
                   outputs=[loki_output(fake)]).start()
    append_lines(logs / "a.log", ["one", "two"])
    assert fake.wait_entries(2, 10)
    assert wait_until(lambda: a.health()[1]["components"]["input/files"]["sources"] == 2, 5), \
        a.health()
    status, h = a.health()
    assert status == 200 and h["status"] == "ok" and h["ready"] is True, h
    assert h["reasons"] == []
    c = h["components"]
    assert c["input/files"]["status"] == "ok" and c["input/files"]["lines"] == 2, c
    out = c["output/loki"]
    assert out["status"] == "ok", out
    for k in ("breaker_state", "retry_queue_batches", "dlq_bytes", "records", "pending_bytes"):
        assert out[k] == 0 if k != "records" else out[k] == 2, (k, out)
    assert out["dlq_max_bytes"] == 256 << 20
    assert c["checkpoints"]["status"] == "ok" and "entries" in c["checkpoints"], c
    assert c["watchdog"]["status"] == "ok", c
    assert a.stop() == 0


def test_health_loki_down_503_then_recovers(make_agent, fake, tmp_path):
    """Loki goes away: the breaker opens, /health answers 503 naming the output and why; Loki
    comes back: 200 again and every line delivered."""
    logs = tmp_path / "logs"
    logs.mkdir()
    a = make_agent([{"type": "file", "name": "files", "paths": [str(logs / "*.log")]}],
                   outputs=[loki_output(fake)]).start()
    fake.down()
    append_lines(logs / "a.log", [f"line {i}" for i in range(20)])
    assert wait_until(lambda: a.health()[0] == 503, 10), a.health()
    status, h = a.health()
    assert h["status"] == "down" and h["components"]["output/loki"]["status"] == "down", h
    assert any(r.startswith("output/loki down: circuit breaker open") for r in h["reasons"]), h
    assert h["components"]["output/loki"]["breaker_state"] in (1, 2)
    fake.up()
    assert wait_until(lambda: a.health()[0] == 200, 10), a.health()
    assert fake.wait_entries(20, 10)
    assert wait_until(lambda: a.health()[1]["reasons"] == [], 5), a.health()
    assert a.stop() == 0


def test_health_dlq_nearly_full_degraded(make_agent, fake, tmp_path):
    """A DLQ over 90 % of dlq.max_bytes (left by an earlier run in which Loki rejected
    batches) makes the output degraded at start: 200 (the agent works), and the reason says
    to replay. A DLQ under 90 % leaves it ok."""
    logs = tmp_path / "logs"
    logs.mkdir()
    for fill, want in ((50_000, "ok"), (60_000, "degraded")):  # of 64 KiB
        a = make_agent([{"type": "file", "name": "files", "paths": [str(logs / "*.log")]}],
                       outputs=[loki_output(fake, dlq={"max_bytes": "64KiB"})])
        seg = a.state_dir / "dlq" / "loki" / "segment-00000000000000000001.ndjson"
        seg.parent.mkdir(parents=True, mode=0o700)
        line = json.dumps({"pad": "x" * 88}) + "\n"
        seg.write_text(line * (fill // len(line)))
        seg.chmod(0o600)
        a.start()
        status, h = a.health()
        out = h["components"]["output/loki"]
        assert out["dlq_bytes"] == seg.stat().st_size and out["dlq_max_bytes"] == 65536, out
        assert status == 200 and out["status"] == want, h
        if want == "degraded":
            assert h["status"] == "degraded"
            assert h["reasons"] == ["output/loki degraded: dead-letter queue over 90% full: "
                                    "replay it (dlq replay)"], h
        else:
            assert h["reasons"] == [], h
        assert a.stop() == 0


# ----------------------------------------------------------------------------- anomalies

def test_anomaly_spike_through_the_pipeline(make_agent, tmp_path):
    """anomaly.enabled with a 200 ms interval: a file that logs steadily then bursts x20 raises
    log_capturer_anomaly_active{kind="spike"} and a JSON warning with its labels and numbers."""
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "app.log").touch()
    a = make_agent([{"type": "file", "name": "files", "paths": [str(logs / "*.log")]}],
                   extra={"anomaly": {"enabled": True, "interval": "200ms", "warmup": "1s",
                                      "spike_min_lines": 50}}).start()

    def active():
        return a.metric("log_capturer_anomaly_active", kind="spike", input="files")
    with open(logs / "app.log", "a") as f:
        for i in range(12):  # 2.4 s at ~50 lines/s: past the warm-up, a baseline
            f.write("".join(f"steady {i} {j}\n" for j in range(10)))
            f.flush()
            time.sleep(0.2)
        assert not active()
        # then x20, until it is seen: 15 s at most (scaled: ASan beside other jobs has taken
        # more than 5 s to see two intervals in a row over the rate)
        end = time.monotonic() + scaled(15)
        i = 0
        while time.monotonic() < end:
            f.write("".join(f"burst {i} {j}\n" for j in range(200)))
            f.flush()
            i += 1
            time.sleep(0.2)
            if active():
                break
    assert active(), a.stderr()[-3000:]
    ev = [r for r in a.log_records() if r.get("component") == "anomaly" and r.get("kind") == "spike"]
    assert ev and ev[0]["input"] == "files" and ev[0]["value"] > 5 * ev[0]["baseline"], ev
    assert ev[0]["labels"]["filename"].endswith("app.log"), ev
    assert a.metric("log_capturer_anomalies_total", kind="spike", input="files") >= 1
    _, h = a.health()
    assert h["components"]["anomalies"]["streams"] == 1, h
    assert a.stop() == 0
