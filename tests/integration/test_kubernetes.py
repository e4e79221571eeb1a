# SPDX-License-Identifier: MIT
"""test_kubernetes.py: the kubernetes input against a pods tree laid out as the kubelet does.

No cluster: `Kubelet` and `ContainerLog` below write /var/log/pods exactly as a node does, and the
agent ships it to the fake Loki. What they follow, from the Kubernetes sources:

* pkg/kubelet/kuberuntime/kuberuntime_manager.go / helpers.go (BuildPodLogsDirectory,
  BuildContainerLogsDirectory): the pod directory is <namespace>_<pod name>_<pod uid>, a
  container's is <container name> inside it, and its log <restart count>.log, so a restarted
  container writes 1.log, 2.log, ... next to the previous instance's (kept for --previous).
* The CRI log format (pkg/kubelet/kuberuntime/logs/logs.go, parseCRILog; written by
  containerd's pkg/cri/io/logger.go): "<RFC3339Nano> <stdout|stderr> <P|F> <content>\n",
  a line longer than max_container_log_line_size (16 KiB) split into P parts and a final F.
* pkg/kubelet/logs/container_log_manager.go, rotateLog: when the log is over
  containerLogMaxSize, (1) cleanupUnusedLogs removes *.tmp and raw files that already have a
  .gz, (2) removeExcessLogs deletes the oldest rotated files beyond MaxFiles - 2, (3) every
  rotated file not yet compressed is gzipped (compressLog: to <f>.tmp, renamed <f>.gz, <f>
  removed), (4) rotateLatestLog renames <n>.log to <n>.log.<time "20060102-150405"> and asks
  the runtime to ReopenContainerLog, which creates <n>.log again; until it does, the runtime
  still writes to the renamed file. The kubelet's clock is simulated (10 s per rotation, its
  monitoring period), so rotated names never collide as they cannot on a node.
* A deleted pod's directory is removed (kubelet's pod cleanup and container GC).

Every line is unique and says which namespace/pod/container/stream wrote it, so the labels of
each entry at the fake Loki are checked against it, and loss and duplication are exact.
"""

import collections
import datetime
import gzip
import os
import shutil
import threading
import time
from pathlib import Path

import pytest

import agent as ag
from test_files import make_agent  # noqa: F401 (a fixture)

if not ag.have_binary():
    if os.environ.get("LC_REQUIRE_BIN"):
        raise RuntimeError("LC_BIN is not an executable: build first")
    pytest.skip("log_capturer binary not built", allow_module_level=True)

PART = 16384  # containerd's default max_container_log_line_size
TS_FORMAT = "%Y%m%d-%H%M%S"  # container_log_manager.go's timestampFormat "20060102-150405"


def rfc3339nano(ns):
    """Go's time.RFC3339Nano in UTC: trailing zeros of the fraction trimmed."""
    sec, frac = divmod(ns, 1_000_000_000)
    base = datetime.datetime.fromtimestamp(sec, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    f = f"{frac:09d}".rstrip("0")
    return f"{base}.{f}Z" if f else f"{base}Z"


class ContainerLog:
    """One container instance's log as its runtime writes it (CRI format, split at 16 KiB)."""

    def __init__(self, path):
        self.path = Path(path)
        self.f = open(self.path, "ab", buffering=0)

    def part(self, stream, tag, data):
        self.f.write(f"{rfc3339nano(time.time_ns())} {stream} {tag} ".encode() + data + b"\n")

    def write(self, stream, text):
        data = text.encode()
        parts = [data[i:i + PART] for i in range(0, len(data), PART)] or [b""]
        for i, p in enumerate(parts):
            self.part(stream, "P" if i < len(parts) - 1 else "F", p)

    def raw(self, data):
        self.f.write(data)

    def reopen(self):
        """The runtime's ReopenContainerLog: a new file at the path."""
        self.f.close()
        self.f = open(self.path, "ab", buffering=0)

    def close(self):
        self.f.close()


class Kubelet:
    """The node's view: pods and their container logs under root, rotated as the kubelet does."""

    def __init__(self, root, max_files=5):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.max_files = max_files  # containerLogMaxFiles, default 5
        self.clock = datetime.datetime(2024, 1, 1, 12, 0, 0)
        self.logs = {}  # (ns, pod, container) -> ContainerLog of the running instance
        self.restarts = collections.Counter()
        self.uids = {}

    def pod_dir(self, ns, pod):
        uid = self.uids.setdefault((ns, pod), f"{len(self.uids):08x}-1b2c-4d5e-8f90-a1b2c3d4e5f6")
        return self.root / f"{ns}_{pod}_{uid}"

    def start(self, ns, pod, container):
        d = self.pod_dir(ns, pod) / container
        d.mkdir(parents=True, exist_ok=True)
        key = (ns, pod, container)
        if key in self.logs:  # a restart: the next instance writes <restart count>.log
            self.logs[key].close()
            self.restarts[key] += 1
        log = ContainerLog(d / f"{self.restarts[key]}.log")
        self.logs[key] = log
        return log

    def rotate(self, key, before_reopen=None):
        """container_log_manager.go rotateLog, step by step; before_reopen(log) runs while the
        runtime still writes to the renamed file."""
        log = self.logs[key]
        cur = str(log.path)
        found = sorted(str(p) for p in Path(cur).parent.glob(Path(cur).name + ".*"))
        inuse = [f for f in found
                 if not f.endswith(".tmp") and (f.endswith(".gz") or f + ".gz" not in found)]
        for f in set(found) - set(inuse):
            os.remove(f)
        keep = max(self.max_files - 2, 0)
        inuse.sort()
        for f in inuse[:len(inuse) - keep]:
            os.remove(f)
        inuse = inuse[len(inuse) - keep:] if keep else []
        for f in inuse:
            if f.endswith(".gz"):
                continue
            with open(f, "rb") as r, gzip.open(f + ".tmp", "wb") as w:
                shutil.copyfileobj(r, w)
            os.rename(f + ".tmp", f + ".gz")
            os.remove(f)
        self.clock += datetime.timedelta(seconds=10)
        os.rename(cur, f"{cur}.{self.clock.strftime(TS_FORMAT)}")
        if before_reopen:
            before_reopen(log)
        log.reopen()

    def delete_pod(self, ns, pod):
        for key in [k for k in self.logs if k[:2] == (ns, pod)]:
            self.logs.pop(key).close()
        shutil.rmtree(self.pod_dir(ns, pod))

    def close(self):
        for log in self.logs.values():
            log.close()


class Lines:
    """Unique lines, remembered with the labels they must arrive with."""

    def __init__(self):
        self.expected = {}
        self.n = 0

    def line(self, key, stream, extra=""):
        self.n += 1
        text = f"{key[0]}/{key[1]}/{key[2]} {stream} seq={self.n}{extra}"
        self.expected[text] = {"namespace": key[0], "pod": key[1], "container": key[2],
                               "stream": stream}
        return text

    def write(self, kubelet, key, count, long_every=0):
        log = kubelet.logs[key]
        for i in range(count):
            stream = "stderr" if i % 3 == 2 else "stdout"
            pad = ""
            if long_every and i % long_every == long_every - 1:
                pad = " " + "x" * (2 * PART + 100)  # three parts: P, P, F
            log.write(stream, self.line(key, stream, pad))


def k8s_input(root, **kw):
    d = {"type": "kubernetes", "name": "pods", "root": str(root), "start_at": "beginning",
         "max_age": 0, "rescan_interval": "100ms", "poll_interval": "50ms",
         "rotate_wait": "200ms", "labels": {"job": "pods"}}
    d.update(kw)
    return d


def loki_output(fake):
    return {"type": "loki", "name": "loki", "url": fake.url, "max_inflight": 4, "timeout": "3s",
            "retry": {"initial": "100ms", "max": "1s"}}



@pytest.fixture
def node(tmp_path):
    k = Kubelet(tmp_path / "pods")
    yield k
    k.close()


def judge(entries, lines):
    """(missing, duplicated, wrong labels, unexpected) of what the fake received."""
    got = collections.Counter(e["line"] for e in entries)
    missing = [t for t in lines.expected if t not in got]
    dups = sum(v - 1 for v in got.values() if v > 1)
    wrong = []
    unexpected = [t for t in got if t not in lines.expected]
    for e in entries:
        want = lines.expected.get(e["line"])
        if want and {k: e["labels"].get(k) for k in (*want, "job")} != {**want, "job": "pods"}:
            wrong.append((e["line"][:60], e["labels"]))
    return missing, dups, wrong, unexpected


def test_kubelet_layout_rotation_restart_deletion(fake, node, make_agent):
    """Pods written as the kubelet lays them out: two rotations (one compressing the first
    rotated file), lines written to the renamed file before the runtime reopens, a split line
    whose P parts end the rotated file and whose F part starts the new one, a container
    restart (1.log), a deleted pod, an excluded namespace, a malformed line. Every line arrives
    once at the fake Loki with namespace/pod/container/stream labels; nothing from the .gz."""
    lines = Lines()
    web, side, api, dns = (("default", "web-0", "app"), ("default", "web-0", "sidecar"),
                           ("shop", "api-7d9f8b-x2x4q", "api"), ("kube-system", "coredns-5d78", "coredns"))
    for key in (web, side, api, dns):
        node.start(*key)
    a = make_agent([k8s_input(node.root, exclude={"namespaces": ["kube-*"]})], outputs=[loki_output(fake)])
    a.start()
    for key in (web, side, api):
        lines.write(node, key, 200, long_every=50)
    node.logs[dns].write("stdout", "kube-system is excluded")
    node.logs[side].raw(b"not a CRI line\n")

    def split_across(key):
        text = lines.line(key, "stdout", " " + "y" * (PART + 10))
        data = text.encode()

        def tail(log):
            lines.write(node, key, 3)  # still into the renamed file
            log.part("stdout", "P", data[:PART])
        return data, tail

    for key in (web, side, api):
        data, tail = split_across(key)
        node.rotate(key, before_reopen=tail)
        node.logs[key].part("stdout", "F", data[PART:])  # the F part opens the new file
        lines.write(node, key, 100)
    # the api pod is done and deleted once delivered
    ag.wait_until(lambda: all(t in {e["line"] for e in fake.entries()}
                              for t in lines.expected if t.startswith("shop/")), 15)
    node.delete_pod("shop", api[1])
    for key in (web, side):
        node.rotate(key)  # compresses the first rotated file: .gz, never read
        lines.write(node, key, 50)
    node.start(*web)  # the app container restarts: 1.log
    lines.write(node, web, 150)

    assert ag.wait_until(lambda: len(fake.entries()) >= len(lines.expected), 20), (
        f"{len(fake.entries())} of {len(lines.expected)} arrived")
    gz = list(node.root.glob("*/*/*.gz"))
    assert len(gz) == 2, gz  # the kubelet's layout: the older rotated file compressed
    assert ag.wait_until(lambda: a.metric("log_capturer_file_open_files", input="pods") == 3, 10), (
        "the deleted pod's file is still open: "
        f"{a.metric('log_capturer_file_open_files', input='pods')}")  # app 0+1, sidecar
    malformed = a.metric("log_capturer_kubernetes_skipped_total", input="pods", reason="malformed")
    rotations = a.metric("log_capturer_file_rotations_total", input="pods", kind="rename")
    cut = a.metric("log_capturer_input_truncated_lines_total", input="pods")
    time.sleep(0.3)  # anything extra (a duplicate, a .gz read) would arrive by now
    assert a.stop(20) == 0
    missing, dups, wrong, unexpected = judge(fake.entries(), lines)
    assert not missing, f"{len(missing)} missing, e.g. {[m[:80] for m in missing[:3]]}"
    assert dups == 0 and not unexpected, (dups, [u[:80] for u in unexpected[:3]])
    assert not wrong, wrong[:3]
    assert malformed == 1
    # the first three renames were seen with their predecessor open (the split lines prove it);
    # the later ones may find it already closed (read to its end, quiet for rotate_wait)
    assert rotations >= 3
    assert cut == 0
    joined = [e["line"] for e in fake.entries() if " yyyy" in e["line"]]
    assert len(joined) == 3 and all(len(t) > PART for t in joined)


def test_kubernetes_kill9_loses_nothing(fake, node, make_agent):
    """A writer goes on writing and the kubelet rotating while the agent is killed with -9 and
    restarted, one rotation happening while it is down. Nothing is lost; duplicates (the batches
    in flight and the last checkpoint interval) are counted and reported."""
    lines = Lines()
    keys = [("default", "worker-0", "main"), ("default", "worker-0", "logs")]
    for key in keys:
        node.start(*key)
    a = make_agent([k8s_input(node.root)], outputs=[loki_output(fake)])
    stop = threading.Event()
    written = threading.Event()
    rotate_now = threading.Event()
    down = threading.Event()  # no periodic rotation then: two would compress one unread
    lock = threading.Lock()

    def writer():
        i = 0
        while not stop.is_set() and i < 60:
            with lock:
                for key in keys:
                    lines.write(node, key, 50)
                if (i % 15 == 14 and not down.is_set()) or rotate_now.is_set():
                    rotate_now.clear()
                    node.rotate(keys[0])
            i += 1
            time.sleep(0.02)
        written.set()

    a.start()
    t = threading.Thread(target=writer, daemon=True)
    t.start()
    ag.wait_until(lambda: len(fake.entries()) > 1500, 15)
    down.set()
    a.kill9()
    before = len(fake.entries())
    rotate_now.set()  # the log is renamed while nobody reads it
    ag.wait_until(lambda: not rotate_now.is_set(), 5)
    time.sleep(0.2)
    a.start()
    down.clear()
    assert written.wait(ag.scaled(30))
    t.join(5)
    ag.wait_until(lambda: len({e["line"] for e in fake.entries()}) >= len(lines.expected), 20)
    gaps = a.metric("log_capturer_file_rotation_gaps_total", input="pods")
    assert a.stop(20) == 0
    missing, dups, wrong, unexpected = judge(fake.entries(), lines)
    print(f"\n[k8s-kill9] {len(lines.expected)} lines, {before} delivered before kill -9: "
          f"lost {len(missing)}, duplicated {dups}, gaps counted {gaps}")
    seqs = sorted(int(m.rsplit("=", 1)[1]) for m in missing)
    assert not missing, (f"{len(missing)} lost, seq {seqs[:1]}..{seqs[-1:]}\n"
                         f"{a.stderr()[-3000:]}")
    assert not wrong and not unexpected
    # A kill inside rotate_wait of a rotated file, whose compression (the next rotation, while
    # down) then deletes it, is counted as a possible gap: its row could not say "read to its
    # end". Conservative: nothing was lost above.
    assert gaps <= 1
