# SPDX-License-Identifier: MIT
"""fake_loki.py: a fake Grafana Loki push endpoint on 127.0.0.1 for integration tests.

A real HTTP/1.1 server (keep-alive, one thread per connection, Python stdlib only) that
implements POST /loki/api/v1/push as Loki does:

  * Content-Type application/json: {"streams":[{"stream":{..},"values":[["ns","line"(,{md})]]}]},
    optionally with Content-Encoding: gzip (or deflate);
  * any other Content-Type: a snappy (block format) compressed logproto.PushRequest.

Every accepted entry is recorded (labels as a dict, timestamp in ns, line, structured
metadata) together with every request (times, encoding, sizes, status answered, connection
id). Like Loki it rejects entries older than `reject_old_seconds` (default 168h) with a 400,
storing the valid entries of that request, and answers 204 on success.

Fault modes, set from Python (FakeLoki.set_mode) or over HTTP on the same port
(POST /fake/mode {"mode": .., "count": N, "retry_after": S, ...}):
  ok           answer 204 (after `delay` seconds, see /fake/config)
  400_too_old  answer 400 with Loki's "timestamp too old" body, record nothing
  429          answer 429 "Ingestion rate limit exceeded for user fake" (+ Retry-After if set)
  500          answer 500
  status       answer `status` with `body`
  stall        read the request, never answer; close when the client gives up, the mode
               changes, or after `stall_seconds`
  reset        read the request, then close the socket with an RST, without answering
`count` applies the mode to that many pushes, then the fake goes back to ok. From Python,
down() stops listening (connections are refused) and closes open connections; up() listens
again on the same port.

Control API: POST /fake/mode, POST /fake/outage {"seconds": s} (down, then up again),
POST /fake/config {"delay": s, "reject_old_seconds": s|null},
GET /fake/entries[?offset=N&limit=M], GET /fake/requests, GET /fake/stats, POST /fake/reset,
GET /ready.  CLI: /usr/bin/python3 fake_loki.py --port N
"""

import argparse
import functools
import gzip
import http.server
import json
import socket
import struct
import sys
import threading
import time
import urllib.parse
import zlib

PUSH_PATH = "/loki/api/v1/push"
MODES = ("ok", "400_too_old", "429", "500", "status", "stall", "reset")
LOKI_REJECT_OLD_SECONDS = 168 * 3600  # Loki's reject_old_samples_max_age default
MAX_BODY = 64 << 20  # refuse larger bodies (Loki's default server limit is 100 MB)


class DecodeError(Exception):
    """A malformed push body; answered with 400 like Loki does."""


# --------------------------------------------------------------------------- snappy


def _uvarint(buf, pos):
    """Decodes a base-128 varint at pos; returns (value, new_pos)."""
    result = 0
    shift = 0
    n = len(buf)
    while True:
        if pos >= n:
            raise DecodeError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise DecodeError("varint overflow")


def snappy_decompress(data):
    """Decompresses one snappy block (the format Loki's push API uses, not the framing format)."""
    data = memoryview(bytes(data))
    ulen, pos = _uvarint(data, 0)
    if ulen > MAX_BODY * 4:
        raise DecodeError("snappy: decoded length %d too large" % ulen)
    out = bytearray()
    n = len(data)
    while pos < n:
        tag = data[pos]
        pos += 1
        kind = tag & 3
        if kind == 0:  # literal
            length = tag >> 2
            if length >= 60:
                nb = length - 59
                if pos + nb > n:
                    raise DecodeError("snappy: truncated literal length")
                length = int.from_bytes(data[pos : pos + nb], "little")
                pos += nb
            length += 1
            if pos + length > n:
                raise DecodeError("snappy: truncated literal")
            out += data[pos : pos + length]
            pos += length
            continue
        if kind == 1:  # copy, 1-byte offset
            if pos + 1 > n:
                raise DecodeError("snappy: truncated copy1")
            length = ((tag >> 2) & 7) + 4
            offset = ((tag >> 5) << 8) | data[pos]
            pos += 1
        elif kind == 2:  # copy, 2-byte offset
            if pos + 2 > n:
                raise DecodeError("snappy: truncated copy2")
            length = (tag >> 2) + 1
            offset = data[pos] | (data[pos + 1] << 8)
            pos += 2
        else:  # copy, 4-byte offset
            if pos + 4 > n:
                raise DecodeError("snappy: truncated copy4")
            length = (tag >> 2) + 1
            offset = int.from_bytes(data[pos : pos + 4], "little")
            pos += 4
        olen = len(out)
        if offset == 0 or offset > olen:
            raise DecodeError("snappy: bad copy offset %d at output %d" % (offset, olen))
        start = olen - offset
        if offset >= length:
            out += out[start : start + length]
        else:  # overlapping copy: the pattern of `offset` bytes repeats
            pattern = bytes(out[start:])
            reps, rest = divmod(length, offset)
            out += pattern * reps + pattern[:rest]
        if len(out) > ulen:
            raise DecodeError("snappy: output longer than declared %d" % ulen)
    if len(out) != ulen:
        raise DecodeError("snappy: decoded %d bytes, header says %d" % (len(out), ulen))
    return bytes(out)


# --------------------------------------------------------------------------- protobuf


def _pb_fields(buf):
    """Yields (field_number, wire_type, value) of one protobuf message; value is int or bytes."""
    pos = 0
    n = len(buf)
    while pos < n:
        key, pos = _uvarint(buf, pos)
        field, wt = key >> 3, key & 7
        if field == 0:
            raise DecodeError("protobuf: field number 0")
        if wt == 0:
            val, pos = _uvarint(buf, pos)
        elif wt == 1:
            if pos + 8 > n:
                raise DecodeError("protobuf: truncated fixed64")
            val = int.from_bytes(buf[pos : pos + 8], "little")
            pos += 8
        elif wt == 2:
            ln, pos = _uvarint(buf, pos)
            if pos + ln > n:
                raise DecodeError("protobuf: truncated length-delimited field %d" % field)
            val = buf[pos : pos + ln]
            pos += ln
        elif wt == 5:
            if pos + 4 > n:
                raise DecodeError("protobuf: truncated fixed32")
            val = int.from_bytes(buf[pos : pos + 4], "little")
            pos += 4
        else:
            raise DecodeError("protobuf: unsupported wire type %d" % wt)
        yield field, wt, val


def _to_int64(v):
    return v - (1 << 64) if v >= 1 << 63 else v


def _utf8(b, what):
    try:
        return bytes(b).decode("utf-8")
    except UnicodeDecodeError as e:
        raise DecodeError("invalid UTF-8 in %s: %s" % (what, e)) from None


def _want(wt, expected, what):
    if wt != expected:
        raise DecodeError("protobuf: %s has wire type %d, expected %d" % (what, wt, expected))


def decode_push_protobuf(raw):
    """Decodes a logproto.PushRequest; returns [(labels_string, [(ts_ns, line, metadata)])]."""
    streams = []
    mv = memoryview(raw)
    for f, wt, val in _pb_fields(mv):
        if f != 1:
            continue
        _want(wt, 2, "PushRequest.streams")
        labels = None
        entries = []
        for sf, swt, sval in _pb_fields(val):
            if sf == 1:
                _want(swt, 2, "StreamAdapter.labels")
                labels = _utf8(sval, "labels")
            elif sf == 2:
                _want(swt, 2, "StreamAdapter.entries")
                entries.append(_decode_entry(sval))
        streams.append((labels if labels is not None else "", entries))
    return streams


def _decode_entry(buf):
    secs = 0
    nanos = 0
    line = ""
    md = {}
    for f, wt, val in _pb_fields(buf):
        if f == 1:
            _want(wt, 2, "EntryAdapter.timestamp")
            for tf, twt, tval in _pb_fields(val):
                if tf == 1:
                    _want(twt, 0, "Timestamp.seconds")
                    secs = _to_int64(tval)
                elif tf == 2:
                    _want(twt, 0, "Timestamp.nanos")
                    nanos = _to_int64(tval)
        elif f == 2:
            _want(wt, 2, "EntryAdapter.line")
            line = _utf8(val, "line")
        elif f == 3:
            _want(wt, 2, "EntryAdapter.structuredMetadata")
            name = value = ""
            for lf, lwt, lval in _pb_fields(val):
                if lf == 1 and lwt == 2:
                    name = _utf8(lval, "metadata name")
                elif lf == 2 and lwt == 2:
                    value = _utf8(lval, "metadata value")
            md[name] = value
    if not 0 <= nanos < 1_000_000_000:
        raise DecodeError("timestamp nanos out of range: %d" % nanos)
    return secs * 1_000_000_000 + nanos, line, md


# --------------------------------------------------------------------------- JSON


def decode_push_json(raw):
    """Decodes Loki's JSON push body; same result shape as decode_push_protobuf."""
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise DecodeError("invalid JSON: %s" % e) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("streams"), list):
        raise DecodeError('JSON: no "streams" array')
    streams = []
    for s in doc["streams"]:
        if not isinstance(s, dict) or not isinstance(s.get("stream", {}), dict):
            raise DecodeError('JSON: a stream is not an object with a "stream" object')
        lbl = s.get("stream", {})
        for k, v in lbl.items():
            if not isinstance(v, str):
                raise DecodeError("JSON: label %r is not a string" % k)
        values = s.get("values", [])
        if not isinstance(values, list):
            raise DecodeError('JSON: "values" is not an array')
        entries = []
        for v in values:
            if not isinstance(v, list) or len(v) not in (2, 3):
                raise DecodeError("JSON: a value is not [ts, line(, metadata)]")
            ts, line = v[0], v[1]
            if not isinstance(ts, str) or not ts.isdigit():
                raise DecodeError("JSON: timestamp %r is not a string of nanoseconds" % (ts,))
            if not isinstance(line, str):
                raise DecodeError("JSON: line is not a string")
            md = v[2] if len(v) == 3 else {}
            if not isinstance(md, dict):
                raise DecodeError("JSON: structured metadata is not an object")
            entries.append((int(ts), line, dict(md)))
        streams.append((lbl, entries))
    return streams


# --------------------------------------------------------------------------- labels


def parse_labels(s):
    """Parses Loki's label string `{a="b", c="d\\"e"}` into a dict; DecodeError when malformed."""
    s = s.strip()
    if not (s.startswith("{") and s.endswith("}")):
        raise DecodeError("error parsing labels %r: not in braces" % s)
    i, n = 1, len(s) - 1
    out = {}
    while True:
        while i < n and s[i] in " \t":
            i += 1
        if i >= n:
            break
        j = i
        while j < n and (s[j].isalnum() or s[j] == "_") and s[j].isascii():
            j += 1
        name = s[i:j]
        if not name or name[0].isdigit():
            raise DecodeError("error parsing labels %r: bad label name at %d" % (s, i))
        i = j
        while i < n and s[i] == " ":
            i += 1
        if i >= n or s[i] != "=":
            raise DecodeError("error parsing labels %r: expected '=' at %d" % (s, i))
        i += 1
        while i < n and s[i] == " ":
            i += 1
        if i >= n or s[i] != '"':
            raise DecodeError("error parsing labels %r: expected '\"' at %d" % (s, i))
        i += 1
        val = []
        while True:
            if i >= n:
                raise DecodeError("error parsing labels %r: unterminated value" % s)
            c = s[i]
            if c == "\\":
                if i + 1 >= n:
                    raise DecodeError("error parsing labels %r: bad escape" % s)
                e = s[i + 1]
                val.append({"n": "\n", "t": "\t", "\\": "\\", '"': '"'}.get(e, "\\" + e))
                i += 2
                continue
            if c == '"':
                i += 1
                break
            val.append(c)
            i += 1
        if name in out:
            raise DecodeError("error parsing labels %r: duplicate label name %s" % (s, name))
        out[name] = "".join(val)
        while i < n and s[i] == " ":
            i += 1
        if i < n:
            if s[i] != ",":
                raise DecodeError("error parsing labels %r: expected ',' at %d" % (s, i))
            i += 1
    return out


def labels_string(d):
    """Renders a label dict in Loki's canonical form, sorted by name."""
    parts = []
    for k in sorted(d):
        v = d[k].replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        parts.append('%s="%s"' % (k, v))
    return "{" + ", ".join(parts) + "}"


# --------------------------------------------------------------------------- server state


class FakeLoki:
    """The fake's state and its server thread. Thread-safe; usable from pytest in-process."""

    def __init__(self, host="127.0.0.1", verbose=False):
        self.host = host
        self.port = None
        self.verbose = verbose
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._server = None
        self._thread = None
        self._conn_seq = 0
        self._open = {}  # conn id -> socket
        self._clear()
        self._delay = 0.0
        self._reject_old_ns = LOKI_REJECT_OLD_SECONDS * 1_000_000_000
        self._mode = {"mode": "ok"}

    def _clear(self):
        self._entries = []
        self._requests = []
        self._connections = 0
        self._push_conns = set()
        self._max_open = 0
        self._by_status = {}
        self._decode_errors = 0
        self._bytes_raw = 0
        self._bytes_decoded = 0

    # ---- lifecycle

    def start(self, port=0):
        """Listens on host:port (0: a free port), serving from a daemon thread; returns the port."""
        srv = _Server((self.host, port), _Handler)
        srv.fake = self
        self._server = srv
        self.port = srv.server_address[1]
        self._thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-loki", daemon=True)
        self._thread.start()
        return self.port

    @property
    def url(self):
        return "http://%s:%d" % (self.host, self.port)

    def down(self):
        """Stops listening (new connections are refused) and closes every open connection."""
        srv = self._server
        if srv is None:
            return
        self._server = None
        srv.shutdown()
        srv.server_close()
        self._thread.join(5)
        with self._cond:
            socks = list(self._open.values())
            self._cond.notify_all()
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def up(self):
        """Listens again on the same port after down()."""
        if self._server is not None:
            return self.port
        deadline = time.monotonic() + 10
        while True:
            try:
                return self.start(self.port)
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def stop(self):
        self.down()

    def outage(self, seconds):
        """down() for `seconds`, then up() on the same port (the soak's outage phase)."""
        time.sleep(0.2)  # the control request's answer leaves first
        self.down()
        time.sleep(seconds)
        self.up()

    @property
    def listening(self):
        return self._server is not None

    # ---- control

    def set_mode(self, mode="ok", count=None, retry_after=None, status=None, body=None,
                 stall_seconds=3600.0):
        """Sets the fault mode for the next `count` pushes (None or 0: until changed)."""
        if mode not in MODES:
            raise ValueError("unknown mode %r" % mode)
        m = {"mode": mode, "count": int(count) if count else None, "retry_after": retry_after,
             "status": int(status) if status else 503, "body": body,
             "stall_seconds": float(stall_seconds)}
        with self._cond:
            self._mode = m
            self._cond.notify_all()

    def configure(self, delay=None, reject_old_seconds="keep"):
        """delay: seconds before each ok answer; reject_old_seconds: None disables Loki's check."""
        with self._lock:
            if delay is not None:
                self._delay = float(delay)
            if reject_old_seconds != "keep":
                self._reject_old_ns = (None if reject_old_seconds is None
                                       else int(float(reject_old_seconds) * 1_000_000_000))

    def mode(self):
        with self._lock:
            return dict(self._mode)

    def reset(self):
        """Forgets every entry, request and counter, and goes back to mode ok."""
        with self._cond:
            self._clear()
            self._mode = {"mode": "ok"}
            self._cond.notify_all()

    def entries(self):
        with self._lock:
            return list(self._entries)

    def requests(self):
        with self._lock:
            return [dict(r) for r in self._requests]

    def stats(self):
        with self._lock:
            return {
                "connections": self._connections,
                "push_connections": len(self._push_conns),
                "open_connections": len(self._open),
                "max_open_connections": self._max_open,
                "requests": len(self._requests),
                "requests_by_status": {str(k): v for k, v in sorted(
                    self._by_status.items(), key=lambda kv: str(kv[0]))},
                "entries": len(self._entries),
                "decode_errors": self._decode_errors,
                "bytes_raw": self._bytes_raw,
                "bytes_decoded": self._bytes_decoded,
                "mode": self._mode.get("mode"),
                "listening": self._server is not None,
            }

    def wait_entries(self, n, timeout):
        """Waits until at least n entries are recorded; returns the count."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self._entries) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(min(left, 0.5))
            return len(self._entries)

    # ---- called from handler threads

    def _conn_open(self, sock):
        with self._lock:
            self._conn_seq += 1
            cid = self._conn_seq
            self._connections += 1
            self._open[cid] = sock
            self._max_open = max(self._max_open, len(self._open))
            return cid

    def _conn_close(self, cid):
        with self._lock:
            self._open.pop(cid, None)

    def _take_mode(self):
        """Returns the mode for this push and consumes one unit of its count."""
        with self._lock:
            m = dict(self._mode)
            if m["mode"] != "ok" and m.get("count"):
                self._mode["count"] -= 1
                if self._mode["count"] <= 0:
                    self._mode = {"mode": "ok"}
            return m, self._delay, self._reject_old_ns

    def _record(self, req, streams=None):
        with self._cond:
            req["id"] = len(self._requests)
            self._requests.append(req)
            self._push_conns.add(req["conn"])
            st = req["status"]
            self._by_status[st] = self._by_status.get(st, 0) + 1
            self._bytes_raw += req["raw_bytes"]
            self._bytes_decoded += req.get("decoded_bytes", 0)
            if req.get("error") and req.get("decode_error"):
                self._decode_errors += 1
            for labels, ents in streams or ():
                for ts, line, md in ents:
                    self._entries.append({"labels": labels, "ts": ts, "line": line,
                                          "metadata": md, "req": req["id"], "conn": req["conn"]})
            self._cond.notify_all()

    def _stall(self, sock, m):
        """Holds a request unanswered until the mode changes, the client leaves, or time is up."""
        deadline = time.monotonic() + m.get("stall_seconds", 3600.0)
        while time.monotonic() < deadline:
            with self._cond:
                if self._mode.get("mode") != "stall" or self._server is None:
                    return
                self._cond.wait(0.1)
            try:
                sock.setblocking(False)
                try:
                    if sock.recv(1, socket.MSG_PEEK) == b"":
                        return  # the client closed its end
                except BlockingIOError:
                    pass
                finally:
                    sock.setblocking(True)
            except OSError:
                return


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, *a, **kw):
        self.reset_socks = set()
        super().__init__(*a, **kw)

    def shutdown_request(self, request):
        # A "reset" answer must leave as an RST: skip the FIN that shutdown(SHUT_WR) would send.
        if request in self.reset_socks:
            self.reset_socks.discard(request)
            self.close_request(request)
        else:
            super().shutdown_request(request)

    def handle_error(self, request, client_address):
        if self.fake.verbose:
            super().handle_error(request, client_address)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-loki/1"
    sys_version = ""

    def setup(self):
        super().setup()
        self.fake = self.server.fake
        self.conn_id = self.fake._conn_open(self.connection)

    def finish(self):
        try:
            super().finish()
        except OSError:
            pass
        finally:
            self.fake._conn_close(self.conn_id)

    def log_message(self, fmt, *args):
        if self.fake.verbose:
            sys.stderr.write("fake-loki: conn %d: %s\n" % (self.conn_id, fmt % args))

    # ---- helpers

    def _read_body(self):
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            parts = []
            total = 0
            while True:
                size_line = self.rfile.readline(1024)
                if not size_line:
                    raise ConnectionError("eof in chunked body")
                size = int(size_line.split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                total += size
                if total > MAX_BODY:
                    raise DecodeError("body too large")
                parts.append(self.rfile.read(size))
                self.rfile.readline(1024)
            return b"".join(parts)
        n = int(self.headers.get("Content-Length") or 0)
        if n > MAX_BODY:
            raise DecodeError("body too large")
        body = self.rfile.read(n) if n else b""
        if len(body) != n:
            raise ConnectionError("eof in body")
        return body

    def _answer(self, status, body=b"", ctype="text/plain; charset=utf-8", headers=None):
        if isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        if status != 204:
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, str(v))
        self.end_headers()
        if body and status != 204:
            self.wfile.write(body)
        self.wfile.flush()

    def _json(self, obj, status=200):
        self._answer(status, json.dumps(obj), "application/json")

    # ---- routes

    def do_GET(self):
        u = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(u.query))
        if u.path == "/ready":
            self._answer(200, "ready\n")
        elif u.path == "/fake/entries":
            ents = self.fake.entries()
            off = int(q.get("offset", 0))
            lim = int(q.get("limit", len(ents)))
            self._json(ents[off : off + lim])
        elif u.path == "/fake/requests":
            self._json(self.fake.requests())
        elif u.path == "/fake/stats":
            self._json(self.fake.stats())
        elif u.path == "/fake/mode":
            self._json(self.fake.mode())
        else:
            self._answer(404, "404 page not found\n")

    def do_POST(self):
        u = urllib.parse.urlsplit(self.path)
        if u.path == PUSH_PATH:
            return self._push()
        try:
            body = self._read_body()
        except (ValueError, DecodeError) as e:
            self.close_connection = True
            return self._answer(400, str(e))
        try:
            arg = json.loads(body or b"{}")
        except ValueError as e:
            return self._answer(400, "bad JSON: %s" % e)
        try:
            if u.path == "/fake/mode":
                self.fake.set_mode(**{k: v for k, v in arg.items() if k in (
                    "mode", "count", "retry_after", "status", "body", "stall_seconds")})
                if "delay" in arg:
                    self.fake.configure(delay=arg["delay"])
                return self._json(self.fake.mode())
            if u.path == "/fake/config":
                kw = {}
                if "delay" in arg:
                    kw["delay"] = arg["delay"]
                if "reject_old_seconds" in arg:
                    kw["reject_old_seconds"] = arg["reject_old_seconds"]
                self.fake.configure(**kw)
                return self._json({"ok": True})
            if u.path == "/fake/outage":
                # Answers, then refuses connections for `seconds` (down(), then up()).
                secs = float(arg.get("seconds", 10))
                self.close_connection = True
                self._json({"ok": True, "seconds": secs})
                threading.Thread(target=self.fake.outage, args=(secs,), daemon=True).start()
                return None
            if u.path == "/fake/reset":
                self.fake.reset()
                return self._json({"ok": True})
        except (TypeError, ValueError) as e:
            return self._answer(400, str(e))
        self._answer(404, "404 page not found\n")

    def _push(self):
        t0 = time.time()
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        cenc = (self.headers.get("Content-Encoding") or "").strip().lower()
        req = {"time": t0, "conn": self.conn_id, "content_type": ctype,
               "content_encoding": cenc, "tenant": self.headers.get("X-Scope-OrgID"),
               "authorization": self.headers.get("Authorization"),
               "user_agent": self.headers.get("User-Agent"), "raw_bytes": 0}
        try:
            raw = self._read_body()
        except DecodeError as e:
            req.update(status=413, error=str(e), encoding="?")
            self.fake._record(req)
            self.close_connection = True
            return self._answer(413, str(e))
        except (ConnectionError, ValueError, OSError):
            self.close_connection = True
            return
        req["raw_bytes"] = len(raw)
        req["encoding"] = ("json" + ("+" + cenc if cenc else "") if ctype == "application/json"
                           else "protobuf")
        m, delay, reject_old_ns = self.fake._take_mode()
        mode = m["mode"]

        if mode == "reset":
            req.update(status="reset", answered=time.time())
            self.fake._record(req)
            try:
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                           struct.pack("ii", 1, 0))
            except OSError:
                pass
            self.server.reset_socks.add(self.connection)
            self.close_connection = True
            return
        if mode == "stall":
            req.update(status="stall")
            self.fake._stall(self.connection, m)
            req["answered"] = time.time()
            self.fake._record(req)
            self.close_connection = True
            return

        # Decode even when the answer will be an error: a malformed body is a bug to report.
        streams = None
        err = None
        try:
            if ctype == "application/json":
                if cenc == "gzip":
                    body = gzip.decompress(raw)
                elif cenc == "deflate":
                    body = zlib.decompress(raw)
                elif cenc in ("", "identity"):
                    body = raw
                else:
                    raise DecodeError("unsupported Content-Encoding %r" % cenc)
                req["decoded_bytes"] = len(body)
                streams = decode_push_json(body)
            else:
                if cenc not in ("", "identity", "snappy"):
                    raise DecodeError("unsupported Content-Encoding %r for protobuf" % cenc)
                body = snappy_decompress(raw)
                req["decoded_bytes"] = len(body)
                streams = [(parse_labels(lbl) if lbl else {}, ents)
                           for lbl, ents in decode_push_protobuf(body)]
        except (DecodeError, OSError, EOFError, zlib.error) as e:
            err = str(e)
        if err is None:
            for lbl, _ in streams:
                if not lbl:
                    err = "error at least one label pair is required per stream"
                    break
        if err is not None:
            req.update(status=400, error=err, decode_error=True, answered=time.time())
            self.fake._record(req)
            return self._answer(400, err + "\n")

        req["streams"] = len(streams)
        req["entries"] = sum(len(e) for _, e in streams)
        ts_all = [ts for _, ents in streams for ts, _, _ in ents]
        req["min_ts"] = min(ts_all) if ts_all else None
        req["max_ts"] = max(ts_all) if ts_all else None

        if mode == "400_too_old":
            lbl, ents = next(((lb, e) for lb, e in streams if e), ({"job": "x"}, []))
            ts = ents[0][0] if ents else int(t0 * 1e9)
            body = ("entry for stream '%s' has timestamp too old: %s, oldest acceptable "
                    "timestamp is: %s" % (labels_string(lbl), _rfc3339(ts),
                                          _rfc3339(int((t0 - LOKI_REJECT_OLD_SECONDS) * 1e9))))
            req.update(status=400, error=body, answered=time.time())
            self.fake._record(req)
            return self._answer(400, body + "\n")
        if mode in ("429", "500", "status"):
            st = {"429": 429, "500": 500}.get(mode, m.get("status", 503))
            body = m.get("body") or {
                429: "Ingestion rate limit exceeded for user fake (limit: 4194304 bytes/sec) "
                     "while attempting to ingest '%d' lines totaling '%d' bytes, reduce log "
                     "volume or contact your Loki administrator to see if the limit can be "
                     "increased" % (req["entries"], req.get("decoded_bytes", 0)),
                500: "rpc error: code = Unavailable desc = fake internal error",
            }.get(st, "fake error %d" % st)
            hdr = {}
            if m.get("retry_after") is not None:
                hdr["Retry-After"] = m["retry_after"]
            req.update(status=st, error=body, answered=time.time())
            self.fake._record(req)
            return self._answer(st, body + "\n", headers=hdr)

        # ok, with Loki's old-sample rejection: store the valid entries, 400 for the rest.
        rejected = []
        if reject_old_ns is not None:
            oldest = int(t0 * 1e9) - reject_old_ns
            kept = []
            for lbl, ents in streams:
                good = [e for e in ents if e[0] >= oldest]
                if len(good) != len(ents):
                    rejected.append((lbl, next(e for e in ents if e[0] < oldest), oldest))
                kept.append((lbl, good))
            streams = kept
        if delay:
            time.sleep(delay)
        if rejected:
            lbl, e, oldest = rejected[0]
            body = ("entry for stream '%s' has timestamp too old: %s, oldest acceptable "
                    "timestamp is: %s" % (labels_string(lbl), _rfc3339(e[0]), _rfc3339(oldest)))
            req.update(status=400, error=body, rejected_streams=len(rejected),
                       answered=time.time())
            self.fake._record(req, streams)
            return self._answer(400, body + "\n")
        req.update(status=204, answered=time.time())
        self.fake._record(req, streams)
        self._answer(204)


# --------------------------------------------------------------------------- TLS and auth
#
# Additive (issue 16): FakeLoki.start_secure() serves the same fake behind TLS (an
# ssl.SSLContext made by the test, e.g. with a CA and certificates from the openssl CLI;
# client certificates required when the context says so) and/or checks the Authorization
# header of every push against FakeLoki.require_auth(). A push with other credentials is
# answered 401 with a body that, like a careless proxy, quotes the header it got (so tests
# prove the agent masks what servers echo). Failed TLS handshakes are counted
# (tls_failures()). The control routes stay open.


def _fake_require_auth(self, basic=None, bearer=None):
    """Pushes must carry Basic (user, password) or Bearer token credentials; None: any."""
    import base64
    want = None
    if basic is not None:
        want = "Basic " + base64.b64encode(("%s:%s" % basic).encode()).decode()
    elif bearer is not None:
        want = "Bearer " + bearer
    with self._lock:
        self._auth_want = want


def _fake_auth_want(self):
    with self._lock:
        return getattr(self, "_auth_want", None)


def _fake_tls_failed(self, why):
    with self._cond:
        if not hasattr(self, "_tls_failures"):
            self._tls_failures = []
        self._tls_failures.append(why)
        self._cond.notify_all()


def _fake_tls_failures(self):
    """Messages of the TLS handshakes that failed on the server side."""
    with self._lock:
        return list(getattr(self, "_tls_failures", []))


def _fake_start_secure(self, ssl_context=None, port=0):
    """Like start(), with TLS when ssl_context is given and the auth check; returns the port.
    The server is switched over before anyone knows its port, so no request sees the plain one.
    """
    port = self.start(port)
    srv = self._server
    srv.ssl_context = ssl_context
    srv.RequestHandlerClass = _AuthHandler
    if ssl_context is not None:
        srv.get_request = functools.partial(_tls_get_request, srv)
    return port


FakeLoki.require_auth = _fake_require_auth
FakeLoki.auth_want = _fake_auth_want
FakeLoki._tls_failed = _fake_tls_failed
FakeLoki.tls_failures = _fake_tls_failures
FakeLoki.start_secure = _fake_start_secure


def _tls_get_request(srv):
    sock, addr = srv.socket.accept()
    # the handshake runs in the connection's thread (_AuthHandler.setup), never here
    return srv.ssl_context.wrap_socket(sock, server_side=True,
                                       do_handshake_on_connect=False), addr


class _AuthHandler(_Handler):
    def setup(self):
        if getattr(self.server, "ssl_context", None) is not None:
            self.request.settimeout(10)
            try:
                self.request.do_handshake()
            except (OSError, ValueError) as e:
                self.server.fake._tls_failed(str(e))
                raise
            self.request.settimeout(None)
        super().setup()

    def do_POST(self):
        want = self.fake.auth_want()
        if want is None or urllib.parse.urlsplit(self.path).path != PUSH_PATH:
            return super().do_POST()
        got = self.headers.get("Authorization")
        if got == want:
            return super().do_POST()
        try:
            raw = self._read_body()
        except (DecodeError, ValueError, OSError):
            raw = b""
            self.close_connection = True
        self.fake._record({"time": time.time(), "conn": self.conn_id, "status": 401,
                           "authorization": got, "tenant": self.headers.get("X-Scope-OrgID"),
                           "raw_bytes": len(raw), "encoding": "?", "answered": time.time()})
        self._answer(401, "authentication failed; got Authorization: %s\n" % got)


def _rfc3339(ns):
    s, frac = divmod(int(ns), 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(s)) + ".%09dZ" % frac


def main(argv=None):
    ap = argparse.ArgumentParser(description="Fake Loki push endpoint for tests")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=3100)
    ap.add_argument("--verbose", "-v", action="store_true")
    args = ap.parse_args(argv)
    fake = FakeLoki(args.host, verbose=args.verbose)
    port = fake.start(args.port)
    print("fake loki listening on %s:%d" % (args.host, port), flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    fake.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
