"""Realistic OTLP export requests, built once and serialized once.

The shapes follow what OpenTelemetry SDKs emit for an ordinary web service:
resource attributes from the semantic conventions, one instrumentation scope
per resource, spans named after HTTP routes and database calls grouped into
traces, a mix of kinds and statuses, attributes of mixed types and an
exception event now and then; log records with bodies, severities and trace
context; gauges, cumulative sums and explicit-bucket histograms.

Everything is derived from a seeded ``random.Random``: the same arguments give
the same bytes.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass

from opentelemetry.proto.collector.logs.v1 import logs_service_pb2 as logs_svc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2 as metrics_svc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as trace_svc
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.logs.v1 import logs_pb2
from opentelemetry.proto.metrics.v1 import metrics_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

SIGNALS = ("traces", "logs", "metrics")
GRPC_METHODS = {
    "traces": "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    "metrics": "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
    "logs": "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
}
RESPONSE_TYPES = {
    "traces": trace_svc.ExportTraceServiceResponse,
    "metrics": metrics_svc.ExportMetricsServiceResponse,
    "logs": logs_svc.ExportLogsServiceResponse,
}
REJECTED_FIELD = {
    "traces": "rejected_spans",
    "metrics": "rejected_data_points",
    "logs": "rejected_log_records",
}

_SERVICES = ["checkout", "cart", "payment", "frontend", "inventory", "shipping", "auth", "search"]
_ROUTES = [
    ("GET", "/api/v1/products/{id}"),
    ("GET", "/api/v1/cart"),
    ("POST", "/api/v1/cart/items"),
    ("POST", "/api/v1/checkout"),
    ("GET", "/api/v1/users/{id}/orders"),
    ("DELETE", "/api/v1/cart/items/{id}"),
    ("GET", "/healthz"),
    ("PUT", "/api/v1/users/{id}/address"),
]
_DB_STATEMENTS = [
    "SELECT * FROM products WHERE id = $1",
    "UPDATE carts SET items = $2 WHERE id = $1",
    "INSERT INTO order_items VALUES ($1, $2, $3)",
    "SELECT * FROM orders WHERE user_id = $1",
]
_LOG_BODIES = [
    "request completed method={m} route={r} status={s} duration_ms={d}",
    "cache miss for key product:{n}, falling back to database",
    "payment authorised for order {n} amount={d} currency=EUR",
    "retrying upstream call to inventory-service attempt={a} after {d}ms",
    "user {n} added item to cart, cart now holds {a} items",
]
_BASE_TIME_NS = 1_700_000_000_000_000_000


def _kv(key: str, value: str | int | float | bool) -> common_pb2.KeyValue:
    kv = common_pb2.KeyValue(key=key)
    if isinstance(value, bool):
        kv.value.bool_value = value
    elif isinstance(value, int):
        kv.value.int_value = value
    elif isinstance(value, float):
        kv.value.double_value = value
    else:
        kv.value.string_value = value
    return kv


def _resource_attributes(rng: random.Random, index: int) -> list[common_pb2.KeyValue]:
    service = _SERVICES[index % len(_SERVICES)]
    return [
        _kv("service.name", f"{service}-service"),
        _kv("service.namespace", "shop"),
        _kv("service.version", f"1.{rng.randint(0, 40)}.{rng.randint(0, 9)}"),
        _kv("service.instance.id", f"{rng.getrandbits(128):032x}"),
        _kv("deployment.environment.name", "production"),
        _kv("host.name", f"ip-10-0-{rng.randint(0, 255)}-{rng.randint(0, 255)}.ec2.internal"),
        _kv("k8s.namespace.name", "shop"),
        _kv("k8s.pod.name", f"{service}-7d9f8c6b5-{rng.getrandbits(24):06x}"),
        _kv("telemetry.sdk.name", "opentelemetry"),
        _kv("telemetry.sdk.language", "python"),
        _kv("telemetry.sdk.version", "1.27.0"),
    ]


_SPAN_ATTRIBUTES: list[tuple[str, object]] = [
    ("http.request.method", "method"),
    ("http.route", "route"),
    ("http.response.status_code", "status"),
    ("url.path", "path"),
    ("server.port", 8080),
    ("client.address", "addr"),
    ("app.cache_hit", "bool"),
    ("app.cart.total", "double"),
    ("server.address", "host"),
    ("network.protocol.version", "1.1"),
    ("http.request.body.size", "size"),
    ("user_agent.original", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36"),
]


def _span_attributes(
    rng: random.Random, n: int, method: str, route: str, status: int
) -> list[common_pb2.KeyValue]:
    out = []
    for i in range(n):
        key, kind = _SPAN_ATTRIBUTES[i % len(_SPAN_ATTRIBUTES)]
        if i >= len(_SPAN_ATTRIBUTES):
            key = f"app.attribute_{i}"
        value: str | int | float | bool
        if kind == "method":
            value = method
        elif kind == "route":
            value = route
        elif kind == "path":
            value = route.replace("{id}", str(rng.randint(1, 99999)))
        elif kind == "status":
            value = status
        elif kind == "host":
            value = "api.shop.example.com"
        elif kind == "addr":
            value = f"10.1.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
        elif kind == "size":
            value = rng.randint(0, 4096)
        elif kind == "bool":
            value = rng.random() < 0.7
        elif kind == "double":
            value = round(rng.uniform(1, 500), 2)
        else:
            assert isinstance(kind, str | int)
            value = kind
        out.append(_kv(key, value))
    return out


def _split(total: int, parts: int) -> list[int]:
    parts = max(1, min(parts, total)) if total else 1
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


def build_traces(
    resources: int, spans: int, attributes: int, seed: int = 1
) -> trace_svc.ExportTraceServiceRequest:
    rng = random.Random(seed)
    request = trace_svc.ExportTraceServiceRequest()
    for r, count in enumerate(_split(spans, resources)):
        rs = request.resource_spans.add()
        rs.resource.attributes.extend(_resource_attributes(rng, r))
        rs.schema_url = "https://opentelemetry.io/schemas/1.26.0"
        ss = rs.scope_spans.add()
        ss.scope.name = "opentelemetry.instrumentation.fastapi"
        ss.scope.version = "0.48b0"
        trace_id = b""
        root_id = b""
        for i in range(count):
            span = ss.spans.add()
            if i % 10 == 0:  # a trace of ~10 spans: one server span, the rest children
                trace_id = rng.getrandbits(128).to_bytes(16, "big")
                root_id = b""
            span.trace_id = trace_id
            span.span_id = rng.getrandbits(64).to_bytes(8, "big") or b"\x01" * 8
            start = _BASE_TIME_NS + rng.randint(0, 10**12)
            span.start_time_unix_nano = start
            span.end_time_unix_nano = start + rng.randint(50_000, 500_000_000)
            method, route = rng.choice(_ROUTES)
            status = rng.choices([200, 201, 404, 500], weights=[80, 10, 6, 4])[0]
            if not root_id:
                root_id = span.span_id
                span.name = f"{method} {route}"
                span.kind = trace_pb2.Span.SPAN_KIND_SERVER
                span.attributes.extend(_span_attributes(rng, attributes, method, route, status))
            else:
                span.parent_span_id = root_id
                if rng.random() < 0.5:
                    span.name = "SELECT products"
                    span.kind = trace_pb2.Span.SPAN_KIND_CLIENT
                    db_attrs = [
                        _kv("db.system", "postgresql"),
                        _kv("db.namespace", "shop"),
                        _kv("db.query.text", rng.choice(_DB_STATEMENTS)),
                        _kv("db.operation.name", "SELECT"),
                        _kv("server.address", "postgres"),
                        _kv("server.port", 5432),
                        _kv("db.response.returned_rows", rng.randint(0, 50)),
                        _kv("app.retry", rng.random() < 0.05),
                    ]
                    span.attributes.extend((db_attrs * (attributes // len(db_attrs) + 1))[:attributes])
                else:
                    span.name = f"{method} {route}"
                    span.kind = rng.choice(
                        [trace_pb2.Span.SPAN_KIND_INTERNAL, trace_pb2.Span.SPAN_KIND_CLIENT]
                    )
                    span.attributes.extend(_span_attributes(rng, attributes, method, route, status))
            if status >= 500:
                span.status.code = trace_pb2.Status.STATUS_CODE_ERROR
                span.status.message = "upstream returned 500"
            elif rng.random() < 0.3:
                span.status.code = trace_pb2.Status.STATUS_CODE_OK
            if rng.random() < 0.05:
                event = span.events.add()
                event.name = "exception"
                event.time_unix_nano = start + 1000
                event.attributes.extend(
                    [
                        _kv("exception.type", "TimeoutError"),
                        _kv("exception.message", "upstream inventory-service did not answer within 2s"),
                    ]
                )
    return request


_SEVERITIES = [
    (logs_pb2.SEVERITY_NUMBER_INFO, "INFO", 70),
    (logs_pb2.SEVERITY_NUMBER_DEBUG, "DEBUG", 15),
    (logs_pb2.SEVERITY_NUMBER_WARN, "WARN", 10),
    (logs_pb2.SEVERITY_NUMBER_ERROR, "ERROR", 5),
]


def build_logs(
    resources: int, records: int, attributes: int, seed: int = 1
) -> logs_svc.ExportLogsServiceRequest:
    rng = random.Random(seed)
    request = logs_svc.ExportLogsServiceRequest()
    for r, count in enumerate(_split(records, resources)):
        rl = request.resource_logs.add()
        rl.resource.attributes.extend(_resource_attributes(rng, r))
        sl = rl.scope_logs.add()
        sl.scope.name = "opentelemetry.sdk._logs"
        for _ in range(count):
            rec = sl.log_records.add()
            t = _BASE_TIME_NS + rng.randint(0, 10**12)
            rec.time_unix_nano = t
            rec.observed_time_unix_nano = t + rng.randint(0, 10**6)
            number, text, _w = rng.choices(_SEVERITIES, weights=[s[2] for s in _SEVERITIES])[0]
            rec.severity_number = number
            rec.severity_text = text
            method, route = rng.choice(_ROUTES)
            rec.body.string_value = rng.choice(_LOG_BODIES).format(
                m=method, r=route, s=rng.choice([200, 201, 404, 500]), d=rng.randint(1, 900),
                n=rng.randint(1000, 999999), a=rng.randint(1, 5),
            )  # fmt: skip
            if rng.random() < 0.8:
                rec.trace_id = rng.getrandbits(128).to_bytes(16, "big")
                rec.span_id = rng.getrandbits(64).to_bytes(8, "big")
                rec.flags = 1
            status = rng.choice([200, 404, 500])
            rec.attributes.extend(_span_attributes(rng, attributes, method, route, status))
    return request


_HISTOGRAM_BOUNDS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0]


def build_metrics(
    resources: int, points: int, attributes: int, seed: int = 1
) -> metrics_svc.ExportMetricsServiceRequest:
    """``points`` data points: per resource a histogram, a counter and a gauge, 10 points each, repeated."""
    rng = random.Random(seed)
    request = metrics_svc.ExportMetricsServiceRequest()
    start = _BASE_TIME_NS
    now = _BASE_TIME_NS + 60 * 10**9
    for r, count in enumerate(_split(points, resources)):
        rm = request.resource_metrics.add()
        rm.resource.attributes.extend(_resource_attributes(rng, r))
        sm = rm.scope_metrics.add()
        sm.scope.name = "opentelemetry.instrumentation.fastapi"
        sm.scope.version = "0.48b0"
        made = 0
        n = 0
        while made < count:
            kind = n % 3
            per_metric = min(10, count - made)
            metric = sm.metrics.add()
            if kind == 0:
                metric.name = "http.server.request.duration" + (f".{n // 3}" if n >= 3 else "")
                metric.unit = "s"
                metric.description = "Duration of HTTP server requests."
                metric.histogram.aggregation_temporality = metrics_pb2.AGGREGATION_TEMPORALITY_CUMULATIVE
                dps = metric.histogram.data_points
            elif kind == 1:
                metric.name = "http.server.requests" + (f".{n // 3}" if n >= 3 else "")
                metric.unit = "{request}"
                metric.sum.aggregation_temporality = metrics_pb2.AGGREGATION_TEMPORALITY_CUMULATIVE
                metric.sum.is_monotonic = True
                dps = metric.sum.data_points
            else:
                metric.name = "process.cpu.utilization" + (f".{n // 3}" if n >= 3 else "")
                metric.unit = "1"
                dps = metric.gauge.data_points
            for _ in range(per_metric):
                dp = dps.add()
                method, route = rng.choice(_ROUTES)
                dp.attributes.extend(_span_attributes(rng, min(attributes, 6), method, route, 200))
                dp.start_time_unix_nano = start
                dp.time_unix_nano = now
                if kind == 0:
                    buckets = [rng.randint(0, 500) for _ in range(len(_HISTOGRAM_BOUNDS) + 1)]
                    dp.count = sum(buckets)
                    dp.sum = round(dp.count * rng.uniform(0.01, 0.3), 3)
                    dp.min = 0.001
                    dp.max = round(rng.uniform(1, 12), 3)
                    dp.explicit_bounds.extend(_HISTOGRAM_BOUNDS)
                    dp.bucket_counts.extend(buckets)
                elif kind == 1:
                    dp.as_int = rng.randint(10_000, 10_000_000)
                else:
                    dp.as_double = rng.random()
            made += per_metric
            n += 1
    return request


@dataclass(frozen=True)
class Encoded:
    signal: str
    body: bytes
    items: int
    resources: int


def build(signal: str, resources: int, items: int, attributes: int, seed: int = 1) -> Encoded:
    builder = {"traces": build_traces, "logs": build_logs, "metrics": build_metrics}[signal]
    message = builder(resources, items, attributes, seed)
    return Encoded(signal, message.SerializeToString(), items, len(_split(items, resources)))


class FreshIds:
    """A traces request's bytes again with new trace and span ids each time (parents kept consistent).

    A store sees what a real stream looks like (ids random, never repeated)
    rather than the same 500 spans over and over, which its compression and
    trace index would find far too easy. The ids sit at fixed offsets of the
    serialized request, found once; each call overwrites them in a copy.
    """

    def __init__(self, body: bytes) -> None:
        request = trace_svc.ExportTraceServiceRequest.FromString(body)
        self._body = body
        self._traces: dict[bytes, list[int]] = {}
        self._spans: dict[bytes, list[int]] = {}
        at = 0
        for rs in request.resource_spans:
            for ss in rs.scope_spans:
                for span in ss.spans:
                    at = body.index(b"\x0a\x10" + span.trace_id, at) + 2
                    self._traces.setdefault(span.trace_id, []).append(at)
                    at = body.index(b"\x12\x08" + span.span_id, at) + 2
                    self._spans.setdefault(span.span_id, []).append(at)
                    if span.parent_span_id:
                        at = body.index(b"\x22\x08" + span.parent_span_id, at) + 2
                        self._spans.setdefault(span.parent_span_id, []).append(at)

    def next(self) -> bytes:
        out = bytearray(self._body)
        for size, places in ((16, self._traces), (8, self._spans)):
            fresh = os.urandom(size * len(places))
            for i, offsets in enumerate(places.values()):
                new = fresh[i * size : (i + 1) * size]
                for at in offsets:
                    out[at : at + size] = new
        return bytes(out)
