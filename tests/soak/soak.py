# SPDX-License-Identifier: MIT
"""soak.py: resource-stability harness: runs the agent for minutes under rotation, churn, bursts
and (with --output loki) a faulty fake Loki, samples its threads, FDs and RSS, and fails on growth
or on a lost line.

Not part of the normal test run; see tests/soak/README.md. Python stdlib only (/usr/bin/python3).

Load: 6 writers rotated by rename every minute, 2 writers rotated by copytruncate every few
minutes (each with its own input, so the harness can wait until the agent has read a file before
truncating it: copytruncate loses whatever was unread at that moment, by design), one burst
writer (a burst of lines into a freshly rotated file every minute), and churn (a new short-lived
file every 20 s, deleted a little after its writer stops). Every line names its source and
sequence number, so delivery is checked line by line.

Samples (every --interval s, written to <workdir>/samples.csv): from /proc/PID the FD count,
threads and VmRSS, the FDs that are Loki connections, and from /metrics the tailed files open,
lines in and records out. After a warm-up, least-squares slopes per minute of threads, "core"
FDs (all FDs minus tailed files and Loki connections, which vary legitimately) and RSS are
compared with limits, together with final-versus-baseline bounds. Exit status: 0 pass, 1 fail,
2 could not run.
"""

import argparse
import csv
import http.client
import json
import os
import re
import signal
import statistics
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "integration"))

import agent as ag  # noqa: E402  (tests/integration/agent.py)

FAKE_LOKI = REPO / "tests" / "integration" / "fake_loki.py"
LINE_RE = re.compile(r"src=(\S+) seq=(\d+)")
FILLER = "msg=\"soak line\" path=/api/v1/items status=200 user=soak pad="


def now():
    return time.monotonic()


# --------------------------------------------------------------------------- accounting

TS_GROUPS = ("dapi",)  # groups read by docker api mode: delivered timestamps are kept
API_GAP_RE = re.compile(r"container ([0-9a-f]{12}): lost in rotation: its log no longer holds "
                        r"the last line read \((its start|\S+)\); lines after it and before (\S+) "
                        r"may be lost")
# a container's warning that lines of it are lost (missed_containers_total counts it)
API_LOST_RE = re.compile(r"container ([0-9a-f]{12}): .*\blost$")
# ... and the one that says from when: a removed container's unread tail
API_TAIL_RE = re.compile(r"container ([0-9a-f]{12}): removed before its log stream reached the "
                         r"(?:last line of its log|first line its log still held) \((\S+)\): "
                         r"its lines after (its start|\S+), (?:up to|before) that one, are lost")


def rfc3339_ns(s):
    """2026-12-01T02:48:19.331276862Z -> ns since the epoch (UTC); "its start" -> 0."""
    import calendar
    if s == "its start":
        return 0
    base, _, frac = s.rstrip("Z").partition(".")
    t = calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S"))
    return t * 1_000_000_000 + int((frac + "000000000")[:9])


def api_gaps(log_records):
    """Api mode's gaps the agent logged (its own JSON log records): {cid12: [(from, to)]}
    in ns, and whether a gap message was suppressed by rate limiting."""
    gaps, suppressed = {}, False
    for r in log_records:
        msg = r.get("msg", "")
        if "lost in rotation: its log no longer holds" in msg and r.get("suppressed"):
            suppressed = True
        m = API_GAP_RE.search(msg)
        if m:
            gaps.setdefault(m.group(1), []).append((rfc3339_ns(m.group(2)),
                                                     rfc3339_ns(m.group(3))))
    return gaps, suppressed


def api_tails(log_records):
    """Containers the agent named in a warning that lines of them are lost (counted in
    missed_containers_total): {cid12: ns of the last line it read, or None when the warning
    gives none}."""
    tails = {}
    for r in log_records:
        msg = r.get("msg", "")
        m = API_TAIL_RE.search(msg)
        if m:
            frm = None if m.group(3) == "its start" else rfc3339_ns(m.group(3))
            old = tails.get(m.group(1), frm)
            tails[m.group(1)] = None if old is None or frm is None else max(old, frm)
        else:
            m = API_LOST_RE.search(msg)
            if m:
                tails[m.group(1)] = None
    return tails


def api_tail_ranges(log_records):
    """The time ranges of api mode's tail warnings: {cid12: [(from, to)]} in ns (from 0 when
    the warning says "its start")."""
    ranges = {}
    for r in log_records:
        m = API_TAIL_RE.search(r.get("msg", ""))
        if m:
            frm = 0 if m.group(3) == "its start" else rfc3339_ns(m.group(3))
            ranges.setdefault(m.group(1), []).append((frm, rfc3339_ns(m.group(2)) + 1))
    return ranges


NO_TAIL = object()


def api_gap_excused(tracker, key, gaps, tail=NO_TAIL):
    """True when every run of lost lines of `key` (an api mode key) lies in a gap the agent
    counted and logged for its container: the run's delivered neighbours (their timestamps)
    bracket a logged range (last line read, first line the daemon still had); or, when the
    agent said the container's unread tail is lost (tail: the last line it read, None when
    it did not say), the run is the key's last lines and follows that line. A run with no
    logged gap or loss around it is a silent loss."""
    runs = tracker.lost_runs(key)
    if not runs or (not gaps and tail is NO_TAIL):
        return not runs
    ts = tracker.ts.get(key, {})
    n = tracker.written_of(key)
    for lo, hi in runs:
        before = ts.get(lo - 1) if lo > 0 else None
        after = ts.get(hi + 1) if hi + 1 < n else None
        if tail is not NO_TAIL and hi + 1 == n and (tail is None or before is None
                                                     or before <= tail):
            continue
        if not any((before is None or before < to) and (after is None or after > frm)
                   for frm, to in gaps):
            return False
    return True


class Tracker:
    """What was written and what arrived, per source key: a count per sequence number."""

    def __init__(self):
        self.lock = threading.Lock()
        self.written = {}  # key -> lines written (seq 0..n-1)
        self.seen = {}  # key -> bytearray of delivery counts (saturating at 255)
        self.unknown = 0  # delivered lines that do not parse as ours
        self.ts = {}  # key -> {seq: timestamp (ns) of its first delivery}, api mode keys only

    def wrote(self, key, n):
        with self.lock:
            self.written[key] = self.written.get(key, 0) + n

    def written_of(self, key):
        with self.lock:
            return self.written.get(key, 0)

    def delivered(self, line, group="file", ts=None):
        """One delivered line of input group `group` (keys are "<group>/<src>"); `ts`, its
        timestamp (ns), is kept for api mode's groups (api_gap_excused)."""
        m = LINE_RE.search(line)
        with self.lock:
            if not m:
                self.unknown += 1
                return
            key, seq = f"{group}/{m.group(1)}", int(m.group(2))
            b = self.seen.get(key)
            if b is None:
                b = self.seen[key] = bytearray()
            if seq >= len(b):
                b.extend(bytes(seq + 1024 - len(b)))
            if b[seq] < 255:
                b[seq] += 1
            if ts is not None and group in TS_GROUPS:
                self.ts.setdefault(key, {}).setdefault(seq, int(ts))

    def delivered_through(self, key, n):
        """True when seq 0..n-1 of key all arrived."""
        with self.lock:
            b = self.seen.get(key)
            if n == 0:
                return True
            if b is None or len(b) < n:
                return False
            return 0 not in b[:n]

    def totals(self, group=None):
        """(written, delivered unique, lost, duplicates, per-key lost ranges) of every key, or
        of the keys of one input group."""
        def mine(key):
            return group is None or key.startswith(group + "/")
        with self.lock:
            written = sum(v for k, v in self.written.items() if mine(k))
            uniq = lost = dup = 0
            ranges = {}
            for key, n in self.written.items():
                if not mine(key):
                    continue
                b = self.seen.get(key, bytearray())
                got = b[:n]
                u = n - got.count(0) - max(0, n - len(got))
                uniq += u
                lost += n - u
                dup += sum(c - 1 for c in b if c > 1)
                if u < n:
                    ranges[key] = _missing_ranges(b, n)
            for key, b in self.seen.items():
                if mine(key) and key not in self.written:  # a source we never wrote
                    dup += sum(c for c in b if c)
            return written, uniq, lost, dup, ranges

    def totals_key(self, key):
        """(written, delivered unique) of one key."""
        with self.lock:
            n = self.written.get(key, 0)
            b = self.seen.get(key, bytearray())[:n]
            return n, len(b) - b.count(0)

    def lost_runs(self, key):
        """Every run of lost sequence numbers of key: [(first, last), ...]."""
        with self.lock:
            n = self.written.get(key, 0)
            b = self.seen.get(key, bytearray())
            runs, i = [], 0
            while i < n:
                if i >= len(b) or b[i] == 0:
                    j = i
                    while j + 1 < n and (j + 1 >= len(b) or b[j + 1] == 0):
                        j += 1
                    runs.append((i, j))
                    i = j + 1
                else:
                    i += 1
            return runs

    def quick(self):
        with self.lock:
            w = sum(self.written.values())
            d = sum(len(b) - b.count(0) for b in self.seen.values())
            return w, d


def _missing_ranges(b, n, most=5):
    out = []
    i = 0
    while i < n and len(out) < most:
        if i >= len(b) or b[i] == 0:
            j = i
            while j < n and (j >= len(b) or b[j] == 0):
                j += 1
            out.append(f"{i}..{j - 1}" if j - 1 > i else str(i))
            i = j
        else:
            i += 1
    return out


class Events:
    def __init__(self, t0):
        self.t0 = t0
        self.lock = threading.Lock()
        self.items = []
        self.counts = {}

    def add(self, kind, text="", verbose=False):
        with self.lock:
            self.counts[kind] = self.counts.get(kind, 0) + 1
            self.items.append((now() - self.t0[0], kind, text))
        if verbose:
            print(f"[{now() - self.t0[0]:7.1f}s] {kind} {text}", flush=True)


# --------------------------------------------------------------------------- writers


def make_line(key, seq):
    s = f"soak src={key} seq={seq} {FILLER}"
    return s + "x" * max(0, 120 - len(s))


class SoakWriter(threading.Thread):
    """Appends lines "soak src=KEY seq=N ..." to path at `rate` lines/s.

    rotate: None, "rename" (path -> path.K, new path; keeps `keep` old ones) or "copytruncate"
    (waits until the agent's input `ct_input` has read every line, copies to path.K, truncates),
    first at t0+first, then every `every` seconds. burst: (first, every, lines): before each burst
    the file is rotated by rename, then `lines` lines are written as fast as possible.
    life: stop writing after this many seconds.
    """

    def __init__(self, h, key, path, rate, rotate=None, first=0.0, every=0.0, keep=2,
                 ct_input=None, burst=None, life=None):
        super().__init__(daemon=True, name=f"writer-{key}")
        self.h = h
        self.key = key
        self.path = Path(path)
        self.rate = rate
        self.rotate = rotate
        self.next_rot = (h.t0[0] + first) if rotate else None
        self.every = every
        self.keep = keep
        self.ct_input = ct_input
        self.burst = burst
        self.next_burst = (h.t0[0] + burst[0]) if burst else None
        self.deadline = (now() + life) if life else None
        self.rotations = 0
        self.seq = 0
        self.error = None
        self.finished = threading.Event()

    def run(self):
        try:
            self._run()
        except BaseException as e:  # reported by the harness
            self.error = e
            self.h.events.add("writer-error", f"{self.key}: {e!r}", True)
        finally:
            self.finished.set()

    def _write(self, f, n):
        while n > 0:
            k = min(n, 2000)
            f.write("".join(make_line(self.key, self.seq + i) + "\n" for i in range(k)))
            f.flush()
            self.seq += k
            self.h.tracker.wrote("file/" + self.key, k)
            n -= k

    def _run(self):
        f = open(self.path, "a")
        start = now()
        done = 0
        try:
            while not self.h.stop_writing.is_set():
                t = now()
                if self.deadline and t >= self.deadline:
                    break
                if self.rate:
                    due = int((t - start) * self.rate) - done
                    if due > self.rate:  # more than 1 s behind (a copytruncate wait): skip ahead
                        start = t - done / self.rate
                        due = 0
                    if due > 0:
                        self._write(f, due)
                        done += due
                if self.next_rot and t >= self.next_rot:
                    f = self._rotate(f, self.rotate)
                    self.next_rot += self.every
                if self.next_burst and t >= self.next_burst:
                    f = self._rotate(f, "rename")
                    self._write(f, self.burst[2])
                    self.h.events.add("burst", f"{self.key}: {self.burst[2]} lines")
                    self.next_burst += self.burst[1]
                self.h.stop_writing.wait(0.1)
        finally:
            f.close()

    def _rotate(self, f, kind):
        k = self.rotations + 1
        rotated = self.path.with_name(f"{self.path.name}.{k}")
        if kind == "rename":
            f.close()
            os.rename(self.path, rotated)
            f = open(self.path, "a")
        else:
            f.flush()
            if not self._caught_up(timeout=120):
                self.h.events.add("copytruncate-unread",
                                  f"{self.key}: agent had not read all {self.seq} lines in 120 s",
                                  True)
            with open(self.path, "rb") as src, open(rotated, "wb") as dst:
                while True:
                    chunk = src.read(1 << 20)
                    if not chunk:
                        break
                    dst.write(chunk)
            os.truncate(self.path, 0)  # f is O_APPEND: the next write lands at 0
        self.rotations = k
        self.h.events.add(kind, self.key)
        old = self.path.with_name(f"{self.path.name}.{k - self.keep}")
        if k > self.keep and old.exists():
            old.unlink()
            self.h.events.add("delete-rotated", old.name)
        return f

    def _caught_up(self, timeout):
        """Waits until the agent's input ct_input counted every line written (bounded)."""
        deadline = now() + timeout
        while now() < deadline and not self.h.abort.is_set():
            try:
                v = ag.metric_sum(self.h.metrics(), "log_capturer_input_lines_total",
                                  input=self.ct_input)
            except (OSError, ValueError):
                v = None
            if v is not None and v >= self.seq:
                return True
            time.sleep(0.05)
        return False


class Churn(threading.Thread):
    """A new file every `every` s, written at `rate` lines/s for `life` s, deleted `keep` s
    after its writer stopped."""

    def __init__(self, h, logdir, every, life, rate, keep):
        super().__init__(daemon=True, name="churn")
        self.h = h
        self.logdir = logdir
        self.every = every
        self.life = life
        self.rate = rate
        self.keep = keep
        self.writers = []
        self.error = None

    def run(self):
        try:
            self._run()
        except BaseException as e:
            self.error = e
            self.h.events.add("writer-error", f"churn: {e!r}", True)

    def _run(self):
        n = 0
        next_new = now()
        pending = []  # (delete_at, writer)
        while not self.h.stop_writing.is_set():
            t = now()
            if t >= next_new:
                key = f"churn{n}"
                w = SoakWriter(self.h, key, self.logdir / f"churn-{n}.log", self.rate,
                               life=self.life)
                w.start()
                self.writers.append(w)
                pending.append(w)
                self.h.events.add("churn-new", key)
                n += 1
                next_new += self.every
            for w in list(pending):
                if w.finished.is_set():
                    if not hasattr(w, "delete_at"):
                        w.delete_at = t + self.keep
                    elif t >= w.delete_at:
                        w.path.unlink(missing_ok=True)
                        pending.remove(w)
                        self.h.events.add("churn-delete", w.key)
            self.h.stop_writing.wait(0.2)
        for w in self.writers:
            w.join(10)


# --------------------------------------------------------------------------- collectors


def group_of(labels):
    """The input group of a delivered record: its job label (soak: the file inputs)."""
    job = (labels or {}).get("job", "soak")
    return "file" if job == "soak" else job


class FileCollector:
    """Reads the file output's new JSON lines into the tracker."""

    def __init__(self, path, tracker):
        self.path = path
        self.tracker = tracker
        self.off = 0
        self.rest = b""
        self.bad = 0
        self.lock = threading.Lock()  # one poll at a time (LokiCollector says why)

    def poll(self):
        with self.lock:
            return self._poll()

    def _poll(self):
        try:
            with open(self.path, "rb") as f:
                f.seek(self.off)
                data = f.read(64 << 20)
        except FileNotFoundError:
            return 0
        self.off += len(data)
        data = self.rest + data
        lines = data.split(b"\n")
        self.rest = lines.pop()
        for raw in lines:
            try:
                rec = json.loads(raw)
                self.tracker.delivered(rec["line"], group_of(rec.get("labels")))
            except (ValueError, KeyError, TypeError):
                self.bad += 1
        return len(lines)


class LokiCollector:
    """Pages the fake Loki's recorded entries (GET /fake/entries) into the tracker."""

    def __init__(self, port, tracker):
        self.port = port
        self.tracker = tracker
        self.off = 0
        self.bad = 0
        # One poll at a time: the collector thread and the drain (and, when that thread
        # outlives its join, the DLQ replay) poll too; two polls reading one offset would
        # each add their page's length to it and skip the entries in between.
        self.lock = threading.Lock()

    def poll(self):
        with self.lock:
            return self._poll()

    def _poll(self):
        n = 0
        while True:
            st, body, _ = ag.http_get(self.port, f"/fake/entries?offset={self.off}&limit=20000",
                                      timeout=30)
            if st != 200:
                raise OSError(f"fake loki /fake/entries answered {st}")
            ents = json.loads(body)
            for e in ents:
                self.tracker.delivered(e.get("line", ""), group_of(e.get("labels")), e.get("ts"))
            self.off += len(ents)
            n += len(ents)
            if len(ents) < 20000:
                return n


def http_post_json(port, path, obj, timeout=5):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=json.dumps(obj).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.status, r.read()


# --------------------------------------------------------------------------- /proc sampling


def fd_kind(link, tailed_roots):
    """tailed (a log file under one of tailed_roots), file, socket, pipe or anon (epoll,
    eventfd, inotify, timerfd...)."""
    if link.startswith("socket:"):
        return "socket"
    if link.startswith("pipe:"):
        return "pipe"
    if link.startswith("anon_inode:"):
        return "anon"
    if any(link.startswith(r) for r in tailed_roots):
        return "tailed"
    return "file"


FD_KINDS = ("tailed", "file", "socket", "pipe", "anon")


def proc_sample(pid, loki_port=None, tailed_roots=(), kinds=None):
    """fds, threads, VmRSS (KiB) and FDs that are TCP connections to loki_port; `kinds`, a
    dict, receives the FD count per fd_kind."""
    fd_dir = f"/proc/{pid}/fd"
    links = []
    for name in os.listdir(fd_dir):
        try:
            links.append(os.readlink(f"{fd_dir}/{name}"))
        except OSError:
            pass  # closed meanwhile
    threads = len(os.listdir(f"/proc/{pid}/task"))
    rss = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    loki = 0
    if loki_port:
        inodes = set()
        for table in ("tcp", "tcp6"):
            try:
                with open(f"/proc/{pid}/net/{table}") as f:
                    next(f)
                    for line in f:
                        p = line.split()
                        if int(p[2].rsplit(":", 1)[1], 16) == loki_port:
                            inodes.add(p[9])
            except OSError:
                pass
        loki = sum(1 for l in links if l.startswith("socket:[") and l[8:-1] in inodes)
    if kinds is not None:
        for k in FD_KINDS:
            kinds[k] = 0
        for l in links:
            kinds[fd_kind(l, tailed_roots)] += 1
    return len(links), threads, rss, loki


def binary_has_asan(path):
    """True when the binary was built with AddressSanitizer (its RSS then says nothing)."""
    try:
        with open(path, "rb") as f:
            return b"__asan_init" in f.read()
    except OSError:
        return False


def lsq_slope(xs, ys):
    n = len(xs)
    if n < 2:
        return 0.0
    mx = sum(xs) / n
    my = sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        return 0.0
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx


# --------------------------------------------------------------------------- the harness


class Harness:
    def __init__(self, args):
        self.args = args
        self.smoke = args.smoke
        self.dur = args.minutes * 60.0
        self.work = Path(args.workdir).resolve()
        self.logdir = self.work / "logs"
        self.t0 = [now()]
        self.events = Events(self.t0)
        self.tracker = Tracker()
        self.stop_writing = threading.Event()
        self.abort = threading.Event()
        self.samples = []
        self.fake_proc = None
        self.fake_port = None
        self.agent = None
        self.failures = []
        self.health_losses = []  # /health's loss reports, read before the agent stops
        self.phase = "ok"
        self.writers = []
        self.churn = None
        self.collector = None
        self.docker = args.docker
        self.engine = None
        self.containers = None
        self.groups = ["file"] + (["dapi", "dfile"] if self.docker else [])
        self.dlq_replay = None
        s = self.smoke or args.compressed
        # Schedules (seconds): smoke mode compresses them into one minute.
        self.rename_first, self.rename_every = (3.0, 20.0) if s else (5.0, 60.0)
        self.ct_first, self.ct_every = (22.0, 25.0) if s else (70.0, 150.0)
        self.burst = (12.0, 30.0, 5000) if s else (25.0, 60.0, 20000)
        self.churn_every, self.churn_life, self.churn_keep = (10.0, 20.0, 5.0) if s else \
            (20.0, 40.0, 15.0)
        # Fault cycle (loki): (start, end, mode, extra) within each cycle of fault_period s.
        self.fault_period = 60.0
        if args.all_faults:
            # outage: connections refused; 400: batches go to the dead-letter queue (replayed
            # after the run, `log_capturer dlq replay`); reset: RST without an answer.
            self.faults = [(3, 13, "outage", {}), (16, 24, "500", {}),
                           (27, 33, "429", {"retry_after": 1}), (36, 38, "400_too_old", {}),
                           (41, 48, "stall", {"stall_seconds": 60}), (51, 54, "reset", {})]
        else:
            self.faults = [(10, 30, "500", {}), (35, 43, "429", {"retry_after": 2}),
                           (48, 55, "stall", {"stall_seconds": 60})]
        if args.warmup is not None:
            self.warmup = args.warmup
        else:
            self.warmup = min(120.0, max(20.0, self.dur / 4))
            if args.output == "loki" and not s:
                self.warmup = max(self.warmup, self.fault_period)  # the first fault cycle
        self.interval = args.interval or (5.0 if s else 10.0)
        self.tailed_roots = (str(self.logdir) + "/",)
        self.asan = binary_has_asan(ag.LC_BIN)

    # ---- helpers

    def metrics(self):
        return self.agent.metrics()

    def elapsed(self):
        return now() - self.t0[0]

    # ---- setup

    def start_fake(self):
        import subprocess
        self.fake_port = ag.free_port()
        log = open(self.work / "fake_loki.log", "ab")
        self.fake_proc = subprocess.Popen(
            [sys.executable, str(FAKE_LOKI), "--port", str(self.fake_port)],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        log.close()
        ok = ag.wait_until(lambda: self._fake_ready(), 15, interval=0.1)
        if not ok:
            raise RuntimeError("fake loki did not become ready")

    def _fake_ready(self):
        if self.fake_proc.poll() is not None:
            raise RuntimeError(f"fake loki exited with {self.fake_proc.returncode}")
        try:
            return ag.http_get(self.fake_port, "/ready", timeout=1)[0] == 200
        except OSError:
            return False

    def config(self):
        main_input = {
            "type": "file", "name": "soak", "start_at": "beginning",
            "paths": [str(self.logdir / "w*.log"), str(self.logdir / "burst.log"),
                      str(self.logdir / "churn-*.log")],
            "labels": {"job": "soak"},
        }
        inputs = [main_input]
        for k in range(2):
            inputs.append({"type": "file", "name": f"ct{k}", "start_at": "beginning",
                           "paths": [str(self.logdir / f"ct{k}.log")],
                           "labels": {"job": "soak"}})
        if self.docker:
            common = {"start_at": "beginning", "max_age": "0", "socket": self.engine.sock}
            inputs.append({"type": "docker", "name": "dapi", "mode": "api", **common,
                           "labels": {"job": "dapi"}})
            inputs.append({"type": "docker", "name": "dfile", "mode": "file",
                           "root": self.engine.data_root, **common,
                           "labels": {"job": "dfile"}})
        if self.args.output == "loki":
            out = {
                "type": "loki", "name": "loki", "url": f"http://127.0.0.1:{self.fake_port}",
                "encoding": "protobuf", "max_inflight": 4, "timeout": "5s",
                "retry": {"initial": "500ms", "max": "5s", "max_batches": 1000},
                "breaker": {"failures": 5, "cooldown": "5s"},
            }
        else:
            out = {"type": "file", "name": "out", "path": str(self.work / "out.ndjson")}
        # Production defaults otherwise (agent.py's are tuned for fast tests).
        # health_recent_losses at its most: /health names every loss the log's rate limit
        # left out (read before the agent stops: health_losses)
        extra = {"checkpoint_interval": "1s", "batch_wait": "1s", "log_level": "info",
                 "shutdown_timeout": "30s", "health_recent_losses": 1024}
        if self.args.max_pending:
            extra["max_pending_bytes"] = self.args.max_pending
        return inputs, [out], extra

    # ---- threads

    def sampler(self, f, w):
        next_t = self.t0[0]
        while not self.abort.is_set():
            self.take_sample(w, f)
            next_t += self.interval
            self.abort.wait(max(0.0, next_t - now()))

    def take_sample(self, w, f, tag=None):
        if not self.agent.running():
            return
        pid = self.agent.pid
        kinds = {}
        try:
            fds, threads, rss, loki = proc_sample(pid, self.fake_port, self.tailed_roots, kinds)
            m = self.metrics()
        except (OSError, AssertionError, ValueError) as e:
            self.events.add("sample-error", repr(e), True)
            return
        open_files = ag.metric_sum(m, "log_capturer_file_open_files") or 0
        api_streams = int(ag.metric_sum(m, "log_capturer_docker_api_streams_open") or 0)
        written, delivered = self.tracker.quick()
        row = {
            "t_s": round(self.elapsed(), 1),
            "phase": tag or ("write" if not self.stop_writing.is_set() else "drain"),
            "fault": self.phase,
            "fds": fds, "threads": threads, "rss_kib": rss,
            "open_files": int(open_files), "loki_conns": loki,
            # what must stay flat while files, containers and connections come and go
            "fds_core": fds - kinds["tailed"] - loki - api_streams,
            **{f"fd_{k}": kinds[k] for k in FD_KINDS},
            "docker_streams": api_streams,
            "docker_missed": int(ag.metric_sum(m, "log_capturer_docker_missed_containers_total",
                                               input="dapi") or 0),
            "docker_api_gaps": int(ag.metric_sum(m, "log_capturer_docker_api_gaps_total") or 0),
            "docker_lost_gens": int(ag.metric_sum(m, "log_capturer_docker_lost_generations_total")
                                    or 0),
            "ckpt_entries": int(ag.metric_sum(m, "log_capturer_checkpoint_entries") or 0),
            "meta_entries": int(ag.metric_sum(m, "log_capturer_docker_meta_entries") or 0),
            "dlq_batches": int(ag.metric_sum(m, "log_capturer_loki_dead_lettered_batches_total")
                               or 0),
            "m_open_fds": int(ag.metric_sum(m, "process_open_fds") or 0),
            "m_rss_kib": int((ag.metric_sum(m, "process_resident_memory_bytes") or 0) // 1024),
            "m_threads": int(ag.metric_sum(m, "log_capturer_threads") or 0),
            "input_lines": int(ag.metric_sum(m, "log_capturer_input_lines_total") or 0),
            "output_records": int(ag.metric_sum(m, "log_capturer_output_records_total") or 0),
            "pending_bytes": int(ag.metric_sum(m, "log_capturer_output_pending_bytes") or 0),
            "written": written, "delivered": delivered,
        }
        self.samples.append(row)
        w.writerow(row)
        f.flush()
        if self.args.verbose:
            print(f"[{row['t_s']:7.1f}s] fds={fds} core={row['fds_core']} thr={threads} "
                  f"rss={rss / 1024:.1f}MiB files={row['open_files']} written={written} "
                  f"delivered={delivered} fault={self.phase}", flush=True)

    def collector_loop(self):
        while not self.abort.is_set():
            try:
                self.collector.poll()
            except http.client.HTTPException as e:
                # a page cut short (seen once in an hour, IncompleteRead): the offset did
                # not move, the next poll (and the drain's) reads it again; nothing is lost
                self.events.add("collect-retry", repr(e))
            except (OSError, ValueError) as e:
                if self.phase == "outage":  # the fake is down on purpose
                    self.events.add("collect-retry", repr(e))
                else:
                    self.events.add("collect-error", repr(e), True)
            self.abort.wait(1.0)

    def fault_loop(self):
        """Cycles the fake Loki through its fault phases until writing stops."""
        while not self.stop_writing.is_set():
            t = self.elapsed() % self.fault_period
            want = ("ok", {})
            for a, b, mode, extra in self.faults:
                if a <= t < b:
                    want = (mode, extra)
            if want[0] != self.phase:
                try:
                    if want[0] == "outage":
                        a, b = next((a, b) for a, b, m, _ in self.faults if m == "outage")
                        http_post_json(self.fake_port, "/fake/mode", {"mode": "ok"})
                        http_post_json(self.fake_port, "/fake/outage", {"seconds": b - a})
                    else:
                        http_post_json(self.fake_port, "/fake/mode",
                                       {"mode": want[0], **want[1]})
                    self.phase = want[0]
                    self.events.add(f"fault-{want[0]}", "", self.args.verbose)
                except OSError as e:
                    if self.phase == "outage":  # still down: again in 0.25 s
                        self.events.add("fault-retry", repr(e))
                    else:
                        self.events.add("fault-error", repr(e), True)
            self.stop_writing.wait(0.25)
        deadline = now() + 60
        while self.phase != "ok" and now() < deadline:
            try:
                http_post_json(self.fake_port, "/fake/mode", {"mode": "ok"})
                self.phase = "ok"
            except OSError:  # an outage still running
                time.sleep(0.5)

    # ---- run

    def run(self):
        a = self.args
        if not ag.have_binary():
            print(f"soak: no agent binary at {ag.LC_BIN} (build it, or set LC_BIN)",
                  file=sys.stderr)
            return 2
        if a.output == "loki":
            opts = ag.run_cli("options").stdout
            if not re.search(r"Output `loki`", opts):
                print("soak: this binary has no loki output (log_capturer options)",
                      file=sys.stderr)
                return 2
        import shutil
        if self.work.exists():
            shutil.rmtree(self.work)
        self.logdir.mkdir(parents=True)
        threads = []
        csv_f = None
        try:
            if a.output == "loki":
                self.start_fake()
                self.collector = LokiCollector(self.fake_port, self.tracker)
            else:
                self.collector = FileCollector(self.work / "out.ndjson", self.tracker)
            if self.docker:
                sys.path.insert(0, str(REPO / "tests" / "integration"))
                import docker_harness as dh
                dh.sweep_stale()
                self.engine = dh.DockerEngine()
                secs = self.engine.start()
                print(f"soak: private docker engine up in {secs:.1f} s ({self.engine.root})",
                      flush=True)
                self.tailed_roots += (self.engine.data_root + "/",)
            inputs, outputs, extra = self.config()
            self.agent = ag.Agent(self.work, inputs, outputs, extra=extra, name="agent")
            self.agent.start(timeout=20)
            print(f"soak: agent pid {self.agent.pid}, output {a.output}, {a.minutes:g} min"
                  f"{' (smoke)' if self.smoke else ''}, warm-up {self.warmup:.0f} s, "
                  f"sampling every {self.interval:.0f} s -> {self.work / 'samples.csv'}",
                  flush=True)
            self.t0[0] = now()
            rate = a.rate
            for k in range(a.writers - 2):
                self.writers.append(SoakWriter(
                    self, f"w{k}", self.logdir / f"w{k}.log", rate, rotate="rename",
                    first=self.rename_first + k * (self.rename_every / max(1, a.writers)),
                    every=self.rename_every))
            for k in range(2):
                self.writers.append(SoakWriter(
                    self, f"ct{k}", self.logdir / f"ct{k}.log", rate, rotate="copytruncate",
                    first=self.ct_first + k * 10.0, every=self.ct_every, ct_input=f"ct{k}"))
            self.writers.append(SoakWriter(self, "burst", self.logdir / "burst.log", 0,
                                           burst=self.burst))
            self.churn = Churn(self, self.logdir, self.churn_every, self.churn_life, 20.0,
                               self.churn_keep)
            csv_f = open(self.work / "samples.csv", "w", newline="")
            fields = ["t_s", "phase", "fault", "fds", "threads", "rss_kib", "open_files",
                      "loki_conns", "fds_core"] + [f"fd_{k}" for k in FD_KINDS] + [
                      "docker_streams", "docker_missed", "docker_api_gaps", "docker_lost_gens",
                      "ckpt_entries", "meta_entries", "dlq_batches", "m_open_fds", "m_rss_kib",
                      "m_threads", "input_lines", "output_records", "pending_bytes", "written", "delivered"]
            cw = csv.DictWriter(csv_f, fieldnames=fields)
            cw.writeheader()
            threads = [threading.Thread(target=self.sampler, args=(csv_f, cw), daemon=True),
                       threading.Thread(target=self.collector_loop, daemon=True)]
            if a.output == "loki":
                threads.append(threading.Thread(target=self.fault_loop, daemon=True))
            for t in threads:
                t.start()
            for w in self.writers:
                w.start()
            self.churn.start()
            if self.docker:
                from containers import ContainerChurn
                self.containers = ContainerChurn(self, self.engine, a.slots, a.container_lines,
                                                 a.container_rate, ["dapi", "dfile"])
                self.containers.start()

            # Write phase.
            end = self.t0[0] + self.dur
            while now() < end:
                if not self.agent.running():
                    self.failures.append(f"agent exited early with {self.agent.proc.returncode}")
                    break
                time.sleep(min(1.0, max(0.0, end - now())))
            self.write_end = self.elapsed()
            self.stop_writing.set()
            for w in self.writers:
                w.join(150)
            self.churn.join(30)
            extra_w = []
            if self.containers:
                self.containers.join(180)
                if self.containers.is_alive():
                    self.failures.append("container churn did not finish within 180 s")
                extra_w = [self.containers]
            for w in self.writers + self.churn.writers + extra_w:
                if w.error:
                    self.failures.append(f"writer {w.key} failed: {w.error!r}")

            # Drain: wait until everything written arrived (bounded).
            drain_s = a.drain if a.drain is not None else (120.0 if a.output == "loki" else 60.0)
            t_drain = now()
            keys = list(self.tracker.written)
            quiet = None  # (since, output_records) while nothing is pending
            while now() - t_drain < drain_s and self.agent.running():
                self.collector.poll()
                if all(self.tracker.delivered_through(k, self.tracker.written_of(k))
                       for k in keys):
                    break
                # Lines in the dead-letter queue arrive only with the replay after the run:
                # done when nothing is pending and no record went out for 10 s.
                try:
                    m = self.metrics()
                    pend = ag.metric_sum(m, "log_capturer_output_pending_bytes") or 0
                    recs = ag.metric_sum(m, "log_capturer_output_records_total") or 0
                    if pend or quiet is None or quiet[1] != recs:
                        quiet = (now(), recs)
                    elif now() - quiet[0] >= 10 and now() - t_drain >= 20:
                        self.events.add("drain-quiet", "nothing pending for 10 s")
                        break
                except (OSError, AssertionError, ValueError):
                    pass
                time.sleep(0.5)
            self.drain_s = now() - t_drain
            self.take_sample(cw, csv_f, tag="final")
        except KeyboardInterrupt:
            self.failures.append("interrupted")
        except (RuntimeError, AssertionError, OSError) as e:
            self.failures.append(f"harness error: {e}")
        finally:
            self.stop_writing.set()
            self.abort.set()
            for t in threads:
                t.join(30)
            self.rc_agent = None
            if self.agent and self.agent.proc:
                if self.agent.running():
                    self.health_losses = self.read_health_losses()
                    try:
                        self.rc_agent = self.agent.stop(timeout=60)
                        if self.rc_agent != 0:
                            self.failures.append(f"agent exited {self.rc_agent} on SIGTERM")
                    except AssertionError as e:
                        self.failures.append(str(e)[:2000])
                else:
                    self.agent.cleanup()
                    try:
                        self.agent.check_sanitizer()
                    except AssertionError as e:
                        self.failures.append(str(e)[:2000])
            if self.collector:
                try:
                    self.collector.poll()  # what a clean shutdown flushed
                except OSError:
                    pass
            if self.fake_proc and self.agent and not self.agent.running():
                self.replay_dlq()
            self.fake_stats = None
            if self.fake_proc:
                try:
                    st, body, _ = ag.http_get(self.fake_port, "/fake/stats")
                    self.fake_stats = json.loads(body)
                except (OSError, ValueError):
                    pass
                self.fake_proc.send_signal(signal.SIGINT)
                try:
                    self.fake_proc.wait(10)
                except Exception:  # noqa: BLE001
                    self.fake_proc.kill()
                    self.fake_proc.wait(10)
            if csv_f:
                csv_f.close()
            if self.engine:
                self.engine.close()
        return self.report()

    def read_health_losses(self):
        """The loss reports /health lists (core/losses.h) as warning records like the log's:
        every loss of this agent process since its start, names the log's rate limit left out
        included (health_recent_losses: 1024). [] when /health cannot say."""
        try:
            st, body, _ = ag.http_get(self.agent.port, "/health")
            recent = json.loads(body).get("losses", {}).get("recent", [])
        except (OSError, ValueError, AttributeError):
            return []
        return [{"level": "warn", "component": e.get("component", ""), "msg": e.get("msg", ""),
                 "health": True} for e in recent]

    def replay_dlq(self):
        """Re-sends the dead-letter queue (the batches Loki answered 400) to the fake, now
        answering 204, and collects them: a line in the DLQ is stored, not lost."""
        try:
            http_post_json(self.fake_port, "/fake/mode", {"mode": "ok"})
            st, body, _ = ag.http_get(self.fake_port, "/fake/requests", timeout=30)
            (self.work / "fake_requests.json").write_bytes(body)  # for a post-mortem
            dlq = self.agent.state_dir / "dlq"
            if dlq.exists():
                import shutil
                shutil.copytree(dlq, self.work / "dlq-before-replay")
            p = ag.run_cli("dlq", "replay", "-c", str(self.agent.cfg_path), timeout=120)
            self.dlq_replay = (p.returncode, (p.stdout + p.stderr).strip().splitlines()[-3:])
            if p.returncode != 0:
                self.failures.append(f"dlq replay exited {p.returncode}: {p.stderr[-500:]}")
            self.collector.poll()
        except (OSError, AssertionError, ValueError) as e:
            self.failures.append(f"dlq replay: {e!r}")

    # ---- verdict

    def report(self):
        a = self.args
        lines = []
        out = lines.append
        post = [s for s in self.samples
                if s["phase"] == "write" and s["t_s"] >= self.warmup]
        if len(post) < 3:
            post = [s for s in self.samples if s["phase"] == "write"][-3:]
        checks = []  # (name, baseline, final, max, slope, limit text, why it failed or "")

        def series(col, scale=1.0):
            return [s["t_s"] / 60.0 for s in post], [s[col] * scale for s in post]

        def check(name, col, slope_max, const, scale=1.0, gate_slope=True, unit=""):
            xs, ys = series(col, scale)
            if not ys:
                checks.append((name, "-", "-", "-", "-", "", "no samples"))
                return
            base = statistics.median(ys[:3])
            final = statistics.median(ys[-3:])
            slope = lsq_slope(xs, ys)
            why = []
            lim = []
            if slope_max is not None:
                lim.append(f"slope<={slope_max:g}{unit}/min" + ("" if gate_slope and not
                                                                self.smoke else " (info)"))
                if gate_slope and not self.smoke and slope > slope_max:
                    why.append(f"slope {slope:.2f}{unit}/min > {slope_max:g}")
            if const is not None:
                lim.append(f"final<=base+{const:g}{unit}")
                if final > base + const:
                    why.append(f"final {final:.2f} > baseline {base:.2f} + {const:g}")
            checks.append((name, base, final, max(ys), slope, ", ".join(lim), "; ".join(why)))

        check("threads", "threads", a.max_slope, 2)
        check("fds_core", "fds_core", a.max_slope, 4)
        for k in FD_KINDS:  # by kind: printed, gated through fds_core and fds_total
            check(f"fd_{k}", f"fd_{k}", a.max_slope, None, gate_slope=False)
        check("fds_total", "fds", None, 16)
        check("open_files", "open_files", None, 12)
        rss_gate = not a.no_rss_gate and not self.asan
        check("rss_mib", "rss_kib", a.rss_slope, a.rss_growth if rss_gate else None,
              scale=1 / 1024, unit="MiB", gate_slope=rss_gate)

        written, uniq, lost, dup, ranges = self.tracker.totals()
        last = self.samples[-1] if self.samples else {}
        missed = last.get("docker_missed", 0)
        excused = self.excuse_missed(ranges, missed)
        log_recs = (self.agent.log_records() if self.agent else []) + self.health_losses
        cids = self.containers.cids if self.containers else {}
        gap_keys, gap_lines, gaps_logged, gaps_suppressed = excuse_api_gaps(
            self.tracker, {k: v for k, v in ranges.items() if k not in excused}, log_recs, cids)
        unnamed, unnamed_n, sup = excuse_unnamed(
            {k: v for k, v in ranges.items() if k not in excused and k not in gap_keys},
            log_recs, cids, missed + last.get("docker_api_gaps", 0))
        unnamed_lines = sum(hi - lo + 1 for k in unnamed for lo, hi in self.tracker.lost_runs(k))
        out("")
        out(f"=== soak summary: output={a.output} minutes={a.minutes:g}"
            f"{' smoke' if self.smoke else ''} samples={len(self.samples)} "
            f"(after warm-up {self.warmup:.0f}s: {len(post)})")
        out(f"{'metric':<12} {'baseline':>10} {'final':>10} {'max':>10} {'slope/min':>10}  "
            f"{'limit':<40} result")
        for name, base, final, mx, slope, lim, why in checks:
            def fmt(v):
                return f"{v:10.2f}" if isinstance(v, float) else f"{v!s:>10}"
            out(f"{name:<12} {fmt(base)} {fmt(final)} {fmt(mx)} {fmt(slope)}  {lim:<40} "
                f"{'FAIL' if why else 'ok'}")
        out(f"delivery: written={written} delivered_unique={uniq} lost={lost} duplicates={dup}"
            f" unparsed={self.tracker.unknown + getattr(self.collector, 'bad', 0)}"
            f" drain={getattr(self, 'drain_s', 0):.1f}s")
        out(f"{'input':<8} {'written':>10} {'delivered':>10} {'lost':>8} {'duplicated':>10}")
        for g in self.groups:
            gw, gu, gl, gd, _ = self.tracker.totals(g)
            out(f"{g:<8} {gw:>10} {gu:>10} {gl:>8} {gd:>10}")
        if self.docker:
            out(f"docker: containers {self.containers.summary() if self.containers else '-'}; "
                f"api missed_containers_total={missed} (lines of "
                f"{len(excused)} wholly unread containers excused: {sorted(excused)[:5]}); "
                f"lost_generations_total={last.get('docker_lost_gens', 0)}; "
                f"api_gaps_total={last.get('docker_api_gaps', 0)} (logged {gaps_logged}"
                f"{', some suppressed' if gaps_suppressed else ''}; {gap_lines} lost lines of "
                f"{len(gap_keys)} streams inside them, or in the unread tails of "
                f"{len(api_tails(log_recs))} containers "
                f"said lost, excused); {unnamed_lines} lost lines of {unnamed_n} containers "
                f"named in no warning, {sup} loss warnings rate-limited, "
                f"{len(self.health_losses)} losses listed in /health"
                f"{' (excused: counted, their names left out of the log)' if unnamed else ''}")
        if self.dlq_replay is not None or last.get("dlq_batches"):
            out(f"dlq: dead_lettered_batches={last.get('dlq_batches', 0)} replay="
                f"{self.dlq_replay}")
        if not rss_gate:
            out("rss: not gated (" + ("sanitizer build: ASan's quarantine holds freed memory"
                                     if self.asan else "--no-rss-gate") + ")")
        for key, r in sorted(ranges.items()):
            if key in excused or key in gap_keys or key in unnamed:
                continue
            out(f"  lost in {key} (of {self.tracker.written.get(key)}): {', '.join(r)}")
        ev = ", ".join(f"{k}={v}" for k, v in sorted(self.events.counts.items()))
        out(f"events: {ev}")
        if self.fake_stats:
            fs = self.fake_stats
            out(f"fake loki: requests={fs.get('requests')} by_status="
                f"{fs.get('requests_by_status')} connections={fs.get('connections')} "
                f"max_open={fs.get('max_open_connections')} decode_errors="
                f"{fs.get('decode_errors')}")
        if self.samples:
            last = self.samples[-1]
            out(f"agent: input_lines={last['input_lines']} output_records="
                f"{last['output_records']} exit={self.rc_agent}")
        fails = list(self.failures)
        fails += [f"{c[0]} grew: {c[6]}" for c in checks if c[6]]
        lost -= sum(self.tracker.written.get(k, 0) for k in excused)
        lost -= gap_lines
        lost -= unnamed_lines
        if lost:
            fails.append(f"{lost} lines lost")
        if self.events.counts.get("copytruncate-unread"):
            fails.append("agent did not catch up before a copytruncate within 120 s")
        for f in fails:
            out(f"FAIL: {f}")
        out(f"soak: {'PASS' if not fails else 'FAIL'} (csv: {self.work / 'samples.csv'})")
        text = "\n".join(lines) + "\n"
        print(text, end="")
        (self.work / "summary.txt").write_text(text)
        return 0 if not fails else 1


def excuse_api_gaps(tracker, ranges, log_records, cids, group="dapi"):
    """Api mode keys (of `group`) whose lost lines all lie in gaps the agent counted and
    logged, or in the unread tail of a removed container it counted and named as losing lines
    (api_gap_excused); cids maps a container name to its id. Returns (excused keys, lines
    excused, gaps logged, suppressed)."""
    gaps, suppressed = api_gaps(log_records)
    ngaps = sum(len(v) for v in gaps.values())
    tails = api_tails(log_records)
    # A tail warning says "its lines after FROM, up to [the log's last line, TO], are lost":
    # a range like a gap's, for every run of the container (one restarted while the agent
    # was behind loses the end of a run before its last one too)
    for cid, rng in api_tail_ranges(log_records).items():
        gaps.setdefault(cid, []).extend(rng)
    runs = {}  # name -> its last run: only that run's tail is the removed container's
    for key in list(tracker.written):
        name, _, rest = key[len(group) + 1:].partition(".r")
        if key.startswith(group + "/") and rest.split(".")[0].isdigit():
            runs[name] = max(runs.get(name, 0), int(rest.split(".")[0]))
    keys = set()
    for key in ranges:
        if not key.startswith(group + "/"):
            continue
        name, _, rest = key[len(group) + 1:].partition(".r")
        cid = cids.get(name, "")[:12]
        last_run = rest.split(".")[0] == str(runs.get(name))
        if api_gap_excused(tracker, key, gaps.get(cid, []),
                           tails.get(cid, NO_TAIL) if last_run else NO_TAIL):
            keys.add(key)
    lines = sum(hi - lo + 1 for k in keys for lo, hi in tracker.lost_runs(k))
    return keys, lines, ngaps, suppressed


# the loss warnings (a removed container's tail, a gap, a container missed; level warn: an info
# line says how many lines a recovery read), which the agent's log rate-limits (5 per message
# in 10 s; then one line with the count it left out)
LOSS_WORDS = ("removed before", "removed while", "lost in rotation", "its log file was removed")


def suppressed_losses(log_records):
    """How many loss warnings the agent's log left out (rate-limited): counted in the agent's
    metrics, not named."""
    n = 0
    for r in log_records:
        msg = r.get("msg", "")
        if r.get("suppressed") and r.get("level") == "warn" and \
                re.match(r"container [0-9a-f]{12}: ", msg) and any(w in msg for w in LOSS_WORDS):
            n += int(r["suppressed"])
    return n


def excuse_unnamed(ranges, log_records, cids, counted, group="dapi"):
    """Api mode keys still unexcused whose container the agent's log names in no warning at
    all, when no more such containers than the loss warnings it rate-limited and than its
    counters hold beyond the containers named (counted: missed_containers_total +
    api_gaps_total): counted, their names left out of the log (nothing silent; the rule: every
    loss counted, logged rate-limited). Returns (keys, containers, warnings suppressed)."""
    sup = suppressed_losses(log_records)
    if not sup:
        return set(), 0, 0
    named = {m.group(1) for r in log_records
             for m in [re.match(r"container ([0-9a-f]{12}): ", r.get("msg", ""))] if m}
    named_lost = {m.group(1) for r in log_records
                  for m in [re.match(r"container ([0-9a-f]{12}): ", r.get("msg", ""))]
                  if m and r.get("level") == "warn" and any(w in r["msg"] for w in LOSS_WORDS)}
    by_cid = {}
    for key in ranges:
        if key.startswith(group + "/"):
            cid = cids.get(key[len(group) + 1:].split(".r")[0], "")[:12]
            if cid and cid not in named:
                by_cid.setdefault(cid, set()).add(key)
    if not by_cid or len(by_cid) > min(sup, counted - len(named_lost)):
        return set(), len(by_cid), sup
    return {k for keys in by_cid.values() for k in keys}, len(by_cid), sup


def _excuse_missed(self, ranges, missed):
    """Api mode: keys of containers of which not one line arrived, when the agent counted at
    least that many containers as missed (removed before their log could be read). The lost
    tail of a container the agent counted and named (its unread last lines when it was removed
    while the agent was behind) is excused by excuse_api_gaps."""
    if not missed:
        return set()
    by_name = {}
    for key in self.tracker.written:
        if key.startswith("dapi/"):
            by_name.setdefault(key[5:].split(".r")[0], []).append(key)
    wholly = [keys for keys in by_name.values()
              if all(k in ranges and self.tracker.totals_key(k)[1] == 0 for k in keys)]
    if len(wholly) > missed:
        return set()
    return {k for keys in wholly for k in keys}


Harness.excuse_missed = _excuse_missed


def main(argv=None):
    ap = argparse.ArgumentParser(description="log_capturer resource-stability soak")
    ap.add_argument("--minutes", type=float, default=10.0, help="write phase (default 10)")
    ap.add_argument("--output", choices=("file", "loki"), default="file")
    ap.add_argument("--smoke", action="store_true",
                    help="compressed schedules; gate on bounds and delivery only, not slopes")
    ap.add_argument("--workdir", default=str(REPO / "build" / "soak"))
    ap.add_argument("--writers", type=int, default=8, help="continuous writers (>= 3)")
    ap.add_argument("--rate", type=float, default=100.0, help="lines/s per writer")
    ap.add_argument("--interval", type=float, default=None, help="sampling period, s")
    ap.add_argument("--warmup", type=float, default=None, help="s excluded from slopes")
    ap.add_argument("--drain", type=float, default=None, help="s to wait for delivery")
    ap.add_argument("--max-slope", type=float, default=0.1, help="threads/FDs per minute")
    ap.add_argument("--rss-slope", type=float, default=1.0, help="MiB per minute")
    ap.add_argument("--rss-growth", type=float, default=32.0, help="MiB, final over baseline")
    ap.add_argument("--no-rss-gate", action="store_true",
                    help="report RSS but do not fail on it (automatic for ASan builds)")
    ap.add_argument("--profile", choices=("ci", "long"),
                    help="everything at once (files, docker api+file modes with container "
                         "churn, every Loki fault): ci = 3 minutes, long = 60 minutes")
    ap.add_argument("--docker", action="store_true",
                    help="add container churn on a private engine, read by two docker inputs")
    ap.add_argument("--all-faults", action="store_true",
                    help="Loki fault cycle with outage, 500, 429, 400 (DLQ), stall, reset")
    ap.add_argument("--slots", type=int, default=8, help="containers alive at once")
    ap.add_argument("--container-lines", type=int, default=200, help="lines per stream per run")
    ap.add_argument("--container-rate", type=int, default=40, help="lines/s per stream")
    ap.add_argument("--max-pending", help="the agent's max_pending_bytes (default: its own)")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    args.compressed = False
    if args.profile:
        args.docker = args.all_faults = True
        args.output = "loki"
        if args.profile == "ci":
            args.minutes = 3.0
            args.compressed = True  # the smoke schedules, slopes gated
            if args.warmup is None:
                args.warmup = 90.0
            # 90 s of samples after 1.5 fault cycles: with 4 MiB pending the allocator is near
            # its high-water mark by then (16 MiB takes three cycles), and one FD more or less
            # (a pooled connection) reads as 0.7/min.
            if args.max_pending is None:
                args.max_pending = "4MiB"
            if args.max_slope == 0.1:
                args.max_slope = 0.8
            # Measured 1.1-1.9 MiB/min in the last 90 s of 3 minutes, still slowing down
            # (the allocator's warm-up under the fault cycle): 3 minutes cannot tell that from
            # a small leak, so ci catches gross ones; long gates 1 MiB/min.
            if args.rss_slope == 1.0:
                args.rss_slope = 4.0
        else:
            args.minutes = 60.0
    if args.docker and args.output != "loki":
        ap.error("--docker needs --output loki")
    if args.writers < 3 or args.minutes <= 0:
        ap.error("--writers must be >= 3 and --minutes > 0")
    return Harness(args).run()


if __name__ == "__main__":
    sys.exit(main())
