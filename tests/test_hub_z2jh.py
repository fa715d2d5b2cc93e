"""deploy/z2jh-values.yaml and deploy/k8s-exchange.yaml carry the one-machine hub's protections.

Parsed, not deployed: each protection of deploy/jupyterhub_config.py has its Kubernetes counterpart here,
and a change that drops one fails this test.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"


@pytest.fixture(scope="module")
def values():
    return yaml.safe_load((DEPLOY / "z2jh-values.yaml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def exchange():
    docs = [d for d in yaml.safe_load_all((DEPLOY / "k8s-exchange.yaml").read_text(encoding="utf-8")) if d]
    return {d["kind"]: d for d in docs}


def student_config(values) -> str:
    return values["singleuser"]["extraFiles"]["student-nbgrader-config"]["stringData"]


def test_only_chart_keys_at_the_top(values):
    # the chart's schema refuses unknown top-level keys: the exchange lives in k8s-exchange.yaml
    assert set(values) <= {"hub", "proxy", "singleuser", "scheduling", "prePuller", "ingress", "cull", "debug",
                           "global", "custom", "imagePullSecret", "imagePullSecrets", "rbac", "fullnameOverride",
                           "nameOverride", "enabled", "cluster", "apps"}


def test_students_pods_reach_nothing_but_the_exchange(values):
    policy = values["singleuser"]["networkPolicy"]
    assert policy["enabled"] is True
    assert policy["ingress"] == []                       # the chart's own rule only: hub and proxy
    allowed = policy["egressAllowRules"]
    assert {k for k, v in allowed.items() if v} == {"dnsPortsKubeSystemNamespace"}
    assert len(policy["egress"]) == 1
    rule = policy["egress"][0]
    assert rule["to"] == [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "course-exchange"}}}]
    assert rule["ports"] == [{"port": 8080, "protocol": "TCP"}]
    assert values["hub"]["networkPolicy"]["enabled"] is True
    assert values["proxy"]["chp"]["networkPolicy"]["enabled"] is True


def test_students_pods_are_limited(values):
    su = values["singleuser"]
    assert su["memory"]["limit"] and su["cpu"]["limit"]
    assert su["extraResource"]["limits"]["ephemeral-storage"]
    assert su["storage"]["capacity"]
    tmp = {v["name"]: v for v in su["storage"]["extraVolumes"]}["tmp"]
    assert tmp["emptyDir"]["medium"] == "Memory" and tmp["emptyDir"]["sizeLimit"]
    assert {"name": "tmp", "mountPath": "/tmp"} in su["storage"]["extraVolumeMounts"]
    assert su["allowPrivilegeEscalation"] is False and su["uid"] != 0
    pod = su["extraPodConfig"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"


def test_no_shared_exchange_volume(values):
    volumes = values["singleuser"]["storage"].get("extraVolumes", [])
    assert all("persistentVolumeClaim" not in v for v in volumes), "students' pods must not share a volume"


def test_students_use_the_exchange_service_and_ipc_kernels(values, exchange):
    config = student_config(values)
    for kind in ("list", "fetch_assignment", "submit", "fetch_feedback"):
        assert f"c.ExchangeFactory.{kind} = \"hubexchange." in config
    url = next(line.split("=", 1)[1].strip().strip('"') for line in config.splitlines() if "HubExchange.url" in line)
    where = urlparse(url)
    service = exchange["Service"]
    assert where.hostname == service["metadata"]["name"] and where.port == service["spec"]["ports"][0]["port"]
    assert values["hub"]["services"]["exchange"]["url"] == url
    assert 'c.KernelManager.transport = "ipc"' in config
    server = values["singleuser"]["extraFiles"]["student-server-config"]["data"]
    assert server["KernelManager"]["transport"] == "ipc"
    assert server["ServerApp"]["jpserver_extensions"]["nbgrader.server_extensions.formgrader"] is False


def test_exchange_pod(values, exchange):
    pod = exchange["Deployment"]["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    assert pod["automountServiceAccountToken"] is False
    container = pod["containers"][0]
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    command = container["command"]
    flags = dict(zip(command[2::2], command[3::2]))
    assert "--listen" in flags and "--hub-api" in flags and "--sockets" not in flags
    allowed = set(values["hub"]["config"]["Authenticator"]["allowed_users"])
    assert set(flags["--students"].split(",")) | set(flags["--instructors"].split(",")) == allowed
    assert exchange["PersistentVolumeClaim"]["spec"]["accessModes"] == ["ReadWriteOnce"]
    # every flag the pod passes is one the service knows
    help_text = subprocess.run([sys.executable, str(DEPLOY / "exchange_service.py"), "--help"], capture_output=True,
                               text=True, check=True).stdout
    assert all(flag in help_text for flag in flags)


def test_exchange_network_policy(exchange):
    policy = exchange["NetworkPolicy"]["spec"]
    assert set(policy["policyTypes"]) == {"Ingress", "Egress"}
    assert policy["ingress"] == [{"from": [{"podSelector": {"matchLabels": {"component": "singleuser-server"}}}],
                                  "ports": [{"port": 8080, "protocol": "TCP"}]}]
    destinations = [rule.get("to") for rule in policy["egress"]]
    assert [{"podSelector": {"matchLabels": {"component": "hub"}}}] in destinations
    assert all(d is None or d == [{"podSelector": {"matchLabels": {"component": "hub"}}}] for d in destinations)
