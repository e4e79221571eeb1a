# SPDX-License-Identifier: MIT
"""test_docker_gaps.py: Docker-side gaps found against the real engine (issues 15, 18, 19).

Each test runs the real agent binary (build/log_capturer, or LC_BIN) with `docker`
inputs on the harness's private engine and a file output, and checks what a user
would: which containers' lines arrive, how many times, and what the agent said.
Run with -s to see the numbers.
"""

import collections
import time

import pytest

import agent as ag

pytestmark = [
    pytest.mark.docker,
    pytest.mark.skipif(not ag.have_binary(), reason="build/log_capturer not built"),
]


def docker_input(eng, mode, name="c", **kw):
    d = {"type": "docker", "name": name, "mode": mode, "socket": eng.sock,
         "root": eng.data_root, "start_at": "beginning", "max_age": "0"}
    if mode == "file":
        d.update({"rescan_interval": "250ms", "poll_interval": "100ms"})
    d.update(kw)
    return d


def lines_by(records, key):
    """{labels[key]: Counter(line)}"""
    out = collections.defaultdict(collections.Counter)
    for r in records:
        out[r["labels"].get(key)][r["line"]] += 1
    return out


def warnings(a, text):
    return [r for r in a.log_records()
            if r.get("level") in ("warn", "error") and text in (r.get("msg") or r.get("message")
                                                               or str(r))]


# ------------------------------------------------------------------ issue 15.1: label filters

# container -> labels
LABELLED = {
    "a": {"bars": "9", "team": "core"},
    "b": {"logging": "off"},
    "c": {"app.tier": "front"},
    "d": {},
}

# input name -> (include.labels, exclude.labels, labels_allowlist, containers expected)
LABEL_CASES = {
    "inc_key": (["bars"], [], [], {"a"}),
    "inc_kv": (["bars=9"], [], [], {"a"}),
    "inc_kv_other": (["bars=8"], [], [], set()),
    "inc_glob_kv": (["app.*=fr*"], [], [], {"c"}),
    "inc_glob_both": (["ba?s=[0-9]"], [], [], {"a"}),
    "inc_allow": (["bars=9"], [], ["team"], {"a"}),
    "exc_key": ([], ["logging"], [], {"a", "c", "d"}),
    "exc_kv": ([], ["logging=off"], [], {"a", "c", "d"}),
    "exc_globs": ([], ["log*=of?", "app.*"], [], {"a", "d"}),
    "exc_allow": ([], ["logging=off"], ["zzz", "team"], {"a", "c", "d"}),
}


@pytest.mark.parametrize("mode", ["api", "file"])
def test_label_filters_match_all_labels(docker, tmp_path, mode):
    """include.labels / exclude.labels by key, key=value and globs on both, with and without
    labels_allowlist: each input ships exactly its containers (issue 15, part 1)."""
    prefix = f"lf{mode[0]}-"
    for c, labels in LABELLED.items():
        docker.run_container(prefix + c, f"for i in 1 2 3; do echo {c} line $i; done; sleep 60",
                             labels=labels)
    inputs = []
    for name, (inc, exc, allow, _) in LABEL_CASES.items():
        inp = docker_input(docker, mode, name=name, labels={"case": name},
                           include={"names": [prefix + "*"], "labels": inc},
                           exclude={"labels": exc}, labels_allowlist=allow)
        if not inc:
            del inp["include"]["labels"]
        if not exc:
            del inp["exclude"]
        if not allow:
            del inp["labels_allowlist"]
        inputs.append(inp)
    a = ag.Agent(tmp_path, inputs, name=f"agent-{mode}")
    a.start()
    try:
        want = sum(3 * len(exp) for *_, exp in LABEL_CASES.values())
        ag.wait_until(lambda: len(a.output().records) >= want, ag.scaled(30), interval=0.2)
        time.sleep(2)  # anything extra would have arrived by now
        recs = a.output().records
    finally:
        a.stop()
    got = collections.defaultdict(collections.Counter)
    for r in recs:
        got[r["labels"]["case"]][r["labels"]["container_name"]] += 1
    for name, (*_, exp) in LABEL_CASES.items():
        have = dict(got.get(name, {}))
        assert have == {prefix + c: 3 for c in exp}, (mode, name, have)
    # the allowlist still decides which labels are attached, filters or not
    inc_allow = [r["labels"] for r in recs if r["labels"]["case"] == "inc_allow"]
    assert inc_allow and all(lb.get("team") == "core" and "bars" not in lb for lb in inc_allow)
    print(f"\nlabel filters ({mode}): {len(recs)} lines, {len(LABEL_CASES)} inputs as expected")
