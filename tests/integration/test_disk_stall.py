# SPDX-License-Identifier: MIT
"""test_disk_stall.py: a disk stalled for 2 s does not stop lines flowing to Loki (issue 8).

The agent runs under an LD_PRELOAD shim (stall_shim.c, built here with the system compiler)
that makes every fsync()/fdatasync() sleep 2 s while a control file exists. The agent tails a
file that a writer keeps appending to, and ships it to the fake Loki and to a file output with
`fsync: true` (so a sync is due every batch); a second Loki output whose every push is rejected
sends each batch to its dead-letter queue (fdatasync per append). The disk jobs then wait on the
disk worker thread; the event loop keeps reading and pushing. Before the worker, the loop itself
sat in fsync and Loki received nothing during the stall.

Printed (pytest -s): lines written and lines delivered to Loki during the stall.
Environment: LC_BIN (the binary), LC_TIMEOUT_SCALE.
"""

import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import agent as ag  # noqa: E402
from fake_loki import FakeLoki  # noqa: E402

HERE = Path(__file__).resolve().parent
STALL_S = 2.0
RATE = 500  # lines/s

pytestmark = pytest.mark.skipif(not ag.have_binary(), reason=f"no agent binary at {ag.LC_BIN}")


def sanitized():
    """True for an ASan build: its runtime must come first, before any LD_PRELOAD shim."""
    try:
        out = subprocess.run(["ldd", ag.LC_BIN], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    return "libasan" in out


def build_shim(tmp_path):
    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc:
        pytest.fail("no C compiler to build the stall shim")
    so = tmp_path / "stall_shim.so"
    subprocess.run([cc, "-shared", "-fPIC", "-O2", "-o", str(so), str(HERE / "stall_shim.c"),
                    "-ldl"], check=True)
    return so


class Writer(threading.Thread):
    """Appends numbered lines at RATE lines/s until stopped; records (time, count) samples."""

    def __init__(self, path):
        super().__init__(daemon=True)
        self.path = path
        self.n = 0
        self.stop_evt = threading.Event()

    def run(self):
        t0 = time.monotonic()
        with open(self.path, "a") as f:
            while not self.stop_evt.is_set():
                due = int((time.monotonic() - t0) * RATE)
                if due > self.n:
                    f.write("".join(f"stall seq={i} pad=xxxxxxxxxxxxxxxxxxxxxxxxxxxx\n"
                                    for i in range(self.n, due)))
                    f.flush()
                    self.n = due
                time.sleep(0.01)


@pytest.mark.skipif(sanitized(), reason="a timing test, and ASan refuses a preloaded shim")
def test_stalled_disk_keeps_lines_flowing(tmp_path, monkeypatch):
    shim = build_shim(tmp_path)
    logdir = tmp_path / "logs"
    logdir.mkdir()
    stall_file = tmp_path / "stall-now"
    live, dead = FakeLoki(), FakeLoki()
    live.start()
    dead.start()
    dead.set_mode("status", status=400, body="rejected")
    out_path = tmp_path / "copy.ndjson"
    a = ag.Agent(
        tmp_path,
        inputs=[{"type": "file", "name": "logs", "paths": [str(logdir / "*.log")],
                 "start_at": "beginning", "max_line_bytes": "16KiB",
                 # a read in flight per 10 ms write for 2 s: more than the default 64 per source
                 "max_unacked_reads": 2048, "labels": {"job": "stall"}}],
        outputs=[
            {"type": "loki", "name": "loki", "url": live.url, "timeout": "3s"},
            {"type": "loki", "name": "rejecting", "url": dead.url, "timeout": "3s"},
            {"type": "file", "name": "copy", "path": str(out_path), "fsync": True},
        ],
        # small batches: a batch is charged its whole allocation to max_pending_bytes (issue 8)
        extra={"batch_wait": "50ms", "batch_bytes": "64KiB", "checkpoint_interval": "100ms"})
    writer = Writer(logdir / "app.log")
    try:
        monkeypatch.setenv("LD_PRELOAD", str(shim))
        monkeypatch.setenv("LC_STALL_FILE", str(stall_file))
        monkeypatch.setenv("LC_STALL_MS", str(int(STALL_S * 1000)))
        a.start()
        monkeypatch.delenv("LD_PRELOAD")
        writer.start()
        # flowing before the stall
        assert ag.wait_until(lambda: len(live.entries()) >= RATE // 2, ag.scaled(10)), \
            "lines do not reach Loki before the stall"
        assert ag.wait_until(lambda: len(dead.requests()) > 0, ag.scaled(10))

        stall_file.touch()
        t0 = time.monotonic()
        w0, d0 = writer.n, len(live.entries())
        trace = []  # (s since the stall began, lines written, lines delivered)
        depth = None
        while time.monotonic() < t0 + STALL_S:
            time.sleep(max(0.0, min(0.2, t0 + STALL_S - time.monotonic())))
            trace.append((round(time.monotonic() - t0, 1), writer.n - w0, len(live.entries()) - d0))
            if depth is None and time.monotonic() >= t0 + STALL_S / 2:
                depth = a.metric("log_capturer_disk_queue_jobs") or 0
        print("\n[disk-stall] (s, written, delivered):", trace, flush=True)
        w1, d1 = writer.n, len(live.entries())
        stall_file.unlink()

        written, delivered = w1 - w0, d1 - d0
        print(f"\n[disk-stall] during a {STALL_S:.0f} s fsync/fdatasync stall: {written} lines "
              f"written, {delivered} delivered to Loki; disk queue depth mid-stall {depth}",
              flush=True)
        assert delivered >= written // 2, (
            f"only {delivered} of {written} lines reached Loki while the disk was stalled")
        assert depth >= 1, "the stall did not hold up the disk worker"

        # after the stall every line arrives, in Loki and in the synced file
        writer.stop_evt.set()
        writer.join(5)
        total = writer.n
        assert live.wait_entries(total, ag.scaled(20)) >= total
        assert ag.wait_until(lambda: ag.count_lines(out_path) >= total, ag.scaled(20)), \
            f"file output has {ag.count_lines(out_path)} of {total} lines"
        seqs = {int(e["line"].split("seq=")[1].split()[0]) for e in live.entries()}
        assert seqs == set(range(total)), f"{total - len(seqs)} lines missing in Loki"
        # the rejected batches reached the DLQ once its appends could sync again
        assert ag.wait_until(lambda: (a.metric("log_capturer_output_batch_fate_total",
                                               output="rejecting", fate="dead_letter") or 0) > 0,
                             ag.scaled(10))
        assert a.stop() == 0
    finally:
        writer.stop_evt.set()
        if stall_file.exists():
            stall_file.unlink()
        a.cleanup()
        live.stop()
        dead.stop()
