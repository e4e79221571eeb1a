# SPDX-License-Identifier: MIT
"""test_promtail.py: the Promtail drop-in (issue 17) with the real binary.

* Every configuration of tests/promtail/corpus (shaped like Promtail's documentation examples
  and common deployments, written for this test) converts, passes check-config, and runs on
  its Promtail form (`run --promtail-config`) against the fake Loki: its file targets' lines
  arrive, labelled with `filename` and the config's labels.
* Equivalence: a Promtail config with a multi-stage pipeline and the native config it converts
  to send the same entries (labels, timestamps, lines).
* Promtail's documented stage examples (docker, cri, regex, json, logfmt, replace, template,
  timestamp, drop, output, static_labels) give the documented results (test-process on the
  converted config).
* Switch-over: Promtail's positions file at offsets in the middle of three growing files; the
  agent started on the Promtail config sends every line after the offsets once and none before.
"""

import calendar
import json
import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
import yaml

import agent as ag

pytestmark = pytest.mark.skipif(not ag.have_binary(), reason="build/log_capturer not built")

try:  # the journal writer of test_journal.py (skips itself without systemd-journal-remote)
    from test_journal import Journal
except BaseException:  # pytest's module-level skip is a BaseException
    Journal = None

CORPUS = sorted((ag.REPO / "tests" / "promtail" / "corpus").glob("*.yaml"))
PUSH = "/loki/api/v1/push"


class PromtailAgent:
    """The binary on a Promtail config (run --promtail-config), stderr to a file."""

    def __init__(self, workdir, cfg_path, state_dir, args=()):
        self.cfg_path = cfg_path
        self.env = dict(os.environ, LC_STATE_DIR=str(state_dir))
        self.stderr_path = Path(workdir) / (Path(cfg_path).stem + ".stderr")
        self.args = list(args)
        self.proc = None

    def start(self, once=False):
        argv = [*ag.WRAPPER, ag.LC_BIN, "run", "--promtail-config", str(self.cfg_path), *self.args]
        if once:
            argv.append("--once")
        self._err = open(self.stderr_path, "ab")
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=self._err,
                                     stdin=subprocess.DEVNULL, env=self.env)
        return self

    def stderr(self):
        return self.stderr_path.read_text(errors="replace")

    def wait(self, timeout=30):
        try:
            rc = self.proc.wait(timeout=ag.scaled(timeout))
        finally:
            self._err.close()
        ag.assert_no_sanitizer_report(self.stderr())
        return rc

    def stop(self, timeout=30):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.wait(timeout)

    def wait_ready(self, port, timeout=15):
        def ready():
            assert self.proc.poll() is None, f"exited {self.proc.returncode}:\n{self.stderr()[-3000:]}"
            try:
                return ag.http_get(port, "/ready", timeout=1)[0] == 200
            except OSError:
                return False
        assert ag.wait_until(ready, timeout), self.stderr()[-3000:]


def glob_example(pattern):
    """A concrete relative path the glob matches: each '*' becomes 'x'."""
    return pattern.lstrip("/").replace("*", "x")


def localize(src, tmp, fake, sample_lines):
    """The corpus config made runnable here: clients to the fake Loki, paths under tmp, the
    listener and syslog on free loopback ports, the journal on an empty directory. Writes a
    file per file target (sample_lines in it); returns (config path, listen port, files)."""
    cfg = yaml.safe_load(Path(src).read_text())
    port = ag.free_port()
    cfg.setdefault("server", {})
    cfg["server"]["http_listen_address"] = "127.0.0.1"
    cfg["server"]["http_listen_port"] = port
    cfg["positions"] = {"filename": str(tmp / "positions.yaml")}
    for c in cfg["clients"]:
        c["url"] = fake.url + PUSH
        for k in ("tls_config", "basic_auth", "bearer_token_file"):
            c.pop(k, None)
    files = []
    for sc in cfg["scrape_configs"]:
        for st in sc.get("static_configs", []):
            lab = st["labels"]
            rel = glob_example(lab["__path__"])
            lab["__path__"] = str(tmp / lab["__path__"].lstrip("/"))
            if "__path_exclude__" in lab:
                lab["__path_exclude__"] = str(tmp / lab["__path_exclude__"].lstrip("/"))
            f = tmp / rel
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_text("".join(line + "\n" for line in sample_lines))
            files.append(f)
        for d in sc.get("docker_sd_configs", []):  # no daemon: starts and waits for one
            d["host"] = f"unix://{tmp}/no-docker.sock"
        if "syslog" in sc:
            sc["syslog"]["listen_address"] = f"127.0.0.1:{ag.free_port()}"
        if "journal" in sc:
            (tmp / "journal").mkdir(exist_ok=True)
            sc["journal"]["path"] = str(tmp / "journal")
    out = tmp / ("promtail-" + Path(src).name)
    out.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return out, port, files


@pytest.mark.parametrize("src", CORPUS, ids=[p.stem for p in CORPUS])
def test_corpus_converts_checks_and_runs(src, tmp_path, fake):
    assert len(CORPUS) >= 10
    # the configuration as written converts and the result is valid
    conv = ag.run_cli("convert", str(src))
    assert conv.returncode == 0, conv.stderr
    native = tmp_path / "native.yaml"
    native.write_text(conv.stdout)
    chk = ag.run_cli("check-config", str(native), env={"LC_STATE_DIR": str(tmp_path / "s0")})
    assert chk.returncode == 0 and chk.stdout.strip() == "ok", chk.stderr

    # and runs: made local (fake Loki, files under tmp_path), its files' lines arrive
    line = "level=info msg=\"hello from the corpus\" status=500"
    cfg, port, files = localize(src, tmp_path, fake, [line])
    pt = PromtailAgent(tmp_path, cfg, tmp_path / "state")
    if files:
        assert pt.start(once=True).wait() == 0, pt.stderr()[-3000:]
        got = fake.entries()
        if "labeldrop" in Path(src).read_text():  # filename dropped; pokey's lines dropped
            assert {e["labels"].get("app") for e in got} == {"loki"} and got, got[:3]
            assert all("filename" not in e["labels"] for e in got)
            return
        sent = {e["labels"]["filename"] for e in got}
        assert sent == {str(f) for f in files}, (sent, got[:3])
        want = yaml.safe_load(Path(cfg).read_text())
        for sc in want["scrape_configs"]:
            for st in sc.get("static_configs", []):
                lab = {k: v for k, v in st["labels"].items() if not k.startswith("__")}
                mine = [e for e in got if e["labels"]["filename"].startswith(
                    str(tmp_path / glob_example(st["labels"]["__path__"][len(str(tmp_path)):])))]
                assert mine and all(lab.items() <= e["labels"].items() for e in mine), (lab, mine)
    else:  # network and journal targets: starts, is ready, stops cleanly
        pt.start()
        pt.wait_ready(port)
        assert pt.stop() == 0, pt.stderr()[-3000:]


# server and positions of the configs below (% port, dir)
HEAD = """
server: {http_listen_address: 127.0.0.1, http_listen_port: %(port)d}
positions: {filename: %(dir)s/positions.yaml}
"""

PIPELINE = HEAD + """clients:
  - url: %(url)s/loki/api/v1/push
    external_labels: {cluster: test}
scrape_configs:
  - job_name: app
    static_configs:
      - labels: {job: app, __path__: '%(dir)s/logs/*.log'}
    pipeline_stages:
      - regex:
          expression: '^(?P<time>\\S+) (?P<level>\\w+) (?P<rest>.*)$'
      - timestamp: {source: time, format: RFC3339Nano}
      - json:
          expressions: {user: ctx.user, msg: msg}
          source: rest
      - replace:
          expression: 'token=(\\w+)'
          replace: '***'
          source: msg
      - template:
          source: line
          template: '[{{ .level }}] {{ .msg }} user={{ .user }}'
      - labels: {level: ''}
      - static_labels: {team: core}
      - drop: {source: level, value: debug}
      - output: {source: line}
"""

# Times an hour ago (older ones would be outside Loki's window), as Promtail's RFC3339Nano parses them.
BASE_S = (int(time.time()) - 3600) // 60 * 60
STAMP = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(BASE_S))
LINES = [
    f'{STAMP}.123456789Z info {{"msg":"started token=abc","ctx":{{"user":"ann"}}}}',
    f'{STAMP[:-2]}01Z warn {{"msg":"slow","ctx":{{"user":"bob"}}}}',
    f'{STAMP[:-2]}02Z debug {{"msg":"noise","ctx":{{"user":"cy"}}}}',
    f'{STAMP[:-2]}03.5Z error {{"msg":"failed token=xyz","ctx":{{"user":"dee"}}}}',
]


def entry_set(entries):
    return sorted((json.dumps(e["labels"], sort_keys=True), e["ts"], e["line"]) for e in entries)


def run_both(tmp_path, cfg, fake, keep=lambda e: True):
    """Runs the Promtail config (--promtail-config) and the native config `convert` makes of it,
    each with --once on its own state, against the fake Loki; returns both entry sets."""
    pt = PromtailAgent(tmp_path, cfg, tmp_path / "state-promtail")
    assert pt.start(once=True).wait() == 0, pt.stderr()[-3000:]
    from_promtail = [e for e in fake.entries() if keep(e)]
    fake.reset()
    conv = ag.run_cli("convert", str(cfg))
    assert conv.returncode == 0, conv.stderr
    native = tmp_path / "native.yaml"
    native.write_text(conv.stdout)
    env = dict(os.environ, LC_STATE_DIR=str(tmp_path / "state-native"))
    p = subprocess.run([*ag.WRAPPER, ag.LC_BIN, "run", "-c", str(native), "--once"],
                       capture_output=True, text=True, env=env, timeout=ag.scaled(30))
    assert p.returncode == 0, p.stderr[-3000:]
    ag.assert_no_sanitizer_report(p.stderr)
    return entry_set(from_promtail), entry_set([e for e in fake.entries() if keep(e)]), \
        from_promtail


def test_equivalent_to_converted_native(tmp_path, fake):
    """The Promtail config and the native config it converts to send the same entries, and
    those are the ones Promtail documents for this pipeline."""
    (tmp_path / "logs").mkdir()
    log = tmp_path / "logs" / "app.log"
    log.write_text("".join(line + "\n" for line in LINES))
    cfg = tmp_path / "promtail.yaml"
    cfg.write_text(PIPELINE % {"port": ag.free_port(), "dir": tmp_path, "url": fake.url})

    from_promtail, from_native, _ = run_both(tmp_path, cfg, fake)
    assert from_promtail == from_native and len(from_promtail) == 3

    # Promtail's documented behaviour for this pipeline
    base = {"job": "app", "team": "core", "cluster": "test", "filename": str(log)}
    want = [
        (dict(base, level="info"), BASE_S * 10**9 + 123456789, "[info] started token=*** user=ann"),
        (dict(base, level="warn"), (BASE_S + 1) * 10**9, "[warn] slow user=bob"),
        (dict(base, level="error"), (BASE_S + 3) * 10**9 + 500000000,
         "[error] failed token=*** user=dee"),
    ]
    assert from_promtail == entry_set([{"labels": l, "ts": t, "line": s} for l, t, s in want])


def run_stages(tmp_path, promtail_yaml, lines):
    """Converts a Promtail config, runs lines through its input's stages (test-process)."""
    cfg = tmp_path / "p.yaml"
    cfg.write_text(promtail_yaml)
    conv = ag.run_cli("convert", str(cfg))
    assert conv.returncode == 0, conv.stderr
    native = tmp_path / "n.yaml"
    native.write_text(conv.stdout)
    p = subprocess.run([ag.LC_BIN, "test-process", "-c", str(native), "--input", "s"],
                       input="".join(line + "\n" for line in lines), capture_output=True,
                       text=True, timeout=ag.scaled(20), env=dict(os.environ, LC_STATE_DIR=str(tmp_path)))
    assert p.returncode == 0, p.stderr
    ag.assert_no_sanitizer_report(p.stderr)
    return [json.loads(x) for x in p.stdout.splitlines()]




def stages_config(stages):
    return ("clients: [{url: 'http://127.0.0.1:1/loki/api/v1/push'}]\n"
            "scrape_configs:\n  - job_name: s\n"
            "    static_configs: [{labels: {job: s, __path__: /nonexistent/*.log}}]\n"
            "    pipeline_stages:\n" + stages)


# (stages, input lines, expected [(line, labels subset, ts_ns or None, fields subset)]):
# the examples of Promtail's stage documentation.
DOC_EXAMPLES = {
    "docker": (
        "      - docker: {}\n",
        ['{"log":"log message\\n","stream":"stderr","time":"2019-04-30T02:12:41.8443515Z"}'],
        [("log message\n", {"stream": "stderr"}, 1556590361844351500, {})]),
    "cri": (
        "      - cri: {}\n",
        ["2019-01-01T01:00:00.000000001Z stderr F test"],
        [("test", {"stream": "stderr"}, 1546304400000000001, {"flags": "F"})]),
    "regex": (
        "      - regex:\n"
        "          expression: '^(?s)(?P<time>\\S+?) (?P<stream>stdout|stderr) (?P<flags>\\S+?) "
        "(?P<content>.*)$'\n",
        ["2019-01-01T01:00:00.000000001Z stderr P i'm a log message!"],
        [(None, {}, None, {"time": "2019-01-01T01:00:00.000000001Z", "stream": "stderr",
                           "flags": "P", "content": "i'm a log message!"})]),
    "json": (
        "      - json:\n          expressions:\n            output: log\n"
        "            stream: stream\n            timestamp: time\n"
        "            extra:\n      - json:\n          expressions:\n"
        "            user:\n          source: extra\n",
        ['{"log":"log message\\n","stream":"stderr","time":"2019-04-30T02:12:41.8443515Z",'
         '"extra":"{\\"user\\":\\"marco\\"}"}'],
        [(None, {}, None, {"output": "log message\n", "stream": "stderr",
                           "timestamp": "2019-04-30T02:12:41.8443515Z", "user": "marco"})]),
    "logfmt": (
        "      - logfmt:\n          mapping:\n            timestamp: time\n            app:\n"
        "            duration:\n            unknown:\n",
        ["time=2012-11-01T22:08:41+00:00 app=loki level=WARN duration=125 message=\"this is a "
         "log line\" extra=\"user=foo\""],
        [(None, {}, None, {"timestamp": "2012-11-01T22:08:41+00:00", "app": "loki",
                           "duration": "125"})]),
    "replace": (
        "      - replace:\n          expression: 'password (\\S+)'\n          replace: '****'\n",
        ["2019-01-01T01:00:00.000000001Z stderr P i'm a log message who has sensitive "
         "information with password xyz!"],
        [("2019-01-01T01:00:00.000000001Z stderr P i'm a log message who has sensitive "
          "information with password ****", {}, None, {})]),
    "template": (
        "      - regex: {expression: '^(?P<app>\\w+)'}\n"
        "      - template:\n          source: app\n          template: '{{ .Value }}_some_suffix'\n",
        ["loki is here"],
        [(None, {}, None, {"app": "loki_some_suffix"})]),
    "timestamp-unixms": (
        "      - regex: {expression: '^(?P<ts>\\d+) '}\n"
        "      - timestamp: {source: ts, format: UnixMs}\n",
        ["1562708916414 a line"],
        [("1562708916414 a line", {}, 1562708916414000000, {})]),
    # Go layouts with fractional seconds: .000 exactly 3 digits, .999999999 any (Go's parser)
    "timestamp-go-fraction": (
        "      - regex: {expression: '^(?P<ts>\\S+ \\S+) '}\n"
        "      - timestamp: {source: ts, format: '2006-01-02 15:04:05.000', "
        "fallback_formats: ['2006-01-02 15:04:05.999999999']}\n",
        ["2024-05-01 10:00:00.123 a", "2024-05-01 10:00:00,5 b",
         "2024-05-01 10:00:00.000000007 c", "2024-05-01 10:00:00 d"],
        [("2024-05-01 10:00:00.123 a", {}, 1714557600123000000, {}),
         ("2024-05-01 10:00:00,5 b", {}, 1714557600500000000, {}),
         ("2024-05-01 10:00:00.000000007 c", {}, 1714557600000000007, {}),
         ("2024-05-01 10:00:00 d", {}, 1714557600000000000, {})]),
    "match-labeldrop": (
        "      - match:\n          selector: '{job=\"s\"}'\n          stages:\n"
        "            - regex: {expression: '^(?P<level>\\w+) '}\n"
        "            - labels: {level: ''}\n"
        "      - match: {selector: '{job=~\"x|y\"}', action: drop}\n"
        "      - labeldrop: [job]\n",
        ["warn something"],
        [("warn something", {"level": "warn"}, None, {})]),
    # Promtail's match example: selectors on a label a `labels` stage sets per line, and a line
    # filter: the native match stage, decided per record
    "match-per-line": (
        "      - json:\n          expressions:\n            app:\n"
        "      - labels:\n          app:\n"
        "      - match:\n          selector: '{app=\"loki\"}'\n          stages:\n"
        "            - json:\n                expressions:\n                  msg: message\n"
        "      - match:\n          pipeline_name: 'app2'\n          selector: '{app=\"pokey\"}'\n"
        "          action: keep\n          stages:\n"
        "            - json:\n                expressions:\n                  msg: msg\n"
        "      - match:\n          selector: '{app=\"promtail\"} |~ \".*noisy error.*\"'\n"
        "          action: drop\n          drop_counter_reason: promtail_noisy_error\n"
        "      - output:\n          source: msg\n",
        ['{ "time":"2012-11-01T22:08:41+00:00", "app":"loki", "component": ["parser","type"], '
         '"level" : "WARN", "message" : "app1 log line" }',
         '{ "time":"2012-11-01T22:08:41+00:00", "app":"promtail", "component": ["parser","type"],'
         ' "level" : "ERROR", "message" : "foo noisy error" }',
         '{ "app":"pokey", "msg":"pokey line" }',
         '{ "app":"lokix", "message":"anchored: no match" }'],
        [("app1 log line", {"app": "loki"}, None, {}), {"dropped": "promtail_noisy_error"},
         ("pokey line", {"app": "pokey"}, None, {}),
         ('{ "app":"lokix", "message":"anchored: no match" }', {"app": "lokix"}, None, {})]),
    "drop-and-static-labels": (
        "      - regex: {expression: '^(?P<level>\\w+) '}\n"
        "      - drop: {source: level, value: debug, drop_counter_reason: noise}\n"
        "      - labels: {level: ''}\n"
        "      - static_labels: {custom_key: custom_value}\n"
        "      - output: {source: level}\n",
        ["debug dropped", "info kept"],
        [({"dropped": "noise"}), ("info", {"level": "info", "custom_key": "custom_value"}, None,
                                  {})]),
}


def test_structured_metadata_stage(tmp_path):
    """Promtail's structured_metadata stage maps to the native stage of the same shape (built
    in parallel: skipped when this binary does not have it)."""
    if "Stage `structured_metadata`" not in ag.run_cli("options").stdout:
        pytest.skip("this build has no native structured_metadata stage yet")
    got = run_stages(tmp_path, stages_config(
        "      - regex: {expression: 'trace=(?P<trace_id>\\w+)'}\n"
        "      - structured_metadata: {trace_id: ''}\n"), ["GET / trace=abc123"])
    assert len(got) == 1 and got[0]["line"] == "GET / trace=abc123", got
    assert "trace_id" not in got[0]["labels"]


@pytest.mark.parametrize("name", sorted(DOC_EXAMPLES))
def test_documented_stage_examples(name, tmp_path):
    stages, lines, want = DOC_EXAMPLES[name]
    got = run_stages(tmp_path, stages_config(stages), lines)
    assert len(got) == len(want), got
    for g, w in zip(got, want):
        if isinstance(w, dict):
            assert g == w
            continue
        line, labels, ts, fields = w
        if line is not None:
            assert g["line"] == line
        assert labels.items() <= g["labels"].items(), g
        if ts is not None:
            assert g["ts_ns"] == ts
        assert fields.items() <= g["fields"].items(), g
    if name == "match-labeldrop":
        assert "job" not in got[0]["labels"]


def test_switch_over_from_promtail_positions(tmp_path, fake):
    """Three growing files, Promtail's positions in the middle of each: every line after the
    offsets arrives once, none before them."""
    logs = tmp_path / "logs"
    logs.mkdir()
    files = [logs / f"f{i}.log" for i in range(3)]
    offsets, before = {}, {}
    for i, f in enumerate(files):
        first = [f"f{i} line {n:05d}" for n in range(200)]
        f.write_text("".join(x + "\n" for x in first))
        cut = 80 + 20 * i  # Promtail had read this many lines
        before[f] = set(first[:cut])
        offsets[str(f)] = str(sum(len(x) + 1 for x in first[:cut]))
    (tmp_path / "positions.yaml").write_text(yaml.safe_dump({"positions": offsets}))
    port = ag.free_port()
    cfg = tmp_path / "promtail.yaml"
    cfg.write_text(
        f"server: {{http_listen_address: 127.0.0.1, http_listen_port: {port}}}\n"
        f"positions: {{filename: {tmp_path}/positions.yaml}}\n"
        f"clients: [{{url: '{fake.url}{PUSH}', batchwait: 100ms}}]\n"
        "scrape_configs:\n  - job_name: app\n"
        f"    static_configs: [{{labels: {{job: app, __path__: '{logs}/*.log'}}}}]\n")

    stop = threading.Event()
    written = {f: 200 for f in files}

    def grow():
        n = 200
        while not stop.is_set() and n < 600:
            for i, f in enumerate(files):
                with open(f, "a") as fh:
                    fh.write(f"f{i} line {n:05d}\n")
                written[f] = n + 1
            n += 1
            time.sleep(0.002)

    w = threading.Thread(target=grow)
    w.start()
    pt = PromtailAgent(tmp_path, cfg, tmp_path / "state")
    try:
        pt.start()
        pt.wait_ready(port)
        w.join(ag.scaled(20))
    finally:
        stop.set()
        w.join(5)
    expect = sum(written[f] - (80 + 20 * i) for i, f in enumerate(files))
    fake.wait_entries(expect, ag.scaled(15))
    assert pt.stop() == 0, pt.stderr()[-3000:]
    got = [e["line"] for e in fake.entries()]
    dups = len(got) - len(set(got))
    early = [x for x in got for f in files if x in before[f]]
    missing = [f"f{i} line {n:05d}" for i, f in enumerate(files)
               for n in range(80 + 20 * i, written[f]) if f"f{i} line {n:05d}" not in set(got)]
    assert (dups, len(early), len(missing)) == (0, 0, 0), (dups, early[:3], missing[:3])
    assert len(got) == expect
    assert "positions: imported 3 entries" in pt.stderr()


JOURNAL_PROMTAIL = HEAD + """clients: [{url: '%(url)s/loki/api/v1/push'}]
scrape_configs:
  - job_name: journal
    journal:
      path: %(dir)s/journal
      max_age: 1h
      labels: {job: systemd-journal}
    relabel_configs:
      - {source_labels: [__journal__systemd_unit], target_label: unit}
      - {source_labels: [__journal_priority_keyword], target_label: level}
      - {source_labels: [__journal__hostname], target_label: host}
    pipeline_stages:
      - regex: {expression: 'seq=(?P<seq>\\d+)'}
      - drop: {source: seq, value: "3"}
      - static_labels: {source: journal}
"""


@pytest.mark.skipif(Journal is None, reason="systemd-journal-remote not installed")
def test_journal_equivalent_to_converted_native(tmp_path, fake):
    """A journal scrape config with relabelled fields and a pipeline: the Promtail config and
    its native conversion send the same entries, with the labels Promtail's relabelling makes."""
    j = Journal(tmp_path / "journal")
    stamps = j.write([{"MESSAGE": f"pt-journal seq={i}", "_SYSTEMD_UNIT": "app.service",
                       "PRIORITY": 4, "_HOSTNAME": "h1", "SYSLOG_IDENTIFIER": "app"}
                      for i in range(6)])
    cfg = tmp_path / "promtail.yaml"
    cfg.write_text(JOURNAL_PROMTAIL % {"port": ag.free_port(), "dir": tmp_path, "url": fake.url})
    from_promtail, from_native, _ = run_both(tmp_path, cfg, fake)
    assert from_promtail == from_native
    labels = {"job": "systemd-journal", "unit": "app.service", "level": "warning", "host": "h1",
              "source": "journal"}
    want = [{"labels": labels, "ts": stamps[i] * 1000, "line": f"pt-journal seq={i}"}
            for i in range(6) if i != 3]
    assert from_promtail == entry_set(want)


DOCKER_PROMTAIL = HEAD + """clients: [{url: '%(url)s/loki/api/v1/push'}]
scrape_configs:
  - job_name: containers
    static_configs:
      - labels: {job: docker, __path__: '%(root)s/containers/*/*-json.log'}
    pipeline_stages:
      - docker: {}
      - regex: {expression: '^(?P<level>[A-Z]+) '}
      - labels: {level: ''}
      - drop: {source: level, value: DEBUG}
"""


@pytest.mark.docker
def test_docker_logs_equivalent_to_converted_native(tmp_path, fake, docker):
    """Docker's json-file logs through the docker stage: the Promtail config and its native
    conversion send the same entries; stream and level labels and Docker's times as Promtail's
    docker stage documents them."""
    cid = docker.run_container(
        "pt-docker", "echo 'INFO started'; echo 'DEBUG noise'; echo 'ERROR failed' >&2")
    docker.wait(cid, timeout=30)
    cfg = tmp_path / "promtail.yaml"
    cfg.write_text(DOCKER_PROMTAIL % {"port": ag.free_port(), "dir": tmp_path, "url": fake.url,
                                      "root": docker.data_root})
    from_promtail, from_native, got = run_both(
        tmp_path, cfg, fake, keep=lambda e: cid in e["labels"]["filename"])
    assert from_promtail == from_native
    # Docker's own times for the lines (docker logs --timestamps), RFC3339Nano
    stamps = {}
    out, err = docker.logs(cid, timestamps=True)
    for row in out + err:
        ts, _, text = row.partition(" ")
        stamps[text.strip()] = ts
    want = {("stdout", "INFO", "INFO started\n"), ("stderr", "ERROR", "ERROR failed\n")}
    assert {(e["labels"]["stream"], e["labels"]["level"], e["line"]) for e in got} == want
    for e in got:
        assert e["labels"]["job"] == "docker"
        ts = stamps[e["line"].strip()]
        secs = calendar.timegm(time.strptime(ts[:19], "%Y-%m-%dT%H:%M:%S"))
        frac = ts[20:-1] if "." in ts else ""
        assert e["ts"] == secs * 10**9 + int((frac + "000000000")[:9]), (e, ts)


DOCKER_SD_PROMTAIL = HEAD + """clients: [{url: '%(url)s/loki/api/v1/push'}]
scrape_configs:
  - job_name: flog_scrape
    docker_sd_configs:
      - host: unix://%(sock)s
        refresh_interval: 5s
    relabel_configs:
      - source_labels: ['__meta_docker_container_name']
        regex: '/(.*)'
        target_label: 'container'
      - source_labels: ['__meta_docker_container_label_logging']
        regex: 'promtail'
        action: keep
      - source_labels: ['__meta_docker_container_log_stream']
        target_label: 'logstream'
"""


@pytest.mark.docker
def test_docker_sd_relabel_configs(tmp_path, fake, docker):
    """docker_sd_configs with relabel_configs on the real engine: the kept container's lines
    arrive labelled container=<its name> (Docker's '/' cut by the regex) and logstream; the
    keep rule leaves out the container without the label; the native conversion agrees."""
    kept = docker.run_container("pt-sd-kept", "echo 'out line'; echo 'err line' >&2; sleep 600",
                                labels={"logging": "promtail"})
    other = docker.run_container("pt-sd-other", "echo 'not me'; sleep 600")
    assert ag.wait_until(lambda: all(docker.logs(kept)) and docker.logs(other)[0], 20,
                         interval=0.2)
    name = docker.api_json(f"/containers/{kept}/json")["Name"].lstrip("/")
    cfg = tmp_path / "promtail.yaml"
    cfg.write_text(DOCKER_SD_PROMTAIL % {"port": ag.free_port(), "dir": tmp_path,
                                         "url": fake.url, "sock": docker.sock})
    from_promtail, from_native, got = run_both(tmp_path, cfg, fake)
    assert from_promtail == from_native
    assert {(tuple(sorted(e["labels"].items())), e["line"].rstrip("\n")) for e in got} == {
        ((("container", name), ("logstream", "stdout")), "out line"),
        ((("container", name), ("logstream", "stderr")), "err line"),
    }, got
    # the other container is left out by the keep rule, said once, and never read
    other_name = docker.api_json(f"/containers/{other}/json")["Name"].lstrip("/")
    log = (tmp_path / "promtail.stderr").read_text(errors="replace")
    assert log.count(f"({other_name}): dropped by the relabel rules") == 1, log[-3000:]
    assert other[:12] not in log.replace(f"{other[:12]} ({other_name}): dropped", ""), log[-3000:]


def test_sighup_converts_and_reloads(tmp_path, fake):
    """SIGHUP re-converts the Promtail file: a new label applies; a key without an equivalent
    is refused with its line and the running configuration stays."""
    logs = tmp_path / "logs"
    logs.mkdir()
    port = ag.free_port()
    cfg = tmp_path / "promtail.yaml"
    text = (f"server: {{http_listen_address: 127.0.0.1, http_listen_port: {port}}}\n"
            f"positions: {{filename: {tmp_path}/positions.yaml}}\n"
            f"clients: [{{url: '{fake.url}{PUSH}', batchwait: 100ms}}]\n"
            "scrape_configs:\n  - job_name: app\n"
            f"    static_configs: [{{labels: {{job: v1, __path__: '{logs}/*.log'}}}}]\n")
    cfg.write_text(text)
    pt = PromtailAgent(tmp_path, cfg, tmp_path / "state")
    pt.start()
    try:
        pt.wait_ready(port)
        ag.append_lines(logs / "a.log", ["one"])
        assert fake.wait_entries(1, ag.scaled(10)) == 1
        cfg.write_text(text.replace("job: v1", "job: v2"))
        pt.proc.send_signal(signal.SIGHUP)
        assert ag.wait_until(lambda: "configuration reloaded" in pt.stderr(), 10)
        pt.wait_ready(port)
        ag.append_lines(logs / "a.log", ["two"])
        assert fake.wait_entries(2, ag.scaled(10)) == 2
        cfg.write_text(text + "limits_config: {readline_rate: 1}\n")
        pt.proc.send_signal(signal.SIGHUP)
        assert ag.wait_until(lambda: "not reloaded" in pt.stderr(), 10)
        assert "promtail.yaml:7:1: top-level key 'limits_config' is not supported" in pt.stderr()
    finally:
        assert pt.stop() == 0
    assert [(e["labels"]["job"], e["line"]) for e in fake.entries()] == [("v1", "one"),
                                                                        ("v2", "two")]


K8S_SD_PROMTAIL = HEAD + """clients:
  - url: %(url)s/loki/api/v1/push
scrape_configs:
  - job_name: kubernetes-pods
    pipeline_stages:
      - cri: {}
    kubernetes_sd_configs:
      - role: pod
    relabel_configs:
      - {action: keep, source_labels: [__meta_kubernetes_namespace], regex: 'shop|default'}
      - {source_labels: [__meta_kubernetes_pod_node_name], target_label: node_name}
      - {source_labels: [__meta_kubernetes_namespace], target_label: namespace}
      - {source_labels: [namespace, __meta_kubernetes_pod_container_name], separator: /,
         target_label: job}
      - {source_labels: [__meta_kubernetes_pod_name], target_label: pod}
      - {source_labels: [__meta_kubernetes_pod_container_name], target_label: container}
      - {source_labels: [__meta_kubernetes_pod_uid, __meta_kubernetes_pod_container_name],
         separator: /, replacement: '/var/log/pods/*$1/*.log', target_label: __path__}
"""


def test_kubernetes_sd_relabel_configs(tmp_path, fake):
    """kubernetes_sd_configs with the Helm chart's relabel rules on a pods tree laid out as the
    kubelet does (no cluster): the converted kubernetes input (its root pointed at the tree)
    sends the shop pod's lines with the relabelled labels (node_name from NODE_NAME); the keep
    rule leaves out the kube-system pod's log, said once, never read."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000000001Z", time.gmtime(time.time() - 60))
    logs = {("shop", "web-7f9c", "0a1b-2c3d", "app"): ["out line", "err line"],
            ("kube-system", "coredns-1", "9f8e", "coredns"): ["not me"]}
    for (ns, pod, uid, ctr), lines in logs.items():
        d = tmp_path / "pods" / f"{ns}_{pod}_{uid}" / ctr
        d.mkdir(parents=True)
        (d / "0.log").write_text("".join(
            f"{stamp} {'stderr' if l.startswith('err') else 'stdout'} F {l}\n" for l in lines))
    cfg = tmp_path / "promtail.yaml"
    cfg.write_text(K8S_SD_PROMTAIL % {"port": ag.free_port(), "dir": tmp_path, "url": fake.url})
    conv = ag.run_cli("convert", str(cfg))
    assert conv.returncode == 0, conv.stderr
    assert "__path__ rule is left out" in conv.stdout, conv.stdout
    native = yaml.safe_load(conv.stdout)
    (k8s,) = [i for i in native["inputs"] if i["type"] == "kubernetes"]
    k8s["root"] = str(tmp_path / "pods")  # Promtail has no such key: the tree is /var/log/pods
    path = tmp_path / "native.yaml"
    path.write_text(yaml.safe_dump(native, sort_keys=False))
    env = dict(os.environ, LC_STATE_DIR=str(tmp_path / "state"), NODE_NAME="node-a")
    p = subprocess.run([*ag.WRAPPER, ag.LC_BIN, "run", "-c", str(path), "--once"],
                       capture_output=True, text=True, env=env, timeout=ag.scaled(30))
    assert p.returncode == 0, p.stderr[-3000:]
    ag.assert_no_sanitizer_report(p.stderr)
    base = {"namespace": "shop", "pod": "web-7f9c", "container": "app", "job": "shop/app",
            "node_name": "node-a"}
    got = {(json.dumps(e["labels"], sort_keys=True), e["line"].rstrip("\n"))
           for e in fake.entries()}
    assert got == {(json.dumps(dict(base, stream="stdout"), sort_keys=True), "out line"),
                   (json.dumps(dict(base, stream="stderr"), sort_keys=True), "err line")}, got
    assert p.stderr.count("dropped by the relabel rules") == 1, p.stderr[-3000:]
    assert "kube-system_coredns-1_9f8e/coredns/0.log: dropped" in p.stderr, p.stderr[-3000:]


def test_syslog_relabel_configs(tmp_path, fake):
    """A syslog target with Promtail's documented relabel rules (corpus 16): a message over TCP
    (octet counting) arrives with exactly the labels the rules make (host, app, level, ip) plus
    the static job, not the input's default facility/hostname/app_name."""
    src = ag.REPO / "tests" / "promtail" / "corpus" / "16-syslog-relabel.yaml"
    cfg, port, _ = localize(src, tmp_path, fake, [])
    addr = yaml.safe_load(cfg.read_text())["scrape_configs"][0]["syslog"]["listen_address"]
    host, sport = addr.rsplit(":", 1)
    pt = PromtailAgent(tmp_path, cfg, tmp_path / "state").start()
    try:
        pt.wait_ready(port)
        msg = b"<14>1 - web-1 nginx 42 - - tcp hello"  # no time: the time received
        with socket.create_connection((host, int(sport)), timeout=5) as s:
            s.sendall(f"{len(msg)} ".encode() + msg)
        assert ag.wait_until(lambda: len(fake.entries()) >= 1, 10), pt.stderr()[-3000:]
    finally:
        assert pt.stop() == 0, pt.stderr()[-3000:]
    (e,) = fake.entries()
    assert e["labels"] == {"job": "syslog", "host": "web-1", "app": "nginx", "level": "info",
                           "ip": "127.0.0.1"}, e
    assert e["line"].rstrip("\n") == "tcp hello"
