# SPDX-License-Identifier: MIT
"""docker_harness.py: a private, real Docker engine for integration tests.

Starts Debian's containerd and dockerd (docker.io) in a fresh directory of its
own, builds a `busybox:lc` image from Debian's busybox-static (no registry is
needed), runs containers with `--network none`, and on close removes every
trace: containers, processes, mounts, cgroups and directories. Nothing is
shared with a system Docker or with a previous run:

  <tmp root>/lcd-XXXXXX/      one directory per engine (short: AF_UNIX paths)
      s                       dockerd's API socket (DockerEngine.sock)
      d/ e/ p                 dockerd data-root, exec-root, pidfile
      c/                      containerd root, state, socket, config
      cli/                    DOCKER_CONFIG for the docker CLI
      owner                   pid of the test process (for the stale sweep)
  /sys/fs/cgroup/*/lcd-XXXXXX containers' cgroup parent

We start containerd ourselves (`--containerd=`) instead of letting dockerd
supervise one, because dockerd 20.10 silently attaches to a system containerd
at /run/containerd/containerd.sock when one runs (CI hosts with Docker
installed), which would mix our containers into the host's.

Use from pytest through the fixtures `docker_engine` (one engine per session)
and `docker` (the same engine; containers a test created are removed after
it), or construct a DockerEngine yourself for a test that stops or restarts
the daemon. Mark such tests `@pytest.mark.docker`.

Environment:
  LC_DOCKER_TMP       where engine directories go (default /tmp; keep it short)
  LC_REQUIRE_DOCKER   "1": fail instead of skip when the engine cannot start
                      (CI and these machines set it; the engine must start)
  LC_DOCKER_INSTALL   "0": never apt-get install missing docker.io/busybox-static
  LC_TIMEOUT_SCALE    multiplies timeouts (sanitizer runs)
"""

import http.client
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

TIMEOUT_SCALE = float(os.environ.get("LC_TIMEOUT_SCALE", "1"))
TMP_ROOT = os.environ.get("LC_DOCKER_TMP", "/tmp")
IMAGE = "busybox:lc"
DIR_PREFIX = "lcd-"
AF_UNIX_MAX = 107  # sun_path is 108 bytes including the NUL

DOCKERD = "dockerd"
CONTAINERD = "containerd"
BUSYBOX = "/bin/busybox"


class DockerUnavailable(Exception):
    """The engine cannot run here (not root, binaries missing, start failed)."""


def scaled(seconds):
    return seconds * TIMEOUT_SCALE


def _which(name):
    for d in ("/usr/sbin", "/usr/bin", "/sbin", "/bin"):
        p = os.path.join(d, name)
        if os.access(p, os.X_OK):
            return p
    return shutil.which(name)


def ensure_installed():
    """Installs docker.io and busybox-static with apt when missing (as root).

    Raises DockerUnavailable when they are missing and cannot be installed.
    """
    needed = {"dockerd": "docker.io", "containerd": "containerd", "docker": "docker.io",
              "runc": "runc"}
    missing = sorted({pkg for b, pkg in needed.items() if not _which(b)})
    if not os.access(BUSYBOX, os.X_OK) or _busybox_is_dynamic():
        missing.append("busybox-static")
    if not missing:
        return
    if os.geteuid() != 0 or os.environ.get("LC_DOCKER_INSTALL") == "0":
        raise DockerUnavailable("missing packages: " + " ".join(missing))
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    try:
        subprocess.run(["apt-get", "update", "-qq"], env=env, check=True, timeout=600,
                       stdout=subprocess.DEVNULL)
        subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends"] + missing,
                       env=env, check=True, timeout=900, stdout=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError) as e:
        raise DockerUnavailable(f"apt-get install {' '.join(missing)} failed: {e}") from e


def _busybox_is_dynamic():
    # A dynamically linked busybox would not run inside the image (no libc there):
    # look for a PT_INTERP program header in the 64-bit little-endian ELF.
    try:
        with open(BUSYBOX, "rb") as f:
            hdr = f.read(64)
            if hdr[:4] != b"\x7fELF" or hdr[4] != 2 or hdr[5] != 1:
                return True
            phoff = struct.unpack_from("<Q", hdr, 32)[0]
            phentsize, phnum = struct.unpack_from("<HH", hdr, 54)
            f.seek(phoff)
            table = f.read(phentsize * phnum)
        return any(struct.unpack_from("<I", table, i * phentsize)[0] == 3 for i in range(phnum))
    except (OSError, struct.error):
        return True


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def _unescape_mount(path):
    # /proc/mounts escapes space, tab, newline and backslash as octal.
    out, i = [], 0
    while i < len(path):
        if path[i] == "\\" and len(path[i + 1:i + 4]) == 3 and path[i + 1:i + 4].isdigit():
            out.append(chr(int(path[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(path[i])
            i += 1
    return "".join(out)


def mounts_under(root):
    """Mount points at or below `root`, deepest first."""
    root = os.path.realpath(root)
    found = []
    with open("/proc/mounts") as f:
        for line in f:
            fields = line.split()
            if len(fields) < 2:
                continue
            mp = _unescape_mount(fields[1])
            if mp == root or mp.startswith(root + "/"):
                found.append(mp)
    found.sort(key=lambda p: p.count("/"), reverse=True)
    return found


def pids_referencing(root):
    """Pids of processes whose command line names `root` (our containerd, shims)."""
    pids = []
    needle = root.encode()
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == os.getpid():
            continue
        try:
            with open(f"/proc/{d}/cmdline", "rb") as f:
                if needle in f.read():
                    pids.append(int(d))
        except OSError:
            pass
    return pids


def _cgroup_dirs(parent):
    base = "/sys/fs/cgroup"
    dirs = []
    if not os.path.isdir(base):
        return dirs
    for ctl in os.listdir(base):
        p = os.path.join(base, ctl, parent)
        if os.path.isdir(p):
            dirs.append(p)
    if os.path.isfile(os.path.join(base, "cgroup.controllers")):  # pure cgroup v2
        p = os.path.join(base, parent)
        if os.path.isdir(p) and p not in dirs:
            dirs.append(p)
    return dirs


def _cgroup_procs(parent):
    pids = set()
    for top in _cgroup_dirs(parent):
        for dirpath, _dirs, files in os.walk(top):
            if "cgroup.procs" in files:
                try:
                    with open(os.path.join(dirpath, "cgroup.procs")) as f:
                        pids.update(int(x) for x in f.read().split())
                except OSError:
                    pass
    return pids


def _rmdir_cgroups(parent):
    for top in _cgroup_dirs(parent):
        for dirpath, _dirs, _files in sorted(os.walk(top), key=lambda w: -w[0].count("/")):
            try:
                os.rmdir(dirpath)
            except OSError:
                pass


def _umount(path):
    # MNT_DETACH: a mount still busy (a dying shim) must not keep us from removing the dir.
    subprocess.run(["umount", "-l", path], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   timeout=30)


def remove_engine_dir(root, cgroup_parent=None):
    """Kills what still runs from `root`, unmounts below it, removes it and its cgroups."""
    cgroup_parent = cgroup_parent or os.path.basename(root)
    for _ in range(3):
        victims = set(pids_referencing(root)) | _cgroup_procs(cgroup_parent)
        victims.discard(os.getpid())
        if not victims:
            break
        for pid in victims:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        deadline = time.monotonic() + scaled(5)
        while time.monotonic() < deadline and any(_pid_alive(p) for p in victims):
            time.sleep(0.05)
    for mp in mounts_under(root):
        _umount(mp)
    _rmdir_cgroups(cgroup_parent)
    shutil.rmtree(root, ignore_errors=True)
    if os.path.exists(root):
        # Left-over mount appeared late (a shim exiting); one more pass.
        for mp in mounts_under(root):
            _umount(mp)
        shutil.rmtree(root, ignore_errors=True)


def sweep_stale(tmp_root=TMP_ROOT):
    """Removes engine dirs left by test processes that died without cleaning up.

    Only directories with an `owner` file naming a dead process are touched, so
    engines of concurrent test runs are safe.
    """
    try:
        names = os.listdir(tmp_root)
    except OSError:
        return
    for name in names:
        if not name.startswith(DIR_PREFIX):
            continue
        root = os.path.join(tmp_root, name)
        try:
            owner = int(Path(root, "owner").read_text().strip())
        except (OSError, ValueError):
            continue
        if _pid_alive(owner):
            continue
        remove_engine_dir(root)


# ---------------------------------------------------------------- logger presets

def logger_cmd(lines, rate=0, streams=("stdout", "stderr"), tag="l", pad=0, delay=0.0):
    """A busybox `sh -c` command printing `lines` lines on each of `streams`.

    Line i on stream s reads "<tag> <s> <i, 6 digits>" followed by `pad` 'x'
    characters; `expected_lines` gives the same list. rate > 0: about `rate`
    lines per second per stream, written in ticks of 100 ms (the count is
    exact, the pace approximate). `delay` seconds of sleep before the first
    line (time for a follower to attach).
    """
    if rate and rate > 0:
        per_tick = max(1, int(round(rate / 10.0)))
        tick = "sleep 0.1"
    else:
        per_tick, tick = max(1, lines), ":"
    suffix = "x" * pad
    body = []
    for s in streams:
        redir = " >&2" if s == "stderr" else ""
        body.append(f'printf "%s {s} %06d{suffix}\\n" "{tag}" "$i"{redir}')
    script = (
        (f"sleep {delay}; " if delay else "")
        + f"i=0; n={int(lines)}; k=0; "
        + "while [ $i -lt $n ]; do "
        + "; ".join(body)
        + "; i=$((i+1)); k=$((k+1)); "
        + f"if [ $k -ge {per_tick} ]; then k=0; {tick}; fi; done"
    )
    return ["sh", "-c", script]


def expected_lines(lines, stream, tag="l", pad=0):
    """The lines logger_cmd prints on `stream`, without newlines."""
    return [f"{tag} {stream} {i:06d}" + "x" * pad for i in range(lines)]


def big_line_cmd(nbytes, stream="stdout", then_sleep=0):
    """One line of `nbytes` 'a' characters (plus the newline) on `stream`."""
    redir = " >&2" if stream == "stderr" else ""
    script = f"head -c {int(nbytes)} /dev/zero | tr '\\000' a{redir}; echo{redir}"
    if then_sleep:
        script += f"; sleep {then_sleep}"
    return ["sh", "-c", script]


def silent_cmd(seconds=3600):
    """A container that never logs."""
    return ["sleep", str(int(seconds))]


def tty_cmd(lines, tag="t"):
    """For tty=True containers: lines "<tag> <i>" (the terminal adds \\r\\n)."""
    return ["sh", "-c", f'i=0; while [ $i -lt {int(lines)} ]; do echo "{tag} $i"; i=$((i+1)); done']


# ---------------------------------------------------------------- the engine

class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout):
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self._path)
        self.sock = s


class DockerEngine:
    """One private containerd + dockerd pair. Call start(), then close()."""

    def __init__(self, tmp_root=TMP_ROOT, extra_args=()):
        os.makedirs(tmp_root, exist_ok=True)
        self.root = tempfile.mkdtemp(prefix=DIR_PREFIX, dir=tmp_root)
        os.chmod(self.root, 0o711)
        Path(self.root, "owner").write_text(f"{os.getpid()}\n")
        self.cgroup_parent = os.path.basename(self.root)
        self.sock = os.path.join(self.root, "s")
        self.data_root = os.path.join(self.root, "d")
        self.exec_root = os.path.join(self.root, "e")
        self.pidfile = os.path.join(self.root, "p")
        self.ctd_dir = os.path.join(self.root, "c")
        self.ctd_sock = os.path.join(self.ctd_dir, "s")
        self.cli_config = os.path.join(self.root, "cli")
        self.dockerd_log = os.path.join(self.root, "dockerd.log")
        self.containerd_log = os.path.join(self.root, "containerd.log")
        self.extra_args = list(extra_args)
        self.dockerd = None
        self.containerd = None
        self.image_ready = False
        self.startup_seconds = None
        self.closed = False
        if len(self.ctd_sock) + len(".ttrpc") > AF_UNIX_MAX or len(self.sock) > AF_UNIX_MAX:
            self.close()
            raise DockerUnavailable(f"tmp root {tmp_root!r} too long for AF_UNIX socket paths")

    # -- processes

    def _start_containerd(self):
        os.makedirs(self.ctd_dir, exist_ok=True)
        conf = os.path.join(self.ctd_dir, "config.toml")
        Path(conf).write_text(
            "version = 2\n"
            f'root = "{self.ctd_dir}/root"\n'
            f'state = "{self.ctd_dir}/state"\n'
            'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
            "[grpc]\n"
            f'  address = "{self.ctd_sock}"\n'
            "[debug]\n"
            '  address = ""\n'
            "[metrics]\n"
            '  address = ""\n'
        )
        log = open(self.containerd_log, "ab")
        try:
            self.containerd = subprocess.Popen([_which(CONTAINERD), "--config", conf],
                                               stdout=log, stderr=log,
                                               stdin=subprocess.DEVNULL,
                                               start_new_session=True)
        finally:
            log.close()
        deadline = time.monotonic() + scaled(30)
        while time.monotonic() < deadline:
            if self.containerd.poll() is not None:
                raise DockerUnavailable("containerd exited: " + self._tail(self.containerd_log))
            if os.path.exists(self.ctd_sock):
                return
            time.sleep(0.02)
        raise DockerUnavailable("containerd did not create its socket")

    def _start_dockerd(self):
        args = [
            _which(DOCKERD),
            "--storage-driver=vfs",
            "--exec-opt", "native.cgroupdriver=cgroupfs",
            "--iptables=false", "--ip6tables=false", "--ip-masq=false", "--bridge=none",
            f"--data-root={self.data_root}",
            f"--exec-root={self.exec_root}",
            f"--pidfile={self.pidfile}",
            f"--host=unix://{self.sock}",
            f"--containerd={self.ctd_sock}",
            f"--cgroup-parent={self.cgroup_parent}",
            "--userland-proxy=false",
        ] + self.extra_args
        log = open(self.dockerd_log, "ab")
        try:
            self.dockerd = subprocess.Popen(args, stdout=log, stderr=log,
                                            stdin=subprocess.DEVNULL, start_new_session=True)
        finally:
            log.close()
        deadline = time.monotonic() + scaled(60)
        while time.monotonic() < deadline:
            if self.dockerd.poll() is not None:
                raise DockerUnavailable("dockerd exited: " + self._tail(self.dockerd_log))
            try:
                status, body = self.api_get("/_ping", timeout=1)
                if status == 200 and body == b"OK":
                    return
            except OSError:
                pass
            time.sleep(0.02)
        raise DockerUnavailable("dockerd did not answer /_ping: " + self._tail(self.dockerd_log))

    @staticmethod
    def _tail(path, n=15):
        try:
            return "\n".join(Path(path).read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"

    def start(self):
        """Starts containerd and dockerd, builds the image. Returns seconds taken."""
        if os.geteuid() != 0:
            raise DockerUnavailable("dockerd needs root")
        ensure_installed()
        t0 = time.monotonic()
        try:
            self._start_containerd()
            self._start_dockerd()
            self.ensure_image()
        except DockerUnavailable:
            self.close()
            raise
        except Exception as e:
            self.close()
            raise DockerUnavailable(f"engine start failed: {e}") from e
        self.startup_seconds = time.monotonic() - t0
        return self.startup_seconds

    def daemon_pid(self):
        return self.dockerd.pid if self.dockerd and self.dockerd.poll() is None else None

    def stop_daemon(self, timeout=20):
        """Stops dockerd with SIGTERM (containers stop unless --live-restore); keeps state."""
        if not self.dockerd:
            return
        if self.dockerd.poll() is None:
            self.dockerd.send_signal(signal.SIGTERM)
            try:
                self.dockerd.wait(scaled(timeout))
            except subprocess.TimeoutExpired:
                self.dockerd.kill()
                self.dockerd.wait(scaled(10))
        self.dockerd = None

    def kill_daemon(self):
        """SIGKILL to dockerd, as a crash. containerd and the containers live on."""
        if self.dockerd and self.dockerd.poll() is None:
            self.dockerd.kill()
            self.dockerd.wait(scaled(10))
        self.dockerd = None

    def start_daemon(self):
        """Starts dockerd again after stop_daemon()/kill_daemon(). Returns seconds."""
        t0 = time.monotonic()
        if os.path.exists(self.pidfile):
            os.unlink(self.pidfile)
        self._start_dockerd()
        return time.monotonic() - t0

    def restart_daemon(self):
        self.stop_daemon()
        return self.start_daemon()

    def close(self):
        """Removes every container, stops dockerd and containerd, unmounts, deletes."""
        if self.closed:
            return
        self.closed = True
        if self.dockerd and self.dockerd.poll() is None:
            try:
                ids = self.cli("ps", "-aq", timeout=20).stdout.split()
                if ids:
                    self.cli("rm", "-f", *ids, check=False, timeout=60)
            except Exception:
                pass
        self.stop_daemon(timeout=15)
        if self.containerd and self.containerd.poll() is None:
            self.containerd.send_signal(signal.SIGTERM)
            try:
                self.containerd.wait(scaled(10))
            except subprocess.TimeoutExpired:
                self.containerd.kill()
                self.containerd.wait(scaled(10))
        self.containerd = None
        remove_engine_dir(self.root, self.cgroup_parent)

    def leftovers(self):
        """What close() failed to remove (for a test to assert it is empty)."""
        left = []
        if os.path.exists(self.root):
            left.append(self.root)
        left += mounts_under(self.root)
        left += [f"pid {p}" for p in pids_referencing(self.root)]
        left += _cgroup_dirs(self.cgroup_parent)
        return left

    # -- access

    def env(self):
        return dict(os.environ, DOCKER_HOST=f"unix://{self.sock}", DOCKER_CONFIG=self.cli_config)

    def cli(self, *args, check=True, input=None, timeout=60):
        """Runs the docker CLI against this engine; a CompletedProcess with text output."""
        p = subprocess.run(["docker"] + [str(a) for a in args], env=self.env(), input=input,
                           capture_output=True, timeout=scaled(timeout),
                           text=not isinstance(input, bytes))
        if check and p.returncode != 0:
            raise RuntimeError(f"docker {' '.join(map(str, args))}: rc={p.returncode} "
                               f"{p.stderr!s}")
        return p

    def api_get(self, path, timeout=10):
        """GET on the engine's socket; returns (status, body bytes)."""
        c = _UnixHTTPConnection(self.sock, timeout=scaled(timeout))
        try:
            c.request("GET", path)
            r = c.getresponse()
            return r.status, r.read()
        finally:
            c.close()

    def api_json(self, path, timeout=10):
        status, body = self.api_get(path, timeout)
        if status != 200:
            raise RuntimeError(f"GET {path}: {status} {body[:200]!r}")
        return json.loads(body)

    def api_version(self):
        return self.api_json("/version")["ApiVersion"]

    # -- image

    def ensure_image(self):
        """Imports busybox:lc from the host's busybox-static, once per engine."""
        if self.image_ready:
            return IMAGE
        rootfs = os.path.join(self.root, "rootfs")
        os.makedirs(os.path.join(rootfs, "bin"))
        for d in ("tmp", "etc", "proc", "sys", "dev", "root"):
            os.makedirs(os.path.join(rootfs, d))
        os.chmod(os.path.join(rootfs, "tmp"), 0o1777)
        shutil.copy2(BUSYBOX, os.path.join(rootfs, "bin", "busybox"))
        applets = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True,
                                 check=True).stdout.split()
        for a in applets:
            if a != "busybox" and "/" not in a:
                os.symlink("busybox", os.path.join(rootfs, "bin", a))
        Path(rootfs, "etc", "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
        Path(rootfs, "etc", "group").write_text("root:x:0:\n")
        tar = subprocess.run(["tar", "-C", rootfs, "-c", "."], capture_output=True, check=True)
        self.cli("import", "--change", "ENV PATH=/bin", "-", IMAGE, input=tar.stdout,
                 timeout=120)
        shutil.rmtree(rootfs)
        self.image_ready = True
        return IMAGE

    # -- containers

    def run_container(self, name, cmd, tty=False, log_opts=None, labels=None, log_driver=None,
                      extra=(), image=IMAGE):
        """Starts a detached container with --network none; returns its full id.

        `cmd` is a list (argv) or a string (run with sh -c). log_opts and
        labels are dicts. tty=True gives a raw (non-multiplexed) log stream.
        """
        args = ["run", "-d", "--network", "none", "--name", name]
        if tty:
            args.append("-t")
        if log_driver:
            args += ["--log-driver", log_driver]
        for k, v in (log_opts or {}).items():
            args += ["--log-opt", f"{k}={v}"]
        for k, v in (labels or {}).items():
            args += ["--label", f"{k}={v}"]
        args += list(extra)
        args.append(image)
        args += ["sh", "-c", cmd] if isinstance(cmd, str) else list(cmd)
        return self.cli(*args, timeout=60).stdout.strip()

    def stop(self, ident, timeout=1):
        self.cli("stop", "-t", str(int(timeout)), ident, timeout=60 + timeout)

    def kill(self, ident):
        self.cli("kill", ident, check=False)

    def rm(self, ident, force=True):
        args = ["rm"] + (["-f"] if force else []) + [ident]
        self.cli(*args, check=False)

    def wait(self, ident, timeout=120):
        """Waits until the container exits; returns its exit code."""
        return int(self.cli("wait", ident, timeout=timeout).stdout.strip() or -1)

    def rename(self, ident, new_name):
        self.cli("rename", ident, new_name)

    def inspect(self, ident):
        return self.api_json(f"/containers/{ident}/json")

    def logs(self, ident, timestamps=False):
        """`docker logs` output as (stdout lines, stderr lines) without newlines."""
        args = ["logs"] + (["-t"] if timestamps else []) + [ident]
        p = self.cli(*args, timeout=120)
        return p.stdout.splitlines(), p.stderr.splitlines()

    def running_ids(self):
        return self.cli("ps", "-q", "--no-trunc").stdout.split()

    def all_ids(self):
        return self.cli("ps", "-aq", "--no-trunc").stdout.split()


# ---------------------------------------------------------------- pytest fixtures

def _start_or_skip(**kw):
    eng = None
    try:
        sweep_stale()
        eng = DockerEngine(**kw)
        eng.start()
        return eng
    except DockerUnavailable as e:
        if os.environ.get("LC_REQUIRE_DOCKER") == "1":
            pytest.fail(f"Docker engine required but unavailable: {e}", pytrace=False)
        pytest.skip(f"Docker engine unavailable: {e}")


@pytest.fixture(scope="session")
def docker_engine():
    """A private Docker engine shared by the session's tests; removed at the end."""
    eng = _start_or_skip()
    yield eng
    eng.close()


@pytest.fixture
def docker(docker_engine):
    """The session engine; containers created during the test are removed after it."""
    before = set(docker_engine.all_ids()) if docker_engine.daemon_pid() else set()
    yield docker_engine
    if docker_engine.daemon_pid():
        new = [i for i in docker_engine.all_ids() if i not in before]
        if new:
            docker_engine.cli("rm", "-f", *new, check=False)


@pytest.fixture
def private_docker_engine():
    """An engine of the test's own, for tests that stop or restart the daemon."""
    eng = _start_or_skip()
    yield eng
    eng.close()


__all__ = [
    "DockerEngine", "DockerUnavailable", "IMAGE", "logger_cmd", "expected_lines",
    "big_line_cmd", "silent_cmd", "tty_cmd", "docker_engine", "docker",
    "private_docker_engine", "mounts_under", "sweep_stale", "remove_engine_dir",
]
