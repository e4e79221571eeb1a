# SPDX-License-Identifier: MIT
"""lokiproto.py: test-side encoders for Loki push bodies (protobuf, snappy, JSON).

The fake decodes; these encode, independently, so the fake can be checked against
hand-built payloads. snappy_compress_literal() emits only literal elements (valid snappy);
snappy_compress_lib() uses the system libsnappy through ctypes when it is present.
"""

import ctypes
import ctypes.util
import gzip
import json


def uvarint(n):
    out = bytearray()
    n &= (1 << 64) - 1
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def pb_field(num, wt, payload):
    key = uvarint((num << 3) | wt)
    if wt == 0:
        return key + uvarint(payload)
    if wt == 2:
        if isinstance(payload, str):
            payload = payload.encode()
        return key + uvarint(len(payload)) + payload
    raise ValueError(wt)


def labels_string(d):
    parts = []
    for k in sorted(d):
        v = d[k].replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        parts.append('%s="%s"' % (k, v))
    return "{" + ", ".join(parts) + "}"


def encode_push_protobuf(streams, extra_unknown=False):
    """streams: [(labels dict or str, [(ts_ns, line) or (ts_ns, line, metadata dict)])]."""
    out = bytearray()
    for labels, entries in streams:
        s = bytearray()
        s += pb_field(1, 2, labels if isinstance(labels, str) else labels_string(labels))
        for e in entries:
            ts, line = e[0], e[1]
            md = e[2] if len(e) > 2 else {}
            ent = bytearray()
            sec, nanos = divmod(ts, 1_000_000_000)
            tsb = (pb_field(1, 0, sec) if sec else b"") + (pb_field(2, 0, nanos) if nanos else b"")
            ent += pb_field(1, 2, tsb)
            ent += pb_field(2, 2, line)
            for k, v in md.items():
                ent += pb_field(3, 2, pb_field(1, 2, k) + pb_field(2, 2, v))
            s += pb_field(2, 2, bytes(ent))
        if extra_unknown:
            s += pb_field(3, 0, 0xDEADBEEF)  # StreamAdapter.hash, ignored by Loki
        out += pb_field(1, 2, bytes(s))
    return bytes(out)


def snappy_compress_literal(data):
    """Valid snappy block with literal elements only (chunks of up to 64 KiB)."""
    out = bytearray(uvarint(len(data)))
    pos = 0
    while pos < len(data):
        chunk = data[pos : pos + 65536]
        n = len(chunk) - 1
        if n < 60:
            out.append(n << 2)
        elif n < 1 << 8:
            out.append(60 << 2)
            out += n.to_bytes(1, "little")
        elif n < 1 << 16:
            out.append(61 << 2)
            out += n.to_bytes(2, "little")
        else:
            out.append(62 << 2)
            out += n.to_bytes(3, "little")
        out += chunk
        pos += len(chunk)
    return bytes(out)


_libsnappy = None


def libsnappy():
    """The system libsnappy (ctypes), or None."""
    global _libsnappy
    if _libsnappy is None:
        name = ctypes.util.find_library("snappy") or "libsnappy.so.1"
        try:
            lib = ctypes.CDLL(name)
            lib.snappy_max_compressed_length.restype = ctypes.c_size_t
            lib.snappy_max_compressed_length.argtypes = [ctypes.c_size_t]
            _libsnappy = lib
        except OSError:
            _libsnappy = False
    return _libsnappy or None


def snappy_compress_lib(data):
    lib = libsnappy()
    cap = lib.snappy_max_compressed_length(len(data))
    buf = ctypes.create_string_buffer(cap)
    outlen = ctypes.c_size_t(cap)
    rc = lib.snappy_compress(data, ctypes.c_size_t(len(data)), buf, ctypes.byref(outlen))
    assert rc == 0, rc
    return buf.raw[: outlen.value]


def encode_push_json(streams, gzip_it=False):
    doc = {"streams": []}
    for labels, entries in streams:
        vals = []
        for e in entries:
            v = [str(e[0]), e[1]]
            if len(e) > 2 and e[2]:
                v.append(e[2])
            vals.append(v)
        doc["streams"].append({"stream": labels, "values": vals})
    body = json.dumps(doc).encode()
    return gzip.compress(body) if gzip_it else body
