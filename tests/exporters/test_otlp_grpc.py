"""The ``otlp`` (gRPC) exporter against real gRPC peers: status codes, RetryInfo, metadata, gzip."""

from __future__ import annotations

import time

import grpc
import pytest

from otlpd.pdata import Signal
from tests.exporters.helpers import (
    build_exporter,
    byte_counting_proxy,
    logs,
    metrics,
    partial_peer,
    payload,
    running,
    span_names,
    traces,
    upstream,
    wait_for,
)
from tests.support.process import free_port
from tests.support.sink import Failure, Sink

FAILED = "otlpd_exporter_send_failed_requests_total"
DROPPED = "otlpd_exporter_dropped_items_total"
SENT = "otlpd_exporter_sent_items_total"
Code = grpc.StatusCode


async def test_unavailable_with_retry_info_waits_as_long_as_the_peer_asks(sink: Sink) -> None:
    sink.fail_next(1, Failure(Code.UNAVAILABLE, retry_after=1.0))
    async with running("otlp", upstream("otlp", sink)) as r:
        started = time.monotonic()
        await r.consumer.consume(payload(Signal.TRACES, traces(3)))
        assert await wait_for(lambda: sink.state.items(Signal.TRACES) == 3)
    assert sink.state.attempts == 2
    assert sink.state.received[0].at - started >= 0.95  # not the 10 ms backoff
    assert r.m(FAILED, error="retryable") == 1
    assert r.m(SENT) == 3


@pytest.mark.parametrize(
    "code", [Code.UNAVAILABLE, Code.CANCELLED, Code.DEADLINE_EXCEEDED, Code.ABORTED, Code.OUT_OF_RANGE,
             Code.DATA_LOSS],
)  # fmt: skip
async def test_retryable_codes_are_retried(sink: Sink, code: grpc.StatusCode) -> None:
    sink.fail_next(2, Failure(code))
    async with running("otlp", upstream("otlp", sink)) as r:
        await r.consumer.consume(payload(Signal.TRACES, traces(2)))
        assert await wait_for(lambda: sink.state.items(Signal.TRACES) == 2)
    assert sink.state.attempts == 3
    assert len(sink.state.received) == 1
    assert r.m(FAILED, error="retryable") == 2
    assert r.m(DROPPED) == 0


@pytest.mark.parametrize(
    "code",
    [
        Code.INVALID_ARGUMENT,
        Code.PERMISSION_DENIED,
        Code.UNAUTHENTICATED,
        Code.RESOURCE_EXHAUSTED,  # without RetryInfo
        Code.NOT_FOUND,
        Code.FAILED_PRECONDITION,
        Code.UNIMPLEMENTED,
        Code.INTERNAL,
        Code.UNKNOWN,
    ],
)
async def test_other_codes_are_not_retried(sink: Sink, code: grpc.StatusCode) -> None:
    sink.fail_next(3, Failure(code))
    async with running("otlp", upstream("otlp", sink)) as r:
        await r.consumer.consume(payload(Signal.TRACES, traces(4)))
        assert await wait_for(lambda: r.m(DROPPED) > 0)
        await r.shutdown(1.0)
    assert sink.state.attempts == 1
    assert sink.state.received == []
    assert r.m(DROPPED, reason="permanent") == 4
    assert r.m(FAILED, error="permanent") == 1
    assert r.m(SENT) == 0


async def test_resource_exhausted_with_retry_info_is_retried_after_the_delay(sink: Sink) -> None:
    sink.fail_next(1, Failure(Code.RESOURCE_EXHAUSTED, retry_after=0.4))
    async with running("otlp", upstream("otlp", sink)) as r:
        started = time.monotonic()
        await r.consumer.consume(payload(Signal.TRACES, traces(2)))
        assert await wait_for(lambda: sink.state.items(Signal.TRACES) == 2)
    assert sink.state.attempts == 2
    assert sink.state.received[0].at - started >= 0.4 * 0.95
    assert r.m(FAILED, error="throttled") == 1
    assert r.m(DROPPED) == 0


async def test_an_unreachable_upstream_is_retried_not_dropped_at_once() -> None:
    cfg = {
        "endpoint": f"127.0.0.1:{free_port()}",
        "tls": {"insecure": True},
        "timeout": "500ms",
        "retry_on_failure": {"initial_interval": "10ms", "max_interval": "20ms", "max_elapsed_time": "200ms"},
    }
    async with running("otlp", cfg) as r:
        await r.consumer.consume(payload(Signal.TRACES, traces(2)))
        assert await wait_for(lambda: r.m(DROPPED) > 0)
        assert r.m(FAILED, error="retryable") >= 2
        assert r.m(DROPPED, reason="retries_exhausted") == 2


async def test_headers_are_sent_as_metadata(sink: Sink) -> None:
    cfg = upstream("otlp", sink, headers={"X-Scope-OrgID": "tenant-1", "authorization": "Bearer s3cret"})
    async with running("otlp", cfg) as r:
        await r.consumer.consume(payload(Signal.TRACES, traces(1)))
        assert await wait_for(lambda: len(sink.state.received) == 1)
    headers = sink.state.received[0].headers
    assert headers["x-scope-orgid"] == "tenant-1"
    assert headers["authorization"] == "Bearer s3cret"


@pytest.mark.parametrize(("compression", "compressed"), [(None, True), ("gzip", True), ("none", False)])
async def test_compression_on_the_wire(sink: Sink, compression: str | None, compressed: bool) -> None:
    message = traces(2, attr_bytes=100_000)  # ~200 KB that gzip shrinks to almost nothing
    raw = len(message.SerializeToString())
    async with byte_counting_proxy(sink.grpc_port) as proxy:
        extra = {"compression": compression} if compression else {}  # the default is gzip
        cfg = {"endpoint": f"127.0.0.1:{proxy.port}", "tls": {"insecure": True}, **extra}
        async with running("otlp", cfg) as r:
            await r.consumer.consume(payload(Signal.TRACES, message))
            assert await wait_for(lambda: len(sink.state.received) == 1)
    assert sink.state.messages(Signal.TRACES) == [message]
    if compressed:
        assert proxy.upstream_bytes < raw / 10
    else:
        assert proxy.upstream_bytes > raw


async def test_bytes_arrive_as_sent_for_every_signal(sink: Sink) -> None:
    from otlpd.telemetry.metrics import Metrics

    component = build_exporter("otlp", upstream("otlp", sink), Metrics())
    consumers = {s: component.consumer(s) for s in Signal}
    await component.start()
    sent = {Signal.TRACES: traces(3), Signal.METRICS: metrics([2, 3]), Signal.LOGS: logs(4)}
    for signal, message in sent.items():
        await consumers[signal].consume(payload(signal, message))
    assert await wait_for(lambda: len(sink.state.received) == 3)
    await component.shutdown(0)
    for signal, message in sent.items():
        [got] = [r for r in sink.state.received if r.signal is signal]
        assert got.body == message.SerializeToString()
    assert sink.state.items(Signal.METRICS) == 5


@pytest.mark.parametrize("scheme", ["http://", ""])
async def test_endpoint_with_or_without_scheme(sink: Sink, scheme: str) -> None:
    cfg = {"endpoint": f"{scheme}{sink.grpc_endpoint}"}
    if not scheme:
        cfg["tls"] = {"insecure": True}  # type: ignore[assignment]
    async with running("otlp", cfg) as r:
        await r.consumer.consume(payload(Signal.TRACES, traces(2)))
        assert await wait_for(lambda: sink.state.items(Signal.TRACES) == 2)


async def test_partial_success_is_counted_as_rejected() -> None:
    async with partial_peer(rejected=2) as peer:
        cfg = {"endpoint": f"127.0.0.1:{peer.grpc_port}", "tls": {"insecure": True}}
        async with running("otlp", cfg) as r:
            await r.consumer.consume(payload(Signal.TRACES, traces(5)))
            assert await wait_for(lambda: r.m(SENT) > 0)
            await r.shutdown(1.0)
    assert len(peer.requests) == 1  # a partial success is not retried
    assert r.m(SENT) == 3
    assert r.m(DROPPED, reason="rejected") == 2
    assert r.m(FAILED) == 0


async def test_queued_payloads_keep_their_order_with_one_consumer(sink: Sink) -> None:
    cfg = upstream("otlp", sink, sending_queue={"num_consumers": 1})
    async with running("otlp", cfg) as r:
        for i in range(10):
            await r.consumer.consume(payload(Signal.TRACES, traces(1, f"p{i}")))
        assert await wait_for(lambda: len(sink.state.received) == 10)
    assert span_names(sink.state.messages(Signal.TRACES)) == [f"p{i}-0" for i in range(10)]


@pytest.mark.parametrize(
    "bad",
    [
        {"endpoint": ""},
        {"endpoint": "127.0.0.1:4317", "compression": "zstd"},
        {"endpoint": "x", "timeout": 5},
    ],
)
def test_invalid_config_is_refused(bad: dict[str, object]) -> None:
    from pydantic import ValidationError

    from otlpd.exporters.otlp.config import OtlpGrpcExporterConfig

    with pytest.raises(ValidationError):
        OtlpGrpcExporterConfig.model_validate(bad)


def test_collector_defaults() -> None:
    from otlpd.exporters.otlp.config import OtlpGrpcExporterConfig

    c = OtlpGrpcExporterConfig.model_validate({"endpoint": "collector:4317"})
    assert (c.timeout, c.compression) == (5.0, "gzip")
    assert (c.sending_queue.enabled, c.sending_queue.num_consumers, c.sending_queue.queue_size) == (
        True,
        10,
        1000,
    )
    r = c.retry_on_failure
    assert (r.enabled, r.initial_interval, r.max_interval, r.max_elapsed_time) == (True, 5.0, 30.0, 300.0)


@pytest.mark.parametrize("claimed", [50, -3])
async def test_a_bogus_partial_success_count_is_clamped_and_workers_survive(claimed: int) -> None:
    """The rejected count comes from the peer: it must not break metrics or kill a worker."""
    async with partial_peer(rejected=claimed) as peer:
        cfg = {
            "endpoint": f"127.0.0.1:{peer.grpc_port}",
            "tls": {"insecure": True},
            "sending_queue": {"num_consumers": 1, "queue_size": 2},
        }
        async with running("otlp", cfg) as r:
            for _ in range(4):  # more than the queue holds: only a live worker can take them all
                await r.consumer.consume(payload(Signal.TRACES, traces(5)))
                assert await wait_for(lambda: r.m("otlpd_exporter_queue_size") == 0)
            assert await wait_for(lambda: len(peer.requests) == 4)
    rejected = min(max(claimed, 0), 5)
    assert r.m(DROPPED, reason="rejected") == 4 * rejected
    assert r.m(SENT) == 4 * (5 - rejected)
