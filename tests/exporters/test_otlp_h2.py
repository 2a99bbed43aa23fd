"""The ``otlp`` exporter's own HTTP/2 client (gzip at a fast level) against real gRPC peers.

tests/exporters/test_otlp_grpc.py runs every behaviour of the exporter with
its default compression (gzip), so it covers this client too; the tests here
check that the h2 client is the one in use and what only it does: gzip on the
wire, multiplexing, flow control, reconnecting, and a foreign peer (rotel).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from otlpd.exporters.otlp import h2client
from otlpd.exporters.otlp.exporter import host_port
from otlpd.pdata import Signal
from tests.exporters.helpers import (
    byte_counting_proxy,
    logs,
    metrics,
    payload,
    running,
    traces,
    upstream,
    wait_for,
)
from tests.support.sink import Failure, Sink

FAILED = "otlpd_exporter_send_failed_requests_total"
DROPPED = "otlpd_exporter_dropped_items_total"
SENT = "otlpd_exporter_sent_items_total"
Code = grpc.StatusCode
H2_AGENT = "otlpd-h2-grpc"


def big_traces(n_bytes: int, tag: str = "big") -> Any:
    """Spans carrying ``n_bytes`` of hex text in all: gzip only halves it."""
    message = traces(1, tag)
    span = message.resource_spans[0].scope_spans[0].spans[0]
    chunk = 1 << 20
    for i in range(0, n_bytes, chunk):
        a = span.attributes.add()
        a.key, a.value.string_value = f"blob{i}", os.urandom(min(chunk, n_bytes - i) // 2).hex()
    return message


async def test_gzip_goes_through_the_h2_client_and_arrives_intact(sink: Sink) -> None:
    sent = {Signal.TRACES: traces(3), Signal.METRICS: metrics([2, 3]), Signal.LOGS: logs(4)}
    for signal, message in sent.items():
        async with running("otlp", upstream("otlp", sink), signal) as r:
            await r.consumer.consume(payload(signal, message))
            assert await wait_for(lambda s=signal: any(x.signal is s for x in sink.state.received))  # type: ignore[misc]
    for signal, message in sent.items():
        [got] = [x for x in sink.state.received if x.signal is signal]
        assert got.body == message.SerializeToString()
        assert got.headers["user-agent"] == H2_AGENT


@pytest.mark.parametrize("compression", ["none", "deflate"])
async def test_other_compressions_stay_on_grpcio(sink: Sink, compression: str) -> None:
    async with running("otlp", upstream("otlp", sink, compression=compression)) as r:
        await r.consumer.consume(payload(Signal.TRACES, traces(2)))
        assert await wait_for(lambda: len(sink.state.received) == 1)
    assert sink.state.received[0].headers["user-agent"].startswith("grpc-python")


async def test_the_bytes_on_the_wire_are_gzip(sink: Sink) -> None:
    message = traces(2, attr_bytes=100_000)
    raw = len(message.SerializeToString())
    async with byte_counting_proxy(sink.grpc_port) as proxy:
        cfg = {"endpoint": f"127.0.0.1:{proxy.port}", "tls": {"insecure": True}}
        async with running("otlp", cfg) as r:
            await r.consumer.consume(payload(Signal.TRACES, message))
            assert await wait_for(lambda: len(sink.state.received) == 1)
    assert sink.state.messages(Signal.TRACES) == [message]
    assert proxy.upstream_bytes < raw / 10
    assert sink.state.received[0].headers["user-agent"] == H2_AGENT


def test_messages_are_gzip_at_the_fast_level() -> None:
    import gzip

    data = traces(200).SerializeToString()
    packed = h2client.compress(data)
    assert packed[:2] == b"\x1f\x8b"  # a gzip member, as grpc-encoding: gzip requires
    assert gzip.decompress(packed) == data
    framed = h2client.frame(packed, compressed=True)
    assert framed[0] == 1
    assert int.from_bytes(framed[1:5], "big") == len(packed)


@pytest.mark.parametrize("retry_after", [None, 0.3])
async def test_unavailable_is_retried_with_or_without_retry_info(
    sink: Sink, retry_after: float | None
) -> None:
    sink.fail_next(2, Failure(Code.UNAVAILABLE, retry_after=retry_after))
    async with running("otlp", upstream("otlp", sink)) as r:
        started = time.monotonic()
        await r.consumer.consume(payload(Signal.TRACES, traces(3)))
        assert await wait_for(lambda: sink.state.items(Signal.TRACES) == 3)
    assert sink.state.attempts == 3
    if retry_after:
        assert sink.state.received[0].at - started >= 2 * retry_after * 0.95
    assert r.m(FAILED, error="retryable") == 2
    assert sink.state.received[0].headers["user-agent"] == H2_AGENT


async def test_resource_exhausted_is_retried_only_with_retry_info(sink: Sink) -> None:
    sink.fail_next(1, Failure(Code.RESOURCE_EXHAUSTED, retry_after=0.2))
    sink.fail_next(1, Failure(Code.RESOURCE_EXHAUSTED))
    async with running("otlp", upstream("otlp", sink)) as r:
        await r.consumer.consume(payload(Signal.TRACES, traces(2)))
        assert await wait_for(lambda: r.m(DROPPED) > 0)
    assert sink.state.attempts == 2
    assert r.m(FAILED, error="throttled") == 1
    assert r.m(DROPPED, reason="permanent") == 2


@pytest.mark.parametrize("code", [Code.INVALID_ARGUMENT, Code.UNAUTHENTICATED, Code.INTERNAL])
async def test_non_retryable_codes_are_not_retried(sink: Sink, code: grpc.StatusCode) -> None:
    sink.fail_next(3, Failure(code))
    async with running("otlp", upstream("otlp", sink)) as r:
        await r.consumer.consume(payload(Signal.TRACES, traces(4)))
        assert await wait_for(lambda: r.m(DROPPED) > 0)
    assert sink.state.attempts == 1
    assert r.m(DROPPED, reason="permanent") == 4


async def test_concurrent_sends_are_multiplexed_on_one_connection(sink: Sink) -> None:
    sink.state.delay = 0.5
    async with byte_counting_proxy(sink.grpc_port) as rl:
        cfg = upstream("otlp", sink, endpoint=f"127.0.0.1:{rl.port}", sending_queue={"num_consumers": 5})
        async with running("otlp", cfg) as r:
            for i in range(5):
                await r.consumer.consume(payload(Signal.TRACES, traces(1, f"c{i}")))
            # all five reach the (slow) peer before any answer: they are in flight together
            assert await wait_for(lambda: sink.state.attempts == 5, timeout=5)
            assert sink.state.received == []
            assert await wait_for(lambda: len(sink.state.received) == 5)
    assert rl.connections == 1


async def test_a_peer_that_goes_away_mid_call_is_retried_and_the_client_reconnects() -> None:
    first = Sink().__enter__()
    first.state.delay = 5.0  # the call is in flight when the peer stops
    try:
        async with byte_counting_proxy(first.grpc_port) as rl:
            cfg = upstream("otlp", first, endpoint=f"127.0.0.1:{rl.port}")
            async with running("otlp", cfg) as r:
                await r.consumer.consume(payload(Signal.TRACES, traces(3, "away")))
                assert await wait_for(lambda: first.state.attempts == 1)
                await asyncio.to_thread(first.__exit__)
                assert await wait_for(lambda: r.m(FAILED, error="retryable") >= 1)
                with Sink() as second:
                    rl.target = second.grpc_port
                    assert await wait_for(lambda: second.state.items(Signal.TRACES) == 3)
                    assert r.m(DROPPED) == 0
                    assert second.state.received[0].headers["user-agent"] == H2_AGENT
            assert rl.connections >= 2
    finally:
        with contextlib.suppress(Exception):
            first.__exit__()


@contextlib.asynccontextmanager
async def big_peer(max_recv: int) -> AsyncIterator[tuple[int, list[bytes]]]:
    got: list[bytes] = []
    server = grpc.aio.server(options=[("grpc.max_receive_message_length", max_recv)])

    async def export(request: bytes, context: Any) -> bytes:
        got.append(request)
        return b""

    handler = grpc.unary_unary_rpc_method_handler(export)
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(Signal.TRACES.grpc_service, {"Export": handler}),)
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield port, got
    finally:
        await server.stop(0)


async def test_a_20_mb_message_goes_through_flow_control() -> None:
    message = big_traces(20 * 1024 * 1024)
    async with big_peer(64 * 1024 * 1024) as (port, got):
        cfg = {"endpoint": f"127.0.0.1:{port}", "tls": {"insecure": True}, "timeout": "30s"}
        async with running("otlp", cfg) as r:
            await r.consumer.consume(payload(Signal.TRACES, message))
            assert await wait_for(lambda: r.m(SENT) == 1, timeout=30)
    assert got == [message.SerializeToString()]


async def test_a_message_over_the_peers_limit_is_refused_not_retried() -> None:
    async with big_peer(1024 * 1024) as (port, got):
        cfg = {"endpoint": f"127.0.0.1:{port}", "tls": {"insecure": True}}
        async with running("otlp", cfg) as r:
            await r.consumer.consume(payload(Signal.TRACES, big_traces(4 * 1024 * 1024)))
            assert await wait_for(lambda: r.m(DROPPED) > 0)
            assert r.m(FAILED, error="permanent") == 1  # RESOURCE_EXHAUSTED without RetryInfo
    assert got == []


async def test_rotel_receives_what_was_sent(sink: Sink) -> None:
    from tests.support.rotel import Rotel

    sent = [traces(5, f"rotel{i}") for i in range(3)]
    with Rotel(f"http://{sink.grpc_endpoint}", protocol="grpc") as rotel:
        cfg = {
            "endpoint": rotel.grpc_endpoint,
            "tls": {"insecure": True},
            "sending_queue": {"num_consumers": 3},
        }
        async with running("otlp", cfg) as r:
            for m in sent:
                await r.consumer.consume(payload(Signal.TRACES, m))
            assert await wait_for(lambda: r.m(SENT) == 15), rotel.logs()
            assert await wait_for(lambda: sink.state.items(Signal.TRACES) == 15), rotel.logs()
    names = {s.name for m in sink.state.messages(Signal.TRACES) for rs in m.resource_spans
             for ss in rs.scope_spans for s in ss.spans}  # fmt: skip
    assert names == {f"rotel{i}-{j}" for i in range(3) for j in range(5)}


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("collector:4317", ("collector", 4317)),
        ("127.0.0.1:1", ("127.0.0.1", 1)),
        ("[::1]:4317", ("::1", 4317)),
        ("collector", None),
        ("dns:///collector:4317", None),
        ("unix:/tmp/sock", None),
        ("::1", None),
    ],
)
def test_only_host_port_targets_use_the_h2_client(target: str, expected: tuple[str, int] | None) -> None:
    assert host_port(target) == expected


def test_grpc_timeout_header() -> None:
    assert h2client.grpc_timeout(5.0) == b"5000m"
    assert h2client.grpc_timeout(0.0001) == b"1m"
    assert h2client.grpc_timeout(1e9) == b"99999999S"


async def test_a_call_slower_than_the_timeout_is_retried(sink: Sink) -> None:
    sink.state.delay = 1.0
    cfg = upstream("otlp", sink, timeout="200ms", retry_on_failure={"max_elapsed_time": "300ms"})
    async with running("otlp", cfg) as r:
        await r.consumer.consume(payload(Signal.TRACES, traces(2)))
        assert await wait_for(lambda: r.m(DROPPED, reason="retries_exhausted") == 2)
    assert r.m(FAILED, error="retryable") >= 1


@pytest.mark.parametrize("override", ["", "otlpd.test"])
async def test_tls_with_ca_file_client_certificate_and_server_name_override(
    tmp_path: Any, override: str
) -> None:
    import shutil

    from tests.tls.certs import make_certs

    if shutil.which("openssl") is None:
        pytest.skip("the openssl CLI is needed to make throwaway test certificates")
    certs = make_certs(tmp_path)
    server_pair = certs.other_name if override else certs.server
    got: list[tuple[bytes, dict[str, Any]]] = []
    server = grpc.aio.server()

    async def export(request: bytes, context: Any) -> bytes:
        got.append((request, dict(context.invocation_metadata())))
        return b""

    handler = grpc.unary_unary_rpc_method_handler(export)
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(Signal.TRACES.grpc_service, {"Export": handler}),)
    )
    creds = grpc.ssl_server_credentials(
        [(server_pair.key.read_bytes(), server_pair.cert.read_bytes())],
        root_certificates=certs.ca.read_bytes(),
        require_client_auth=True,
    )
    port = server.add_secure_port("127.0.0.1:0", creds)
    await server.start()
    try:
        tls = {
            "ca_file": str(certs.ca),
            "cert_file": str(certs.client.cert),
            "key_file": str(certs.client.key),
        }
        if override:
            tls["server_name_override"] = override
        message = traces(3, "tls")
        async with running("otlp", {"endpoint": f"127.0.0.1:{port}", "tls": tls}) as r:
            await r.consumer.consume(payload(Signal.TRACES, message))
            assert await wait_for(lambda: r.m(SENT) == 3)
    finally:
        await server.stop(0)
    [(body, headers)] = got
    assert body == message.SerializeToString()
    assert headers["user-agent"] == H2_AGENT


async def test_a_graceful_goaway_lets_the_accepted_call_finish_once() -> None:
    """A peer stopping gracefully (GOAWAY, then finishing in-flight calls) must not cause a resend."""
    got: list[bytes] = []
    started = asyncio.Event()
    server = grpc.aio.server()

    async def export(request: bytes, context: Any) -> bytes:
        got.append(request)
        started.set()
        await asyncio.sleep(0.5)  # still working when the server starts its graceful stop
        return b""

    handler = grpc.unary_unary_rpc_method_handler(export)
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(Signal.TRACES.grpc_service, {"Export": handler}),)
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    cfg = {
        "endpoint": f"127.0.0.1:{port}",
        "tls": {"insecure": True},
        "retry_on_failure": {"initial_interval": "10ms", "max_interval": "20ms"},
    }
    async with running("otlp", cfg) as r:
        await r.consumer.consume(payload(Signal.TRACES, traces(4, "goaway")))
        await asyncio.wait_for(started.wait(), 10)
        await server.stop(grace=5)  # GOAWAY now; the call in flight completes
        assert await wait_for(lambda: r.m(SENT) == 4)
        await asyncio.sleep(0.2)  # room for a (wrong) resend to show up
    assert len(got) == 1
    assert r.m(FAILED) == 0
    assert r.m(DROPPED) == 0
