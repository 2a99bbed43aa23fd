"""Shared by the store tests (in-process and whole-process): OTLP requests built by hand, configs, HTTP.

Hand-built requests are for exact values (timestamps, bucket counts) that the
SDK does not let a test choose; they go over the same wire (OTLP/HTTP
protobuf) as the SDK's.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry.proto.collector.logs.v1 import logs_service_pb2 as logs_svc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2 as metrics_svc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as trace_svc
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.logs.v1 import logs_pb2
from opentelemetry.proto.metrics.v1 import metrics_pb2
from opentelemetry.proto.resource.v1 import resource_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from otlpd.pdata import Signal
from otlpd.store import columns
from otlpd.store.columns import Dimensions, SpanColumns
from tests.exporters.helpers import post as post_request

MS = 1_000_000
SECOND = 1_000_000_000
CUMULATIVE = metrics_pb2.AGGREGATION_TEMPORALITY_CUMULATIVE
DELTA = metrics_pb2.AGGREGATION_TEMPORALITY_DELTA


def store_config(path: str, **store: Any) -> dict[str, Any]:
    """otlp receiver → batch (200ms) → store exporter (200ms flushes) for every signal."""
    exporter = {"path": path, "flush_interval": "200ms", **store}
    return {
        "receivers": {"otlp": {"protocols": {"grpc": None, "http": None}}},
        "processors": {"batch": {"timeout": "200ms"}},
        "exporters": {"store": exporter},
        "service": {
            "pipelines": {
                signal: {"receivers": ["otlp"], "processors": ["batch"], "exporters": ["store"]}
                for signal in ("traces", "metrics", "logs")
            }
        },
    }


# -- OTLP messages -----------------------------------------------------------


def any_value(value: Any) -> common_pb2.AnyValue:
    if isinstance(value, bool):
        return common_pb2.AnyValue(bool_value=value)
    if isinstance(value, int):
        return common_pb2.AnyValue(int_value=value)
    if isinstance(value, float):
        return common_pb2.AnyValue(double_value=value)
    if isinstance(value, bytes):
        return common_pb2.AnyValue(bytes_value=value)
    if isinstance(value, dict):
        return common_pb2.AnyValue(kvlist_value=common_pb2.KeyValueList(values=kvs(value)))
    if isinstance(value, list | tuple):
        return common_pb2.AnyValue(array_value=common_pb2.ArrayValue(values=[any_value(v) for v in value]))
    return common_pb2.AnyValue(string_value=str(value))


def kvs(attrs: dict[str, Any]) -> list[common_pb2.KeyValue]:
    return [common_pb2.KeyValue(key=k, value=any_value(v)) for k, v in attrs.items()]


def resource(service: str | None, **attrs: Any) -> resource_pb2.Resource:
    named = {"service.name": service} if service is not None else {}
    return resource_pb2.Resource(attributes=kvs({**named, **attrs}))


def span(
    trace_id: bytes,
    span_id: bytes,
    name: str,
    start_ns: int,
    end_ns: int,
    *,
    parent: bytes = b"",
    kind: int = trace_pb2.Span.SPAN_KIND_INTERNAL,
    status: int = 0,
    attrs: dict[str, Any] | None = None,
    padding: int = 0,
) -> trace_pb2.Span:
    attributes = dict(attrs or {})
    if padding:
        attributes["padding"] = "x" * padding
    return trace_pb2.Span(
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=parent,
        name=name,
        kind=kind,  # type: ignore[arg-type]
        start_time_unix_nano=start_ns,
        end_time_unix_nano=end_ns,
        attributes=kvs(attributes),
        status=trace_pb2.Status(code=status),  # type: ignore[arg-type]
    )


def traces_request(
    service: str | None, spans: Sequence[trace_pb2.Span], scope: str = "tests", **resource_attrs: Any
) -> trace_svc.ExportTraceServiceRequest:
    return trace_svc.ExportTraceServiceRequest(
        resource_spans=[
            trace_pb2.ResourceSpans(
                resource=resource(service, **resource_attrs),
                scope_spans=[
                    trace_pb2.ScopeSpans(scope=common_pb2.InstrumentationScope(name=scope), spans=spans)
                ],
            )
        ]
    )


def log_record(
    time_ns: int,
    body: Any,
    severity: int = 9,
    *,
    text: str = "",
    trace_id: bytes = b"",
    span_id: bytes = b"",
    attrs: dict[str, Any] | None = None,
    observed_ns: int = 0,
) -> logs_pb2.LogRecord:
    return logs_pb2.LogRecord(
        time_unix_nano=time_ns,
        observed_time_unix_nano=observed_ns,
        severity_number=severity,  # type: ignore[arg-type]
        severity_text=text,
        body=any_value(body),
        trace_id=trace_id,
        span_id=span_id,
        attributes=kvs(attrs or {}),
    )


def logs_request(
    service: str | None, records: Sequence[logs_pb2.LogRecord]
) -> logs_svc.ExportLogsServiceRequest:
    return logs_svc.ExportLogsServiceRequest(
        resource_logs=[
            logs_pb2.ResourceLogs(
                resource=resource(service),
                scope_logs=[
                    logs_pb2.ScopeLogs(
                        scope=common_pb2.InstrumentationScope(name="tests"), log_records=records
                    )
                ],
            )
        ]
    )


def metrics_request(
    service: str | None, metrics: Sequence[metrics_pb2.Metric]
) -> metrics_svc.ExportMetricsServiceRequest:
    return metrics_svc.ExportMetricsServiceRequest(
        resource_metrics=[
            metrics_pb2.ResourceMetrics(
                resource=resource(service),
                scope_metrics=[
                    metrics_pb2.ScopeMetrics(
                        scope=common_pb2.InstrumentationScope(name="tests"), metrics=metrics
                    )
                ],
            )
        ]
    )


def number(time_ns: int, value: float | int, start_ns: int = 0, **attrs: Any) -> metrics_pb2.NumberDataPoint:
    p = metrics_pb2.NumberDataPoint(
        time_unix_nano=time_ns, start_time_unix_nano=start_ns, attributes=kvs(attrs)
    )
    if isinstance(value, int):
        p.as_int = value
    else:
        p.as_double = value
    return p


def gauge(name: str, points: Sequence[metrics_pb2.NumberDataPoint], unit: str = "") -> metrics_pb2.Metric:
    return metrics_pb2.Metric(name=name, unit=unit, gauge=metrics_pb2.Gauge(data_points=points))


def sum_metric(
    name: str,
    points: Sequence[metrics_pb2.NumberDataPoint],
    temporality: int = CUMULATIVE,
    monotonic: bool = True,
    unit: str = "",
) -> metrics_pb2.Metric:
    return metrics_pb2.Metric(
        name=name,
        unit=unit,
        sum=metrics_pb2.Sum(
            data_points=points,
            aggregation_temporality=temporality,  # type: ignore[arg-type]
            is_monotonic=monotonic,
        ),
    )


def histogram_point(
    time_ns: int,
    bounds: Sequence[float],
    counts: Sequence[int],
    total: float,
    start_ns: int = 0,
    **attrs: Any,
) -> metrics_pb2.HistogramDataPoint:
    return metrics_pb2.HistogramDataPoint(
        time_unix_nano=time_ns,
        start_time_unix_nano=start_ns,
        explicit_bounds=bounds,
        bucket_counts=counts,
        count=sum(counts),
        sum=total,
        attributes=kvs(attrs),
    )


def histogram(
    name: str, points: Sequence[metrics_pb2.HistogramDataPoint], temporality: int = CUMULATIVE, unit: str = ""
) -> metrics_pb2.Metric:
    return metrics_pb2.Metric(
        name=name,
        unit=unit,
        histogram=metrics_pb2.Histogram(
            data_points=points,
            aggregation_temporality=temporality,  # type: ignore[arg-type]
        ),
    )


# -- HTTP --------------------------------------------------------------------


def bulk_spans(first: int, count: int, now: int = 1_800_000_000 * SECOND) -> SpanColumns:
    """``count`` spans, one a second from ``now + first`` seconds (fast: no protobuf per span)."""
    dims = Dimensions()
    rkey, _ = dims.resource(resource("bulk").SerializeToString(), b"")
    skey = dims.scope(common_pb2.InstrumentationScope(name="bulk").SerializeToString(), b"")
    numbers = range(first, first + count)
    c = SpanColumns(dims=dims)
    c.trace_id = [tid(n) for n in numbers]
    c.trace_key = [columns.trace_key(t) for t in c.trace_id]
    c.span_id = [n.to_bytes(8, "big") for n in numbers]
    c.parent_span_id = [b""] * count
    c.service_name = ["bulk"] * count
    c.name = ["op"] * count
    c.kind = [1] * count
    c.start_ns = [now + n * SECOND for n in numbers]
    c.end_ns = [now + n * SECOND + 1 for n in numbers]
    c.status_code = [0] * count
    c.resource_key = [rkey] * count
    c.scope_key = [skey] * count
    c.data = [os.urandom(24).hex().encode() for _ in numbers]  # incompressible, like real spans mostly are
    return c


def tid(n: int) -> bytes:
    """Trace id number n (16 bytes, big-endian)."""
    return n.to_bytes(16, "big")


def post(http_endpoint: str, signal: str, message: Any) -> int:
    """POST an OTLP/HTTP protobuf request; the status code."""
    return post_request(http_endpoint, Signal(signal), message)


def get(
    base: str, path: str, params: dict[str, Any] | Sequence[tuple[str, Any]] | None = None
) -> tuple[int, Any]:
    """GET JSON: (status, decoded body), for error statuses too."""
    url = f"{base}{urllib.parse.quote(path)}"
    if params:
        url += "?" + urllib.parse.urlencode(params, doseq=True)
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            status, content_type, body = int(resp.status), resp.headers["Content-Type"], resp.read()
    except urllib.error.HTTPError as err:
        status, content_type, body = int(err.code), err.headers["Content-Type"], err.read()
    assert content_type.startswith("application/json"), (status, content_type, body)
    return status, json.loads(body)


def ok(base: str, path: str, params: dict[str, Any] | Sequence[tuple[str, Any]] | None = None) -> Any:
    status, body = get(base, path, params)
    assert status == 200, (path, params, status, body)
    return body


def wait_until(predicate: Callable[[], Any], timeout: float = 15.0, interval: float = 0.05) -> Any:
    """Poll until ``predicate()`` is truthy; its value, or AssertionError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"not true after {timeout}s (last: {last!r})")
