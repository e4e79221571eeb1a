# SPDX-License-Identifier: MIT
"""test_disk_faults.py: disk faults under the checkpoint store (issue 13).

A full, then read-only state directory while the agent runs: lines keep shipping, /health
says the checkpoint store is degraded, checkpoints.db stays sound, commits resume when the
disk is back, and a restart re-sends only what was delivered after the last commit.

A corrupt or truncated checkpoints.db at start: by default (`on_corrupt_state: fail`): the agent exits non-zero with an error naming the file
and the option, and the file stays where it is, untouched. `reset`: the file is moved aside
as checkpoints.db.corrupt-<time> (never deleted) and the agent starts afresh, every input per
its start_at.
"""

import os
import shutil
import sqlite3
import subprocess
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


# ----------------------------------------------------------------------------- full, read-only


def run(*argv):
    return subprocess.run(argv, capture_output=True, text=True, timeout=30)


@pytest.fixture
def state_fs(tmp_path):
    """A 4 MiB ext4 image loop-mounted (errors=remount-ro) where the agent keeps its state.
    ext4, not tmpfs: a filesystem with files open for writing (SQLite's) cannot be remounted
    read-only (EBUSY), so the read-only fault is the kernel's own remount after an error,
    which tmpfs never does. Skipped when not root or mounting is not permitted."""
    for tool in ("mkfs.ext4", "e2fsck", "mount", "umount", "losetup", "findmnt"):
        if not shutil.which(tool):
            pytest.skip(f"{tool} not installed (e2fsprogs, util-linux)")
    if os.geteuid() != 0:
        pytest.skip("mounting a filesystem needs root")
    img = tmp_path / "state.img"
    mnt = tmp_path / "agent-state"  # ag.Agent's state_dir
    mnt.mkdir()
    with open(img, "wb") as f:
        f.truncate(4 << 20)
    r = run("mkfs.ext4", "-q", "-F", "-m", "0", str(img))
    assert r.returncode == 0, r.stderr
    r = run("mount", "-w", "-o", "loop,errors=remount-ro", str(img), str(mnt))
    if r.returncode != 0:
        pytest.skip(f"cannot loop-mount an ext4 image: {r.stderr.strip()}")
    try:
        yield img, mnt
    finally:
        if run("umount", str(mnt)).returncode != 0:
            run("umount", "-l", str(mnt))


def make_read_only(mnt):
    """Makes the mounted filesystem read-only under the running agent: `remount,ro` if the
    kernel allows it, else (EBUSY: files open for writing) an ext4 error with
    errors=remount-ro, as after a disk error. True when the second way was taken."""
    if run("mount", "-o", "remount,ro", str(mnt)).returncode == 0:
        return False
    dev = os.path.basename(run("findmnt", "-no", "SOURCE", str(mnt)).stdout.strip())
    trigger = f"/sys/fs/ext4/{dev}/trigger_fs_error"
    if not os.path.exists(trigger):
        pytest.skip(f"remount,ro refused (files open for writing) and no {trigger}")
    with open(trigger, "w") as f:
        f.write("test: state dir goes read-only\n")
    return True


def make_writable(img, mnt, emergency):
    """Back to read-write: `remount,rw`, or after an ext4 error (which only an unmount
    clears) unmount, e2fsck and mount again, as an operator would. Returns the files that
    the error remount's rollback brought back (deleted again)."""
    if not emergency:
        r = run("mount", "-o", "remount,rw", str(mnt))
        assert r.returncode == 0, r.stderr
        return []
    r = run("umount", str(mnt))
    assert r.returncode == 0, r.stderr
    # the loop device detaches asynchronously; `mount -o loop` would reuse it, stale cache
    # and all, and fall back to read-only
    assert ag.wait_until(lambda: not run("losetup", "-j", str(img)).stdout.strip(), 5), \
        run("losetup", "-j", str(img)).stdout
    r = run("e2fsck", "-f", "-y", str(img))
    assert r.returncode in (0, 1), r.stdout + r.stderr  # 1: errors corrected
    r = run("mount", "-w", "-o", "loop,errors=remount-ro", str(img), str(mnt))
    assert r.returncode == 0, r.stderr
    # what ext4 had not committed to its journal is gone too: the filler's unlink may be
    # undone (the file back, or in lost+found), leaving the filesystem full again
    back = [f for f in [mnt / "filler", *(mnt / "lost+found").iterdir()] if f.is_file()]
    for f in back:
        f.unlink()
    return back


def committed(db):
    """The file input's committed offset, read like an operator would (a second reader)."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        rows = con.execute("SELECT offset FROM sources WHERE key LIKE 'file:%'").fetchall()
    finally:
        con.close()
    return rows[0][0] if rows else None


def integrity(db):
    con = sqlite3.connect(str(db), timeout=5)
    try:
        return con.execute("PRAGMA integrity_check").fetchall()
    finally:
        con.close()


@pytest.mark.parametrize("written_back", [True, False], ids=["written-back", "unwritten"])
def test_state_dir_full_then_read_only_keeps_shipping_never_corrupts(tmp_path, fake, state_fs,
                                                                     written_back):
    """Timeline: lines flow and commit; the state filesystem fills up (flushes fail with
    SQLITE_FULL): /health `checkpoints` degraded, lines still reach Loki, the stored offset
    stays; space again: ok, the offset catches up; read-only: degraded again, lines still
    reach Loki. Stopped, remounted read-write: checkpoints.db passes integrity_check and
    holds the last offset committed before the fault (written-back: the kernel had written
    the commits to disk; unwritten: it had not, and the error remount dropped them, which
    rolls the offset back like a power loss), and a restart re-sends exactly the lines
    delivered after the stored offset (nothing lost)."""
    img, mnt = state_fs
    logdir = tmp_path / "logs"
    logdir.mkdir()
    log = logdir / "a.log"
    log.touch()
    out = {"type": "loki", "name": "loki", "url": fake.url, "encoding": "protobuf",
           "timeout": "3s", "retry": {"initial": "200ms", "max": "1s"}}
    a = ag.Agent(tmp_path, [{"type": "file", "name": "f", "paths": [str(logdir / "*.log")],
                             "start_at": "beginning"}], [out],
                 extra={"checkpoint_interval": "100ms", "batch_wait": "100ms"})
    db = mnt / "checkpoints.db"
    seq = [0]

    def write(n):
        ag.append_lines(log, [f"line seq={seq[0] + i}" for i in range(n)])
        seq[0] += n
        return log.stat().st_size

    def delivered():
        return [int(e["line"].split("seq=")[1]) for e in fake.entries()]

    def ckpt():
        return a.health()[1]["components"]["checkpoints"]

    def warnings(text):
        return [r for r in a.log_records() if text in r.get("msg", "")]

    t0 = time.monotonic()
    timeline = []

    def event(what):  # printed at the end (pytest -s): the timeline the issue asks for
        timeline.append(f"{time.monotonic() - t0:6.2f}s {what}: {len(delivered())} lines "
                        f"delivered, checkpoints {ckpt()['status']}")

    try:
        a.start()
        size = write(100)
        assert ag.wait_until(lambda: committed(db) == size, 10), (committed(db), size)
        assert len(delivered()) == 100 and ckpt()["status"] == "ok"
        before = size

        # 1. full: flushes fail, lines keep flowing, the stored offset stays put
        ag.fill_fs(mnt / "filler")
        event("state fs full")
        size = write(100)
        assert ag.wait_until(lambda: ckpt()["status"] == "degraded", 5), ckpt()
        event("degraded")
        assert "No space left" in ckpt()["detail"], ckpt()
        assert ag.wait_until(lambda: len(delivered()) >= 200, 10), len(delivered())
        event("100 more lines delivered while full")
        # many failed flushes, but the store's error is rate-limited (5 per 10 s)
        assert ag.wait_until(lambda: (a.metric("log_capturer_checkpoint_flushes_total",
                                               result="error") or 0) >= 10, 5)
        assert len(warnings("checkpoint flush failed")) <= 5
        assert len(warnings("checkpoint store degraded: last flush failed: No space")) == 1
        assert committed(db) == before, "an offset was committed on a full disk?"
        assert a.running()

        # 2. space again: commits resume, the offset catches up
        os.unlink(mnt / "filler")
        event("filler deleted")
        assert ag.wait_until(lambda: ckpt()["status"] == "ok", 5), ckpt()
        event("ok")
        assert ag.wait_until(lambda: committed(db) == size, 5), (committed(db), size)
        assert warnings("checkpoint store ok again")
        before = size

        # 3. read-only: degraded again (a new cause is logged), lines keep flowing
        if written_back:
            run("sync", "-f", str(db))  # what the kernel does within ~30 s of a commit
        emergency = make_read_only(mnt)
        event("read-only (ext4 error remount)" if emergency else "read-only (remount,ro)")
        size = write(100)
        assert ag.wait_until(lambda: ckpt()["status"] == "degraded", 5), ckpt()
        event("degraded")
        assert ag.wait_until(lambda: len(delivered()) >= 300, 10), len(delivered())
        event("100 more lines delivered while read-only")
        assert len(warnings("checkpoint store degraded")) == 2
        assert sorted(delivered()) == list(range(300)), "lost or repeated during the faults"
        assert a.stop() == 0, a.stderr()[-3000:]  # the final flush fails too: still clean
    finally:
        a.cleanup()

    # 4. read-write again: the database is sound. After the kernel's error remount, the
    # commits it had not written back are gone (synchronous=NORMAL: like a power loss), so
    # the stored offset may be older than the last commit: at a line boundary, never ahead.
    back = make_writable(img, mnt, emergency)
    if back:
        timeline.append(f"after e2fsck the deleted filler was back (unlink not committed): {back}")
    assert integrity(db) == [("ok",)]
    stored = committed(db)
    assert stored is not None and (stored == before if written_back else stored <= before)
    data = log.read_bytes()
    assert stored == 0 or data[stored - 1:stored] == b"\n"
    first = data[:stored].count(b"\n")  # lines a restart must not re-send
    timeline.append(f"stored offset {stored} of {before} committed before the read-only "
                    f"fault: a restart re-sends seq {first}..299")
    # a restart re-reads exactly what was delivered after the stored offset, loses nothing
    try:
        a.start()
        size = write(20)
        assert ag.wait_until(lambda: len(delivered()) >= 320 + 300 - first, 10), len(delivered())
        assert ag.wait_until(lambda: committed(db) == size, 5), (committed(db), size)
        assert sorted(delivered()) == sorted(list(range(320)) + list(range(first, 300))), \
            "after the restart: lines lost, or re-sent from before the stored offset"
        assert ckpt()["status"] == "ok"
        event("restarted, caught up and committed")
        assert a.stop() == 0
    finally:
        a.cleanup()
    print("\n".join(timeline))
