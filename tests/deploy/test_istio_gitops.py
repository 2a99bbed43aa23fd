"""Service mesh (deploy/istio) and GitOps (deploy/gitops): what each object says, and that it points
at things that exist (the otlpd Service, the overlays)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.deploy.support import DEPLOY, OVERLAYS, ROOT, by_kind, load_yaml, one, rendered

SERVICE_HOST = "otlpd.otlpd.svc.cluster.local"


def istio() -> list[dict[str, Any]]:
    return rendered("kustomize:istio")


def test_istio_objects_are_all_there() -> None:
    kinds = sorted(d["kind"] for d in istio())
    assert kinds == ["DestinationRule", "Gateway", "PeerAuthentication", "PeerAuthentication",
                     "Telemetry", "VirtualService"]  # fmt: skip
    assert {d["metadata"]["namespace"] for d in istio()} == {"otlpd"}


def test_service_host_is_the_prod_service() -> None:
    prod = rendered("kustomize:prod")
    service = next(s for s in by_kind(prod, "Service") if s["spec"].get("clusterIP") != "None")
    assert (
        f"{service['metadata']['name']}.{service['metadata']['namespace']}.svc.cluster.local" == SERVICE_HOST
    )


def test_gateway_terminates_tls_on_both_otlp_ports() -> None:
    gateway = one(istio(), "Gateway")["spec"]
    ports = {s["port"]["number"]: s for s in gateway["servers"]}
    assert set(ports) == {4317, 4318}
    for server in ports.values():
        assert server["tls"]["mode"] == "SIMPLE"
        assert server["tls"]["credentialName"]


def test_virtual_service_routes_timeouts_and_retries() -> None:
    vs = one(istio(), "VirtualService")["spec"]
    gateway = one(istio(), "Gateway")["metadata"]["name"]
    assert set(vs["gateways"]) == {gateway, "mesh"}
    assert SERVICE_HOST in vs["hosts"]
    routes = {r["match"][0]["port"]: r for r in vs["http"]}
    assert set(routes) == {4317, 4318}
    for port, route in routes.items():
        destination = route["route"][0]["destination"]
        assert destination == {"host": SERVICE_HOST, "port": {"number": port}}
        assert route["timeout"].endswith("s")
        retries = route["retries"]
        assert retries["attempts"] >= 1
        assert retries["perTryTimeout"]
        # Only connection-level retries: otlpd's 503 / UNAVAILABLE is back-pressure the client handles.
        assert set(retries["retryOn"].split(",")) <= {"connect-failure", "refused-stream", "reset"}


def test_destination_rule_mtls_pool_and_outlier_detection() -> None:
    dr = one(istio(), "DestinationRule")["spec"]
    assert dr["host"] == SERVICE_HOST
    policy = dr["trafficPolicy"]
    assert policy["tls"]["mode"] == "ISTIO_MUTUAL"
    assert policy["connectionPool"]["tcp"]["maxConnections"] > 0
    assert policy["connectionPool"]["http"]["http2MaxRequests"] > 0
    outlier = policy["outlierDetection"]
    assert outlier["consecutive5xxErrors"] > 0
    assert outlier["maxEjectionPercent"] <= 50


def test_peer_authentication_is_strict() -> None:
    policies = {p["metadata"]["name"]: p["spec"] for p in by_kind(istio(), "PeerAuthentication")}
    assert policies["default"] == {"mtls": {"mode": "STRICT"}}  # namespace-wide
    workload = policies["otlpd-metrics"]
    assert workload["mtls"]["mode"] == "STRICT"
    assert set(workload["portLevelMtls"]) == {"8080"}  # only /metrics may be scraped from outside the mesh


def test_telemetry() -> None:
    telemetry = one(istio(), "Telemetry")["spec"]
    assert telemetry["selector"]["matchLabels"] == {"app.kubernetes.io/name": "otlpd"}
    assert telemetry["tracing"][0]["randomSamplingPercentage"] <= 100
    assert telemetry["accessLogging"]
    assert telemetry["metrics"]


def _gitops(kind: str) -> list[tuple[Path, dict[str, Any]]]:
    found = []
    for path in sorted((DEPLOY / "gitops").rglob("*.yaml")):
        doc = load_yaml(path)
        if doc["kind"] == kind:
            found.append((path, doc))
    return found


def test_argo_cd_applications_point_at_the_overlays() -> None:
    apps = _gitops("Application")
    project = _gitops("AppProject")[0][1]
    assert sorted(doc["spec"]["source"]["path"] for _, doc in apps) == sorted(
        f"deploy/kubernetes/overlays/{o}" for o in OVERLAYS
    )
    destinations = {d["namespace"] for d in project["spec"]["destinations"]}
    for _, app in apps:
        source = app["spec"]["source"]
        assert (ROOT / source["path"] / "kustomization.yaml").is_file()
        assert source["repoURL"] in project["spec"]["sourceRepos"]
        assert app["spec"]["project"] == project["metadata"]["name"]
        overlay = source["path"].rsplit("/", 1)[1]
        namespace = one(rendered(f"kustomize:{overlay}"), "Namespace")["metadata"]["name"]
        assert app["spec"]["destination"]["namespace"] == namespace
        assert namespace in destinations
        assert {"group": "apps", "kind": "Deployment", "jsonPointers": ["/spec/replicas"]} in app["spec"][
            "ignoreDifferences"
        ], "the HPA owns replicas"
    automated = {doc["metadata"]["name"]: "automated" in doc["spec"]["syncPolicy"] for _, doc in apps}
    assert automated == {"otlpd-dev": True, "otlpd-staging": True, "otlpd-prod": False}


def test_argo_cd_project_allows_every_rendered_kind() -> None:
    project = _gitops("AppProject")[0][1]["spec"]
    allowed = {(r["group"], r["kind"]) for r in project["namespaceResourceWhitelist"]}
    allowed |= {(r["group"], r["kind"]) for r in project["clusterResourceWhitelist"]}
    for overlay in OVERLAYS:
        for doc in rendered(f"kustomize:{overlay}"):
            group = doc["apiVersion"].rsplit("/", 1)[0] if "/" in doc["apiVersion"] else ""
            assert (group, doc["kind"]) in allowed, (
                f"{overlay}: {doc['kind']} would be refused by the project"
            )


def test_flux_kustomizations_point_at_the_overlays() -> None:
    repos = {doc["metadata"]["name"]: doc for _, doc in _gitops("GitRepository")}
    kustomizations = _gitops("Kustomization")
    assert sorted(doc["spec"]["path"] for _, doc in kustomizations) == sorted(
        f"./deploy/kubernetes/overlays/{o}" for o in OVERLAYS
    )
    argo_repo = _gitops("Application")[0][1]["spec"]["source"]["repoURL"]
    for _, doc in kustomizations:
        spec = doc["spec"]
        assert (ROOT / spec["path"] / "kustomization.yaml").is_file()
        assert spec["sourceRef"]["kind"] == "GitRepository"
        repo = repos[spec["sourceRef"]["name"]]
        assert repo["spec"]["url"] == argo_repo
        assert spec["prune"] is True
        assert spec["wait"] is True
        for dep in spec.get("dependsOn", []):
            assert dep["name"] in {d["metadata"]["name"] for _, d in kustomizations}
