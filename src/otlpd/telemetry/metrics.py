"""otlpd's own Prometheus metrics, all defined here and documented in docs/metrics.md.

One registry per running service (not prometheus_client's global one), so
tests can run several services in one process. Components bind label values
once when they are built; the hot path only calls ``inc``/``observe``.
"""

from __future__ import annotations

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_BATCH_BUCKETS = (10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000)


class Metrics:
    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        self.requests = Counter(
            "otlp_requests", "OTLP export requests received, by outcome.",
            ["receiver", "signal", "transport", "status"], registry=registry,
        )  # fmt: skip
        self.request_duration = Histogram(
            "otlp_request_duration_seconds",
            "Time from a request's arrival to its response, by signal and transport.",
            ["receiver", "signal", "transport"], buckets=_LATENCY_BUCKETS, registry=registry,
        )  # fmt: skip
        self.receiver_accepted = Counter(
            "otlpd_receiver_accepted_items",
            "Items (spans, data points, log records) accepted into the pipelines.",
            ["receiver", "signal", "transport"], registry=registry,
        )  # fmt: skip
        self.receiver_refused = Counter(
            "otlpd_receiver_refused_items",
            "Items refused: the client was told to retry or that the data was invalid.",
            ["receiver", "signal", "transport", "reason"], registry=registry,
        )  # fmt: skip
        self.exporter_sent = Counter(
            "otlpd_exporter_sent_items", "Items successfully delivered by an exporter.",
            ["exporter", "signal"], registry=registry,
        )  # fmt: skip
        self.exporter_failed_attempts = Counter(
            "otlpd_exporter_send_failed_requests",
            "Send attempts that failed (each retry counts once), by error kind.",
            ["exporter", "signal", "error"], registry=registry,
        )  # fmt: skip
        self.exporter_enqueue_failed = Counter(
            "otlpd_exporter_enqueue_failed_items",
            "Items an exporter refused because its sending queue was full.",
            ["exporter", "signal"], registry=registry,
        )  # fmt: skip
        self.exporter_dropped = Counter(
            "otlpd_exporter_dropped_items",
            "Items an exporter gave up on and lost, by reason "
            "(permanent, retries_exhausted, rejected, shutdown).",
            ["exporter", "signal", "reason"], registry=registry,
        )  # fmt: skip
        self.queue_size = Gauge(
            "otlpd_exporter_queue_size", "Requests waiting in an exporter's sending queue.",
            ["exporter", "signal"], registry=registry,
        )  # fmt: skip
        self.queue_capacity = Gauge(
            "otlpd_exporter_queue_capacity", "Capacity of an exporter's sending queue, in requests.",
            ["exporter", "signal"], registry=registry,
        )  # fmt: skip
        self.batch_send_size = Histogram(
            "otlpd_processor_batch_send_size", "Items per batch sent by the batch processor.",
            ["processor", "pipeline", "signal"], buckets=_BATCH_BUCKETS, registry=registry,
        )  # fmt: skip
        self.batch_trigger = Counter(
            "otlpd_processor_batch_sends",
            "Batches sent, by what triggered the send (size, timeout, shutdown).",
            ["processor", "pipeline", "signal", "trigger"], registry=registry,
        )  # fmt: skip
        self.processor_dropped = Counter(
            "otlpd_processor_dropped_items",
            "Items a processor lost because its consumer refused them for good.",
            ["processor", "pipeline", "signal"], registry=registry,
        )  # fmt: skip
        self.pending_items = Gauge(
            "otlpd_processor_batch_pending_items", "Items buffered in a batch processor.",
            ["processor", "pipeline", "signal"], registry=registry,
        )  # fmt: skip
        self.store_size = Gauge(
            "otlpd_store_size_bytes", "Bytes the store's database uses on disk (data and WAL).",
            ["exporter"], registry=registry,
        )  # fmt: skip
        self.store_items = Gauge(
            "otlpd_store_items", "Items held in the store, by signal.",
            ["exporter", "signal"], registry=registry,
        )  # fmt: skip
        self.store_pruned = Counter(
            "otlpd_store_pruned_items",
            "Items deleted by retention, by reason (age, size).",
            ["exporter", "reason"], registry=registry,
        )  # fmt: skip
        self.store_query_duration = Histogram(
            "otlpd_query_duration_seconds", "Time to answer a query API request, by endpoint.",
            ["endpoint"], buckets=_LATENCY_BUCKETS, registry=registry,
        )  # fmt: skip
        self.component_up = Gauge(
            "otlpd_component_up", "1 when a component has started and is running.",
            ["kind", "id"], registry=registry,
        )  # fmt: skip
        self.ready = Gauge("otlpd_ready", "1 when otlpd reports ready.", registry=registry)
        self.build_info = Gauge(
            "otlpd_build_info", "Always 1; labels carry the version.", ["version"], registry=registry
        )

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
