"""The Helm chart: helm v4 lints it strictly, its schema covers every value and refuses bad ones,
and what it renders matches the values (test_workload checks the workload itself)."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest
import yaml

from tests.deploy.support import (
    ALERTS,
    ALL_ON_VALUES,
    CHART,
    DASHBOARD,
    HELM_VALUES,
    by_kind,
    one,
    rendered,
    require_tool,
    run,
)


def test_helm_is_v4() -> None:
    version = run([require_tool("helm"), "version", "--template", "{{.Version}}"]).strip()
    assert version.startswith("v4."), version


@pytest.mark.parametrize("values", list(HELM_VALUES))
def test_helm_lint_strict(values: str) -> None:
    helm = require_tool("helm")
    proc = subprocess.run(
        [str(helm), "lint", "--strict", str(CHART), *HELM_VALUES[values]],
        capture_output=True,
        text=True,
        timeout=60,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert "1 chart(s) linted, 0 chart(s) failed" in output
    for problem in ("[WARNING]", "[ERROR]", "[INFO]", "funcMap fail"):
        assert problem not in output, output


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (["--set", "bogus=1"], "additional properties 'bogus' not allowed"),
        (["--set", "workers=0"], "workers"),
        (["--set", "upstream.protocol=ftp"], "protocol"),
        (["--set", "batch.timeout=5 seconds"], "timeout"),
        (["--set", "image.digest=latest"], "digest"),
        (
            ["--set", "terminationGracePeriodSeconds=30"],
            "must exceed preStopSleepSeconds + shutdownTimeoutSeconds",
        ),
    ],
)
def test_bad_values_are_refused(override: list[str], message: str) -> None:
    helm = require_tool("helm")
    proc = subprocess.run(
        [str(helm), "template", "otlpd", str(CHART), *override], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode != 0, proc.stdout[:2000]
    assert message in proc.stderr, proc.stderr


def _schema_paths(schema: dict[str, Any], prefix: str = "") -> set[str]:
    paths = set()
    for key, sub in schema.get("properties", {}).items():
        path = f"{prefix}{key}"
        paths.add(path)
        if sub.get("additionalProperties") is False:
            paths |= _schema_paths(sub, path + ".")
    return paths


def _value_paths(values: dict[str, Any], schema: dict[str, Any], prefix: str = "") -> set[str]:
    paths = set()
    for key, value in values.items():
        path = f"{prefix}{key}"
        paths.add(path)
        sub = schema.get("properties", {}).get(key, {})
        if isinstance(value, dict) and sub.get("additionalProperties") is False:
            paths |= _value_paths(value, sub, path + ".")
    return paths


def test_every_value_has_a_schema_and_every_schema_key_a_value() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    schema_paths = _schema_paths(schema) - {"global"}
    value_paths = _value_paths(values, schema)
    assert value_paths - schema_paths == set(), "values without a schema"
    assert schema_paths - value_paths == set(), "schema keys without a default in values.yaml"

    def closed(node: dict[str, Any], path: str) -> None:
        if node.get("type") == "object" and "properties" in node:
            assert node.get("additionalProperties") is False, f"{path} accepts unknown keys"
            for key, sub in node["properties"].items():
                closed(sub, f"{path}.{key}")

    closed(schema, "values")


def _config(values: str) -> dict[str, Any]:
    cm = one(rendered(f"helm:{values}"), "ConfigMap", "otlpd")
    return dict(yaml.safe_load(cm["data"]["otlpd.yaml"]))


def test_config_is_rendered_from_values() -> None:
    default = _config("default")
    assert set(default["exporters"]) == {"otlp/upstream"}
    assert default["exporters"]["otlp/upstream"]["headers"] == {"api-key": "${env:OTLPD_API_KEY:-}"}
    assert default["service"]["shutdown_timeout"] == "30s"
    assert default["service"]["workers"] == 1
    assert (
        default["receivers"]["otlp"]["protocols"]["grpc"]["keepalive"]["server_parameters"][
            "max_connection_age"
        ]
        == "5m"
    )

    all_on = _config("all-on")
    values = yaml.safe_load(ALL_ON_VALUES.read_text())
    assert set(all_on["exporters"]) == {"otlphttp/upstream", "debug", "file/archive"}
    upstream = all_on["exporters"]["otlphttp/upstream"]
    assert upstream["endpoint"] == values["upstream"]["endpoint"]
    assert upstream["headers"] == {"x-api-key": "${env:OTLPD_API_KEY}"}  # not optional: no default
    assert all_on["service"]["workers"] == 2
    assert all_on["service"]["shutdown_timeout"] == "20s"
    assert all_on["service"]["extensions"] == ["health_check"]
    assert all_on["service"]["pipelines"]["traces"]["exporters"] == ["otlphttp/upstream", "debug"]
    assert all_on["service"]["pipelines"]["logs/archive"]["exporters"] == ["file/archive"]


def test_all_on_renders_every_optional_object() -> None:
    docs = rendered("helm:all-on")
    kinds = {d["kind"] for d in docs}
    assert {"ServiceMonitor", "PrometheusRule", "Pod"} <= kinds
    assert len(by_kind(docs, "ConfigMap")) == 2  # config and dashboard
    deployment = one(docs, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] == 45
    assert "requiredDuringSchedulingIgnoredDuringExecution" in pod["affinity"]["podAntiAffinity"]
    assert "nodeAffinity" in pod["affinity"]
    assert pod["priorityClassName"] == "system-cluster-critical"
    c = pod["containers"][0]
    assert c["image"].endswith("@sha256:" + "0" * 64)
    assert {p["containerPort"] for p in c["ports"]} == {4317, 4318, 8080, 13133}
    assert c["env"][1]["valueFrom"]["secretKeyRef"] == {
        "name": "vendor-api-key",
        "key": "token",
        "optional": False,
    }
    assert "checksum/config" in deployment["spec"]["template"]["metadata"]["annotations"]
    monitor = one(docs, "ServiceMonitor")["spec"]
    assert monitor["jobLabel"] == "app.kubernetes.io/name"  # job="otlpd", which the alert rules select
    assert monitor["endpoints"][0]["port"] == "http-admin"
    service = next(s for s in by_kind(docs, "Service") if s["spec"].get("clusterIP") != "None")
    assert service["metadata"]["labels"]["app.kubernetes.io/name"] == "otlpd"
    assert service["spec"]["trafficDistribution"] == "PreferClose"


def test_chart_ships_the_monitoring_files_unchanged() -> None:
    """files/ holds copies of deploy/monitoring (Helm cannot read outside the chart); they must not drift."""
    assert (CHART / "files" / "otlpd-alerts.yaml").read_text() == ALERTS.read_text()
    assert (CHART / "files" / "otlpd-dashboard.json").read_text() == DASHBOARD.read_text()
    docs = rendered("helm:all-on")
    rule = one(docs, "PrometheusRule")
    assert rule["spec"]["groups"] == yaml.safe_load(ALERTS.read_text())["groups"]
    dashboard = one(docs, "ConfigMap", "-dashboard")
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(dashboard["data"]["otlpd-dashboard.json"]) == json.loads(DASHBOARD.read_text())


def test_helm_test_pod_checks_readiness_through_the_service() -> None:
    docs = rendered("helm:default")
    pod = one(docs, "Pod")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    command = " ".join(pod["spec"]["containers"][0]["command"])
    assert "http://otlpd:8080/health/ready" in command
    assert pod["spec"]["containers"][0]["securityContext"]["readOnlyRootFilesystem"] is True
    policy = one(docs, "NetworkPolicy")["spec"]
    admin_peers = [peer for rule in policy["ingress"] for peer in rule["from"]]
    test_labels = pod["metadata"]["labels"]
    assert any(
        all(test_labels.get(k) == v for k, v in peer.get("podSelector", {}).get("matchLabels", {}).items())
        and "podSelector" in peer
        for peer in admin_peers
    ), "the NetworkPolicy must let the test pod reach the admin port"
