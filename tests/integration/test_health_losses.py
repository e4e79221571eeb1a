# SPDX-License-Identifier: MIT
"""test_health_losses.py: /health lists every loss the log's rate limit left out (issue 13).

A loss warning is rate-limited like every other message (5 per message in 10 s), so during a
storm the log names only the first few; /health's "losses" keeps the newest
`health_recent_losses` reports whole, and log_capturer_loss_reports_total counts them all.
"""

import time

import pytest

from agent import have_binary, wait_until
from test_files import file_input, make_agent, stop_clean  # noqa: F401 (a fixture)

if not have_binary():
    pytest.skip("log_capturer binary not built", allow_module_level=True)

FILES = 8
DELETED = "rotated and deleted while the agent was down"


def rotate_away_while_down(make_agent, tmp_path, keep):
    """8 files read, the agent stopped, each rotated and its rotated file deleted, the agent
    started again: 8 losses at once. Returns the agent (running) and the paths."""
    logs = tmp_path / "logs"
    logs.mkdir()
    paths = [logs / f"app{i}.log" for i in range(FILES)]
    for p in paths:
        p.write_text(f"{p.name} first\n")
    a = make_agent([file_input([logs / "*.log"], start_at="beginning")],
                   extra={"health_recent_losses": keep})
    a.start()
    assert wait_until(lambda: len(a.output_lines()) >= FILES, 20)
    time.sleep(1.5)  # the positions committed
    stop_clean(a)
    for p in paths:
        with open(p, "a") as f:
            f.write(f"{p.name} never read\n")
        p.rename(str(p) + ".1")
        (logs / (p.name + ".1")).unlink()
        p.write_text(f"{p.name} second\n")
    a.start()
    assert wait_until(lambda: (a.metric("log_capturer_file_rotation_gaps_total",
                                        input="files") or 0) >= FILES, 20)
    return a, paths


def test_losses_beyond_the_log_rate_limit_listed(make_agent, tmp_path):
    a, paths = rotate_away_while_down(make_agent, tmp_path, 32)
    try:
        _, h = a.health()
        reports = a.metric("log_capturer_loss_reports_total")
    finally:
        stop_clean(a)
    said = [r["msg"] for r in a.log_records() if DELETED in r.get("msg", "")]
    listed = [e for e in h["losses"]["recent"] if DELETED in e["msg"]]
    print(f"\nlog named {len(said)} of {FILES} losses; /health listed {len(listed)}")
    assert len(said) < FILES  # the log's rate limit thinned them (5 per message in 10 s)
    assert h["losses"]["reported"] >= FILES and reports >= FILES
    assert sorted(e["msg"].split(":")[0] for e in listed) == sorted(str(p) for p in paths)
    assert all(e["component"] == "files" and e["time"].endswith("Z") for e in listed)


def test_losses_list_at_its_limit(make_agent, tmp_path):
    a, paths = rotate_away_while_down(make_agent, tmp_path, 3)
    try:
        _, h = a.health()
    finally:
        stop_clean(a)
    assert h["losses"]["reported"] >= FILES
    assert h["losses"]["kept"] == 3 and len(h["losses"]["recent"]) == 3
