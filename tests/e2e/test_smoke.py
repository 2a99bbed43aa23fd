"""The OpenTelemetry SDK sends through a running otlpd to a peer: what arrives equals what was sent."""

from __future__ import annotations

from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from otlpd.pdata import Signal
from tests.support.process import Otlpd
from tests.support.sink import Sink


def gateway(sink: Sink) -> dict[str, object]:
    return {
        "receivers": {"otlp": {"protocols": {"grpc": None, "http": None}}},
        "processors": {"batch": {"timeout": "50ms"}},
        "exporters": {"otlp": {"endpoint": sink.grpc_endpoint, "tls": {"insecure": True}}},
        "service": {
            "pipelines": {"traces": {"receivers": ["otlp"], "processors": ["batch"], "exporters": ["otlp"]}}
        },
    }


def test_sdk_spans_over_grpc_and_http_arrive_unchanged(sink: Sink) -> None:
    with Otlpd(gateway(sink)) as otlpd:
        provider = TracerProvider(resource=Resource.create({"service.name": "checkout"}))
        provider.add_span_processor(
            SimpleSpanProcessor(GrpcSpanExporter(endpoint=otlpd.grpc_endpoint, insecure=True))
        )
        provider.add_span_processor(
            SimpleSpanProcessor(HttpSpanExporter(endpoint=f"{otlpd.http_endpoint}/v1/traces"))
        )
        tracer = provider.get_tracer("test")
        sent = []
        for i in range(5):
            with tracer.start_as_current_span(f"op-{i}", attributes={"i": i}) as span:
                sent.append(span.get_span_context())
        provider.shutdown()
        assert sink.wait_for_items(Signal.TRACES, 10) == 10
        spans = [
            s
            for m in sink.state.messages(Signal.TRACES)
            for rs in m.resource_spans
            for ss in rs.scope_spans
            for s in ss.spans
        ]
        got = sorted((s.trace_id.hex(), s.span_id.hex(), s.name) for s in spans)
        want = sorted(
            (format(c.trace_id, "032x"), format(c.span_id, "016x"), f"op-{i}")
            for i, c in enumerate(sent)
            for _ in range(2)
        )
        assert got == want
        assert otlpd.metric("otlp_requests_total", signal="traces", transport="grpc", status="OK") == 5
        assert otlpd.metric("otlp_requests_total", signal="traces", transport="http", status="200") == 5
        assert otlpd.terminate() == 0
