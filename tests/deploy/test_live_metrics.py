"""The metrics the alert rules and the dashboard use exist in a live otlpd's /metrics, and Debian's
Prometheus scrapes a live otlpd with the rules loaded: target up, every rule evaluates, every
dashboard query answers. Loopback only, free ports, bounded waits."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from prometheus_client.parser import text_string_to_metric_families

from otlpd.pdata import Signal
from tests.deploy.support import (
    ALERTS,
    DASHBOARD,
    alert_rules,
    dashboard_exprs,
    dashboard_variable_metrics,
    metric_names,
    require_tool,
)
from tests.deploy.test_monitoring import grafana_to_promql
from tests.e2e import sdk
from tests.support.process import Otlpd, free_port

# Metrics the rules or the dashboard read that otlpd does not export, and who does. Every other
# metric they use must be in otlpd's /metrics; this list must not name a metric nobody uses.
EXTERNAL = {
    "up": "Prometheus (scrape health)",
    "kube_pod_container_resource_limits": "kube-state-metrics",
    "kube_pod_container_status_restarts_total": "kube-state-metrics",
}


def used_metrics() -> dict[str, set[str]]:
    """metric name -> where it is used."""
    used: dict[str, set[str]] = {}
    for rule in alert_rules():
        for name in metric_names(rule["expr"]):
            used.setdefault(name, set()).add(f"alert {rule['alert']}")
    dashboard = json.loads(DASHBOARD.read_text())
    for title, expr in dashboard_exprs(dashboard):
        for name in metric_names(expr):
            used.setdefault(name, set()).add(f"panel {title!r}")
    for name in dashboard_variable_metrics(dashboard):
        used.setdefault(name, set()).add("dashboard variables")
    return used


def test_metric_name_extraction() -> None:
    expr = (
        'histogram_quantile(0.95, sum by (job, le) (rate(a_bucket{job="x", status!~"OK|200"}[5m]))) > 1\n'
        '/ on (job) group_left max by (pod) (b{c=~"$job"} offset 5m) + absent(up) and bool c_total * 1e9'
    )
    assert metric_names(expr) == {"a_bucket", "b", "up", "c_total"}


@pytest.fixture(scope="module")
def live_otlpd() -> Iterator[Otlpd]:
    """otlpd with two workers (so the supervisor's metrics exist), after traffic that makes every
    labelled series appear: accepted and sent items, a refused request, an exporter that drops."""
    signals = ("traces", "metrics", "logs")
    config = {
        "receivers": {"otlp": {"protocols": {"grpc": None, "http": None}}},
        "processors": {"batch": {"timeout": "50ms"}},
        "exporters": {
            "debug": {"verbosity": "basic"},
            "otlp/down": {  # nothing listens there, no retries: its items are dropped at once
                "endpoint": f"127.0.0.1:{free_port()}",
                "tls": {"insecure": True},
                "timeout": "1s",
                "retry_on_failure": {"enabled": False},
            },
        },
        "service": {
            "pipelines": {
                s: {"receivers": ["otlp"], "processors": ["batch"], "exporters": ["debug", "otlp/down"]}
                for s in signals
            }
        },
    }
    with Otlpd(config, env={"OTLPD_WORKERS": "2"}) as otlpd:
        sdk.send_traces(sdk.exporter(Signal.TRACES, "grpc", otlpd.grpc_endpoint), "deploy", n=5)
        sdk.send_metrics(sdk.exporter(Signal.METRICS, "grpc", otlpd.grpc_endpoint), "deploy")
        sdk.send_logs(sdk.exporter(Signal.LOGS, "http", otlpd.http_endpoint), "deploy", n=4)
        bad = urllib.request.Request(
            f"{otlpd.http_endpoint}/v1/traces",
            data=b"\xff\xff not protobuf",
            headers={"Content-Type": "application/x-protobuf"},
        )
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(bad, timeout=5)
        assert err.value.code == 400
        # A span with an all-zero span id: rejected in a partial success, counted as refused (invalid).
        request = ExportTraceServiceRequest()
        span = request.resource_spans.add().scope_spans.add().spans.add()
        span.trace_id, span.span_id, span.name = b"\x01" * 16, b"\x00" * 8, "invalid"
        partial = urllib.request.Request(
            f"{otlpd.http_endpoint}/v1/traces",
            data=request.SerializeToString(),
            headers={"Content-Type": "application/x-protobuf"},
        )
        with urllib.request.urlopen(partial, timeout=5) as resp:
            assert resp.status == 200
        assert otlpd.metric("otlpd_receiver_refused_items_total", reason="invalid") == 1
        deadline = time.monotonic() + 20
        while otlpd.metric("otlpd_exporter_dropped_items_total", exporter="otlp/down") < 3:
            assert time.monotonic() < deadline, otlpd.metrics()
            time.sleep(0.1)
        yield otlpd
        assert otlpd.terminate() == 0


def exposed(otlpd: Otlpd) -> set[str]:
    return {s.name for f in text_string_to_metric_families(otlpd.metrics()) for s in f.samples}


@pytest.mark.timeout(90)
def test_every_metric_used_is_exported_by_otlpd_or_listed_as_external(live_otlpd: Otlpd) -> None:
    used = used_metrics()
    assert len(used) >= 20, sorted(used)
    stale = set(EXTERNAL) - set(used)
    assert not stale, f"EXTERNAL lists metrics nothing uses: {stale}"
    names = exposed(live_otlpd)
    missing = {
        name: sorted(where) for name, where in used.items() if name not in EXTERNAL and name not in names
    }
    assert not missing, f"used but not in otlpd's /metrics: {missing}"
    assert not {n for n in EXTERNAL if n.startswith("otlp")}, "an otlpd metric cannot be external"
    # External metrics are marked where they are used.
    for rule in alert_rules():
        external = metric_names(rule["expr"]) & set(EXTERNAL)
        if external - {"up"}:
            assert "kube-state-metrics" in rule["labels"]["source"], rule["alert"]


class Prometheus:
    def __init__(self, binary: Path, workdir: Path, target: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(ALERTS)],
            "scrape_configs": [{"job_name": "otlpd", "static_configs": [{"targets": [target]}]}],
        }
        (workdir / "prometheus.yaml").write_text(yaml.safe_dump(config))
        self.log = workdir / "prometheus.log"
        self.proc = subprocess.Popen(
            [
                str(binary),
                f"--config.file={workdir / 'prometheus.yaml'}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=warn",
            ],
            stdout=subprocess.DEVNULL,
            stderr=self.log.open("wb"),
        )

    def api(self, path: str, **params: str) -> Any:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        with urllib.request.urlopen(f"{self.url}/api/v1/{path}{query}", timeout=5) as resp:
            body = json.loads(resp.read())
        assert body["status"] == "success", body
        return body["data"]

    def wait(self, what: str, check: Any, timeout: float = 30) -> Any:
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"prometheus exited:\n{self.log.read_text()[-3000:]}"
            try:
                last = check()
                if last:
                    return last
            except (OSError, ValueError, KeyError, IndexError):
                pass
            time.sleep(0.25)
        pytest.fail(
            f"prometheus: {what} not seen in {timeout}s (last: {last})\n{self.log.read_text()[-3000:]}"
        )

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


@pytest.mark.timeout(120)
def test_prometheus_scrapes_otlpd_with_the_rules_loaded(live_otlpd: Otlpd, tmp_path: Path) -> None:
    prometheus = Prometheus(require_tool("prometheus"), tmp_path, f"127.0.0.1:{live_otlpd.admin_port}")
    try:
        target = prometheus.wait(
            "the otlpd target up",
            lambda: [t for t in prometheus.api("targets")["activeTargets"] if t["health"] == "up"],
        )[0]
        assert target["labels"]["job"] == "otlpd"
        assert target["scrapeUrl"] == f"{live_otlpd.admin}/metrics"

        # Every rule loaded and evaluated without error.
        def evaluated() -> list[dict[str, Any]]:
            rules = [r for g in prometheus.api("rules")["groups"] for r in g["rules"]]
            done = all(r["health"] == "ok" and not r["lastEvaluation"].startswith("0001") for r in rules)
            return rules if done and len(rules) == len(alert_rules()) else []

        rules = prometheus.wait("every rule evaluated", evaluated)
        assert {r["name"] for r in rules} == {r["alert"] for r in alert_rules()}

        # Two scrapes at least, so that rate() has something to work on.
        prometheus.wait(
            "two scrapes",
            lambda: prometheus.api("query", query='count_over_time(up{job="otlpd"}[1m]) >= 2')["result"],
        )
        up = prometheus.api("query", query='up{job="otlpd"}')["result"]
        assert [r["value"][1] for r in up] == ["1"]
        firing = {a["labels"]["alertname"] for a in prometheus.api("alerts")["alerts"]}
        assert not firing & {"OtlpdDown", "OtlpdTargetMissing", "OtlpdNotReady"}, firing

        # Every otlpd metric used is stored by Prometheus from the scrape.
        for name in sorted(set(used_metrics()) - set(EXTERNAL) | {"up"}):
            assert prometheus.api("query", query=f'count({name}{{job="otlpd"}})')["result"], name

        # Every dashboard query runs and returns series, variables filled in as Grafana does.
        dashboard = json.loads(DASHBOARD.read_text())
        for title, expr in dashboard_exprs(dashboard):
            result = prometheus.api("query", query=grafana_to_promql(expr))["result"]
            assert result, f"panel {title!r}: no data for {expr}"
    finally:
        prometheus.stop()
