"""Send with the OpenTelemetry Python SDK and read back what a Sink received.

Every ``send_*`` builds its own provider with a resource tagged ``run`` (so a
test can tell its sends apart), emits a fixed, known set of items through the
given SDK exporter, shuts the provider down (which flushes) and returns what
was sent in the same shape the ``received_*`` functions return.
"""

from __future__ import annotations

from typing import Any

from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcLogExporter
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as GrpcMetricExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as HttpMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from otlpd.pdata import Signal

Span = tuple[str, str, str, str, tuple[tuple[str, Any], ...]]  # run, trace id, span id, name, attrs
Point = tuple[str, str, tuple[tuple[str, Any], ...], Any]  # run, metric name, attrs, value
Log = tuple[str, str, int, str, tuple[tuple[str, Any], ...]]  # run, body, severity, text, attrs


def exporter(signal: Signal, transport: str, endpoint: str) -> Any:
    """An SDK exporter: ``endpoint`` is host:port for grpc, http://host:port for http."""
    if transport == "grpc":
        cls: Any = {
            Signal.TRACES: GrpcSpanExporter,
            Signal.METRICS: GrpcMetricExporter,
            Signal.LOGS: GrpcLogExporter,
        }[signal]
        return cls(endpoint=endpoint, insecure=True, timeout=10)
    cls = {Signal.TRACES: HttpSpanExporter, Signal.METRICS: HttpMetricExporter, Signal.LOGS: HttpLogExporter}[
        signal
    ]
    return cls(endpoint=f"{endpoint}/v1/{signal.value}", timeout=10)


def _resource(run: str) -> Resource:
    return Resource.create({"service.name": "otlpd-e2e", "run": run})


def send_traces(exp: Any, run: str, n: int = 5) -> set[Span]:
    provider = TracerProvider(resource=_resource(run))
    provider.add_span_processor(BatchSpanProcessor(exp))
    tracer = provider.get_tracer("e2e")
    sent: set[Span] = set()
    for i in range(n):
        attrs = {"i": i, "run": run, "ok": i % 2 == 0, "ratio": i / 4, "tag": f"t{i}"}
        with tracer.start_as_current_span(f"{run}-op-{i}", attributes=attrs) as span:
            ctx = span.get_span_context()
        sent.add(
            (run, format(ctx.trace_id, "032x"), format(ctx.span_id, "016x"), f"{run}-op-{i}", _sorted(attrs))
        )
    assert provider.force_flush(10_000)
    provider.shutdown()
    return sent


def send_metrics(exp: Any, run: str) -> set[Point]:
    reader = PeriodicExportingMetricReader(exp, export_interval_millis=3_600_000)
    provider = MeterProvider(resource=_resource(run), metric_readers=[reader])
    meter = provider.get_meter("e2e")
    counter = meter.create_counter(f"{run}.requests")
    counter.add(3, {"route": "/a"})
    counter.add(4, {"route": "/b"})
    counter.add(5, {"route": "/a"})
    histogram = meter.create_histogram(f"{run}.latency", unit="ms")
    for value in (1.5, 2.5, 6.0):
        histogram.record(value, {"route": "/a"})
    gauge = meter.create_gauge(f"{run}.temperature")
    gauge.set(21.5, {"room": "lab"})
    provider.shutdown()  # one final collect and export
    return {
        (run, f"{run}.requests", (("route", "/a"),), 8),
        (run, f"{run}.requests", (("route", "/b"),), 4),
        (run, f"{run}.latency", (("route", "/a"),), (3, 10.0)),
        (run, f"{run}.temperature", (("room", "lab"),), 21.5),
    }


def send_logs(exp: Any, run: str, n: int = 4) -> set[Log]:
    provider = LoggerProvider(resource=_resource(run))
    provider.add_log_record_processor(BatchLogRecordProcessor(exp))
    logger = provider.get_logger("e2e")
    levels = [
        (SeverityNumber.DEBUG, "DEBUG"),
        (SeverityNumber.INFO, "INFO"),
        (SeverityNumber.WARN, "WARN"),
        (SeverityNumber.ERROR, "ERROR"),
    ]
    sent: set[Log] = set()
    for i in range(n):
        number, text = levels[i % len(levels)]
        body = f"{run} message {i}: ünïcode ✓"
        attrs = {"i": i, "run": run}
        logger.emit(body=body, severity_number=number, severity_text=text, attributes=attrs)
        sent.add((run, body, number.value, text, _sorted(attrs)))
    assert provider.force_flush(10_000)
    provider.shutdown()
    return sent


def _sorted(attrs: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted(attrs.items()))


def _value(v: AnyValue) -> Any:
    kind = v.WhichOneof("value")
    return getattr(v, kind) if kind else None


def _attrs(kvs: Any) -> dict[str, Any]:
    return {kv.key: _value(kv.value) for kv in kvs}


def _run(resource: Any) -> str:
    return str(_attrs(resource.attributes).get("run", ""))


def received_spans(messages: list[Any]) -> set[Span]:
    out: set[Span] = set()
    for m in messages:
        for rs in m.resource_spans:
            for ss in rs.scope_spans:
                for s in ss.spans:
                    out.add(
                        (
                            _run(rs.resource),
                            s.trace_id.hex(),
                            s.span_id.hex(),
                            s.name,
                            _sorted(_attrs(s.attributes)),
                        )
                    )
    return out


def received_points(messages: list[Any]) -> set[Point]:
    out: set[Point] = set()
    for m in messages:
        for rm in m.resource_metrics:
            run = _run(rm.resource)
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    kind = metric.WhichOneof("data")
                    for p in getattr(metric, kind).data_points:
                        attrs = _sorted(_attrs(p.attributes))
                        if kind == "histogram":
                            value: Any = (p.count, p.sum)
                        else:
                            value = getattr(p, p.WhichOneof("value"))
                        out.add((run, metric.name, attrs, value))
    return out


def received_logs(messages: list[Any]) -> set[Log]:
    out: set[Log] = set()
    for m in messages:
        for rl in m.resource_logs:
            for sl in rl.scope_logs:
                for r in sl.log_records:
                    out.add(
                        (
                            _run(rl.resource),
                            str(_value(r.body)),
                            r.severity_number,
                            r.severity_text,
                            _sorted(_attrs(r.attributes)),
                        )
                    )
    return out


SENDERS = {Signal.TRACES: send_traces, Signal.METRICS: send_metrics, Signal.LOGS: send_logs}
RECEIVED = {Signal.TRACES: received_spans, Signal.METRICS: received_points, Signal.LOGS: received_logs}


def of_run(items: set[Any], run: str) -> set[Any]:
    return {item for item in items if item[0] == run}
