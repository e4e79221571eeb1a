# SPDX-License-Identifier: MIT
"""test_process.py: processing stages (issue 9) with the real binary.

Containers on the harness's private engine print a Java stack trace, a Python
traceback, a Go panic, JSON and logfmt lines on stdout and stderr interleaved;
the fake Loki must receive exactly the expected entries: one per trace, labels
as configured, secrets masked, dropped lines absent and counted. Then, with the
file input (no Docker): multiline across kill -9 and across a rotation, the
cardinality guard at its limit, test-process and check-config --print.
"""

import json
import os
import signal
import time
from pathlib import Path

import pytest

import agent as ag

pytestmark = pytest.mark.skipif(not ag.have_binary(), reason="build/log_capturer not built")

JAVA = ["Exception in thread \"main\" java.lang.IllegalStateException: boom",
        "\tat com.example.App.run(App.java:42)",
        "\tat com.example.App.main(App.java:7)",
        "Caused by: java.io.IOException: disk full",
        "\t... 2 more"]
PYTHON = ["Traceback (most recent call last):",
          "  File \"/app/main.py\", line 3, in <module>",
          "    main()",
          "ValueError: bad value"]
GO = ["panic: runtime error: index out of range [3] with length 3",
      "",
      "goroutine 1 [running]:",
      "main.main()",
      "\t/app/main.go:8 +0x1d",
      "exit status 2"]



def sh_print(lines, fd):
    """busybox sh commands printing lines (as they are) on fd 1 or 2."""
    out = []
    for line in lines:
        q = line.replace("\\", "\\\\").replace("'", "'\"'\"'").replace("%", "%%")
        out.append(f"printf '{q}\\n'" + (" >&2" if fd == 2 else ""))
    return out


def loki_output(fake):
    return {"type": "loki", "name": "loki", "url": fake.url, "encoding": "protobuf",
            "timeout": "3s", "retry": {"initial": "200ms", "max": "2s"}}


def docker_in(eng, name, container, process):
    return {"type": "docker", "name": name, "mode": "api", "socket": eng.sock,
            "start_at": "beginning", "max_age": "0", "include": {"names": [container]},
            "process": process}


@pytest.mark.docker
def test_containers_traces_json_logfmt(tmp_path, docker, fake):
    """Three containers (one per trace kind), stdout and stderr interleaved: one entry per
    trace, JSON and logfmt levels as labels, secrets masked, health checks dropped."""
    eng = docker
    common = [
        {"json": {"expressions": {"level": "", "msg": ""}}},
        {"logfmt": {"mapping": {"level": ""}}},
        {"labels": {"fields": {"level": ""}}},
        {"replace": {"expression": "(?i)password=[^\\s\"]+", "replace": "password=***"}},
        {"replace": {"preset": "email"}},
        {"drop": {"expression": "GET /healthz", "reason": "health"}},
    ]
    # lines each container prints: (stream fd, line), interleaved
    java_out = ([(1, '{"level":"info","msg":"starting","user":"a@b.example"}')] +
                [(1, x) for x in JAVA] + [(2, 'GET /healthz 200'),
                                          (1, '{"level":"warn","msg":"password=hunter2"}'),
                                          (2, '{"level":"error","msg":"on stderr"}'),
                                          (1, "not json {")])
    py_out = ([(1, "level=info msg=start")] + [(2, x) for x in PYTHON] +
              [(1, 'level=debug msg="two words"'), (2, "level=error msg=after")])
    go_out = [(1, "level=info msg=go")] + [(2, x) for x in GO] + [(1, "GET /healthz 200")]
    ins = []
    names = {"jv": ("java", java_out), "py": ("python", py_out), "go": ("go", go_out)}
    for cname, (preset, _) in names.items():
        ins.append(docker_in(eng, f"in_{cname}", cname,
                             [{"multiline": {"preset": preset, "flush_after": "500ms"}}] + common))
    a = ag.Agent(tmp_path, ins, outputs=[loki_output(fake)])
    try:
        a.start()
        for cname, (_, lines) in names.items():
            cmds = []
            for fd, line in lines:
                cmds += sh_print([line], fd)
            eng.run_container(cname, "; ".join(cmds) + "; sleep 30")

        def want():
            w = []
            jv = [("stdout", "info", '{"level":"info","msg":"starting","user":"***@***"}'),
                  ("stdout", None, "\n".join(JAVA)),
                  ("stdout", "warn", '{"level":"warn","msg":"password=***"}'),
                  ("stderr", "error", '{"level":"error","msg":"on stderr"}'),
                  ("stdout", None, "not json {")]
            py = [("stdout", "info", "level=info msg=start"),
                  ("stderr", None, "\n".join(PYTHON)),
                  ("stdout", "debug", 'level=debug msg="two words"'),
                  ("stderr", "error", "level=error msg=after")]
            go = [("stdout", "info", "level=info msg=go"),
                  ("stderr", None, "\n".join(GO))]
            for c, lst in (("jv", jv), ("py", py), ("go", go)):
                w += [(c, s, lv, line) for s, lv, line in lst]
            return sorted(w, key=repr)

        expected = want()
        ag.wait_until(lambda: len(fake.entries()) >= len(expected), 30, interval=0.2)
        time.sleep(1.0)  # nothing more may come (dropped lines stay absent)
        got = sorted(((e["labels"].get("container_name"), e["labels"].get("stream"),
                       e["labels"].get("level"), e["line"]) for e in fake.entries()), key=repr)
        assert got == expected
        m = a.metrics()
        assert ag.metric_sum(m, "log_capturer_process_dropped_total", reason="health") == 2
        assert ag.metric_sum(m, "log_capturer_process_multiline_records_total") >= 3
        # "not json {" and the traces fail json; counted, never dropped
        assert ag.metric_sum(m, "log_capturer_process_failed_total") >= 2
    finally:
        a.stop()
        a.cleanup()


def file_agent(tmp_path, logdir, process, name="agent", outputs=None):
    inp = {"type": "file", "name": "logs", "paths": [str(logdir / "*.log")],
           "start_at": "beginning", "poll_interval": "50ms", "rescan_interval": "100ms",
           "rotate_wait": "300ms", "process": process}
    return ag.Agent(tmp_path, [inp], outputs=outputs, name=name)


def lines_of(a):
    return [r["line"] for r in a.output().records]


def test_multiline_kill9_rereads_whole_trace(tmp_path):
    """kill -9 while half a Java trace is held: after the restart the trace arrives once,
    whole; nothing before it is lost."""
    logdir = tmp_path / "logs"
    logdir.mkdir()
    log = logdir / "app.log"
    proc = [{"multiline": {"preset": "java", "flush_after": "1h"}}]
    with open(log, "w") as f:
        f.write("INFO before\n" + "\n".join(JAVA[:3]) + "\n")
    a = file_agent(tmp_path, logdir, proc)
    try:
        a.start()
        assert ag.wait_until(lambda: "INFO before" in lines_of(a), 10)
        # the half trace is held, its position uncommitted
        with open(log, "a") as f:
            f.write(JAVA[3] + "\n")
        time.sleep(0.5)
        a.kill9()
        with open(log, "a") as f:
            f.write(JAVA[4] + "\nINFO after\n")
        a.start()
        assert ag.wait_until(lambda: "\n".join(JAVA) in lines_of(a), 10), lines_of(a)
        got = lines_of(a)
        traces = [x for x in got if x.startswith("Exception in thread")]
        assert traces == ["\n".join(JAVA)], got
        assert not any(x.startswith("\tat") or x.startswith("Caused") for x in got), got
        assert got.count("INFO before") >= 1
    finally:
        a.stop()
        a.cleanup()


def test_multiline_flush_after_and_rotation(tmp_path):
    """A trace at the end of a file that is then rotated: flushed after flush_after, once,
    whole; the next file's lines are their own records; the old file's position commits."""
    logdir = tmp_path / "logs"
    logdir.mkdir()
    log = logdir / "app.log"
    proc = [{"multiline": {"preset": "java", "flush_after": "300ms"}}]
    with open(log, "w") as f:
        f.write("INFO one\n" + "\n".join(JAVA) + "\n")
    a = file_agent(tmp_path, logdir, proc)
    try:
        a.start()
        assert ag.wait_until(lambda: "\n".join(JAVA) in lines_of(a), 10), lines_of(a)
        os.rename(log, logdir / "app.log.1")
        with open(log, "w") as f:
            f.write("\tat continues.in.new.File(F.java:1)\nINFO two\n")
        assert ag.wait_until(lambda: "INFO two" in lines_of(a), 10), lines_of(a)
        got = lines_of(a)
        assert got.count("\n".join(JAVA)) == 1
        assert "\tat continues.in.new.File(F.java:1)" in got
        m = a.metrics()
        assert ag.metric_sum(m, "log_capturer_process_multiline_total", event="flush_after") >= 2
        a.stop()
        # restart: everything was committed, nothing is sent again
        n = len(got)
        a.start()
        time.sleep(1.0)
        assert len(lines_of(a)) == n
    finally:
        a.stop()
        a.cleanup()


def test_reload_rereads_held_trace_and_applies_stages(tmp_path):
    """SIGHUP with a changed stage list while half a trace is held: the trace is given up
    and read again by the new pipeline (once, whole), and the new stage applies."""
    logdir = tmp_path / "logs"
    logdir.mkdir()
    log = logdir / "app.log"
    with open(log, "w") as f:
        f.write("INFO token=abc\n" + "\n".join(JAVA[:2]) + "\n")
    a = file_agent(tmp_path, logdir, [{"multiline": {"preset": "java", "flush_after": "1h"}}])
    try:
        a.start()
        assert ag.wait_until(lambda: "INFO token=abc" in lines_of(a), 10)
        a.config["inputs"][0]["process"].append(
            {"replace": {"expression": "token=\\w+", "replace": "token=***"}})
        a.write_config()
        reloads = a.stderr().count("reloading the configuration")
        os.kill(a.pid, signal.SIGHUP)
        assert ag.wait_until(
            lambda: a.stderr().count("reloading the configuration") > reloads, 10)
        time.sleep(1.0)
        with open(log, "a") as f:
            f.write("\n".join(JAVA[2:]) + "\nINFO token=xyz\nINFO last\n")
        # the first line is read again too (at-least-once), now through the new stage
        assert ag.wait_until(lambda: lines_of(a).count("INFO token=***") == 2, 10), lines_of(a)
        got = lines_of(a)
        assert [x for x in got if x.startswith("Exception")] == ["\n".join(JAVA)], got
        assert not any(x.startswith("\tat") for x in got), got
    finally:
        a.stop()
        a.cleanup()


def test_cardinality_guard_at_limit(tmp_path):
    """A label fed 10 distinct values with max_values 3: 3 pass, the rest are __overflow__,
    counted."""
    logdir = tmp_path / "logs"
    logdir.mkdir()
    with open(logdir / "a.log", "w") as f:
        for i in range(10):
            f.write(f"user=u{i} msg=x\n")
    proc = [{"logfmt": {}}, {"labels": {"fields": {"user": ""}, "max_values": 3}}]
    a = file_agent(tmp_path, logdir, proc)
    try:
        a.start()
        assert ag.wait_until(lambda: len(a.output().records) >= 10, 10)
        users = [r["labels"].get("user") for r in a.output().records]
        assert users == ["u0", "u1", "u2"] + ["__overflow__"] * 7
        assert ag.metric_sum(a.metrics(), "log_capturer_process_label_overflow_total",
                             label="user") == 7
    finally:
        a.stop()
        a.cleanup()


def test_test_process_and_print(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(ag.to_yaml({
        "state_dir": str(tmp_path / "state"),
        "processes": {"p": [{"multiline": {"preset": "python"}},
                            {"regex": {"expression": "^(?P<level>[A-Z]+) "}},
                            {"drop": {"source": "level", "value": "DEBUG", "reason": "debug"}},
                            {"labels": {"fields": {"level": ""}}}]},
        "inputs": [{"type": "file", "name": "f", "paths": ["/nonexistent/*.log"],
                    "process": "p"}],
        "outputs": [{"type": "null", "name": "o"}],
    }))
    stdin = "INFO a\nDEBUG b\n" + "\n".join(PYTHON) + "\nWARN c\n"
    p = ag.subprocess.run([ag.LC_BIN, "test-process", "-c", str(cfg), "--input", "f"],
                          input=stdin, capture_output=True, text=True, timeout=ag.scaled(20))
    assert p.returncode == 0, p.stderr
    out = [json.loads(x) for x in p.stdout.splitlines()]
    assert out[0]["line"] == "INFO a" and out[0]["labels"] == {"level": "INFO"}
    assert out[1] == {"dropped": "debug"}
    assert out[2]["line"] == "\n".join(PYTHON) and out[2]["fields"] == {}
    assert out[3]["line"] == "WARN c" and out[3]["fields"] == {"level": "WARN"}
    # --profile: CPU time per record of each stage, a row per stage in order
    p = ag.subprocess.run([ag.LC_BIN, "test-process", "-c", str(cfg), "--input", "f",
                           "--profile"], input=stdin * 50, capture_output=True, text=True,
                          timeout=ag.scaled(20))
    assert p.returncode == 0, p.stderr
    rows = [r.split("|")[1].strip() for r in p.stdout.splitlines() if r.startswith("| ")]
    assert rows == ["stage", "(chain only)", "1:multiline", "2:regex", "3:drop", "4:labels"], \
        p.stdout
    assert p.stdout.startswith(f"{stdin.count(chr(10)) * 50} records"), p.stdout
    p = ag.run_cli("check-config", "--print", str(cfg))
    assert p.returncode == 0, p.stderr
    assert "processes:\n  \"p\":\n    - multiline:\n" in p.stdout
    assert "    process: \"p\"" in p.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text(cfg.read_text().replace("^(?P<level>[A-Z]+) ", "^(?P<level>[A-Z+ "))
    p = ag.run_cli("check-config", str(bad))
    assert p.returncode == 2
    lineno = next(i for i, x in enumerate(bad.read_text().splitlines(), 1) if "[A-Z+ " in x)
    assert f"{bad}:{lineno}:" in p.stderr and "invalid regex" in p.stderr, p.stderr


def test_structured_metadata_to_loki_both_encodings(tmp_path, fake):
    """structured_metadata: the fake Loki receives each entry's pairs, as protobuf field 3
    and as the JSON value's third element; an entry without fields has none; a pair past
    max_pairs is cut and counted; the file output shows the same pairs."""
    logdir = tmp_path / "logs"
    logdir.mkdir()
    lines = ["trace_id=t1 user=ann msg=a", "msg=b", "trace_id=t3 msg=c",
             "trace_id=t4 user=bob pod=p1 msg=d"]
    (logdir / "a.log").write_text("".join(x + "\n" for x in lines))
    proc = [{"logfmt": {}},
            {"structured_metadata": {"values": {"trace_id": "", "user": None, "pod": ""},
                                     "max_pairs": 2}}]
    outs = [{"type": "file", "name": "out", "path": str(tmp_path / "agent-out.ndjson")}]
    for enc in ("protobuf", "json"):
        o = loki_output(fake)
        o.update({"name": enc, "encoding": enc, "labels": {"enc": enc}})
        outs.append(o)
    a = file_agent(tmp_path, logdir, proc, outputs=outs)
    want = [{"trace_id": "t1", "user": "ann"}, {}, {"trace_id": "t3"},
            {"trace_id": "t4", "user": "bob"}]
    try:
        a.start()
        assert fake.wait_entries(8, ag.scaled(10)) >= 8, fake.entries()
        for enc in ("protobuf", "json"):
            got = [e for e in fake.entries() if e["labels"].get("enc") == enc]
            got.sort(key=lambda e: e["ts"])
            assert [e["line"] for e in got] == lines, (enc, got)
            assert [e["metadata"] for e in got] == want, (enc, got)
        recs = a.output().records
        assert [r["line"] for r in recs] == lines
        assert [r.get("metadata", {}) for r in recs] == want
        assert "metadata" not in recs[1]
        assert ag.metric_sum(a.metrics(), "log_capturer_process_metadata_cut_total") == 1
        p = ag.subprocess.run([ag.LC_BIN, "test-process", "-c", str(a.cfg_path), "--input",
                               "logs"], input="trace_id=x user=u msg=y\nmsg=z\n",
                              capture_output=True, text=True, timeout=ag.scaled(20))
        assert p.returncode == 0, p.stderr
        out = [json.loads(x) for x in p.stdout.splitlines()]
        assert out[0]["metadata"] == {"trace_id": "x", "user": "u"}
        assert "metadata" not in out[1]
    finally:
        a.stop()
        a.cleanup()


def test_tenant_stage_one_request_per_tenant(tmp_path, fake):
    """tenant: records of one input go to Loki in separate requests per tenant, each with its
    X-Scope-OrgID; a record without the field, or with an ID Loki would refuse, goes with the
    output's tenant (the invalid one counted)."""
    logdir = tmp_path / "logs"
    logdir.mkdir()
    lines = ["org=team-a msg=1", "org=team-b msg=2", "msg=3", "org=team-a msg=4",
             "org=bad|id msg=5"]
    (logdir / "a.log").write_text("".join(x + "\n" for x in lines))
    o = loki_output(fake)
    o["tenant"] = "base"
    outs = [o, {"type": "file", "name": "out", "path": str(tmp_path / "agent-out.ndjson")}]
    a = file_agent(tmp_path, logdir, [{"logfmt": {}}, {"tenant": {"source": "org"}}],
                   outputs=outs)
    try:
        a.start()
        assert fake.wait_entries(len(lines), ag.scaled(10)) >= len(lines), fake.entries()
        reqs = {r["id"]: r for r in fake.requests()}
        by_tenant = {}
        for e in fake.entries():
            by_tenant.setdefault(reqs[e["req"]]["tenant"], []).append(e["line"])
        assert {t: sorted(v) for t, v in by_tenant.items()} == {
            "team-a": [lines[0], lines[3]], "team-b": [lines[1]],
            "base": [lines[2], lines[4]]}, by_tenant
        # three tenants: at least three requests, each with the one header of its entries
        assert len({e["req"] for e in fake.entries()}) >= 3
        m = a.metrics()
        assert ag.metric_sum(m, "log_capturer_process_tenant_invalid_total") == 1
        assert "log_capturer_output_open_batches" in ag.metric_names(m)
        # the file output and test-process show each record's tenant ("" : the output's)
        recs = {r["line"]: r.get("tenant") for r in a.output().records}
        assert recs == {lines[0]: "team-a", lines[1]: "team-b", lines[2]: None,
                        lines[3]: "team-a", lines[4]: None}, recs
        p = ag.subprocess.run([ag.LC_BIN, "test-process", "-c", str(a.cfg_path), "--input",
                               "logs"], input="org=x1 msg=y\nmsg=z\n",
                              capture_output=True, text=True, timeout=ag.scaled(20))
        assert p.returncode == 0, p.stderr
        out = [json.loads(x) for x in p.stdout.splitlines()]
        assert out[0]["tenant"] == "x1" and "tenant" not in out[1], out
    finally:
        a.stop()
        a.cleanup()
