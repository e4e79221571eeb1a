# SPDX-License-Identifier: MIT
"""test_disk_faults.py: a corrupt or truncated checkpoints.db at start (issue 13).

Default (`on_corrupt_state: fail`): the agent exits non-zero with an error naming the file
and the option, and the file stays where it is, untouched. `reset`: the file is moved aside
as checkpoints.db.corrupt-<time> (never deleted) and the agent starts afresh, every input per
its start_at.
"""

import time

import pytest

import agent as ag

pytestmark = pytest.mark.skipif(not ag.have_binary(), reason="build/log_capturer not built")


def file_input(path):
    return [{"type": "file", "name": "f", "paths": [str(path)], "start_at": "beginning"}]


def make_state(tmp_path, log):
    """A real checkpoints.db after one --once run over `log`."""
    ag.append_lines(log, [f"line seq={i}" for i in range(100)])
    a = ag.Agent(tmp_path, file_input(log), name="agent")
    a.start(once=True)
    assert a.wait(30) == 0, a.stderr()[-2000:]
    assert len(a.output_lines()) == 100
    return a


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_corrupt_state_fails_by_default_and_keeps_the_file(tmp_path, damage):
    log = tmp_path / "app.log"
    a = make_state(tmp_path, log)
    db = a.state_dir / "checkpoints.db"
    data = db.read_bytes()
    bad = data[:len(data) // 2 + 100] if damage == "truncated" else b"\x00garbage" * 600
    db.write_bytes(bad)
    a.start(wait_ready=False)
    assert a.wait(30) != 0
    err = a.stderr()
    assert "checkpoints.db" in err and "on_corrupt_state: reset" in err, err[-2000:]
    assert db.read_bytes() == bad, "the corrupt file was changed"
    assert not list(a.state_dir.glob("checkpoints.db.corrupt-*"))


def test_corrupt_state_reset_moves_aside_and_starts_per_start_at(tmp_path):
    log = tmp_path / "app.log"
    a = make_state(tmp_path, log)
    db = a.state_dir / "checkpoints.db"
    bad = db.read_bytes()[:3000]  # truncated mid-page
    db.write_bytes(bad)
    a.config["on_corrupt_state"] = "reset"
    a.start(timeout=20)
    # start_at: beginning, no state: the file is read again from its first line
    assert ag.wait_until(lambda: len(a.output_lines()) >= 200, 15), len(a.output_lines())
    moved = list(a.state_dir.glob("checkpoints.db.corrupt-*"))
    assert len(moved) == 1 and moved[0].read_bytes() == bad, moved
    recs = [r for r in a.log_records() if "moved to" in r.get("msg", "")]
    assert recs and recs[0]["level"] == "error" and "start_at" in recs[0]["msg"], recs
    # the fresh store commits: a restart does not read the file a third time
    time.sleep(0.5)
    assert a.stop(30) == 0
    a.start(timeout=20)
    time.sleep(1.0)
    assert len(a.output_lines()) == 200
    assert a.stop(30) == 0
