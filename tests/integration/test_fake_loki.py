# SPDX-License-Identifier: MIT
"""test_fake_loki.py: self-tests of the fake Loki with hand-built payloads and each fault mode."""

import http.client
import json
import os
import random
import socket
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import fake_loki as fl  # noqa: E402
from lokiproto import (  # noqa: E402
    encode_push_json,
    encode_push_protobuf,
    libsnappy,
    snappy_compress_lib,
    snappy_compress_literal,
    uvarint,
)

NOW = time.time_ns()
STREAMS = [
    ({"job": "a", "filename": "/x/a.log"}, [(NOW + i, "line a %d" % i) for i in range(5)]),
    ({"job": "b"}, [(NOW + 10, "b \u00e9\u4e2d \"quoted\"", {"trace_id": "t1"}),
                    (NOW + 11, "", {})]),
]


@pytest.fixture
def fake():
    f = fl.FakeLoki()
    f.start(0)
    yield f
    f.stop()


def post(port, body, ctype="application/x-protobuf", enc=None, conn=None, timeout=5,
         path=fl.PUSH_PATH):
    c = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    hdr = {"Content-Type": ctype}
    if enc:
        hdr["Content-Encoding"] = enc
    c.request("POST", path, body=body, headers=hdr)
    r = c.getresponse()
    data = r.read()
    if conn is None:
        c.close()
    return r.status, data, dict(r.getheaders())


def pb_body(streams=STREAMS, **kw):
    return snappy_compress_literal(encode_push_protobuf(streams, **kw))


def got(fake):
    return [(e["labels"], e["ts"], e["line"], e["metadata"]) for e in fake.entries()]


def expected(streams=STREAMS):
    return [(lbl, e[0], e[1], e[2] if len(e) > 2 else {}) for lbl, ents in streams for e in ents]


# ---------------------------------------------------------------- decoders, no server


@pytest.mark.parametrize("n", [0, 1, 59, 60, 61, 255, 256, 257, 65535, 65536, 65537, 200000])
def test_snappy_literal_lengths(n):
    data = bytes(random.Random(n).getrandbits(8) for _ in range(n))
    assert fl.snappy_decompress(snappy_compress_literal(data)) == data


def test_snappy_hand_built_copies():
    # "abcd" literal, copy1 len 4 off 4, copy2 len 8 off 2 (overlapping), copy4 len 3 off 12
    lit = bytes([3 << 2]) + b"abcd"
    copy1 = bytes([((4 - 4) << 2) | 1, 4])
    copy2 = bytes([((8 - 1) << 2) | 2]) + (2).to_bytes(2, "little")
    copy4 = bytes([((3 - 1) << 2) | 3]) + (12).to_bytes(4, "little")
    want = b"abcd" + b"abcd" + b"cdcdcdcd"
    want += want[len(want) - 12 : len(want) - 12 + 3]
    blk = uvarint(len(want)) + lit + copy1 + copy2 + copy4
    assert fl.snappy_decompress(blk) == want


@pytest.mark.skipif(libsnappy() is None, reason="libsnappy not found")
@pytest.mark.parametrize("seed", range(6))
def test_snappy_against_libsnappy(seed):
    rnd = random.Random(seed)
    words = [b"level=info", b"msg=", b"GET /api/v1/", b"200", b" ", b"\n", b"aaaaaaaaaaaa",
             bytes(rnd.getrandbits(8) for _ in range(7))]
    data = b"".join(rnd.choice(words) for _ in range(rnd.randint(0, 200000)))
    comp = snappy_compress_lib(data)
    assert fl.snappy_decompress(comp) == data


@pytest.mark.parametrize("blk", [
    b"",                                   # no length
    uvarint(5) + bytes([4 << 2]) + b"ab",  # truncated literal
    uvarint(4) + bytes([0 << 2]) + b"a" + bytes([1, 2]),  # copy offset beyond output
    uvarint(9) + bytes([0 << 2]) + b"a",   # shorter than declared
    uvarint(1) + bytes([1 << 2]) + b"ab",  # longer than declared
    uvarint(8) + bytes([0 << 2]) + b"a" + bytes([(7 << 2) | 2, 0, 0]),  # offset 0
    uvarint(8) + bytes([(7 << 2) | 3, 1]),  # truncated copy4
])
def test_snappy_corrupt(blk):
    with pytest.raises(fl.DecodeError):
        fl.snappy_decompress(blk)


def test_protobuf_decode_roundtrip():
    raw = encode_push_protobuf(STREAMS, extra_unknown=True)
    dec = fl.decode_push_protobuf(raw)
    assert [(fl.parse_labels(lb), [(t, ln, md) for t, ln, md in e]) for lb, e in dec] == [
        (lb, [(e[0], e[1], e[2] if len(e) > 2 else {}) for e in ents]) for lb, ents in STREAMS]


def test_protobuf_timestamp_before_epoch_and_zero():
    raw = encode_push_protobuf([({"j": "x"}, [(0, "zero"), (1, "one ns"),
                                             (10**9 * 1700000000 + 999999999, "big")])])
    (_, ents), = fl.decode_push_protobuf(raw)
    assert [e[0] for e in ents] == [0, 1, 10**9 * 1700000000 + 999999999]


@pytest.mark.parametrize("raw", [
    b"\x0a\x05abc",            # truncated stream
    b"\x0a\x02\x12\x05",       # truncated entry
    b"\x0b",                   # wire type 3 (groups) unsupported
    b"\x08\x01",               # streams with wire type 0
    b"\x0a\x04\x0a\x02\xff\xfe",  # labels not UTF-8
])
def test_protobuf_corrupt(raw):
    with pytest.raises(fl.DecodeError):
        fl.decode_push_protobuf(raw)


@pytest.mark.parametrize("s,want", [
    ('{job="x"}', {"job": "x"}),
    ('{a="1", b="2"}', {"a": "1", "b": "2"}),
    ('{a="1",b="2"}', {"a": "1", "b": "2"}),
    ('{ a = "q\\"u\\\\o\\nte" }', {"a": 'q"u\\o\nte'}),
    ('{filename="/var/log/x y.log", _x9="{}=,"}', {"filename": "/var/log/x y.log", "_x9": "{}=,"}),
    ("{}", {}),
])
def test_parse_labels(s, want):
    assert fl.parse_labels(s) == want
    if want:
        assert fl.parse_labels(fl.labels_string(want)) == want


@pytest.mark.parametrize("s", ['job="x"', '{job=x}', '{9a="x"}', '{a="x" b="y"}', '{a="x}',
                               '{a="1", a="2"}', '{a-b="x"}'])
def test_parse_labels_bad(s):
    with pytest.raises(fl.DecodeError):
        fl.parse_labels(s)


# ---------------------------------------------------------------- the server


def test_push_protobuf(fake):
    st, _, _ = post(fake.port, pb_body())
    assert st == 204
    assert got(fake) == expected()
    r, = fake.requests()
    assert r["encoding"] == "protobuf" and r["status"] == 204 and r["entries"] == 7
    assert r["raw_bytes"] == len(pb_body()) and r["decoded_bytes"] == len(
        encode_push_protobuf(STREAMS))


@pytest.mark.skipif(libsnappy() is None, reason="libsnappy not found")
def test_push_protobuf_libsnappy(fake):
    streams = [({"job": "big"},
                [(NOW + i, "GET /x/%d HTTP/1.1 200" % (i % 7)) for i in range(5000)])]
    st, _, _ = post(fake.port, snappy_compress_lib(encode_push_protobuf(streams)))
    assert st == 204
    assert got(fake) == expected(streams)


@pytest.mark.parametrize("gz", [False, True])
def test_push_json(fake, gz):
    st, _, _ = post(fake.port, encode_push_json(STREAMS, gzip_it=gz), "application/json",
                    "gzip" if gz else None)
    assert st == 204
    assert got(fake) == expected()
    assert fake.requests()[0]["encoding"] == ("json+gzip" if gz else "json")


@pytest.mark.parametrize("body,ctype", [
    (b"not snappy", "application/x-protobuf"),
    (snappy_compress_literal(b"\x0a\x05abc"), "application/x-protobuf"),
    (b"{", "application/json"),
    (b'{"streams":[{"stream":{"a":"b"},"values":[[1,"ts is a number"]]}]}', "application/json"),
    (b'{"streams":[{"stream":{},"values":[["1","no labels"]]}]}', "application/json"),
    (pb_body([("{}", [(1, "x")])]), "application/x-protobuf"),
])
def test_push_malformed_is_400(fake, body, ctype):
    st, data, _ = post(fake.port, body, ctype)
    assert st == 400 and data
    assert fake.stats()["decode_errors"] == 1
    assert fake.entries() == []


def test_keepalive_one_connection(fake):
    c = http.client.HTTPConnection("127.0.0.1", fake.port, timeout=5)
    for _ in range(20):
        assert post(fake.port, pb_body(), conn=c)[0] == 204
    c.close()
    s = fake.stats()
    assert s["connections"] == 1 and s["push_connections"] == 1 and s["requests"] == 20
    assert len({r["conn"] for r in fake.requests()}) == 1


def test_connections_counted(fake):
    for _ in range(3):
        assert post(fake.port, pb_body())[0] == 204
    assert fake.stats()["connections"] == 3


def test_mode_400_too_old(fake):
    fake.set_mode("400_too_old", count=1)
    st, data, _ = post(fake.port, pb_body())
    assert st == 400
    assert data.startswith(b"entry for stream '{filename=\"/x/a.log\", job=\"a\"}' "
                           b"has timestamp too old: ")
    assert b", oldest acceptable timestamp is: " in data
    assert fake.entries() == []
    assert post(fake.port, pb_body())[0] == 204  # count exhausted: back to ok
    assert fake.stats()["requests_by_status"] == {"204": 1, "400": 1}


def test_mode_429_retry_after(fake):
    fake.set_mode("429", count=2, retry_after=3)
    for _ in range(2):
        st, data, hdr = post(fake.port, pb_body())
        assert st == 429 and data.startswith(b"Ingestion rate limit exceeded for user fake")
        assert hdr.get("Retry-After") == "3"
    st, _, hdr = post(fake.port, pb_body())
    assert st == 204 and "Retry-After" not in hdr
    assert len(fake.entries()) == 7


def test_mode_429_without_retry_after(fake):
    fake.set_mode("429")
    for _ in range(3):
        st, _, hdr = post(fake.port, pb_body())
        assert st == 429 and "Retry-After" not in hdr
    assert fake.entries() == []


def test_mode_500_and_status(fake):
    fake.set_mode("500", count=1)
    assert post(fake.port, pb_body())[0] == 500
    fake.set_mode("status", status=503, body="overloaded", count=1)
    st, data, _ = post(fake.port, pb_body())
    assert st == 503 and data == b"overloaded\n"
    assert post(fake.port, pb_body())[0] == 204
    assert fake.stats()["requests_by_status"] == {"204": 1, "500": 1, "503": 1}


def test_mode_stall(fake):
    fake.set_mode("stall")
    t = time.monotonic()
    with pytest.raises(socket.timeout):
        post(fake.port, pb_body(), timeout=0.5)
    assert time.monotonic() - t < 3
    # the fake notices the client left and records the stalled request without entries
    deadline = time.monotonic() + 5
    while not fake.requests() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert fake.requests()[0]["status"] == "stall"
    assert fake.entries() == []
    fake.set_mode("ok")
    assert post(fake.port, pb_body())[0] == 204


def test_mode_stall_released_by_mode_change(fake):
    fake.set_mode("stall")
    s = socket.create_connection(("127.0.0.1", fake.port), timeout=5)
    body = pb_body()
    s.sendall(b"POST /loki/api/v1/push HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf"
              b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    time.sleep(0.3)
    fake.set_mode("ok")
    assert s.recv(100) == b""  # closed without an answer
    s.close()


def test_mode_reset(fake):
    fake.set_mode("reset", count=1)
    s = socket.create_connection(("127.0.0.1", fake.port), timeout=5)
    body = pb_body()
    s.sendall(b"POST /loki/api/v1/push HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf"
              b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    try:
        data = s.recv(100)
    except ConnectionResetError:
        data = None
    s.close()
    assert data is None, "expected an RST, got %r" % data
    assert fake.entries() == []
    assert fake.requests()[0]["status"] == "reset"
    assert post(fake.port, pb_body())[0] == 204
    assert fake.stats()["requests_by_status"] == {"204": 1, "reset": 1}


def test_down_and_up(fake):
    c = http.client.HTTPConnection("127.0.0.1", fake.port, timeout=5)
    assert post(fake.port, pb_body(), conn=c)[0] == 204
    fake.down()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", fake.port), timeout=2)
    with pytest.raises((ConnectionError, http.client.HTTPException)):
        post(fake.port, pb_body(), conn=c)  # the kept-alive connection was closed too
    c.close()
    fake.up()
    assert post(fake.port, pb_body())[0] == 204
    assert len(fake.entries()) == 14


def test_reject_old_samples_like_loki(fake):
    old = NOW - 10 * 86400 * 10**9
    streams = [({"job": "old"}, [(old, "old 1"), (NOW, "new 1")]), ({"job": "new"}, [(NOW, "n")])]
    st, data, _ = post(fake.port, pb_body(streams))
    assert st == 400 and b"has timestamp too old" in data
    # like Loki: the valid entries of the request are stored
    assert sorted(e["line"] for e in fake.entries()) == ["n", "new 1"]
    fake.reset()
    fake.configure(reject_old_seconds=None)
    assert post(fake.port, pb_body(streams))[0] == 204
    assert len(fake.entries()) == 3


def test_delay(fake):
    fake.configure(delay=0.3)
    t = time.monotonic()
    assert post(fake.port, pb_body())[0] == 204
    assert time.monotonic() - t >= 0.25


def test_chunked_body(fake):
    body = pb_body()
    s = socket.create_connection(("127.0.0.1", fake.port), timeout=5)
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 7]), body[i:i + 7])
                      for i in range(0, len(body), 7))
    s.sendall(b"POST /loki/api/v1/push HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
              + chunks + b"0\r\n\r\n")
    assert s.recv(100).startswith(b"HTTP/1.1 204")
    s.close()
    assert got(fake) == expected()


def test_expect_100_continue(fake):
    body = pb_body()
    s = socket.create_connection(("127.0.0.1", fake.port), timeout=5)
    s.sendall(b"POST /loki/api/v1/push HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
              b"Content-Length: %d\r\n\r\n" % len(body))
    assert s.recv(100).startswith(b"HTTP/1.1 100")
    s.sendall(body)
    assert s.recv(100).startswith(b"HTTP/1.1 204")
    s.close()


def test_control_api_over_http(fake):
    def call(method, path, obj=None):
        c = http.client.HTTPConnection("127.0.0.1", fake.port, timeout=5)
        c.request(method, path, body=json.dumps(obj) if obj is not None else None)
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, data

    assert call("GET", "/ready") == (200, b"ready\n")
    st, data = call("POST", "/fake/mode", {"mode": "429", "count": 1, "retry_after": 2})
    assert st == 200 and json.loads(data)["mode"] == "429"
    assert call("POST", "/fake/mode", {"mode": "nope"})[0] == 400
    assert post(fake.port, pb_body())[0] == 429
    assert post(fake.port, pb_body())[0] == 204
    st, data = call("GET", "/fake/stats")
    stats = json.loads(data)
    assert stats["requests_by_status"] == {"204": 1, "429": 1}
    assert stats["push_connections"] == 2 and stats["entries"] == 7
    st, data = call("GET", "/fake/entries?offset=5&limit=10")
    assert [e["line"] for e in json.loads(data)] == [e[1] for e in STREAMS[1][1]]
    assert len(json.loads(call("GET", "/fake/requests")[1])) == 2
    assert call("POST", "/fake/config", {"delay": 0, "reject_old_seconds": None})[0] == 200
    assert call("POST", "/fake/reset")[0] == 200
    assert fake.entries() == [] and fake.requests() == []
    assert call("GET", "/nope")[0] == 404


def test_cli():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    p = subprocess.Popen([sys.executable, fl.__file__, "--port", str(port)],
                         stdout=subprocess.PIPE, text=True)
    try:
        line = p.stdout.readline()
        assert "listening on 127.0.0.1:%d" % port in line
        assert post(port, pb_body())[0] == 204
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        c.request("GET", "/fake/stats")
        assert json.loads(c.getresponse().read())["entries"] == 7
        c.close()
    finally:
        p.terminate()
        p.wait(5)
