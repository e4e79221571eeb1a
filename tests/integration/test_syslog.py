# SPDX-License-Identifier: MIT
"""test_syslog.py: the syslog input end to end: util-linux `logger` and raw sockets as senders.

Senders are `logger` (util-linux, on every Debian) over TCP (octet counting and newline framing)
and UDP, in RFC 5424 and RFC 3164, plus raw sockets for what logger cannot do (a 100-connection
burst, oversized and malformed messages, a silent connection). Every line is unique, so TCP
delivery is checked exactly (UDP only for what arrived: it may lose under load, by design).
"""

import collections
import os
import shutil
import socket
import subprocess
import threading
import time

import pytest

import agent as ag
from fake_loki import FakeLoki
from test_files import make_agent  # noqa: F401 (a fixture)

if not ag.have_binary():
    if os.environ.get("LC_REQUIRE_BIN"):
        raise RuntimeError("LC_BIN is not an executable: build first")
    pytest.skip("log_capturer binary not built", allow_module_level=True)

LOGGER = shutil.which("logger")


def syslog_input(port, **kw):
    d = {"type": "syslog", "name": "sys", "listen_tcp": f"127.0.0.1:{port}",
         "listen_udp": f"127.0.0.1:{port}", "labels": {"job": "syslog"}}
    d.update(kw)
    return d


def free_udp_tcp_port():
    """A port free for both TCP and UDP on 127.0.0.1 a moment ago."""
    for _ in range(50):
        p = ag.free_port()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            try:
                u.bind(("127.0.0.1", p))
                return p
            except OSError:
                continue
    raise AssertionError("no free port")


def epoch(rfc3339):
    """Seconds since the epoch of an RFC 3339 UTC time (fraction cut to microseconds)."""
    import datetime
    head, _, frac = rfc3339.rstrip("Z").partition(".")
    t = datetime.datetime.fromisoformat(head).replace(tzinfo=datetime.timezone.utc)
    return t.timestamp() + (float("0." + frac) if frac else 0.0)


def octet(msg):
    b = msg.encode() if isinstance(msg, str) else msg
    return f"{len(b)} ".encode() + b


def wait_lines(a, n, timeout=10):
    return ag.wait_until(lambda: ag.count_lines(a.out_path) >= n, timeout, interval=0.05)


def logger(*args, stdin=None):
    subprocess.run([LOGGER, "-n", "127.0.0.1", *args], check=True, timeout=ag.scaled(20),
                   input=stdin)


@pytest.mark.skipif(not LOGGER, reason="util-linux logger not installed")
def test_logger_tcp_udp_5424_3164(make_agent, tmp_path):
    """logger over TCP (octet counting and newline framing) and UDP, RFC 5424 and 3164: every TCP
    line arrives exactly once with facility, severity, hostname and app_name labels; the record's
    time is the message's; RFC 5424 structured data is kept in the line."""
    port = free_udp_tcp_port()
    a = make_agent([syslog_input(port)])
    a.start()
    n = 500
    f5424 = tmp_path / "5424.txt"
    f5424.write_text("".join(f"tcp5424 seq={i}\n" for i in range(n)))
    f3164 = tmp_path / "3164.txt"
    f3164.write_text("".join(f"tcp3164 seq={i}\n" for i in range(n)))
    logger("-P", str(port), "--tcp", "--octet-count", "--rfc5424", "-t", "app5424",
           "-p", "local3.warning", "--sd-id", "zoo@123", "--sd-param", 'tiger="hungry"',
           "-f", str(f5424))
    logger("-P", str(port), "--tcp", "--rfc3164", "-t", "app3164", "-p", "daemon.err",
           "-f", str(f3164))
    logger("-P", str(port), "--udp", "--rfc5424", "-t", "udp5424", "-p", "user.info", "udp one")
    logger("-P", str(port), "--udp", "--rfc3164", "-t", "udp3164", "-p", "mail.debug", "udp two")
    assert wait_lines(a, 2 * n + 2), f"{ag.count_lines(a.out_path)} of {2 * n + 2}"
    m = a.metrics()
    assert a.stop(20) == 0
    recs = a.output().records
    by = collections.defaultdict(list)
    for r in recs:
        by[r["labels"].get("app_name")].append(r)
    host = socket.gethostname()
    got5424 = collections.Counter(r["line"].split("] ", 1)[-1] for r in by["app5424"])
    assert got5424 == collections.Counter(f"tcp5424 seq={i}" for i in range(n))
    got3164 = collections.Counter(r["line"] for r in by["app3164"])
    assert got3164 == collections.Counter(f"tcp3164 seq={i}" for i in range(n))
    r = by["app5424"][0]
    assert {k: r["labels"][k] for k in ("facility", "severity", "hostname", "job")} == {
        "facility": "local3", "severity": "warning", "hostname": host, "job": "syslog"}
    assert '[zoo@123 tiger="hungry"]' in r["line"]
    r = by["app3164"][0]
    assert (r["labels"]["facility"], r["labels"]["severity"]) == ("daemon", "err")
    assert r["labels"]["hostname"] == host.split(".")[0]
    assert [x["line"] for x in by["udp5424"]][0].endswith("udp one")
    assert by["udp5424"][0]["labels"]["severity"] == "info"
    assert by["udp3164"][0]["line"] == "udp two"
    assert by["udp3164"][0]["labels"]["facility"] == "mail"
    # the time is the message's: logger stamps it just before sending
    assert abs(epoch(by["app5424"][0]["time"]) - time.time()) < 60
    assert ag.metric_sum(m, "log_capturer_syslog_messages_total", format="rfc5424") == n + 1
    assert ag.metric_sum(m, "log_capturer_syslog_messages_total", format="rfc3164") == n + 1


def test_burst_of_100_connections_and_max_connections(make_agent):
    """100 connections open at once (max_connections: 100), a 101st is closed at once and
    counted; then each of the 100 sends 20 octet-counted messages in small pieces from 4
    hostnames (max_streams: 2, so label sets are let go and made again): all 2000 arrive, once
    each, with their own hostname label."""
    port = free_udp_tcp_port()
    a = make_agent([syslog_input(port, max_connections=100, listen_udp="", max_streams=2)])
    a.start()
    conns = [socket.create_connection(("127.0.0.1", port), timeout=ag.scaled(10))
             for _ in range(100)]
    assert ag.wait_until(lambda: a.metric("log_capturer_syslog_connections", input="sys") == 100, 10)
    extra = socket.create_connection(("127.0.0.1", port), timeout=ag.scaled(10))
    assert extra.recv(1) == b"", "the 101st connection was not closed"
    extra.close()

    def send(i, s):
        data = b"".join(octet(f"<14>1 - h{i % 4} burst - - - conn={i} msg={k}") for k in range(20))
        for j in range(0, len(data), 37):  # frames split across reads
            s.sendall(data[j:j + 37])
        s.close()

    ts = [threading.Thread(target=send, args=(i, s)) for i, s in enumerate(conns)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(ag.scaled(20))
    assert wait_lines(a, 2000), f"{ag.count_lines(a.out_path)} of 2000"
    assert ag.wait_until(lambda: a.metric("log_capturer_syslog_connections", input="sys") == 0, 10)
    rejected = a.metric("log_capturer_syslog_connections_closed_total", input="sys",
                        reason="rejected")
    evicted = a.metric("log_capturer_syslog_streams_evicted_total", input="sys")
    streams = a.metric("log_capturer_syslog_streams", input="sys")
    assert a.stop(20) == 0
    recs = a.output().records
    got = collections.Counter(r["line"] for r in recs)
    assert got == collections.Counter(f"conn={i} msg={k}" for i in range(100) for k in range(20))
    assert all(r["labels"]["hostname"] == f"h{int(r['line'].split()[0][5:]) % 4}" for r in recs)
    assert rejected == 1
    assert streams == 2 and evicted >= 2


def test_oversized_malformed_idle(make_agent):
    """max_message_bytes 1KiB: an octet-counted 5000-byte message and a 3000-byte line are cut
    to 1 KiB (counted) and what follows them on the connection arrives intact; a message without
    <PRI> is passed on raw, labelled malformed="true" and counted; a connection silent for
    idle_timeout is closed and counted; an oversized UDP datagram is cut too."""
    port = free_udp_tcp_port()
    a = make_agent([syslog_input(port, max_message_bytes="1KiB", idle_timeout="300ms")])
    a.start()
    s = socket.create_connection(("127.0.0.1", port), timeout=ag.scaled(10))
    big = "<13>1 - h a - - - " + "x" * 5000
    s.sendall(octet(big) + octet("<13>1 - h a - - - after-octet"))
    s.sendall(b"<13>" + b"y" * 3000 + b"\n<13>after-line\nno pri at all\n")
    s.close()
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.sendto(b"<13>" + b"z" * 2000, ("127.0.0.1", port))
    u.close()
    assert wait_lines(a, 6), ag.count_lines(a.out_path)
    idle = socket.create_connection(("127.0.0.1", port), timeout=ag.scaled(10))
    t0 = time.monotonic()
    assert idle.recv(1) == b""
    assert time.monotonic() - t0 < ag.scaled(5)
    idle.close()
    m = a.metrics()
    assert a.stop(20) == 0
    recs = a.output().records
    lines = [r["line"] for r in recs]
    assert "after-octet" in lines and "after-line" in lines
    cut = [x for x in lines if x.startswith("xxx") or x.startswith("yyy") or x.startswith("zzz")]
    assert sorted(len(x) for x in cut) == [1024 - 18, 1024 - 4, 1024 - 4], [len(x) for x in cut]
    raw = [r for r in recs if r["labels"].get("malformed") == "true"]
    assert [r["line"] for r in raw] == ["no pri at all"]
    assert ag.metric_sum(m, "log_capturer_input_truncated_lines_total", input="sys") == 3
    assert ag.metric_sum(m, "log_capturer_syslog_messages_total", format="malformed") == 1
    assert ag.metric_sum(m, "log_capturer_syslog_connections_closed_total", reason="idle") == 1
    assert len(lines) == 6


def test_fields_choose_the_labels(make_agent):
    """`fields` (label: message field) replaces the default labels: over TCP and UDP the records
    carry exactly the input's labels plus host, ip (the sender's address), pid and mid; an
    absent field (no hostname) is no label."""
    port = free_udp_tcp_port()
    a = make_agent([syslog_input(port, fields={"host": "hostname", "ip": "ip_address",
                                                "pid": "proc_id", "mid": "msg_id"})])
    a.start()
    with socket.create_connection(("127.0.0.1", port), timeout=ag.scaled(10)) as s:
        s.sendall(octet("<13>1 - web-1 nginx 42 ID7 - over tcp"))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        u.sendto(b"<13>1 - - nginx 43 - - over udp", ("127.0.0.1", port))
    assert wait_lines(a, 2), ag.count_lines(a.out_path)
    assert a.stop(20) == 0
    got = {r["line"]: r["labels"] for r in a.output().records}
    assert got == {
        "over tcp": {"job": "syslog", "host": "web-1", "ip": "127.0.0.1", "pid": "42",
                     "mid": "ID7"},
        "over udp": {"job": "syslog", "ip": "127.0.0.1", "pid": "43"}}, got


def test_backpressure_blocks_tcp_senders_and_counts_udp_drops(make_agent):
    """Loki stalls: the outputs fill up (max_pending_bytes), the input stops reading its
    sockets, so a TCP sender's sendall blocks instead of us dropping; UDP datagrams received
    meanwhile are dropped and counted. Loki back: every TCP message arrives, once."""
    fake = FakeLoki()
    fake.start()
    try:
        fake.set_mode("stall")
        port = free_udp_tcp_port()
        out = [{"type": "loki", "name": "loki", "url": fake.url, "max_inflight": 1,
                "timeout": "30s"}]
        a = make_agent([syslog_input(port)], outputs=out,
                       extra={"max_pending_bytes": "1MiB", "batch_bytes": "64KiB"})
        a.start()
        s = socket.create_connection(("127.0.0.1", port), timeout=ag.scaled(10))
        s.settimeout(2)
        pad = "p" * 200
        sent, blocked = 0, False
        deadline = time.monotonic() + ag.scaled(20)
        while time.monotonic() < deadline:
            try:
                s.sendall(octet(f"<13>1 - h a - - - n={sent} {pad}"))
                sent += 1
            except socket.timeout:
                blocked = True  # our socket buffer and the kernel's are full: the agent stopped reading
                break
        assert blocked, f"{sent} messages sent and the sender never blocked"
        assert a.metric("log_capturer_pipeline_paused") == 1
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for i in range(5):
            u.sendto(f"<13>udp {i}".encode(), ("127.0.0.1", port))
        u.close()
        assert ag.wait_until(lambda: a.metric("log_capturer_syslog_dropped_total", input="sys",
                                              reason="paused") == 5, 5)
        # the partly sent last message is finished once the agent reads again
        fake.set_mode("ok")
        s.settimeout(ag.scaled(20))
        s.sendall(octet("<13>1 - h a - - - last"))
        s.close()
        total = sent + 2  # + the one that blocked mid-way, + "last"
        assert fake.wait_entries(total - 1, ag.scaled(30)) >= total - 1
        time.sleep(0.3)
        assert a.stop(20) == 0
        lines = collections.Counter(e["line"] for e in fake.entries())
        want = [f"n={i} {pad}" for i in range(sent)] + ["last"]
        assert all(lines[x] == 1 for x in want), [x[:20] for x in want if lines[x] != 1][:5]
    finally:
        fake.stop()


def test_check_config_errors_name_file_line_column(tmp_path):
    """Bad listen addresses and filter keys of both inputs are found by check-config, with
    FILE:LINE:COLUMN."""
    cases = {
        "listen_tcp: \"localhost:514\"": ":5:17: invalid value 'localhost:514'",
        "listen_udp: \"127.0.0.1:99999\"": ":5:17: invalid value '127.0.0.1:99999'",
        "max_message_bytes: 100": ":5:24: value '100' out of range",
    }
    for line, want in cases.items():
        p = tmp_path / "c.yaml"
        p.write_text("state_dir: /tmp/x\ninputs:\n  - type: syslog\n    name: s\n    " + line
                     + "\noutputs:\n  - {type: null, name: n}\n")
        r = ag.run_cli("check-config", str(p))
        assert r.returncode == 2 and f"{p}{want}" in r.stderr, r.stderr
    p = tmp_path / "k.yaml"
    p.write_text("state_dir: /tmp/x\ninputs:\n  - type: kubernetes\n    name: k\n"
                 "    exclude: {namespace: [a]}\noutputs:\n  - {type: null, name: n}\n")
    r = ag.run_cli("check-config", str(p))
    assert r.returncode == 2 and f"{p}:5:15: unknown key 'exclude.namespace'" in r.stderr, r.stderr
