# SPDX-License-Identifier: MIT
"""test_bad_input.py: hostile bytes in log lines reach a UTF-8-validating Loki (issue 13).

Rule (README "Bad input catalogue"): a line is sent byte for byte, except that every byte
that is not part of a well-formed UTF-8 sequence is sent as '?' (length kept), counted in
log_capturer_loki_utf8_repaired_records_total and logged (rate-limited). NUL bytes and ANSI
escapes are valid UTF-8 and pass unchanged. The fake Loki rejects a batch with invalid
UTF-8 with a 400 like Loki's JSON decoder, so without the repair the whole batch (valid lines
too) would go to the dead-letter queue.
"""

import pytest

import agent as ag

pytestmark = pytest.mark.skipif(not ag.have_binary(), reason="build/log_capturer not built")

RAW = (b"good line 1\n"
       b"bad \xff\xfe line 2\n"
       b"nul \x00 byte 3\n"
       b"ansi \x1b[31mred\x1b[0m 4\n"
       b"cut \xe2\x82 5\n"
       b"overlong \xc0\xaf surrogate \xed\xa0\x80 6\n"
       b"fine caf\xc3\xa9 \xf0\x9f\x98\x80 7\n")
WANT = ["good line 1", "bad ?? line 2", "nul \x00 byte 3", "ansi \x1b[31mred\x1b[0m 4",
        "cut ?? 5", "overlong ?? surrogate ??? 6", "fine caf\u00e9 \U0001F600 7"]



@pytest.mark.parametrize("enc", ["protobuf", "json"])
def test_invalid_utf8_repaired_nul_and_ansi_kept(fake, tmp_path, enc):
    log = tmp_path / "hostile.log"
    log.write_bytes(RAW)
    a = ag.Agent(tmp_path, [{"type": "file", "name": "f", "start_at": "beginning",
                             "paths": [str(log)], "labels": {"job": "bad"}}],
                 [{"type": "loki", "name": "loki", "url": fake.url, "encoding": enc}])
    a.start()
    assert ag.wait_until(lambda: len(fake.entries()) >= len(WANT), 10), fake.requests()
    assert [e["line"] for e in fake.entries()] == WANT
    assert [r["status"] for r in fake.requests()] == [204]
    assert a.metric("log_capturer_loki_utf8_repaired_records_total", output="loki") == 3
    assert a.metric("log_capturer_loki_dead_lettered_batches_total") == 0
    assert any("invalid UTF-8" in r.get("msg", "") for r in a.log_records())
    assert a.stop() == 0
