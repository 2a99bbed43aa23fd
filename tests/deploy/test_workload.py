"""The gateway as Kubernetes runs it, checked on every rendering: each Kustomize overlay and the Helm
chart (default values, and every optional feature on). Both must deliver the same hardened workload."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from tests.deploy.support import OVERLAYS, SOURCES, by_kind, one, rendered

ADMIN_PORT = 8080
UID = 10001


def parse_seconds(duration: str) -> float:
    """Go duration (the otlpd config's syntax) to seconds."""
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", duration)
    assert parts, duration
    return sum(float(n) * units[u] for n, u in parts)


def deployment(docs: list[dict[str, Any]]) -> dict[str, Any]:
    return one(docs, "Deployment")


def pod_spec(docs: list[dict[str, Any]]) -> dict[str, Any]:
    return deployment(docs)["spec"]["template"]["spec"]


def container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    containers = pod_spec(docs)["containers"]
    assert [c["name"] for c in containers] == ["otlpd"]
    return containers[0]


def otlpd_config(docs: list[dict[str, Any]]) -> dict[str, Any]:
    """The otlpd config in the ConfigMap the Deployment mounts."""
    volumes = {v["name"]: v for v in pod_spec(docs)["volumes"]}
    name = volumes["config"]["configMap"]["name"]
    cm = next(d for d in by_kind(docs, "ConfigMap") if d["metadata"]["name"] == name)
    return yaml.safe_load(cm["data"]["otlpd.yaml"])


def port_number(c: dict[str, Any], port: int | str) -> int:
    if isinstance(port, int):
        return port
    return next(p["containerPort"] for p in c["ports"] if p["name"] == port)


def matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


@pytest.mark.parametrize("source", SOURCES)
def test_every_object_is_rendered(source: str) -> None:
    docs = rendered(source)
    kinds = sorted(d["kind"] for d in docs)
    for kind in (
        "ServiceAccount", "ConfigMap", "Deployment", "HorizontalPodAutoscaler",
        "PodDisruptionBudget", "NetworkPolicy", "Role", "RoleBinding",
    ):  # fmt: skip
        assert kind in kinds, f"{source}: no {kind} in {kinds}"
    assert len(by_kind(docs, "Service")) == 2, f"{source}: expected a Service and a headless Service"
    if source.startswith("kustomize:"):
        ns = one(docs, "Namespace")
        assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
        namespaced = [d for d in docs if d["kind"] != "Namespace"]
        assert {d["metadata"].get("namespace") for d in namespaced} == {ns["metadata"]["name"]}
    sa = one(docs, "ServiceAccount")
    assert sa["automountServiceAccountToken"] is False
    assert pod_spec(docs)["serviceAccountName"] == sa["metadata"]["name"]
    assert pod_spec(docs)["automountServiceAccountToken"] is False


@pytest.mark.parametrize("source", SOURCES)
def test_pod_is_hardened(source: str) -> None:
    docs = rendered(source)
    pod = pod_spec(docs)
    sec = pod["securityContext"]
    assert sec["runAsNonRoot"] is True
    assert sec["runAsUser"] == UID  # the image's USER (test_container checks the Dockerfile)
    assert sec["seccompProfile"]["type"] == "RuntimeDefault"
    c = container(docs)
    csec = c["securityContext"]
    assert csec["readOnlyRootFilesystem"] is True
    assert csec["allowPrivilegeEscalation"] is False
    assert csec["capabilities"]["drop"] == ["ALL"]
    assert "add" not in csec["capabilities"]
    assert csec.get("privileged", False) is False
    image = c["image"]
    assert ":" in image.rsplit("/", 1)[-1], f"{image}: no tag"
    assert not image.endswith(":latest"), image
    resources = c["resources"]
    assert {"cpu", "memory"} <= set(resources["requests"]), resources
    assert "memory" in resources["limits"], resources


@pytest.mark.parametrize("source", SOURCES)
def test_writable_paths_are_volumes(source: str) -> None:
    """Read-only root: the working directory /var/lib/otlpd and /tmp are volumes; the config is read-only."""
    docs = rendered(source)
    mounts = {m["mountPath"]: m for m in container(docs)["volumeMounts"]}
    volumes = {v["name"]: v for v in pod_spec(docs)["volumes"]}
    for path in ("/var/lib/otlpd", "/tmp"):
        assert path in mounts, f"{source}: {path} is not mounted"
        assert not mounts[path].get("readOnly", False)
        volume = volumes[mounts[path]["name"]]
        assert set(volume) - {"name"}, volume
    assert "sizeLimit" in volumes[mounts["/tmp"]["name"]]["emptyDir"]
    config_mount = next(m for m in mounts.values() if m["name"] == "config")
    assert config_mount["readOnly"] is True
    args = container(docs)["args"]
    assert args[:2] == ["serve", "--config"]
    assert args[2].startswith(config_mount["mountPath"] + "/")
    assert otlpd_config(docs)["service"]["http"]["endpoint"].endswith(f":{ADMIN_PORT}")


@pytest.mark.parametrize("source", SOURCES)
def test_probes_and_graceful_shutdown(source: str) -> None:
    docs = rendered(source)
    c = container(docs)
    for probe, path in (("startupProbe", "/health/live"), ("livenessProbe", "/health/live")):
        assert c[probe]["httpGet"]["path"] == path
        assert port_number(c, c[probe]["httpGet"]["port"]) == ADMIN_PORT
    assert c["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert port_number(c, c["readinessProbe"]["httpGet"]["port"]) == ADMIN_PORT
    pre_stop = c["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert pre_stop >= 1
    shutdown = parse_seconds(otlpd_config(docs)["service"].get("shutdown_timeout", "30s"))
    grace = pod_spec(docs)["terminationGracePeriodSeconds"]
    assert grace > pre_stop + shutdown, f"{source}: grace {grace}s <= preStop {pre_stop}s + drain {shutdown}s"
    strategy = deployment(docs)["spec"]["strategy"]
    assert strategy["type"] == "RollingUpdate"
    assert strategy["rollingUpdate"]["maxUnavailable"] == 0
    assert strategy["rollingUpdate"]["maxSurge"] >= 1


@pytest.mark.parametrize("source", SOURCES)
def test_ports_scrape_annotations_and_api_key(source: str) -> None:
    docs = rendered(source)
    c = container(docs)
    assert {p["containerPort"] for p in c["ports"]} >= {4317, 4318, ADMIN_PORT}
    annotations = deployment(docs)["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == str(ADMIN_PORT)
    assert annotations["prometheus.io/path"] == "/metrics"
    env = {e["name"]: e for e in c["env"]}
    ref = env["OTLPD_API_KEY"]["valueFrom"]["secretKeyRef"]
    assert ref["name"]
    assert ref["key"]
    assert isinstance(ref["optional"], bool)
    assert not by_kind(docs, "Secret"), "no Secret with a value is committed or rendered"
    upstreams = {
        k: e for k, e in otlpd_config(docs)["exporters"].items() if k.split("/")[0].startswith("otlp")
    }
    for name, exporter in upstreams.items():  # dev has none: it only logs
        headers = (exporter.get("headers") or {}).values()
        assert any("${env:OTLPD_API_KEY" in h for h in headers), f"{source}: {name} sends no API key"


@pytest.mark.parametrize("source", SOURCES)
def test_spread_over_nodes_and_zones(source: str) -> None:
    docs = rendered(source)
    pod = pod_spec(docs)
    labels = deployment(docs)["spec"]["template"]["metadata"]["labels"]
    keys = {t["topologyKey"] for t in pod["topologySpreadConstraints"]}
    assert keys == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}
    for t in pod["topologySpreadConstraints"]:
        assert matches(t["labelSelector"]["matchLabels"], labels)
    anti = pod["affinity"]["podAntiAffinity"]
    terms = anti.get("preferredDuringSchedulingIgnoredDuringExecution", []) + anti.get(
        "requiredDuringSchedulingIgnoredDuringExecution", []
    )
    assert terms, anti
    for term in terms:
        term = term.get("podAffinityTerm", term)
        assert term["topologyKey"] == "kubernetes.io/hostname"
        assert matches(term["labelSelector"]["matchLabels"], labels)


@pytest.mark.parametrize("source", SOURCES)
def test_services_select_the_pods(source: str) -> None:
    docs = rendered(source)
    labels = deployment(docs)["spec"]["template"]["metadata"]["labels"]
    assert matches(deployment(docs)["spec"]["selector"]["matchLabels"], labels)
    services = by_kind(docs, "Service")
    headless = [s for s in services if s["spec"].get("clusterIP") == "None"]
    regular = [s for s in services if s["spec"].get("clusterIP") != "None"]
    assert len(headless) == 1
    assert len(regular) == 1
    assert headless[0]["spec"]["publishNotReadyAddresses"] is False
    for svc in services:
        assert matches(svc["spec"]["selector"], labels)
        ports = {p["port"]: p for p in svc["spec"]["ports"]}
        assert ports[4317]["appProtocol"] == "grpc"
        assert ports[4318]["appProtocol"] == "http"
        container_ports = {p["name"] for p in container(docs)["ports"]}
        assert {p["targetPort"] for p in ports.values()} <= container_ports


@pytest.mark.parametrize("source", SOURCES)
def test_autoscaling_and_disruption_budget(source: str) -> None:
    docs = rendered(source)
    hpa = one(docs, "HorizontalPodAutoscaler")["spec"]
    assert hpa["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": deployment(docs)["metadata"]["name"],
    }
    assert {m["resource"]["name"] for m in hpa["metrics"]} == {"cpu", "memory"}
    assert 1 <= hpa["minReplicas"] <= hpa["maxReplicas"]
    assert "replicas" not in deployment(docs)["spec"] or source.startswith("kustomize:")
    pdb = one(docs, "PodDisruptionBudget")["spec"]
    assert matches(pdb["selector"]["matchLabels"], deployment(docs)["spec"]["template"]["metadata"]["labels"])
    assert ("maxUnavailable" in pdb) != ("minAvailable" in pdb)
    if isinstance(pdb.get("minAvailable"), int):  # a budget that can never be met blocks every drain
        assert pdb["minAvailable"] < hpa["minReplicas"]
    if "maxUnavailable" in pdb:
        assert pdb["maxUnavailable"] not in (0, "0%")


@pytest.mark.parametrize("source", SOURCES)
def test_network_policy(source: str) -> None:
    docs = rendered(source)
    policy = one(docs, "NetworkPolicy")["spec"]
    c = container(docs)
    assert matches(
        policy["podSelector"]["matchLabels"], deployment(docs)["spec"]["template"]["metadata"]["labels"]
    )
    assert set(policy["policyTypes"]) == {"Ingress", "Egress"}
    allowed = {port_number(c, p["port"]) for rule in policy["ingress"] for p in rule["ports"]}
    assert {4317, 4318, ADMIN_PORT} <= allowed
    egress_ports = {p["port"] for rule in policy["egress"] for p in rule.get("ports", [])}
    assert 53 in egress_ports, "DNS must stay reachable"
    assert {4317, 443} <= egress_ports


@pytest.mark.parametrize("source", SOURCES)
def test_rbac_is_minimal(source: str) -> None:
    docs = rendered(source)
    role = one(docs, "Role")
    binding = one(docs, "RoleBinding")
    sa = one(docs, "ServiceAccount")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": role["metadata"]["name"],
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": sa["metadata"]["name"], "namespace": sa["metadata"]["namespace"]}
    ]
    configmaps = {d["metadata"]["name"] for d in by_kind(docs, "ConfigMap")}
    for rule in role["rules"]:
        assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"]
        assert set(rule["verbs"]) <= {"get", "list", "watch"}
        assert rule["resourceNames"], "the Role names the objects it may read"
        assert set(rule["resourceNames"]) <= configmaps, "resourceNames must be the rendered ConfigMap"


def test_overlays_differ_in_replicas_resources_and_config() -> None:
    replicas, resources, configs = {}, {}, {}
    for name in OVERLAYS:
        docs = rendered(f"kustomize:{name}")
        replicas[name] = (
            deployment(docs)["spec"]["replicas"],
            one(docs, "HorizontalPodAutoscaler")["spec"]["minReplicas"],
        )
        resources[name] = repr(container(docs)["resources"])
        configs[name] = repr(otlpd_config(docs))
    for what in (replicas, resources, configs):
        assert len(set(what.values())) == len(OVERLAYS), what
    assert replicas["dev"][0] < replicas["staging"][0] < replicas["prod"][0]
    assert otlpd_config(rendered("kustomize:prod"))["service"]["workers"] == 2
