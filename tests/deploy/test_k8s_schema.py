"""Every rendered manifest against the Kubernetes OpenAPI schema, strictly (kubernetes-validate
--strict: unknown fields are errors), for the oldest Kubernetes the chart supports and the newest.

Custom resources (Istio, Argo CD, Flux, prometheus-operator) have no schema there:
kubernetes-validate reports "Couldn't find schema" as a warning and exits 0 for them. That warning is
accepted only for the CRD kinds listed below; anything else (a typo in a core apiVersion or kind
would look the same) fails. The CRDs themselves are checked for apiVersion/kind/metadata/spec here
and for their content in test_istio_gitops and test_helm."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.deploy.support import DEPLOY, SOURCES, documents, render, require_tool, run

KUBERNETES_VERSIONS = ("1.30", "1.37")  # Chart.yaml kubeVersion >=1.30; kubernetes-validate's newest

CRD_KINDS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
    ("monitoring.coreos.com/v1", "PrometheusRule"),
    ("networking.istio.io/v1", "Gateway"),
    ("networking.istio.io/v1", "VirtualService"),
    ("networking.istio.io/v1", "DestinationRule"),
    ("security.istio.io/v1", "PeerAuthentication"),
    ("telemetry.istio.io/v1", "Telemetry"),
    ("argoproj.io/v1alpha1", "Application"),
    ("argoproj.io/v1alpha1", "AppProject"),
    ("kustomize.toolkit.fluxcd.io/v1", "Kustomization"),
    ("source.toolkit.fluxcd.io/v1", "GitRepository"),
}

ALL = [*SOURCES, "kustomize:monitoring", "kustomize:istio", "gitops"]


def _text(source: str) -> str:
    if source == "gitops":  # Argo CD and Flux objects, every file
        files = sorted((DEPLOY / "gitops").rglob("*.yaml"))
        assert len(files) >= 8
        return "\n---\n".join(f.read_text() for f in files)
    return render(source)


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("source", ALL)
def test_strict_kubernetes_schema(source: str, version: str, tmp_path: Path) -> None:
    validate = require_tool("kubernetes-validate")
    text = _text(source)
    docs = documents(text)
    assert docs, source
    path = tmp_path / "manifests.yaml"
    path.write_text(text)
    out = run([validate, "--strict", "--kubernetes-version", version, path])
    passed = re.findall(r"^INFO .* passed for resource (\S+) against version", out, re.M)
    unknown = re.findall(r"^WARN .* Couldn't find schema for kind (\S+) with api version (\S+) ", out, re.M)
    others = [line for line in out.splitlines() if not line.startswith(("INFO", "WARN"))]
    assert not others, out
    assert {(api, kind) for kind, api in unknown} <= CRD_KINDS, f"schema missing for a non-CRD kind:\n{out}"
    core = [d for d in docs if (d["apiVersion"], d["kind"]) not in CRD_KINDS]
    assert len(passed) == len(core), out  # every core object was actually validated
    assert len(unknown) == len(docs) - len(core)


@pytest.mark.parametrize("source", ALL)
def test_every_object_has_api_version_kind_and_metadata(source: str) -> None:
    for doc in documents(_text(source)):
        assert set(doc) >= {"apiVersion", "kind", "metadata"}, doc
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", doc["metadata"]["name"]), doc["metadata"]
        if (doc["apiVersion"], doc["kind"]) in CRD_KINDS:
            assert isinstance(doc.get("spec"), dict), f"{doc['kind']} without a spec"
            assert doc["spec"], f"{doc['kind']} with an empty spec"


def test_kustomize_base_builds_and_validates(tmp_path: Path) -> None:
    """The base alone is a complete, valid deployment too (overlays only change it)."""
    text = render("kustomize:kubernetes/base")
    path = tmp_path / "base.yaml"
    path.write_text(text)
    out = run([require_tool("kubernetes-validate"), "--strict", path])
    assert "ERROR" not in out, out
    assert "WARN" not in out, out
    assert out.count(" passed for resource ") == len(documents(text)) >= 11
