# SPDX-License-Identifier: MIT
"""agent.py: helpers to run the real log_capturer binary in integration tests.

Start the agent with a config dict (written as YAML), wait for /ready, read
/metrics into a dict, stop it with SIGTERM or kill -9, read the file output's
JSON lines, append lines to log files at a controlled rate, and wait for
conditions with a deadline. Every wait here is bounded in time.

Environment:
  LC_BIN              the binary (default <repo>/build/log_capturer)
  LC_TIMEOUT_SCALE    multiplies every timeout (ASan/UBSan runs are slower)
  LC_WRAPPER          a command the agent runs under, e.g. "valgrind --leak-check=full
                      --error-exitcode=99" (tests/run-all.sh's valgrind step); its
                      report fails the test like a sanitizer's
"""

import errno
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LC_BIN = os.environ.get("LC_BIN", str(REPO / "build" / "log_capturer"))
TIMEOUT_SCALE = float(os.environ.get("LC_TIMEOUT_SCALE", "1"))
WRAPPER = shlex.split(os.environ.get("LC_WRAPPER", ""))

# What a sanitizer prints when it finds something; any of these fails a test.
SANITIZER_MARKERS = (
    "ERROR: AddressSanitizer",
    "ERROR: LeakSanitizer",
    "SUMMARY: UndefinedBehaviorSanitizer",
    "runtime error:",
    "WARNING: ThreadSanitizer",
    "definitely lost: ",  # valgrind (LC_WRAPPER): a leak summary line says "definitely lost: 0 bytes"
)


def scaled(seconds):
    """A timeout in seconds, stretched by LC_TIMEOUT_SCALE."""
    return seconds * TIMEOUT_SCALE


def bin_path():
    return LC_BIN


def have_binary():
    return os.access(LC_BIN, os.X_OK)


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(pred, timeout, interval=0.05):
    """Polls pred() until it returns something truthy or `timeout` (scaled)
    seconds pass. Returns the last value of pred() (falsy on timeout)."""
    deadline = time.monotonic() + scaled(timeout)
    while True:
        v = pred()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(interval)


# ---------------------------------------------------------------------------
# YAML, written by hand (no dependency): block mappings and sequences,
# scalars plain when unambiguous and JSON-quoted otherwise (a JSON string is a
# valid YAML double-quoted scalar).

_PLAIN = re.compile(r"[A-Za-z0-9_/.][A-Za-z0-9_./:+=-]*")
_YAML_WORDS = {"true", "false", "yes", "no", "on", "off", "null", "~", "y", "n"}


def _scalar(v):
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    s = str(v)
    if _PLAIN.fullmatch(s) and s.lower() not in _YAML_WORDS:
        return s
    return json.dumps(s)


def _dump(v, indent, out):
    pad = "  " * indent
    if isinstance(v, dict):
        if not v:
            out.append(pad + "{}")
        for k, item in v.items():
            if isinstance(item, (dict, list)) and item:
                out.append(f"{pad}{_scalar(k)}:")
                _dump(item, indent + 1, out)
            elif isinstance(item, dict):
                out.append(f"{pad}{_scalar(k)}: {{}}")
            elif isinstance(item, list):
                out.append(f"{pad}{_scalar(k)}: []")
            else:
                out.append(f"{pad}{_scalar(k)}: {_scalar(item)}")
    elif isinstance(v, list):
        for item in v:
            if isinstance(item, (dict, list)) and item:
                sub = []
                _dump(item, indent + 1, sub)
                first = sub[0].lstrip()
                out.append(f"{pad}- {first}")
                out.extend(sub[1:])
            else:
                empty = "{}" if isinstance(item, dict) else "[]"
                out.append(f"{pad}- {empty if isinstance(item, (dict, list)) else _scalar(item)}")
    else:
        out.append(pad + _scalar(v))


def to_yaml(cfg):
    """The config dict as block YAML text."""
    out = []
    _dump(cfg, 0, out)
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------
# Running the binary.


def run_cli(*args, timeout=30, env=None, check_sanitizer=True):
    """Runs the binary to completion; returns CompletedProcess (text)."""
    e = dict(os.environ)
    if env:
        e.update(env)
    p = subprocess.run([LC_BIN, *args], capture_output=True, text=True,
                       timeout=scaled(timeout), env=e)
    if check_sanitizer:
        assert_no_sanitizer_report(p.stderr, what=" ".join(args))
    return p


def assert_no_sanitizer_report(text, what="agent"):
    text = re.sub(r"definitely lost: 0 bytes", "", text)
    bad = re.search(r"ERROR SUMMARY: [1-9]", text)  # valgrind: invalid reads, writes, leaks
    if bad:
        raise AssertionError(f"valgrind report from {what}:\n{text[-6000:]}")
    for m in SANITIZER_MARKERS:
        if m in text:
            i = text.index(m)
            raise AssertionError(f"sanitizer report from {what}:\n{text[max(0, i - 200):i + 4000]}")


def http_get(port, path, timeout=5):
    """(status, body bytes, headers) of GET http://127.0.0.1:port/path."""
    url = f"http://127.0.0.1:{port}{path}"
    try:
        with urllib.request.urlopen(url, timeout=scaled(timeout)) as r:
            return r.status, r.read(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read(), dict(e.headers)


_METRIC_LINE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+\d+)?$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text):
    """Prometheus text -> {(name, ((label, value), ...)): float}, labels sorted."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _METRIC_LINE.match(line)
        if not m:
            raise ValueError(f"bad metrics line: {line!r}")
        labels = tuple(sorted(_LABEL.findall(m.group(3) or "")))
        v = m.group(4)
        out[(m.group(1), labels)] = float(v.replace("+Inf", "inf").replace("-Inf", "-inf"))
    return out


def metric_sum(metrics, name, **labels):
    """Sum of every series of `name` whose labels include `labels`; None if none."""
    total = None
    for (n, ls), v in metrics.items():
        if n != name:
            continue
        d = dict(ls)
        if all(d.get(k) == str(val) for k, val in labels.items()):
            total = (total or 0) + v
    return total


def metric_names(metrics):
    return {n for (n, _) in metrics}


class Agent:
    """One agent process with its own config, state dir, output file and logs.

    `inputs` and `outputs` are lists of dicts as in the YAML; by default the
    only output is a file output named "out" at self.out_path. `extra` holds
    more top-level keys (they override the defaults below).
    """

    def __init__(self, workdir, inputs, outputs=None, extra=None, name="agent"):
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.port = free_port()
        self.state_dir = self.dir / f"{name}-state"
        self.out_path = self.dir / f"{name}-out.ndjson"
        self.cfg_path = self.dir / f"{name}.yaml"
        self.stderr_path = self.dir / f"{name}.stderr"
        self.stdout_path = self.dir / f"{name}.stdout"
        if outputs is None:
            outputs = [{"type": "file", "name": "out", "path": str(self.out_path)}]
        self.config = {
            "state_dir": str(self.state_dir),
            "listen": f"127.0.0.1:{self.port}",
            "log_level": "info",
            "shutdown_timeout": "10s",
            "checkpoint_interval": "200ms",
            "batch_wait": "100ms",
            "inputs": inputs,
            "outputs": outputs,
        }
        if extra:
            self.config.update(extra)
        self.proc = None
        self.runs = 0
        self._stderr_f = None
        self._stdout_f = None

    # -- lifecycle --------------------------------------------------------

    def write_config(self):
        self.cfg_path.write_text(to_yaml(self.config))

    def start(self, once=False, wait_ready=True, timeout=15, args=None):
        """Starts the process (appending to its stdout/stderr files); waits
        for /ready unless once or wait_ready is False."""
        assert self.proc is None or self.proc.poll() is not None, "agent already running"
        self.write_config()
        argv = [*WRAPPER, LC_BIN, "run", "-c", str(self.cfg_path)]
        if once:
            argv.append("--once")
        if args:
            argv.extend(args)
        self._stderr_f = open(self.stderr_path, "ab")
        self._stdout_f = open(self.stdout_path, "ab")
        self.proc = subprocess.Popen(argv, stdout=self._stdout_f, stderr=self._stderr_f,
                                     stdin=subprocess.DEVNULL)
        self.runs += 1
        if wait_ready and not once:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout=15):
        def ready():
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"agent exited with {self.proc.returncode} before /ready:\n{self.stderr()[-4000:]}")
            try:
                return http_get(self.port, "/ready", timeout=1)[0] == 200
            except OSError:
                return False
        if not wait_until(ready, timeout, interval=0.05):
            raise AssertionError(f"agent not ready after {timeout}s:\n{self.stderr()[-4000:]}")

    @property
    def pid(self):
        return self.proc.pid

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def wait(self, timeout=60):
        """Waits for exit; returns the exit code."""
        try:
            rc = self.proc.wait(timeout=scaled(timeout))
        finally:
            self._close_files()
        self.check_sanitizer()
        return rc

    def stop(self, timeout=30, sig=signal.SIGTERM):
        """Sends SIGTERM (or sig) and waits; returns the exit code."""
        if not self.running():
            return self.wait(timeout) if self.proc else None
        self.proc.send_signal(sig)
        try:
            return self.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
            raise AssertionError(f"agent did not exit within {timeout}s of {sig!r}:\n"
                                 f"{self.stderr()[-4000:]}")

    def kill9(self):
        """SIGKILL: no cleanup at all (sanitizers cannot report either)."""
        self.proc.kill()
        self.proc.wait(timeout=10)
        self._close_files()

    def cleanup(self):
        """For fixtures: never leave a process behind."""
        if self.running():
            self.proc.kill()
            self.proc.wait(timeout=10)
        self._close_files()

    def _close_files(self):
        for f in (self._stderr_f, self._stdout_f):
            if f:
                f.close()
        self._stderr_f = self._stdout_f = None

    def check_sanitizer(self):
        assert_no_sanitizer_report(self.stderr(), what=f"agent {self.name}")

    # -- observation ------------------------------------------------------

    def stderr(self):
        try:
            return self.stderr_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stdout(self):
        try:
            return self.stdout_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_records(self):
        """The agent's own log: parsed JSON lines of stderr (others skipped)."""
        out = []
        for line in self.stderr().splitlines():
            try:
                v = json.loads(line)
            except ValueError:
                continue
            if isinstance(v, dict):
                out.append(v)
        return out

    def metrics(self):
        status, body, _ = http_get(self.port, "/metrics")
        assert status == 200, f"/metrics answered {status}"
        return parse_metrics(body.decode())

    def metric(self, name, **labels):
        return metric_sum(self.metrics(), name, **labels)

    def health(self):
        status, body, _ = http_get(self.port, "/health")
        return status, json.loads(body)

    def threads(self):
        return len(os.listdir(f"/proc/{self.pid}/task"))

    def fds(self):
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def output(self):
        return read_output(self.out_path)

    def output_lines(self):
        return [r["line"] for r in self.output().records]


# ---------------------------------------------------------------------------
# The file output's JSON lines.


class Output:
    """Parsed output file: records, plus lines that did not parse (torn)."""

    def __init__(self, records, bad):
        self.records = records
        self.bad = bad

    def __len__(self):
        return len(self.records)


def read_output(path, start=0, end=None):
    """Reads JSON lines from byte `start` to `end` of path. A final line
    without newline is ignored (still being written); lines that do not
    parse are returned in .bad."""
    try:
        with open(path, "rb") as f:
            f.seek(start)
            data = f.read() if end is None else f.read(end - start)
    except FileNotFoundError:
        return Output([], [])
    lines = data.split(b"\n")
    lines.pop()  # after the last newline: empty, or incomplete
    recs, bad = [], []
    for raw in lines:
        try:
            recs.append(json.loads(raw))
        except ValueError:
            bad.append(raw)
    return Output(recs, bad)


def count_lines(path):
    try:
        with open(path, "rb") as f:
            return f.read().count(b"\n")
    except FileNotFoundError:
        return 0


# ---------------------------------------------------------------------------
# Writing log files.


def append_lines(path, lines, newline=True):
    """Appends lines (str) to path in one write."""
    data = "".join(l + "\n" for l in lines) if newline else "".join(lines)
    with open(path, "a") as f:
        f.write(data)


def fill_fs(path):
    """Writes path (a new file, 0600) until its filesystem is full (ENOSPC). Deleting it gives
    the space back."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while os.write(fd, b"\0" * 4096) > 0:
            pass
    except OSError as e:
        if e.errno != errno.ENOSPC:
            raise
    finally:
        os.close(fd)


class Writer(threading.Thread):
    """Appends `total` lines "<prefix> seq=<i>" to path at about `rate` lines
    per second (0: as fast as possible), in chunks of `chunk` lines.

    rotate: None, "rename" (rename to path.<k> and create a new file, like
    logrotate's create mode) or "copytruncate" (copy to path.<k>, then
    truncate in place, like logrotate's copytruncate), every `rotate_every`
    lines. before_rotate(k), if given, is called before rotation k.
    generations[k] lists the seqs written into the k-th incarnation of path.
    """

    def __init__(self, path, total, prefix, rate=0, chunk=100, rotate=None, rotate_every=0,
                 before_rotate=None, start_seq=0):
        super().__init__(daemon=True)
        self.path = Path(path)
        self.total = total
        self.prefix = prefix
        self.rate = rate
        self.chunk = chunk
        self.rotate = rotate
        self.rotate_every = rotate_every
        self.before_rotate = before_rotate
        self.start_seq = start_seq
        self.written = 0
        self.rotations = 0
        self.generations = [[]]
        self.error = None
        self.stop_flag = threading.Event()

    def line(self, i):
        return f"{self.prefix} seq={i}"

    def run(self):
        try:
            self._run()
        except BaseException as e:  # surfaced by join_checked
            self.error = e

    def _open(self):
        return open(self.path, "a", buffering=1 << 20)

    def _run(self):
        f = self._open()
        t0 = time.monotonic()
        i = self.start_seq
        end = self.start_seq + self.total
        since_rotate = 0
        while i < end and not self.stop_flag.is_set():
            n = min(self.chunk, end - i)
            if self.rotate and self.rotate_every:
                n = min(n, self.rotate_every - since_rotate)
            f.write("".join(self.line(j) + "\n" for j in range(i, i + n)))
            f.flush()
            self.generations[-1].extend(range(i, i + n))
            i += n
            self.written += n
            since_rotate += n
            if self.rotate and self.rotate_every and since_rotate >= self.rotate_every and i < end:
                f = self._do_rotate(f)
                since_rotate = 0
            if self.rate:
                ahead = (i - self.start_seq) / self.rate - (time.monotonic() - t0)
                if ahead > 0:
                    time.sleep(ahead)
        f.close()

    def _do_rotate(self, f):
        k = self.rotations + 1
        if self.before_rotate:
            self.before_rotate(k)
        rotated = self.path.with_name(f"{self.path.name}.{k}")
        if self.rotate == "rename":
            f.close()
            os.rename(self.path, rotated)
            f = self._open()
        elif self.rotate == "copytruncate":
            f.flush()
            with open(self.path, "rb") as src, open(rotated, "wb") as dst:
                dst.write(src.read())
            os.truncate(self.path, 0)  # f is O_APPEND: next write lands at 0
        else:
            raise ValueError(self.rotate)
        self.rotations = k
        self.generations.append([])
        return f

    def join_checked(self, timeout=120):
        self.join(scaled(timeout))
        assert not self.is_alive(), f"writer {self.path} still running after {timeout}s"
        if self.error:
            raise self.error


_SEQ = re.compile(r"^(?P<prefix>.*) seq=(?P<seq>\d+)$")


def split_seq(line):
    """'file=3 seq=17' -> ('file=3', 17); None for other lines."""
    m = _SEQ.match(line)
    return (m.group("prefix"), int(m.group("seq"))) if m else None


def agent_factory(workdir):
    """For a pytest fixture (`yield from agent_factory(tmp_path)`): yields
    make(inputs, **kw) -> Agent named agent0, agent1, ... in workdir, and
    cleans every one up afterwards."""
    made = []

    def make(inputs, **kw):
        a = Agent(workdir, inputs, name=f"agent{len(made)}", **kw)
        made.append(a)
        return a

    yield make
    for a in made:
        a.cleanup()
