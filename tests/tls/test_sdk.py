"""The OpenTelemetry SDK exporters talk straight to otlpd's OTLP receiver over TLS and mutual TLS."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otlpd.pdata import Signal
from tests.support.process import Otlpd
from tests.tls.certs import Certs
from tests.tls.helpers import Upstream, alive, assert_arrives, received


def make_spans(run: str, n: int = 3) -> tuple[list[ReadableSpan], set[Any]]:
    """Finished SDK spans, and what they look like once received (``tests.e2e.sdk.received_spans``)."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "otlpd-tls", "run": run}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("tls")
    for i in range(n):
        with tracer.start_as_current_span(f"{run}-{i}", attributes={"i": i}):
            pass
    provider.shutdown()
    spans = list(memory.get_finished_spans())
    want = {
        (
            run,
            format(s.context.trace_id, "032x"),
            format(s.context.span_id, "016x"),
            s.name,
            tuple(sorted((s.attributes or {}).items())),
        )
        for s in spans
        if s.context is not None
    }
    return spans, want


@pytest.fixture(autouse=True)
def _requests_honours_certificate_file(monkeypatch: pytest.MonkeyPatch) -> None:
    # requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE override a session's verify=<ca file>
    # (psf/requests#3829), which is what the SDK's certificate_file becomes.
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)


def sdk_exporter(transport: str, b: Otlpd, certs: Certs, client_cert: bool, timeout: float = 5) -> Any:
    client = certs.client
    if transport == "grpc":
        credentials = grpc.ssl_channel_credentials(
            root_certificates=certs.ca.read_bytes(),
            private_key=client.key.read_bytes() if client_cert else None,
            certificate_chain=client.cert.read_bytes() if client_cert else None,
        )
        return GrpcSpanExporter(
            endpoint=b.grpc_endpoint, insecure=False, credentials=credentials, timeout=timeout
        )
    return HttpSpanExporter(
        endpoint=f"https://127.0.0.1:{b.http_port}/v1/traces",
        certificate_file=str(certs.ca),
        client_certificate_file=str(client.cert) if client_cert else None,
        client_key_file=str(client.key) if client_cert else None,
        timeout=timeout,
    )


@pytest.mark.parametrize("transport", ["grpc", "http"])
@pytest.mark.parametrize("mode", ["tls", "mtls"])
def test_sdk_sends_straight_to_a_tls_receiver(
    certs: Certs, tls_upstream: Upstream, mtls_upstream: Upstream, transport: str, mode: str
) -> None:
    up = mtls_upstream if mode == "mtls" else tls_upstream
    run = f"sdk-{mode}-{transport}"
    spans, want = make_spans(run)
    exporter = sdk_exporter(transport, up.b, certs, client_cert=mode == "mtls")
    try:
        assert exporter.export(spans) is SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()
    assert_arrives(up.sink, Signal.TRACES, run, want, up.b.logs)


@pytest.mark.parametrize("transport", ["grpc", "http"])
def test_sdk_without_a_client_certificate_is_refused_by_an_mtls_receiver(
    certs: Certs, mtls_upstream: Upstream, transport: str
) -> None:
    run = f"sdk-no-cert-{transport}"
    spans, _ = make_spans(run)
    exporter = sdk_exporter(transport, mtls_upstream.b, certs, client_cert=False, timeout=1)
    try:
        assert exporter.export(spans) is SpanExportResult.FAILURE
    finally:
        exporter.shutdown()
    assert received(mtls_upstream.sink, Signal.TRACES, run) == set()
    assert alive(mtls_upstream.b), mtls_upstream.b.logs()
