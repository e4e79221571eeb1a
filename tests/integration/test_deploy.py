# SPDX-License-Identifier: MIT
"""test_deploy.py: the operator's day-one kit in deploy/: the Grafana dashboard and the
Prometheus alert rules. promtool (Debian package prometheus) checks and unit-tests the rules,
and every metric the dashboard and the rules query must exist in the /metrics of a live agent
running every plugin (no Docker needed: the Docker inputs point at a socket that does not exist).
"""

import json
import os
import re
import shutil
import subprocess

import pytest

from agent import REPO, Agent, have_binary, http_get, parse_metrics

if not have_binary():
    if os.environ.get("LC_REQUIRE_BIN"):
        raise RuntimeError("LC_BIN is not an executable: build first")
    pytest.skip("log_capturer binary not built", allow_module_level=True)

DASHBOARD = REPO / "deploy" / "grafana" / "log_capturer.json"
RULES = REPO / "deploy" / "prometheus" / "alerts.yml"
RULES_TEST = REPO / "deploy" / "prometheus" / "alerts_test.yml"
METRIC = re.compile(r"\b((?:log_capturer|process)_[a-z0-9_]+)\b")
# Series Prometheus makes itself, not the agent.
SCRAPE_SERIES = {"up"}


def promtool(*args):
    exe = shutil.which("promtool")
    if not exe:
        pytest.fail("promtool not found: scripts/install-deps.sh --test installs prometheus")
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=60)


def dashboard_exprs():
    d = json.loads(DASHBOARD.read_text())
    out = []
    for p in d["panels"]:
        for t in p.get("targets", []):
            out.append((p["title"], t["expr"]))
    out.append(("variable instance", d["templating"]["list"][1]["definition"]))
    return d, out


def rule_exprs():
    """(alert, expr) of every rule, read without a YAML library: exprs are plain or `|` blocks."""
    out, alert, lines = [], None, RULES.read_text().splitlines()
    i = 0
    while i < len(lines):
        m = re.match(r"\s*- alert: (\S+)", lines[i])
        if m:
            alert = m.group(1)
        m = re.match(r"(\s*)expr: (.*)", lines[i])
        if m:
            if m.group(2).strip() == "|":
                block, ind = [], len(m.group(1))
                i += 1
                while i < len(lines) and (not lines[i].strip() or
                                          len(lines[i]) - len(lines[i].lstrip()) > ind):
                    block.append(lines[i].strip())
                    i += 1
                out.append((alert, " ".join(block)))
                continue
            out.append((alert, m.group(2)))
        i += 1
    return out


def test_rules_check_and_unit_tests():
    r = promtool("check", "rules", str(RULES))
    assert r.returncode == 0, r.stdout + r.stderr
    r = promtool("test", "rules", str(RULES_TEST))
    assert r.returncode == 0 and "SUCCESS" in r.stdout, r.stdout + r.stderr
    alerts = {a for a, _ in rule_exprs()}
    assert alerts == {"LogCapturerDown", "LogCapturerOutputFailing", "LogCapturerBreakerOpen",
                      "LogCapturerDLQGrowing", "LogCapturerDLQNearlyFull",
                      "LogCapturerWatchdogGrowth", "LogCapturerLinesDropped"}
    tested = set(re.findall(r"alertname: (\w+)", RULES_TEST.read_text()))
    assert alerts <= tested, f"alerts without a unit test: {alerts - tested}"


def test_dashboard_rows():
    d, exprs = dashboard_exprs()
    rows = [p["title"] for p in d["panels"] if p["type"] == "row"]
    assert rows == ["Lines in and out", "Bytes on the wire", "Drops and clamps by reason",
                    "Retries and requests", "Dead-letter queue", "Circuit breaker", "Connections",
                    "Threads, FDs, memory", "Leak watchdog", "Anomalies in log rates"]
    ids = [p["id"] for p in d["panels"]]
    assert len(ids) == len(set(ids))
    assert all(e.strip() for _, e in exprs)


def test_every_queried_metric_exists_in_live_metrics(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    (tmp_path / "docker" / "containers").mkdir(parents=True)
    sock = str(tmp_path / "none.sock")
    a = Agent(tmp_path, [
        {"type": "file", "name": "files", "paths": [str(logs / "*.log")]},
        {"type": "docker", "name": "containers", "mode": "file", "root": str(tmp_path / "docker"),
         "socket": sock},
        {"type": "docker", "name": "containers_api", "mode": "api", "socket": sock},
    ], outputs=[
        {"type": "loki", "name": "loki", "url": "http://127.0.0.1:9"},
        {"type": "file", "name": "archive", "path": str(tmp_path / "out.ndjson")},
    ], extra={"anomaly": {"enabled": True}})
    try:
        a.start()
        text = http_get(a.port, "/metrics")[1].decode()
        types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))
        assert parse_metrics(text) is not None
    finally:
        a.cleanup()
    _, dash = dashboard_exprs()
    missing = []
    for where, expr in dash + rule_exprs():
        for name in METRIC.findall(expr):
            base = re.sub(r"_(bucket|sum|count)$", "", name) if name not in types else name
            if base not in types and name not in SCRAPE_SERIES:
                missing.append(f"{where}: {name}")
    assert not missing, "queried but not in /metrics:\n" + "\n".join(missing)
    # and the rules' functions fit the types: rate()/increase() only on counters
    for where, expr in dash + rule_exprs():
        for fn, name in re.findall(r"\b(rate|increase)\(((?:log_capturer|process)_[a-z0-9_]+)",
                                   expr):
            assert types.get(name) == "counter", f"{where}: {fn}() of {types.get(name)} {name}"
