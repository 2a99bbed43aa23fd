"""Alert rules (promtool check + unit tests) and the Grafana dashboard (structure, PromQL that parses).
Whether the metrics they use exist in otlpd is test_live_metrics."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.support import (
    ALERT_TESTS,
    ALERTS,
    DASHBOARD,
    ROOT,
    alert_rules,
    by_kind,
    dashboard_exprs,
    load_yaml,
    rendered,
    require_tool,
    run,
)

REQUIRED_ALERTS = {
    "OtlpdDown",  # otlpd down
    "OtlpdHighErrorRatio",  # error ratio
    "OtlpdHighLatencyP95",  # p95 latency
    "OtlpdExporterQueueNearCapacity",  # exporter queue near capacity
    "OtlpdDataDropped",  # data dropped
    "OtlpdProcessorDroppedItems",
    "OtlpdDataRefused",  # data refused
    "OtlpdMemoryNearLimit",  # memory near limit
    "OtlpdRestarting",  # restarts (Kubernetes)
    "OtlpdWorkerRestarting",  # restarts (worker processes)
}


def test_promtool_check_rules() -> None:
    out = run([require_tool("promtool"), "check", "rules", ALERTS])
    assert f"SUCCESS: {len(alert_rules())} rules found" in out


def test_promtool_unit_tests() -> None:
    out = run([require_tool("promtool"), "test", "rules", ALERT_TESTS.name], cwd=ALERT_TESTS.parent)
    assert "SUCCESS" in out


def test_required_alerts_exist_and_each_has_a_firing_unit_test() -> None:
    names = [r["alert"] for r in alert_rules()]
    assert len(names) == len(set(names))
    assert set(names) >= REQUIRED_ALERTS
    fired = {
        case["alertname"]
        for test in load_yaml(ALERT_TESTS)["tests"]
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    assert set(names) == fired, f"alerts without a unit test that makes them fire: {set(names) - fired}"


def test_rules_are_labelled_and_documented() -> None:
    docs = (ROOT / "docs" / "deploy.md").read_text()
    anchors = {
        re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-") for h in re.findall(r"^#+ (.+)$", docs, re.M)
    }
    for rule in alert_rules():
        assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
        assert rule["labels"]["source"], rule["alert"]
        assert {"summary", "description", "runbook_url"} <= set(rule["annotations"]), rule["alert"]
        anchor = rule["annotations"]["runbook_url"].rsplit("#", 1)[1]
        assert anchor == rule["alert"].lower()
        assert anchor in anchors, f"docs/deploy.md has no '{rule['alert']}' section"


def dashboard() -> dict[str, Any]:
    return dict(json.loads(DASHBOARD.read_text()))


def _panels(d: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in d["panels"] if p["type"] != "row"]


def test_dashboard_has_the_required_panels() -> None:
    d = dashboard()
    assert d["uid"] == "otlpd-overview"
    assert d["title"]
    panels = {p["title"]: p for p in _panels(d)}
    exprs = {title: [t["expr"] for t in p["targets"]] for title, p in panels.items()}
    assert any("otlp_requests_total" in e for e in exprs["Request rate"])
    assert any('status!~"OK|200"' in e for e in exprs["Error ratio"])
    quantiles = [re.findall(r"histogram_quantile\((0\.\d+)", e) for e in exprs["Latency p50 / p95 / p99"]]
    assert quantiles == [["0.5"], ["0.95"], ["0.99"]]
    for title, metric in (
        ("Items in (accepted) / s", "otlpd_receiver_accepted_items_total"),
        ("Items out (sent) / s", "otlpd_exporter_sent_items_total"),
        ("Items dropped / s", "otlpd_exporter_dropped_items_total"),
        ("Items dropped / s", "otlpd_processor_dropped_items_total"),
        ("Items refused / s", "otlpd_receiver_refused_items_total"),
        ("Queue fill", "otlpd_exporter_queue_capacity"),
        ("Memory (RSS)", "process_resident_memory_bytes"),
        ("CPU", "process_cpu_seconds_total"),
    ):
        assert any(metric in e for e in exprs[title]), (title, metric)
    for title in ("Items in (accepted) / s", "Items out (sent) / s", "Items refused / s"):
        assert all("signal" in e for e in exprs[title]), f"{title}: per signal"


def test_dashboard_is_well_formed() -> None:
    d = dashboard()
    ids = [p["id"] for p in d["panels"]]
    assert len(ids) == len(set(ids))
    variables = {v["name"]: v for v in d["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for panel in _panels(d):
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        assert panel.get("description"), panel["title"]
        for target in panel["targets"]:
            assert 'job=~"$job"' in target["expr"], (panel["title"], target["expr"])
            assert target["datasource"] == panel["datasource"]


def grafana_to_promql(expr: str) -> str:
    """A dashboard query as Prometheus sees it once Grafana has filled in its variables."""
    return expr.replace("$__rate_interval", "1m").replace("$job", "otlpd").replace("$instance", ".*")


def test_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    """promtool parses every dashboard query (as recording rules), variables filled in as Grafana does."""
    rules = [
        {"record": f"dashboard:query_{i}", "expr": grafana_to_promql(expr)}
        for i, (_, expr) in enumerate(dashboard_exprs(dashboard()))
    ]
    path = tmp_path / "dashboard-queries.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    out = run([require_tool("promtool"), "check", "rules", path])
    assert f"SUCCESS: {len(rules)} rules found" in out


@pytest.mark.parametrize("kind", ["alerts", "dashboard"])
def test_monitoring_kustomization_ships_the_same_files(kind: str) -> None:
    maps = {m["metadata"]["name"]: m["data"] for m in by_kind(rendered("kustomize:monitoring"), "ConfigMap")}
    if kind == "alerts":
        assert maps["otlpd-alert-rules"]["otlpd-alerts.yaml"] == ALERTS.read_text()
    else:
        assert maps["otlpd-dashboard"]["otlpd-dashboard.json"] == DASHBOARD.read_text()
