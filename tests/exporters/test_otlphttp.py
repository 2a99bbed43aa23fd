"""The ``otlphttp`` exporter against real HTTP peers: statuses, Retry-After, encodings, headers."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from otlpd.exporters.common import parse_retry_after
from otlpd.pdata import Signal
from otlpd.telemetry.metrics import Metrics
from tests.exporters.helpers import (
    build_exporter,
    http_peer,
    logs,
    metrics,
    partial_peer,
    payload,
    running,
    traces,
    upstream,
    wait_for,
)
from tests.support.process import free_port
from tests.support.sink import Failure, Sink

FAILED = "otlpd_exporter_send_failed_requests_total"
DROPPED = "otlpd_exporter_dropped_items_total"
SENT = "otlpd_exporter_sent_items_total"


def lower(headers: dict[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


@pytest.mark.parametrize(("status", "error"), [(503, "retryable"), (429, "throttled")])
async def test_retry_after_is_honoured(sink: Sink, status: int, error: str) -> None:
    sink.fail_next(1, Failure(http_status=status, retry_after=1.0))
    async with running("otlphttp", upstream("otlphttp", sink)) as r:
        started = time.monotonic()
        await r.consumer.consume(payload(Signal.TRACES, traces(3)))
        assert await wait_for(lambda: sink.state.items(Signal.TRACES) == 3)
    assert sink.state.attempts == 2
    assert sink.state.received[0].at - started >= 0.95  # not the 10 ms backoff
    assert r.m(FAILED, error=error) == 1
    assert r.m(SENT) == 3


@pytest.mark.parametrize(("status", "error"), [(429, "throttled"), (502, "retryable"), (503, "retryable"),
                                               (504, "retryable")])  # fmt: skip
async def test_retryable_statuses_without_retry_after_back_off(sink: Sink, status: int, error: str) -> None:
    sink.fail_next(3, Failure(http_status=status))
    async with running("otlphttp", upstream("otlphttp", sink)) as r:
        await r.consumer.consume(payload(Signal.TRACES, traces(2)))
        assert await wait_for(lambda: sink.state.items(Signal.TRACES) == 2)
    assert sink.state.attempts == 4
    assert len(sink.state.received) == 1
    assert r.m(FAILED, error=error) == 3
    assert r.m(DROPPED) == 0


@pytest.mark.parametrize("status", [400, 401, 403, 404, 413, 415, 500, 501])
async def test_other_statuses_are_not_retried(sink: Sink, status: int) -> None:
    sink.fail_next(3, Failure(http_status=status))
    async with running("otlphttp", upstream("otlphttp", sink)) as r:
        await r.consumer.consume(payload(Signal.TRACES, traces(4)))
        assert await wait_for(lambda: r.m(DROPPED) > 0)
        await r.shutdown(1.0)
    assert sink.state.attempts == 1
    assert sink.state.received == []
    assert r.m(DROPPED, reason="permanent") == 4
    assert r.m(FAILED, error="permanent") == 1


async def test_an_unreachable_upstream_is_retried_not_dropped_at_once() -> None:
    cfg = {
        "endpoint": f"http://127.0.0.1:{free_port()}",
        "retry_on_failure": {"initial_interval": "10ms", "max_interval": "20ms", "max_elapsed_time": "200ms"},
    }
    async with running("otlphttp", cfg) as r:
        await r.consumer.consume(payload(Signal.TRACES, traces(2)))
        assert await wait_for(lambda: r.m(DROPPED) > 0)
        assert r.m(FAILED, error="retryable") >= 2
        assert r.m(DROPPED, reason="retries_exhausted") == 2


@pytest.mark.parametrize(
    ("compression", "header"),
    [(None, "gzip"), ("gzip", "gzip"), ("zstd", "zstd"), ("deflate", "deflate"), ("none", None)],
)
async def test_compression(compression: str | None, header: str | None) -> None:
    message = traces(3, attr_bytes=1000)
    extra = {"compression": compression} if compression else {}  # the default is gzip
    async with http_peer() as peer, running("otlphttp", {"endpoint": peer.endpoint, **extra}) as r:
        await r.consumer.consume(payload(Signal.TRACES, message))
        assert await wait_for(lambda: len(peer.requests) == 1)
    [received] = peer.requests
    assert received.path == "/v1/traces"
    assert received.headers.get("content-encoding") == header
    assert received.headers["content-type"] == "application/x-protobuf"
    if header is None:
        assert received.body == message.SerializeToString()  # the bytes as they are
    else:
        assert len(received.body) < len(message.SerializeToString()) / 5
    assert received.decoded(Signal.TRACES) == message
    assert r.m(SENT) == 3


@pytest.mark.parametrize("compression", ["none", "gzip", "zstd"])
async def test_json_encoding(compression: str) -> None:
    sent = {Signal.TRACES: traces(3), Signal.METRICS: metrics([1, 4]), Signal.LOGS: logs(2)}
    async with http_peer() as peer:
        cfg = {"endpoint": peer.endpoint, "encoding": "json", "compression": compression}
        component = build_exporter("otlphttp", cfg, Metrics())
        consumers = {s: component.consumer(s) for s in Signal}
        await component.start()
        try:
            for signal, message in sent.items():
                await consumers[signal].consume(payload(signal, message))
            assert await wait_for(lambda: len(peer.requests) == 3)
        finally:
            await component.shutdown(0)
    for signal, message in sent.items():
        [got] = [r for r in peer.requests if r.path == f"/v1/{signal.value}"]
        assert got.headers["content-type"] == "application/json"
        assert got.decoded(signal) == message
    # OTLP/JSON on the wire: hex ids (not proto3 JSON's base64), camelCase keys
    span = sent[Signal.TRACES].resource_spans[0].scope_spans[0].spans[0]
    [traces_request] = [r for r in peer.requests if r.path == "/v1/traces"]
    tree = json.loads(traces_request.inflated())
    wire_span = tree["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    assert wire_span["traceId"] == span.trace_id.hex()
    assert wire_span["spanId"] == span.span_id.hex()


async def test_headers_are_sent(sink: Sink) -> None:
    cfg = upstream("otlphttp", sink, headers={"X-Scope-OrgID": "tenant-1", "Authorization": "Bearer s3cret"})
    async with running("otlphttp", cfg) as r:
        await r.consumer.consume(payload(Signal.TRACES, traces(1)))
        assert await wait_for(lambda: len(sink.state.received) == 1)
    headers = lower(sink.state.received[0].headers)
    assert headers["x-scope-orgid"] == "tenant-1"
    assert headers["authorization"] == "Bearer s3cret"


async def test_signal_endpoints_override_the_base_endpoint(sink: Sink) -> None:
    cfg = upstream(
        "otlphttp",
        sink,
        endpoint=f"http://127.0.0.1:{free_port()}",  # nothing listens there
        logs_endpoint=f"{sink.http_endpoint}/v1/logs",
        retry_on_failure={"enabled": False},
    )
    m = Metrics()
    component = build_exporter("otlphttp", cfg, m)
    to_logs, to_traces = component.consumer(Signal.LOGS), component.consumer(Signal.TRACES)
    await component.start()
    await to_logs.consume(payload(Signal.LOGS, logs(2)))
    await to_traces.consume(payload(Signal.TRACES, traces(2)))
    assert await wait_for(lambda: sink.state.items(Signal.LOGS) == 2)
    await component.shutdown(0)
    assert [r.signal for r in sink.state.received] == [Signal.LOGS]


@pytest.mark.parametrize("encoding", ["proto", "json"])
async def test_partial_success_is_counted_as_rejected(encoding: str) -> None:
    async with partial_peer(rejected=2) as peer:
        cfg = {"endpoint": f"http://127.0.0.1:{peer.http_port}", "encoding": encoding}
        async with running("otlphttp", cfg) as r:
            await r.consumer.consume(payload(Signal.TRACES, traces(5)))
            assert await wait_for(lambda: r.m(SENT) > 0)
            await r.shutdown(1.0)
    assert len(peer.requests) == 1
    assert peer.requests[0][2] == ("application/json" if encoding == "json" else "application/x-protobuf")
    assert r.m(SENT) == 3
    assert r.m(DROPPED, reason="rejected") == 2
    assert r.m(FAILED) == 0


def test_retry_after_header_forms() -> None:
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(" 2 ") == 2.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("") is None
    assert parse_retry_after("soon") is None
    past = format_datetime(datetime(2015, 10, 21, 7, 28, tzinfo=UTC), usegmt=True)
    assert parse_retry_after(past) == 0.0
    future = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    after = parse_retry_after(future)
    assert after is not None
    assert 25 <= after <= 31


@pytest.mark.parametrize(
    "bad",
    [
        {},
        {"endpoint": "collector:4318"},
        {"traces_endpoint": "grpc://x"},
        {"endpoint": "http://x", "encoding": "xml"},
    ],
)
def test_invalid_config_is_refused(bad: dict[str, object]) -> None:
    from pydantic import ValidationError

    from otlpd.exporters.otlphttp.config import OtlpHttpExporterConfig

    with pytest.raises(ValidationError):
        OtlpHttpExporterConfig.model_validate(bad)


def test_urls_per_signal() -> None:
    from otlpd.exporters.otlphttp.config import OtlpHttpExporterConfig

    c = OtlpHttpExporterConfig.model_validate(
        {"endpoint": "https://otlp.example.com/base/", "metrics_endpoint": "https://m.example.com/ingest"}
    )
    assert c.url(Signal.TRACES) == "https://otlp.example.com/base/v1/traces"
    assert c.url(Signal.LOGS) == "https://otlp.example.com/base/v1/logs"
    assert c.url(Signal.METRICS) == "https://m.example.com/ingest"
    assert c.timeout == 30.0


@pytest.mark.parametrize("compression", ["gzip", "zstd", "deflate"])
async def test_the_shared_sink_peer_inflates_every_compression(sink: Sink, compression: str) -> None:
    """The Sink other suites rely on must take what otlphttp sends, zstd included."""
    component = build_exporter(
        "otlphttp", {"endpoint": sink.http_endpoint, "compression": compression}, Metrics()
    )
    consumer = component.consumer(Signal.LOGS)
    await component.start()
    try:
        await consumer.consume(payload(Signal.LOGS, logs(4)))
        assert await wait_for(lambda: sink.state.items(Signal.LOGS) == 4)
    finally:
        await component.shutdown(0)
    assert sink.state.received[0].headers["Content-Encoding"] == compression
