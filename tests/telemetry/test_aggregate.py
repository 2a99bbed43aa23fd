"""Merging workers' metrics: counts add up, states take the truthful extreme."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from otlpd.telemetry.aggregate import merge
from otlpd.telemetry.metrics import Metrics


def samples(text: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in text_string_to_metric_families(text.decode())
        for s in f.samples
    }


def test_counters_histograms_and_gauges_merge_by_their_meaning() -> None:
    a, b = Metrics(), Metrics()
    a.requests.labels("otlp", "traces", "grpc", "OK").inc(3)
    b.requests.labels("otlp", "traces", "grpc", "OK").inc(4)
    b.requests.labels("otlp", "logs", "http", "400").inc()  # a series only one worker has
    a.request_duration.labels("otlp", "traces", "grpc").observe(0.002)
    b.request_duration.labels("otlp", "traces", "grpc").observe(3.0)
    a.queue_capacity.labels("otlp", "traces").set(1000)
    b.queue_capacity.labels("otlp", "traces").set(1000)
    a.ready.set(1)
    b.ready.set(0)
    merged = samples(merge([a.exposition().decode(), b.exposition().decode()]))
    labels = (("receiver", "otlp"), ("signal", "traces"), ("status", "OK"), ("transport", "grpc"))
    assert merged["otlp_requests_total", labels] == 7
    logs = (("receiver", "otlp"), ("signal", "logs"), ("status", "400"), ("transport", "http"))
    assert merged["otlp_requests_total", logs] == 1
    hist = (("receiver", "otlp"), ("signal", "traces"), ("transport", "grpc"))
    assert merged["otlp_request_duration_seconds_count", hist] == 2
    assert merged["otlp_request_duration_seconds_sum", hist] == 3.002
    assert merged["otlp_request_duration_seconds_bucket", (("le", "0.0025"), *hist)] == 1
    assert merged["otlp_request_duration_seconds_bucket", (("le", "+Inf"), *hist)] == 2
    assert merged["otlpd_exporter_queue_capacity", (("exporter", "otlp"), ("signal", "traces"))] == 2000
    assert merged["otlpd_ready", ()] == 0  # ready only if every worker is
