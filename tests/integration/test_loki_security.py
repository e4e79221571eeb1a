# SPDX-License-Identifier: MIT
"""test_loki_security.py: issue 16, secrets never leave the process; TLS and auth proven.

The Loki endpoint here is the fake Loki (fake_loki.py) behind real TLS: the openssl CLI makes
a CA, a server certificate (for IP 127.0.0.1 only) and a client certificate at test time, and
FakeLoki.start_secure() terminates TLS with Python's ssl module on 127.0.0.1, optionally
requiring client certificates and checking basic-auth or bearer credentials.

  * test_tls_case: verification is on by default (refused with a clear error, retried, counted,
    not dead-lettered), tls.ca_file accepted, a wrong host name refused, mutual TLS accepted
    with tls.cert_file/key_file and refused without, insecure_skip_verify warns at start,
    basic auth and bearer token accepted by the endpoint.
  * test_auth_failure_holds_then_resumes: 401s hold every batch (breaker open, /health says
    "authentication failed", inputs paused, counted, nothing dead-lettered); the password file
    is fixed, SIGHUP re-reads it and every line arrives once.
  * test_secrets_never_leave: secrets in every place they can be configured, the agent driven
    through start, a 401, a 500, a reload and a DLQ write; every byte it wrote (stderr, stdout,
    /metrics, /health, DLQ files, check-config --print, dlq list, dlq replay) holds none.
"""

import base64
import os
import shutil
import signal
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import agent as ag  # noqa: E402
from fake_loki import FakeLoki  # noqa: E402
from test_loki import agents  # noqa: E402,F401 (fixture)

pytestmark = [
    pytest.mark.skipif(not ag.have_binary(), reason=f"no agent binary at {ag.LC_BIN}"),
    pytest.mark.skipif(shutil.which("openssl") is None, reason="no openssl CLI"),
]

PUSH = "log_capturer_loki_requests_total"


# ----------------------------------------------------------------------------- certificates


def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE, timeout=30)


def _leaf(d, name, cn, ext):
    _openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={cn}",
             cwd=d)
    (d / f"{name}.ext").write_text(
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        f"{ext}\n"
        "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid,issuer\n")
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
             "-CAcreateserial", "-days", "2", "-sha256", "-extfile", f"{name}.ext",
             "-out", f"{name}.crt", cwd=d)
    os.chmod(d / f"{name}.key", 0o600)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A CA, a server certificate for IP 127.0.0.1 (not for "localhost") and a client one."""
    d = tmp_path_factory.mktemp("pki")
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj",
             "/CN=log_capturer test CA", "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    _leaf(d, "server", "127.0.0.1", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth")
    _leaf(d, "client", "log_capturer", "extendedKeyUsage=clientAuth")
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-keyout", "self.key", "-out", "self.crt", "-days", "2", "-subj",
             "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", cwd=d)
    return {k: str(d / k) for k in ("ca.crt", "server.crt", "server.key", "client.crt",
                                     "client.key", "self.crt", "self.key")}


def server_context(pki, client_certs=False, self_signed=False):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    name = "self" if self_signed else "server"
    ctx.load_cert_chain(pki[f"{name}.crt"], pki[f"{name}.key"])
    if client_certs:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(pki["ca.crt"])
    return ctx


# ----------------------------------------------------------------------------- helpers


def loki_output(url, **over):
    out = {
        "type": "loki",
        "name": "loki",
        "url": url,
        "timeout": "3s",
        "max_inflight": 2,
        "retry": {"initial": "200ms", "max": "1s"},
        "breaker": {"failures": 50, "cooldown": "500ms"},
    }
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = {**out[k], **v}
        else:
            out[k] = v
    return out


def file_input(logdir):
    return {"type": "file", "name": "logs", "paths": [str(Path(logdir) / "*.log")],
            "start_at": "beginning", "labels": {"job": "sec"}, "max_line_bytes": "16KiB"}


def write_lines(path, start, n, tag="line"):
    with open(path, "a") as f:
        f.write("".join(f"{tag} seq={i} msg=\"request handled\" pad={'x' * 60}\n"
                        for i in range(start, start + n)))


def seqs_received(fake, tag="line"):
    out = []
    for e in fake.entries():
        parts = e["line"].split()
        if parts and parts[0] == tag:
            out.append(int(parts[1].split("=")[1]))
    return out


def dlq_files(a):
    d = a.state_dir / "dlq"
    return sorted(p for p in d.rglob("*") if p.is_file()) if d.exists() else []


def dlq_segments(a):
    return [p for p in dlq_files(a) if p.suffix == ".ndjson"]


def log_msgs(a):
    return [r.get("msg", "") for r in a.log_records()]


def wait_log(a, needle, timeout):
    ok = ag.wait_until(lambda: any(needle in m for m in log_msgs(a)), ag.scaled(timeout))
    assert ok, f"no log line with {needle!r} within {timeout}s:\n{a.stderr()[-3000:]}"
    return [m for m in log_msgs(a) if needle in m]


@pytest.fixture
def fakes():
    started = []

    def make(ctx=None):
        f = FakeLoki()
        f.start_secure(ctx)
        started.append(f)
        return f

    yield make
    for f in started:
        f.stop()


def new_agent(agents, *args, **kw):
    """An agent that the `agents` fixture (test_loki.py) cleans up."""
    a = ag.Agent(*args, **kw)
    agents.append(a)
    return a


# ----------------------------------------------------------------------------- TLS matrix

# (case, server: "ca" (a certificate from the test CA), "mtls" (the same, client certificates
# required) or "self" (self-signed), url host, output options, auth, expected)
# auth: None, ("basic", user, password) or ("bearer", token); expected: "delivered", or the
# text the refusal's log line must hold.
TLS_CASES = [
    ("self_signed_refused_by_default", "self", "127.0.0.1", {}, None, "tls.ca_file"),
    ("unknown_ca_refused_by_default", "ca", "127.0.0.1", {}, None, "tls.ca_file"),
    ("ca_file_accepted", "ca", "127.0.0.1", {"tls": {"ca_file": "@ca"}}, None, "delivered"),
    ("wrong_host_name_refused", "ca", "localhost", {"tls": {"ca_file": "@ca"}}, None,
     "'localhost'"),
    ("mtls_accepted", "mtls", "127.0.0.1",
     {"tls": {"ca_file": "@ca", "cert_file": "@cert", "key_file": "@key"}}, None, "delivered"),
    ("mtls_refused_without_client_cert", "mtls", "127.0.0.1", {"tls": {"ca_file": "@ca"}}, None,
     "tls.cert_file"),
    ("insecure_skip_verify_warns", "self", "127.0.0.1", {"tls": {"insecure_skip_verify": True}},
     None, "delivered"),
    ("basic_auth_checked", "ca", "127.0.0.1",
     {"tls": {"ca_file": "@ca"}, "basic_auth": {"username": "lc", "password_file": "@pw"}},
     ("basic", "lc", "pw-ok-1"), "delivered"),
    ("bearer_token_checked", "ca", "127.0.0.1",
     {"tls": {"ca_file": "@ca"}, "bearer_token_file": "@tok"}, ("bearer", "tok-ok-1"),
     "delivered"),
]


def _resolve(v, files):
    if isinstance(v, dict):
        return {k: _resolve(x, files) for k, x in v.items()}
    if isinstance(v, str) and v.startswith("@"):
        return files[v[1:]]
    return v


@pytest.mark.parametrize("case,server,host,opts,auth,expected", TLS_CASES,
                         ids=[c[0] for c in TLS_CASES])
def test_tls_case(tmp_path, pki, fakes, agents, case, server, host, opts, auth, expected):
    fake = fakes(server_context(pki, server == "mtls", server == "self"))
    if auth and auth[0] == "basic":
        fake.require_auth(basic=(auth[1], auth[2]))
    elif auth:
        fake.require_auth(bearer=auth[1])
    (tmp_path / "pw").write_text("pw-ok-1\n")
    (tmp_path / "tok").write_text("tok-ok-1\n")
    files = {"ca": pki["ca.crt"], "cert": pki["client.crt"], "key": pki["client.key"],
             "pw": str(tmp_path / "pw"), "tok": str(tmp_path / "tok")}
    logdir = tmp_path / "logs"
    logdir.mkdir()
    write_lines(logdir / "a.log", 0, 20)
    # credentials in the URL too (unless the endpoint checks others): never in the log
    userinfo = "" if auth else "lcuser:TlsUrlPw-0b0b@"
    out = loki_output(f"https://{userinfo}{host}:{fake.port}", **_resolve(opts, files))
    a = new_agent(agents, tmp_path, [file_input(logdir)], [out], extra={"shutdown_timeout": "1s"})
    a.start()

    if expected == "delivered":
        assert fake.wait_entries(20, ag.scaled(15)), (
            f"{case}: {len(fake.entries())} of 20 entries arrived:\n{a.stderr()[-3000:]}")
        assert sorted(seqs_received(fake)) == list(range(20))
        if auth:
            assert all(r["status"] == 204 for r in fake.requests()), fake.requests()
        warned = [m for m in log_msgs(a) if "insecure_skip_verify" in m]
        if case == "insecure_skip_verify_warns":
            assert warned and "NOT" in warned[0], log_msgs(a)
        else:
            assert not warned
    else:
        # refused: a clear error, retried, counted, not dead-lettered, nothing received
        msgs = wait_log(a, "push failed", 10)
        assert any(expected in m for m in msgs), msgs
        assert ag.wait_until(lambda: a.metric(PUSH, output="loki", status="error") >= 2,
                             ag.scaled(10)), "the refused push was not retried"
        assert a.metric("log_capturer_loki_retries_total", output="loki") >= 2
        assert a.metric("log_capturer_loki_dead_lettered_batches_total", output="loki") == 0
        assert dlq_segments(a) == []
        assert fake.entries() == []
        if server == "mtls":
            assert fake.tls_failures(), "the server saw no failed handshake"
        print(f"\n[tls] {case}: {msgs[0]}")
    assert a.stop() == 0
    assert "TlsUrlPw" not in a.stderr() + a.stdout()


# ----------------------------------------------------------------------------- 401 sequence


def test_auth_failure_holds_then_resumes(tmp_path, pki, fakes, agents):
    """401: held, never dead-lettered, inputs paused; SIGHUP re-reads password_file; no loss."""
    fake = fakes(server_context(pki))
    fake.require_auth(basic=("lc", "right-pw"))
    pw = tmp_path / "pw"
    pw.write_text("wrong-pw\n")
    logdir = tmp_path / "logs"
    logdir.mkdir()
    n = 15000  # ~1.7 MB: more than max_pending_bytes, so the inputs must pause
    write_lines(logdir / "a.log", 0, n)
    out = loki_output(f"https://127.0.0.1:{fake.port}", tls={"ca_file": pki["ca.crt"]},
                      basic_auth={"username": "lc", "password_file": str(pw)},
                      retry={"max_batches": 2}, breaker={"failures": 5, "cooldown": "500ms"})
    a = new_agent(agents, tmp_path, [file_input(logdir)], [out],
               extra={"max_pending_bytes": "1MiB", "batch_bytes": "128KiB",
                      "shutdown_timeout": "1s"})
    a.start()

    assert ag.wait_until(
        lambda: a.metric("log_capturer_loki_auth_failures_total", output="loki") >= 3,
        ag.scaled(15)), f"no 401 counted:\n{a.stderr()[-3000:]}"
    assert ag.wait_until(lambda: a.metric("log_capturer_pipeline_paused") == 1, ag.scaled(5)), (
        f"inputs never paused:\n{a.stderr()[-3000:]}")
    assert a.metric("log_capturer_loki_breaker_state", output="loki") in (1, 2)
    assert a.metric("log_capturer_loki_breaker_opens_total", output="loki") >= 1
    status, health = a.health()
    assert status == 503, health
    assert "authentication failed" in str(health), health
    # the breaker holds pushes: a few probes, not a storm
    before = len(fake.requests())
    time.sleep(1.0)
    assert len(fake.requests()) - before <= 4, "pushes continue while the breaker is open"
    assert a.metric("log_capturer_loki_dead_lettered_batches_total", output="loki") == 0
    assert dlq_segments(a) == []
    assert fake.entries() == []
    assert any("authentication failed" in m for m in log_msgs(a))

    pw.write_text("right-pw\n")
    a.proc.send_signal(signal.SIGHUP)
    assert fake.wait_entries(n, ag.scaled(30)), (
        f"{len(fake.entries())} of {n} entries after the reload:\n{a.stderr()[-3000:]}")
    got = seqs_received(fake)
    assert sorted(got) == list(range(n)), "lines lost or duplicated across the 401 hold"
    assert any("configuration reloaded" in m for m in log_msgs(a))
    assert ag.wait_until(lambda: a.health()[0] == 200, ag.scaled(5)), a.health()
    assert a.metric("log_capturer_loki_dead_lettered_batches_total", output="loki") == 0
    assert a.stop() == 0


# ----------------------------------------------------------------------------- secrets

SECRETS = {
    "url_password": "UrlPw-9f1c2e",
    "url_query_token": "QueryTok-4b7d1a",
    "basic_inline_password": "InlinePw-77e0c3",
    "basic_file_password": "FilePw-31aa90",
    "bearer_env_token": "EnvBearer-c0ffee",
    "bearer_file_token_wrong": "WrongBearer-5e5e5e",
    "bearer_file_token": "GoodBearer-a1b2c3",
    "x_api_key": "ApiKey-0d0d0d",
    "cookie": "CookieVal-8c8c8c",
    "secret_header": "CustomSecret-6a6a6a",
}


def _forms(secret):
    """The secret as written, and as a basic-auth header would carry it."""
    yield secret
    yield base64.b64encode(f"lcuser:{secret}".encode()).decode()


def test_secrets_never_leave(tmp_path, fakes, agents):
    fake = fakes(None)
    s = SECRETS
    fake.require_auth(bearer=s["bearer_file_token"])
    tok = tmp_path / "token"
    tok.write_text(s["bearer_file_token_wrong"] + "\n")
    pwf = tmp_path / "password"
    pwf.write_text(s["basic_file_password"] + "\n")
    logdir = tmp_path / "logs"
    logdir.mkdir()
    out = loki_output(
        f"http://lcuser:{s['url_password']}@127.0.0.1:{fake.port}/?api_token={s['url_query_token']}",
        tenant="tenant-shown",
        basic_auth={"username": "lcuser", "password": s["basic_inline_password"],
                    "password_file": str(pwf)},
        bearer_token="${LC_TEST_BEARER}",
        bearer_token_file=str(tok),
        headers={"X-Api-Key": s["x_api_key"], "Cookie": f"session={s['cookie']}",
                 "X-Custom-Auth": {"value": s["secret_header"], "secret": True},
                 "X-Visible": "visible-value"},
        retry={"initial": "100ms", "max": "500ms"},
        breaker={"failures": 50, "cooldown": "300ms"})
    a = new_agent(agents, tmp_path, [file_input(logdir)], [out], extra={"shutdown_timeout": "1s"})
    env_before = os.environ.get("LC_TEST_BEARER")
    os.environ["LC_TEST_BEARER"] = s["bearer_env_token"]
    try:
        _drive(a, fake, tok, logdir)
        outputs = _collect(a, fake)
    finally:
        if env_before is None:
            os.environ.pop("LC_TEST_BEARER", None)
        else:
            os.environ["LC_TEST_BEARER"] = env_before

    # the outputs are real: they name the endpoint, the tenant and the visible header
    everything = "\n".join(outputs.values())
    assert f"127.0.0.1:{fake.port}" in outputs["stderr"]
    assert "tenant-shown" in outputs["check-config --print"]
    assert "visible-value" in outputs["check-config --print"]
    assert "***" in outputs["check-config --print"]
    assert outputs["dlq files"], "no DLQ file was written"
    leaks = []
    for where, text in outputs.items():
        for name, secret in SECRETS.items():
            for form in _forms(secret):
                if form in text:
                    leaks.append(f"{name} in {where}")
    for where in outputs:
        print(f"\n[secrets] checked {where}: {len(outputs[where])} bytes")
    assert not leaks, "secrets leaked: " + ", ".join(sorted(set(leaks)))
    assert len(everything) > 1000


def _drive(a, fake, tok, logdir):
    """start -> 401 (wrong token file) -> reload with the right one -> 500 -> a DLQ write."""
    s = SECRETS
    write_lines(logdir / "a.log", 0, 10)
    a.start()
    wait_log(a, "authentication failed", 10)
    status, health = a.health()
    assert "authentication failed" in str(health)
    a.outputs_seen = [ag.http_get(a.port, "/health")[1].decode(),
                      ag.http_get(a.port, "/metrics")[1].decode()]

    tok.write_text(s["bearer_file_token"] + "\n")
    a.proc.send_signal(signal.SIGHUP)
    assert fake.wait_entries(10, ag.scaled(20)), a.stderr()[-3000:]
    assert {r["authorization"] for r in fake.requests() if r["status"] == 204} == {
        "Bearer " + s["bearer_file_token"]}

    fake.set_mode("500", count=2)
    write_lines(logdir / "a.log", 10, 10)
    assert fake.wait_entries(20, ag.scaled(20)), a.stderr()[-3000:]
    assert fake.stats()["requests_by_status"].get("500") == 2

    # a server that quotes the credentials in its 400 answer: the batch is dead-lettered
    fake.set_mode("status", count=1, status=400,
                  body=f"bad request: Authorization: Bearer {s['bearer_file_token']}\n"
                       f"from http://lcuser:{s['url_password']}@127.0.0.1/")
    write_lines(logdir / "a.log", 20, 5)
    assert ag.wait_until(lambda: a.metric("log_capturer_loki_dead_lettered_batches_total",
                                          output="loki") >= 1, ag.scaled(15)), a.stderr()[-3000:]
    a.outputs_seen += [ag.http_get(a.port, "/health")[1].decode(),
                       ag.http_get(a.port, "/metrics")[1].decode()]
    assert a.stop() == 0


def _collect(a, fake):
    """Every byte the agent and its commands wrote."""
    env = dict(os.environ)
    outs = {"stderr": a.stderr(), "stdout": a.stdout(),
            "/health and /metrics": "\n".join(a.outputs_seen)}
    dfiles = dlq_files(a)
    outs["dlq files"] = "\n".join(p.read_text(errors="replace") for p in dfiles)
    for mode in (p.stat().st_mode & 0o777 for p in dlq_segments(a)):
        assert mode == 0o600, oct(mode)
    for name, argv in (("check-config --print", ["check-config", "--print", str(a.cfg_path)]),
                       ("dlq list", ["dlq", "list", "-c", str(a.cfg_path)])):
        r = subprocess.run([ag.LC_BIN, *argv], capture_output=True, text=True, timeout=30,
                           env=env)
        assert r.returncode == 0, (name, r.stderr)
        outs[name] = r.stdout + r.stderr
    # replay against an endpoint that now wants other credentials (its 401 quotes the header
    # it got): replay stops at once, keeps the DLQ, and its messages are checked too
    fake.require_auth(bearer="rotated-elsewhere")
    r = subprocess.run([ag.LC_BIN, "dlq", "replay", "-c", str(a.cfg_path)], capture_output=True,
                       text=True, timeout=60, env=env)
    outs["dlq replay"] = r.stdout + r.stderr
    assert "authentication failed (401)" in outs["dlq replay"], outs["dlq replay"]
    assert r.returncode != 0
    assert dlq_segments(a), "replay removed what it could not deliver"
    return outs
