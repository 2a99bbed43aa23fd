"""otlpd's own HTTP server on a running process: health probes and Prometheus metrics."""

from __future__ import annotations

import urllib.request
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from otlpd.pdata import Signal
from tests.e2e import sdk
from tests.support.process import Otlpd
from tests.support.sink import Sink


def config(sink: Sink) -> dict[str, Any]:
    return {
        "receivers": {"otlp": {"protocols": {"grpc": None, "http": None}}},
        "processors": {"batch": {"timeout": "50ms"}},
        "exporters": {
            "otlp": {
                "endpoint": sink.grpc_endpoint,
                "tls": {"insecure": True},
                "sending_queue": {"queue_size": 77},
            },
            "debug": {"verbosity": "basic"},
        },
        "service": {
            "pipelines": {
                "traces": {"receivers": ["otlp"], "processors": ["batch"], "exporters": ["otlp", "debug"]},
                "logs": {"receivers": ["otlp"], "exporters": ["otlp"]},
            }
        },
    }


EXPECTED_COMPONENTS = {
    "exporter:otlp",
    "exporter:debug",
    "processor:batch@traces",
    "receiver:otlp",
}


@pytest.mark.timeout(30)
def test_health_endpoints_list_started_components(sink: Sink) -> None:
    with Otlpd(config(sink)) as otlpd:
        for path in ("/health/ready", "/ready"):
            status, body = otlpd.health(path)
            assert status == 200, path
            assert body["status"] == "ready"
            assert body["state"] == "running"
            assert set(body["components"]) == EXPECTED_COMPONENTS, path
            assert {c["status"] for c in body["components"].values()} == {"started"}
            batch = body["components"]["processor:batch@traces"]
            assert (batch["kind"], batch["id"], batch["pipeline"]) == ("processor", "batch", "traces")
        for path in ("/health/live", "/health"):
            status, body = otlpd.health(path)
            assert status == 200, path
            assert body["status"] == "alive"
            assert set(body["components"]) == EXPECTED_COMPONENTS, path
            assert {c["status"] for c in body["components"].values()} == {"started"}
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(f"{otlpd.admin}/health/nope", timeout=5)
        assert err.value.code == 404
        assert otlpd.metric("otlpd_ready") == 1
        assert otlpd.terminate() == 0


@pytest.mark.timeout(30)
def test_metrics_endpoint_exposes_pipeline_and_process_metrics(sink: Sink) -> None:
    with Otlpd(config(sink)) as otlpd:
        sent = sdk.send_traces(sdk.exporter(Signal.TRACES, "grpc", otlpd.grpc_endpoint), "m", n=6)
        sdk.send_traces(sdk.exporter(Signal.TRACES, "http", otlpd.http_endpoint), "m2", n=4)
        sdk.send_logs(sdk.exporter(Signal.LOGS, "http", otlpd.http_endpoint), "l", n=4)
        assert sink.wait_for_items(Signal.TRACES, 10) == 10
        assert sink.wait_for_items(Signal.LOGS, 4) == 4
        assert sdk.of_run(sdk.received_spans(sink.state.messages(Signal.TRACES)), "m") == sent

        with urllib.request.urlopen(f"{otlpd.admin}/metrics", timeout=5) as resp:
            assert resp.headers["Content-Type"].startswith("text/plain")
            text = resp.read().decode()
        families = {f.name: f for f in text_string_to_metric_families(text)}
        kinds = {
            "otlp_requests": "counter",
            "otlp_request_duration_seconds": "histogram",
            "otlpd_receiver_accepted_items": "counter",
            "otlpd_exporter_sent_items": "counter",
            "otlpd_exporter_queue_size": "gauge",
            "otlpd_exporter_queue_capacity": "gauge",
            "otlpd_processor_batch_send_size": "histogram",
            "process_resident_memory_bytes": "gauge",
            "process_cpu_seconds": "counter",
        }
        for name, kind in kinds.items():
            assert name in families, f"{name} missing from /metrics"
            assert families[name].type == kind, name

        m = otlpd.metric
        assert m("otlp_requests_total", signal="traces", transport="grpc", status="OK") >= 1
        assert m("otlp_requests_total", signal="traces", transport="http", status="200") >= 1
        assert m("otlp_requests_total", signal="logs", transport="http", status="200") >= 1
        requests = m("otlp_requests_total", signal="traces")
        assert m("otlp_request_duration_seconds_count", signal="traces") == requests
        assert m("otlpd_receiver_accepted_items_total", signal="traces", transport="grpc") == 6
        assert m("otlpd_receiver_accepted_items_total", signal="traces", transport="http") == 4
        assert m("otlpd_receiver_accepted_items_total", signal="logs") == 4
        assert m("otlpd_exporter_sent_items_total", exporter="otlp", signal="traces") == 10
        assert m("otlpd_exporter_sent_items_total", exporter="otlp", signal="logs") == 4
        assert m("otlpd_exporter_sent_items_total", exporter="debug", signal="traces") == 10
        assert m("otlpd_exporter_queue_capacity", exporter="otlp", signal="traces") == 77
        assert m("otlpd_exporter_queue_size", exporter="otlp", signal="traces") == 0
        assert m("otlpd_processor_batch_send_size_sum", signal="traces") == 10
        assert m("otlpd_processor_batch_send_size_count", signal="traces") >= 1
        assert m("process_resident_memory_bytes") > 1_000_000
        assert m("process_cpu_seconds_total") > 0
        assert m("otlpd_build_info") == 1
        assert otlpd.terminate() == 0
