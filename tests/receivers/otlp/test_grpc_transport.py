"""The gRPC receiver's own HTTP/2 server: timers, deadlines and hostile pacing.

Protocol conformance is in ``test_grpc_http2.py`` (against a whole otlpd);
these run the receiver in this process so a test can choose what the
pipeline does (slow, failing) and use short keepalive timers.
"""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as trace_svc

from otlpd.pdata import Signal
from tests.receivers.otlp.h2raw import F, RawConn, T, frame, grpc_message, grpc_request_headers
from tests.receivers.otlp.helpers import GRPC_METHOD, marker, traces
from tests.receivers.otlp.inprocess import InProcess
from tests.tls.certs import make_certs

TRACES = GRPC_METHOD[Signal.TRACES]
LIMIT_MIB = 1


def _receiver(grpc: dict[str, Any]) -> InProcess:
    return InProcess({"protocols": {"grpc": {"endpoint": "127.0.0.1:0", **grpc}}})


@pytest.fixture(scope="module")
def plain() -> Iterator[InProcess]:
    with _receiver({"max_recv_msg_size_mib": LIMIT_MIB}) as receiver:
        yield receiver


@pytest.fixture(scope="module")
def pinging() -> Iterator[InProcess]:
    params = {"time": "1s", "timeout": "1s", "max_connection_age": "2s", "max_connection_age_grace": "1s"}
    with _receiver({"keepalive": {"server_parameters": params}}) as receiver:
        yield receiver


def _port(receiver: InProcess) -> int:
    return int(receiver.grpc_endpoint.rsplit(":", 1)[1])


def _request(port: int, **extra: str) -> tuple[list[tuple[str, str]], bytes, str]:
    mark = marker()
    body = grpc_message(traces(mark).SerializeToString())
    return grpc_request_headers(port, TRACES, extra=list(extra.items())), body, mark


def _grpc_status(result: Any) -> int | None:
    status: int | None = result.grpc_status
    return status


def _accepted(receiver: InProcess, mark: str) -> bool:
    return any(mark.encode() in payload.data for payload in receiver.consumer.got)


def test_a_request_trickled_one_byte_per_write_is_served(plain: InProcess) -> None:
    port = _port(plain)
    headers, body, mark = _request(port)
    with RawConn(port) as conn:
        conn.handshake()
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.opened(1)
        wire = frame(T.HEADERS, F.END_HEADERS, 1, conn.header_block(headers))
        wire += frame(T.DATA, F.END_STREAM, 1, body)
        pos = 0
        while pos < len(wire):  # byte by byte through the frame headers and HPACK block, then in chunks
            step = 1 if pos < 200 else 997
            conn.send(wire[pos : pos + step])
            pos += step
        result = conn.wait(1)
    assert _grpc_status(result) == 0, result.describe()
    assert _accepted(plain, mark)


def test_a_large_unknown_extension_frame_is_skipped(plain: InProcess) -> None:
    port = _port(plain)
    headers, body, mark = _request(port)
    with RawConn(port) as conn:
        conn.handshake()
        conn.send(frame(0xFA, 0, 0, b"x" * 200_000))  # RFC 9113 §5.5: unknown types are ignored
        result = conn.call(1, headers, body)
    assert _grpc_status(result) == 0, result.describe()
    assert _accepted(plain, mark)


def test_a_message_over_the_limit_is_refused_before_the_rest_is_sent(plain: InProcess) -> None:
    port = _port(plain)
    headers, _, _ = _request(port)
    too_big = LIMIT_MIB * 1024 * 1024 + 1
    with RawConn(port) as conn:
        conn.handshake()
        conn.headers(1, headers)
        prefix = grpc_message(b"", declared_length=too_big)
        conn.body(1, prefix + b"\0" * (LIMIT_MIB * 1024 * 1024 + 64 * 1024), end_stream=False)
        result = conn.wait(1)
        assert _grpc_status(result) == 8, result.describe()  # RESOURCE_EXHAUSTED
        assert result.reset in (None, 0)  # RFC 9113 §8.1: the rest is cut with NO_ERROR
        # the connection still serves calls
        headers, body, mark = _request(port)
        assert _grpc_status(conn.call(3, headers, body)) == 0
    assert _accepted(plain, mark)


def test_grpc_timeout_ends_a_slow_call_with_deadline_exceeded(plain: InProcess) -> None:
    port = _port(plain)
    plain.consumer.delay = 1.0
    try:
        headers, body, _ = _request(port, **{"grpc-timeout": "200m"})
        with RawConn(port) as conn:
            conn.handshake()
            started = time.monotonic()
            result = conn.call(1, headers, body)
            took = time.monotonic() - started
    finally:
        plain.consumer.delay = 0.0
    assert _grpc_status(result) == 4, result.describe()  # DEADLINE_EXCEEDED
    assert took < 0.9


@pytest.mark.parametrize("timeout", ["", "1.5S", "200", "123456789m", "10x", "-1S"])
def test_a_malformed_grpc_timeout_is_internal(plain: InProcess, timeout: str) -> None:
    """As grpc-go and grpc-java answer it; ignoring it would run the call with no deadline."""
    headers, body, mark = _request(_port(plain), **{"grpc-timeout": timeout})
    if not timeout:
        headers = [h for h in headers if h[0] != "grpc-timeout"]
    with RawConn(_port(plain)) as conn:
        conn.handshake()
        result = conn.call(1, headers, body)
    if not timeout:  # no header at all: no deadline, served
        assert _grpc_status(result) == 0, result.describe()
        return
    assert _grpc_status(result) == 13, result.describe()  # INTERNAL
    assert "grpc-timeout" in (result.grpc_message or "")
    assert not _accepted(plain, mark)


@pytest.mark.parametrize(
    ("content_type", "served"),
    [
        ("application/grpc", True),
        ("application/grpc+proto", True),
        ("Application/GRPC; charset=utf-8", True),
        ("application/grpc-web", False),
        ("application/grpc-web+proto", False),
        ("application/grpc-web-text", False),
        ("application/grpc+json", False),
        ("application/grpcx", False),
    ],
)
def test_only_grpc_protobuf_content_types_are_served(
    plain: InProcess, content_type: str, served: bool
) -> None:
    mark = marker()
    headers = grpc_request_headers(_port(plain), TRACES, content_type=content_type)
    with RawConn(_port(plain)) as conn:
        conn.handshake()
        result = conn.call(1, headers, grpc_message(traces(mark).SerializeToString()))
    if served:
        assert _grpc_status(result) == 0, result.describe()
    else:
        assert result.status == 415, result.describe()
    assert _accepted(plain, mark) is served


def test_a_partial_success_response_carries_its_message(plain: InProcess) -> None:
    port = _port(plain)
    request = traces(marker())
    request.resource_spans[0].scope_spans[0].spans[0].trace_id = b"\0" * 16  # invalid: rejected
    headers = grpc_request_headers(port, TRACES)
    with RawConn(port) as conn:
        conn.handshake()
        result = conn.call(1, headers, grpc_message(request.SerializeToString()))
    assert _grpc_status(result) == 0, result.describe()
    [(flag, payload)] = result.messages()
    response = trace_svc.ExportTraceServiceResponse.FromString(payload)
    assert flag == 0
    assert response.partial_success.rejected_spans == 1


def test_keepalive_pings_a_quiet_connection_and_drops_it_when_unanswered(pinging: InProcess) -> None:
    with RawConn(_port(pinging), auto_ack=False) as conn:
        conn.send(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", frame(T.SETTINGS, 0, 0))
        started = time.monotonic()
        assert conn.read_until(lambda: any(f.type == T.PING and "ACK" not in f.flags for f in conn.frames))
        pinged = time.monotonic() - started
        conn.read_to_close(timeout=4)
        closed = time.monotonic() - started
    assert 0.5 <= pinged <= 2.5
    assert closed - pinged <= 2.5


def test_max_connection_age_sends_goaway_then_closes_after_the_grace(pinging: InProcess) -> None:
    with RawConn(_port(pinging)) as conn:  # answers PINGs, so only the age ends it
        conn.handshake()
        started = time.monotonic()
        assert conn.read_until(lambda: bool(conn.goaways), timeout=5)
        aged = time.monotonic() - started
        conn.read_to_close(timeout=4)
        closed = time.monotonic() - started
    assert conn.goaways[0].error_code == 0
    assert 1.5 <= aged <= 3.2  # 2 s ± 10 % jitter, checked every 0.5 s
    assert closed - aged <= 2.0


def test_a_connection_that_never_finishes_its_preface_does_not_stop_others(plain: InProcess) -> None:
    port = _port(plain)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as silent:
        silent.sendall(b"PRI * HTTP/2.0\r\n")  # and nothing more
        headers, body, mark = _request(port)
        with RawConn(port) as conn:
            conn.handshake()
            assert _grpc_status(conn.call(1, headers, body)) == 0
    assert _accepted(plain, mark)


def test_resetting_streams_does_not_make_room_for_more_calls() -> None:
    """A call keeps its slot until it ends, even if the client resets its stream ("rapid reset")."""
    with _receiver({"max_concurrent_streams": 2}) as receiver:
        receiver.consumer.delay = 1.0
        port = _port(receiver)
        with RawConn(port) as conn:
            conn.handshake()
            for sid in (1, 3):
                headers, body, _ = _request(port)
                conn.headers(sid, headers)
                conn.body(sid, body)
            time.sleep(0.2)  # both calls are running in the pipeline now
            conn.send(frame(T.RST_STREAM, 0, 1, b"\0\0\0\x08"), frame(T.RST_STREAM, 0, 3, b"\0\0\0\x08"))
            headers, body, _ = _request(port)
            conn.headers(5, headers)
            result = conn.wait(5)
        assert result.reset == 7  # REFUSED_STREAM: the two reset calls still hold their slots


def test_connections_that_close_or_fail_their_tls_handshake_are_not_kept(tmp_path: Path) -> None:
    """A TLS connection is tracked once its handshake is done; failed handshakes leave nothing."""
    certs = make_certs(tmp_path)
    tls = {"cert_file": str(certs.server.cert), "key_file": str(certs.server.key)}
    with _receiver({"tls": tls}) as receiver:
        assert receiver.receiver is not None
        grpc = receiver.receiver.grpc
        assert grpc is not None
        port = _port(receiver)
        for _ in range(20):  # a port scan / TCP health check: connect, close
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
        rogue = ssl.create_default_context(cafile=str(certs.rogue_ca))
        for _ in range(5):  # a client that does not trust the server's certificate
            with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, pytest.raises(ssl.SSLError):
                rogue.wrap_socket(raw, server_hostname="127.0.0.1")
        good = ssl.create_default_context(cafile=str(certs.ca))
        good.set_alpn_protocols(["h2"])
        raw = socket.create_connection(("127.0.0.1", port), timeout=5)
        with good.wrap_socket(raw, server_hostname="127.0.0.1") as conn:
            conn.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
            deadline = time.monotonic() + 5
            while grpc.open_connections() != 1 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert grpc.open_connections() == 1  # the one that finished its handshake
        deadline = time.monotonic() + 5
        while grpc.open_connections() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert grpc.open_connections() == 0


@pytest.mark.parametrize(
    ("declared", "served"),
    [
        ("exact", True),
        ("one more", False),
        ("one less", False),
        ("0", False),
        ("x1", False),
        ("twice", False),
    ],
)
def test_content_length_must_match_the_body(plain: InProcess, declared: str, served: bool) -> None:
    """RFC 9113 §8.1.1: a request whose content-length differs from its DATA is malformed."""
    port = _port(plain)
    headers, body, mark = _request(port)
    values = {"exact": [str(len(body))], "one more": [str(len(body) + 1)], "one less": [str(len(body) - 1)]}
    values |= {"0": ["0"], "x1": ["x1"], "twice": [str(len(body))] * 2}
    headers += [("content-length", v) for v in values[declared]]
    with RawConn(port) as conn:
        conn.handshake()
        result = conn.call(1, headers, body)
    if served:
        assert _grpc_status(result) == 0, result.describe()
    else:
        assert result.reset == 1, result.describe()  # PROTOCOL_ERROR
    assert _accepted(plain, mark) is served
