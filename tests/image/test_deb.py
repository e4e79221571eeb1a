# SPDX-License-Identifier: MIT
"""test_deb.py: the Debian package installs into a clean bookworm root (a chroot made from
deploy/image/build.sh's minimal base: essential packages plus the runtime libraries, no
systemd), creates its user and state directory, enables nothing, passes check-config on
/etc/log_capturer/config.yaml, its unit verifies, and purge removes the state.

Run by tests/image/run.sh (LC_DEB=the .deb, LC_IMAGE_BASE=the base tarball)."""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

DEB = os.environ.get("LC_DEB", "")
BASE = os.environ.get("LC_IMAGE_BASE", "")

pytestmark = pytest.mark.skipif(not (os.path.isfile(DEB) and os.path.isfile(BASE)),
                                reason="LC_DEB and LC_IMAGE_BASE must name files "
                                       "(tests/image/run.sh sets them)")


def chroot(root, *args, check=True, user=None):
    argv = ["chroot"] + ([f"--userspec={user}"] if user else []) + [str(root)] + list(args)
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "DEBIAN_FRONTEND": "noninteractive",
           "LC_ALL": "C", "HOME": "/root"}
    p = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env)
    if check:
        assert p.returncode == 0, f"{args}: rc={p.returncode}\n{p.stdout}\n{p.stderr}"
    return p


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    r = tmp_path_factory.mktemp("debroot") / "root"
    r.mkdir()
    subprocess.run(["tar", "-xf", BASE, "-C", str(r)], check=True, timeout=300)
    # The base leaves manual pages and documentation out for the image (dpkg path-exclude):
    # a clean root installs everything a package holds.
    cfg = r / "etc/dpkg/dpkg.cfg.d/99mmdebstrap"
    if cfg.exists():
        cfg.unlink()
    yield r
    shutil.rmtree(r, ignore_errors=True)


def test_deb_installs_into_a_clean_root(root):
    assert not (root / "usr/bin/log_capturer").exists()
    assert not (root / "bin/systemctl").exists() and not (root / "usr/bin/systemctl").exists()
    shutil.copy(DEB, root / "tmp/log-capturer.deb")
    chroot(root, "dpkg", "-i", "/tmp/log-capturer.deb")
    status = chroot(root, "dpkg-query", "-W", "-f=${Status}", "log-capturer").stdout
    assert status == "install ok installed", status

    # the user and its state directory
    pw = chroot(root, "getent", "passwd", "log_capturer").stdout.split(":")
    assert pw[5] == "/var/lib/log_capturer", pw
    groups = chroot(root, "id", "-nG", "log_capturer").stdout.split()
    assert "log_capturer" in groups, groups
    for g in ("adm", "docker"):  # the unit's SupplementaryGroups= must resolve
        chroot(root, "getent", "group", g)
    st = (root / "var/lib/log_capturer").stat()
    assert st.st_mode & 0o777 == 0o700
    assert st.st_uid == int(pw[2]), (st.st_uid, pw)

    # the files
    for f in ("usr/bin/log_capturer", "usr/share/man/man1/log_capturer.1.gz",
              "etc/log_capturer/config.yaml", "etc/log_capturer/examples/files-to-stdout.yaml",
              "lib/systemd/system/log_capturer.service"):
        assert (root / f).exists(), f
    # enabled nowhere
    wants = list((root / "etc/systemd/system").rglob("log_capturer*")) \
        if (root / "etc/systemd/system").exists() else []
    assert not wants, wants

    # the configuration is valid, also for the service's user
    p = chroot(root, "log_capturer", "check-config", "/etc/log_capturer/config.yaml",
               user="log_capturer:log_capturer")
    assert p.stdout.strip() == "ok", p.stdout + p.stderr
    v = chroot(root, "log_capturer", "version").stdout
    assert re.search(r"^libcurl \d", v, re.M), v


def test_installed_unit_verifies(root, tmp_path):
    # systemd-analyze runs on the host (the root has no systemd): the unit as installed,
    # its paths pointed into the root so that it checks the binary the package installed.
    unit = (root / "lib/systemd/system/log_capturer.service").read_text()
    unit = unit.replace("/usr/bin/log_capturer", f"{root}/usr/bin/log_capturer")
    unit = unit.replace("/etc/log_capturer", f"{root}/etc/log_capturer")
    path = tmp_path / "log_capturer.service"
    path.write_text(unit)
    man = tmp_path / "man/man1"
    man.mkdir(parents=True)
    shutil.copy(root / "usr/share/man/man1/log_capturer.1.gz", man)
    p = subprocess.run(["systemd-analyze", "verify", str(path)], capture_output=True, text=True,
                       timeout=60, env=dict(os.environ, MANPATH=str(tmp_path / "man")))
    assert p.returncode == 0 and not p.stderr.strip(), p.stdout + p.stderr


def test_purge_removes_state(root):
    (root / "var/lib/log_capturer/checkpoints.db").write_text("x")
    chroot(root, "dpkg", "--purge", "log-capturer")
    assert not (root / "usr/bin/log_capturer").exists()
    assert not (root / "var/lib/log_capturer").exists()
    assert not (root / "etc/log_capturer/config.yaml").exists()
