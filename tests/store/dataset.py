"""A small, fully known data set sent to a running otlpd: what the API tests read back.

Traces and logs go through the OpenTelemetry SDK (frontend over OTLP/gRPC,
backend over OTLP/HTTP) with explicit timestamps; metrics with exact bucket
counts are built by hand and POSTed to /v1/metrics, plus one SDK metrics
export. Everything lies at fixed offsets from ``t0`` (20 minutes ago, on a
10 s boundary), so every query has one exact answer.

Traces (ids from the SDK):
  A  frontend "GET /cart" SERVER 120ms, status OK, event "cache.miss"
       └ frontend "call backend" CLIENT 100ms
           └ backend "load cart" SERVER 80ms, status ERROR "db timeout", link → B/b1
               └ backend "compute total" INTERNAL 10ms
  B  backend "process queue" CONSUMER 5ms at +1s
       └ backend "publish" PRODUCER 1ms
  C  frontend "GET /health" SERVER 1ms at +2s; trace id 000…00abcdef (64-bit), span id 000…cd
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import trace
from opentelemetry._logs import SeverityNumber
from opentelemetry.proto.metrics.v1 import metrics_pb2
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.trace import Link, NonRecordingSpan, SpanKind, Status, StatusCode

from otlpd.pdata import Signal
from tests.e2e import sdk
from tests.store.support import (
    CUMULATIVE,
    DELTA,
    MS,
    SECOND,
    gauge,
    get,
    histogram,
    histogram_point,
    metrics_request,
    number,
    ok,
    post,
    sum_metric,
    wait_until,
)
from tests.support.process import Otlpd

SCHEMA_URL = "https://opentelemetry.io/schemas/1.26.0"
FRONTEND_RESOURCE = {"service.name": "frontend", "deployment.environment": "prod", "host.cpus": 8}
BACKEND_RESOURCE = {"service.name": "backend", "deployment.environment": "staging"}
LATENCY_BOUNDS = [10.0, 50.0, 100.0, 500.0]


@dataclass
class Dataset:
    t0: int
    traces: dict[str, str] = field(default_factory=dict)  # A, B, C → trace id hex
    spans: dict[str, str] = field(default_factory=dict)  # a1 … c1 → span id hex
    sdk_metrics: set[Any] = field(default_factory=set)
    sdk_metrics_sent_ns: int = 0  # just before the SDK's meter provider was made


def _hex(ctx: trace.SpanContext) -> tuple[str, str]:
    return format(ctx.trace_id, "032x"), format(ctx.span_id, "016x")


class ChosenIds(RandomIdGenerator):
    """Random ids, except those queued in ``trace_ids`` / ``span_ids`` (taken first)."""

    def __init__(self) -> None:
        self.trace_ids: list[int] = []
        self.span_ids: list[int] = []

    def generate_trace_id(self) -> int:
        return self.trace_ids.pop(0) if self.trace_ids else super().generate_trace_id()

    def generate_span_id(self) -> int:
        return self.span_ids.pop(0) if self.span_ids else super().generate_span_id()


# Trace C has a 64-bit id (the high half zero), as old Jaeger clients make: Jaeger ids may drop zeros.
C_TRACE_ID = 0x0000000000ABCDEF
C_SPAN_ID = 0x00000000000000CD


def send_traces(otlpd: Otlpd, data: Dataset) -> None:
    t0 = data.t0
    ids = ChosenIds()
    front = TracerProvider(resource=Resource(FRONTEND_RESOURCE, SCHEMA_URL), id_generator=ids)
    front.add_span_processor(BatchSpanProcessor(sdk.exporter(Signal.TRACES, "grpc", otlpd.grpc_endpoint)))
    back = TracerProvider(resource=Resource(BACKEND_RESOURCE))
    back.add_span_processor(BatchSpanProcessor(sdk.exporter(Signal.TRACES, "http", otlpd.http_endpoint)))
    ft = front.get_tracer("shop.cart", "1.2.3", schema_url=SCHEMA_URL, attributes={"scope.tier": "web"})
    bt = back.get_tracer("shop.backend")

    # B first: A's backend span links to it.
    b1 = bt.start_span(
        "process queue",
        kind=SpanKind.CONSUMER,
        attributes={"messaging.batch.size": 7},
        start_time=t0 + SECOND,
    )
    b2 = bt.start_span(
        "publish", trace.set_span_in_context(b1), kind=SpanKind.PRODUCER, start_time=t0 + SECOND + MS
    )
    b2.end(t0 + SECOND + 2 * MS)
    b1.end(t0 + SECOND + 5 * MS)

    a1 = ft.start_span(
        "GET /cart",
        kind=SpanKind.SERVER,
        attributes={
            "http.route": "/cart",
            "http.response.status_code": 200,
            "cache.hit": True,
            "sample.ratio": 0.25,
            "tags": ("a", "b"),
        },
        start_time=t0,
    )
    a1.add_event("cache.miss", {"cache.key": "user:42", "attempt": 2}, timestamp=t0 + 5 * MS)
    a1.set_status(Status(StatusCode.OK))
    a2 = ft.start_span(
        "call backend", trace.set_span_in_context(a1), kind=SpanKind.CLIENT, start_time=t0 + 10 * MS
    )
    # The backend continues the trace from the client span's context, as a propagator would.
    remote = trace.set_span_in_context(NonRecordingSpan(a2.get_span_context()))
    a3 = bt.start_span(
        "load cart",
        remote,
        kind=SpanKind.SERVER,
        attributes={"retry": 3},
        links=[Link(b1.get_span_context(), {"link.kind": "batch"})],
        start_time=t0 + 20 * MS,
    )
    a3.set_status(Status(StatusCode.ERROR, "db timeout"))
    a4 = bt.start_span("compute total", trace.set_span_in_context(a3), start_time=t0 + 30 * MS)
    a4.end(t0 + 40 * MS)
    a3.end(t0 + 100 * MS)
    a2.end(t0 + 110 * MS)
    a1.end(t0 + 120 * MS)

    ids.trace_ids.append(C_TRACE_ID)
    ids.span_ids.append(C_SPAN_ID)
    c1 = ft.start_span(
        "GET /health",
        kind=SpanKind.SERVER,
        attributes={"http.route": "/health", "http.response.status_code": 204},
        start_time=t0 + 2 * SECOND,
    )
    c1.end(t0 + 2 * SECOND + MS)

    for name, s in {"a1": a1, "a2": a2, "a3": a3, "a4": a4, "b1": b1, "b2": b2, "c1": c1}.items():
        tid, sid = _hex(s.get_span_context())
        data.spans[name] = sid
        data.traces[name[0].upper()] = tid
    for provider in (front, back):
        assert provider.force_flush(10_000)
        provider.shutdown()


def send_logs(otlpd: Otlpd, data: Dataset) -> None:
    """L1..L6 at known times; L1-L3 belong to trace A."""
    t0 = data.t0
    front = LoggerProvider(resource=Resource(FRONTEND_RESOURCE, SCHEMA_URL))
    front.add_log_record_processor(
        BatchLogRecordProcessor(sdk.exporter(Signal.LOGS, "http", otlpd.http_endpoint))
    )
    back = LoggerProvider(resource=Resource(BACKEND_RESOURCE))
    back.add_log_record_processor(
        BatchLogRecordProcessor(sdk.exporter(Signal.LOGS, "grpc", otlpd.grpc_endpoint))
    )
    fl, bl = front.get_logger("shop.logs", "0.1"), back.get_logger("shop.backend")

    def ctx(name: str) -> Any:
        span_context = trace.SpanContext(
            int(data.traces[name[0].upper()], 16), int(data.spans[name], 16), is_remote=True
        )
        return trace.set_span_in_context(NonRecordingSpan(span_context))

    fl.emit(
        timestamp=t0 + 1 * MS,
        observed_timestamp=t0 + 1 * MS,
        context=ctx("a1"),
        severity_number=SeverityNumber.DEBUG,
        severity_text="DEBUG",
        body="cache lookup for user:42",
    )
    fl.emit(
        timestamp=t0 + 2 * MS,
        observed_timestamp=t0 + 3 * MS,
        context=ctx("a1"),
        severity_number=SeverityNumber.INFO,
        body="Cart Loaded",
    )
    bl.emit(
        timestamp=t0 + 25 * MS,
        observed_timestamp=t0 + 26 * MS,
        context=ctx("a3"),
        severity_number=SeverityNumber.ERROR,
        severity_text="ERROR",
        body="DB timeout after 3 retries",
        attributes={"db.system": "postgresql", "db.attempts": 3},
    )
    bl.emit(
        timestamp=t0 + SECOND,
        observed_timestamp=t0 + SECOND,
        severity_number=SeverityNumber.WARN,
        severity_text="WARN",
        body={"event": "queue.lag", "lag": 12, "ok": False},
    )
    fl.emit(
        timestamp=t0 + 3 * SECOND,
        observed_timestamp=t0 + 3 * SECOND,
        severity_number=SeverityNumber.FATAL,
        severity_text="CRITICAL",
        body="out of memory",
    )
    bl.emit(
        timestamp=t0 + 4 * SECOND,
        observed_timestamp=t0 + 4 * SECOND,
        severity_number=SeverityNumber.INFO2,
        body="payment processed",
        event_name="payment.done",
    )
    for provider in (front, back):
        assert provider.force_flush(10_000)
        provider.shutdown()


def metrics_requests(t0: int) -> list[Any]:
    """Hand-built exports, in the order a client would send them (cumulative ones grow)."""
    s = SECOND
    bounds = LATENCY_BOUNDS
    requests = []
    requests.append(
        metrics_request(
            "shop",
            [
                gauge(
                    "room.temperature",
                    [
                        number(t0 + 10 * s, 20.5, room="lab"),
                        number(t0 + 12 * s, 21.0, room="lab"),
                        number(t0 + 20 * s, 21.5, room="lab"),
                        number(t0 + 40 * s, 22.0, room="lab"),
                        number(t0 + 30 * s, 18, room="office"),
                    ],
                    unit="Cel",
                ),
                sum_metric(
                    "http.requests",
                    [
                        number(t0 + 10 * s, 10, t0, route="/cart", code=200),
                        number(t0 + 20 * s, 25, t0, route="/cart", code=200),
                        number(t0 + 30 * s, 40, t0, route="/cart", code=200),
                        number(t0 + 30 * s, 2, t0, route="/cart", code=500),
                    ],
                    unit="{request}",
                ),
                sum_metric(
                    "jobs.done",
                    [
                        number(t0 + 5 * s, 3, t0),
                        number(t0 + 8 * s, 4, t0 + 5 * s),
                        number(t0 + 18 * s, 5, t0 + 8 * s),
                    ],
                    temporality=DELTA,
                ),
            ],
        )
    )
    # The cumulative histogram over four exports: +10s, +20s, unchanged at +30s, reset at +40s.
    for offset, counts, total, start in (
        (10, [2, 4, 3, 1, 0], 600.0, t0),
        (20, [4, 8, 6, 1, 1], 1500.0, t0),
        (30, [4, 8, 6, 1, 1], 1500.0, t0),
        (40, [1, 1, 0, 0, 0], 30.0, t0 + 35 * s),
    ):
        point = histogram_point(t0 + offset * s, bounds, counts, total, start, route="/cart")
        requests.append(metrics_request("shop", [histogram("http.latency", [point], CUMULATIVE, unit="ms")]))
    exponential = metrics_pb2.Metric(
        name="payload.size",
        unit="By",
        exponential_histogram=metrics_pb2.ExponentialHistogram(
            aggregation_temporality=DELTA,
            data_points=[
                metrics_pb2.ExponentialHistogramDataPoint(
                    time_unix_nano=t0 + 10 * s,
                    start_time_unix_nano=t0,
                    count=5,
                    sum=30.0,
                    scale=0,
                    zero_count=1,
                    # (1,2]: 1, (2,4]: 0, (4,8]: 2, (8,16]: 1
                    positive=metrics_pb2.ExponentialHistogramDataPoint.Buckets(
                        offset=0, bucket_counts=[1, 0, 2, 1]
                    ),
                )
            ],
        ),
    )
    summary = metrics_pb2.Metric(
        name="rpc.duration",
        unit="ms",
        description="RPC latency",
        summary=metrics_pb2.Summary(
            data_points=[
                metrics_pb2.SummaryDataPoint(
                    time_unix_nano=t0 + 10 * s,
                    start_time_unix_nano=t0,
                    count=100,
                    sum=1500.0,
                    quantile_values=[
                        metrics_pb2.SummaryDataPoint.ValueAtQuantile(quantile=0.5, value=12.0),
                        metrics_pb2.SummaryDataPoint.ValueAtQuantile(quantile=0.99, value=80.0),
                    ],
                ),
                metrics_pb2.SummaryDataPoint(
                    time_unix_nano=t0 + 20 * s,
                    start_time_unix_nano=t0,
                    count=150,
                    sum=2100.0,
                    quantile_values=[
                        metrics_pb2.SummaryDataPoint.ValueAtQuantile(quantile=0.5, value=11.0),
                        metrics_pb2.SummaryDataPoint.ValueAtQuantile(quantile=0.99, value=95.0),
                    ],
                ),
            ]
        ),
    )
    requests.append(metrics_request("shop", [exponential, summary]))
    return requests


METRIC_NAMES = [
    "http.latency",
    "http.requests",
    "jobs.done",
    "payload.size",
    "room.temperature",
    "rpc.duration",
    "sdk.latency",
    "sdk.requests",
    "sdk.temperature",
]


def load(otlpd: Otlpd) -> Dataset:
    """Send everything, then wait until every endpoint can see all of it."""
    data = Dataset(t0=(time.time_ns() // (10 * SECOND)) * 10 * SECOND - 1200 * SECOND)
    send_traces(otlpd, data)
    send_logs(otlpd, data)
    for request in metrics_requests(data.t0):
        assert post(otlpd.http_endpoint, "metrics", request) == 200
    data.sdk_metrics_sent_ns = time.time_ns()
    data.sdk_metrics = sdk.send_metrics(sdk.exporter(Signal.METRICS, "grpc", otlpd.grpc_endpoint), "sdk")

    def complete() -> bool:
        traces = ok(otlpd.admin, "/api/v1/traces", {"limit": 10})["traces"]
        counts = {t["traceId"]: t["spanCount"] for t in traces}
        want = {data.traces["A"]: 4, data.traces["B"]: 2, data.traces["C"]: 1}
        logs = ok(otlpd.admin, "/api/v1/logs")["logs"]
        metrics = [m["name"] for m in ok(otlpd.admin, "/api/v1/metrics")["metrics"]]
        status, latency = get(
            otlpd.admin,
            "/api/v1/metrics/http.latency/series",
            {"start": data.t0, "end": data.t0 + 40 * SECOND, "step": "10s"},
        )
        return (
            counts == want
            and len(logs) == 6
            and metrics == METRIC_NAMES
            and status == 200
            and len(latency["series"]) == 1
            and len(latency["series"][0]["points"]) == 4
        )

    wait_until(complete, timeout=20)
    return data
