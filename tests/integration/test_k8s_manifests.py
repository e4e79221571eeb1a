# SPDX-License-Identifier: MIT
"""test_k8s_manifests.py: deploy/kubernetes/ and deploy/compose/ are consistent with the agent:
every document parses, the required fields are there, the DaemonSet's probes, scrape
annotations and port match the ConfigMap's `listen`, its mounts match the paths the config
reads and writes, and the ConfigMap's configuration passes check-config. No cluster, no
Docker; under a second."""

import os
import re
from pathlib import Path

import pytest

from agent import REPO, have_binary, run_cli

yaml = pytest.importorskip("yaml")  # python3-yaml

if not have_binary():
    if os.environ.get("LC_REQUIRE_BIN"):
        raise RuntimeError("LC_BIN is not an executable: build first")
    pytest.skip("log_capturer binary not built", allow_module_level=True)

K8S = REPO / "deploy" / "kubernetes"
COMPOSE = REPO / "deploy" / "compose" / "docker-compose.yml"


def documents():
    docs = []
    for f in sorted(K8S.glob("*.yaml")):
        for d in yaml.safe_load_all(f.read_text()):
            if d is not None:
                docs.append(d)
    return docs


def one(kind):
    found = [d for d in documents() if d["kind"] == kind]
    assert len(found) == 1, f"{len(found)} {kind} documents"
    return found[0]


def config():
    return one("ConfigMap")["data"]["config.yaml"]


def test_every_document_parses_with_required_fields():
    docs = documents()
    kinds = sorted(d["kind"] for d in docs)
    assert kinds == ["ConfigMap", "DaemonSet", "Namespace", "ServiceAccount"], kinds
    for d in docs:
        assert d.get("apiVersion") and d["metadata"].get("name"), d
        if d["kind"] != "Namespace":
            assert d["metadata"].get("namespace") == "logging", d["metadata"]
    ds = one("DaemonSet")
    assert ds["apiVersion"] == "apps/v1"
    spec = ds["spec"]
    labels = spec["template"]["metadata"]["labels"]
    assert spec["selector"]["matchLabels"].items() <= labels.items()
    pod = spec["template"]["spec"]
    assert pod["serviceAccountName"] == one("ServiceAccount")["metadata"]["name"]
    (c,) = pod["containers"]
    assert c["name"] and c["image"].startswith("log_capturer:")
    for what in ("requests", "limits"):
        assert {"cpu", "memory"} <= c["resources"][what].keys(), c["resources"]


def mib(q):
    m = re.fullmatch(r"(\d+)(Mi|Gi)", q)
    assert m, q
    return int(m.group(1)) * (1024 if m.group(2) == "Gi" else 1)


def test_probes_port_and_scrape_annotations_match_listen():
    cfg = yaml.safe_load(config())
    host, port = cfg["listen"].rsplit(":", 1)
    # the kubelet and Prometheus come from outside the pod: not the loopback default
    assert host in ("0.0.0.0", "", "[::]"), cfg["listen"]
    ds = one("DaemonSet")
    tmpl = ds["spec"]["template"]
    (c,) = tmpl["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports["http"] == int(port)
    assert c["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert c["livenessProbe"]["httpGet"]["path"] == "/health"
    for probe in (c["readinessProbe"], c["livenessProbe"]):
        assert probe["httpGet"]["port"] in ("http", int(port))
    ann = tmpl["metadata"]["annotations"]
    assert ann["prometheus.io/scrape"] == "true"
    assert ann["prometheus.io/port"] == port and ann["prometheus.io/path"] == "/metrics"
    # README's measurements: up to 36 MiB RSS into Loki; room for max_pending_bytes (16 MiB)
    assert mib(c["resources"]["requests"]["memory"]) >= 36
    assert mib(c["resources"]["limits"]["memory"]) >= 36 + 16
    # the agent drains within shutdown_timeout before Kubernetes kills it
    grace = tmpl["spec"]["terminationGracePeriodSeconds"]
    assert int(cfg["shutdown_timeout"].rstrip("s")) < grace


def test_mounts_cover_what_the_config_reads_and_writes():
    cfg = yaml.safe_load(config())
    ds = one("DaemonSet")
    pod = ds["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    vols = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m for m in c["volumeMounts"]}

    def host_path(mount_path):
        m = mounts[mount_path]
        return vols[m["name"]].get("hostPath", {}).get("path")

    # the configuration, where the command line says
    assert c["args"] == ["run", "-c", "/etc/log_capturer/config.yaml"]
    assert vols[mounts["/etc/log_capturer"]["name"]]["configMap"]["name"] == \
        one("ConfigMap")["metadata"]["name"]
    # the state on the node, writable
    assert host_path(cfg["state_dir"]) == cfg["state_dir"]
    assert not mounts[cfg["state_dir"]].get("readOnly")
    # what is read, read-only from the node
    docker = [i for i in cfg["inputs"] if i["type"] == "docker"][0]
    assert docker["mode"] == "file"
    containers = docker["root"].rstrip("/") + "/containers"
    assert host_path(containers) == containers and mounts[containers]["readOnly"]
    assert host_path("/var/log") == "/var/log" and mounts["/var/log"]["readOnly"]
    files = [i for i in cfg["inputs"] if i["type"] == "file"][0]
    assert all(p.startswith("/var/log/") for p in files["paths"])
    sec = c["securityContext"]
    assert sec["readOnlyRootFilesystem"] and not sec["allowPrivilegeEscalation"]
    assert sec["capabilities"]["drop"] == ["ALL"]


def test_configmap_config_passes_check_config(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(config())
    p = run_cli("check-config", str(path))
    assert p.returncode == 0 and p.stdout.strip() == "ok", p.stdout + p.stderr


def test_compose_example():
    doc = yaml.safe_load(COMPOSE.read_text())
    svc = doc["services"]["log_capturer"]
    vols = svc["volumes"]
    assert "/var/run/docker.sock:/var/run/docker.sock:ro" in vols
    assert "/var/lib/docker/containers:/var/lib/docker/containers:ro" in vols
    state = [v for v in vols if v.endswith(":/var/lib/log_capturer")]
    assert state and state[0].split(":")[0] in doc["volumes"], state
    assert svc["environment"]["LOKI_URL"]
    # the image's configuration passes check-config, with and without the environment
    img_cfg = REPO / "deploy" / "image" / "config.yaml"
    assert run_cli("check-config", str(img_cfg)).returncode == 0
    env = dict(os.environ, **{k: str(v) for k, v in svc["environment"].items()
                             if "$" not in str(v)})
    p = run_cli("check-config", "--print", str(img_cfg), env=env)
    assert p.returncode == 0, p.stderr
    assert "0.0.0.0:9431" in p.stdout and "http://loki:3100" in p.stdout, p.stdout
