"""OTLP/gRPC at the HTTP/2 frame level: a black-box conformance suite for the gRPC receiver.

Every test talks to a running otlpd over a real TCP socket (h2c, prior
knowledge) with ``h2raw``: the ``h2`` library for well-formed traffic (h2
also validates every frame the server sends), hand-built frames for what h2
will not send. What is asserted is what RFC 9113 (HTTP/2), RFC 7541 (HPACK)
and gRPC's PROTOCOL-HTTP2.md / compression.md require, not what one
implementation happens to do; where a spec allows several reactions all are
accepted:

* a connection error (RFC 9113 §5.4.1) must close the connection; the GOAWAY
  before it is a SHOULD, so it may be missing, but if sent it carries the
  error code the spec names (grpc-core closes without GOAWAY);
* a stream over SETTINGS_MAX_CONCURRENT_STREAMS may be refused with
  REFUSED_STREAM or PROTOCOL_ERROR (§5.1.2);
* a gRPC error may be a Trailers-Only response or HEADERS + trailers.

The suite was written against the earlier grpc.aio server first. grpc-core
broke a MUST/SHOULD in eleven of these cases: it refuses padded DATA,
mis-parses padded HEADERS, ignores bad stream ids and DATA on stream 0,
serves text/plain as gRPC, answers an unknown grpc-encoding with INTERNAL,
and hangs on a truncated message. otlpd's own HTTP/2 server meets every one,
so they are ordinary tests. Where one case has a part that every conforming
server shares (e.g. "the request is refused") and a spec-exact part, the two
are separate tests.

Not tested: DATA beyond the advertised window as FLOW_CONTROL_ERROR. RFC
9113 §6.9 makes that a MAY, and a server may grant window ahead of need
(otlpd credits windows as data arrives, and grpc-core even raised
SETTINGS_INITIAL_WINDOW_SIZE mid-connection), so an overrun cannot be
provoked deterministically from outside.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import re
import signal
import socket
import struct
import time
import urllib.parse
from collections.abc import Callable, Iterable, Iterator
from enum import IntEnum

import h2.events
import pytest
from hyperframe.frame import PingFrame, SettingsFrame
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as trace_svc
from opentelemetry.proto.common.v1 import common_pb2

from otlpd.pdata import Signal
from tests.receivers.otlp.h2raw import (
    PREFACE,
    Err,
    F,
    H2Client,
    RawConn,
    S,
    StreamResult,
    T,
    frame,
    goaway_payload,
    grpc_message,
    grpc_request_headers,
    hpack_indexed,
    hpack_literal,
    hpack_plain,
    hpack_size_update,
    settings_payload,
)
from tests.receivers.otlp.helpers import (
    GRPC_METHOD,
    LIMIT,
    arrived,
    gateway_config,
    marker,
    nothing_arrived,
    span,
    traces,
)
from tests.support.process import Otlpd
from tests.support.sink import Sink

TRACES = GRPC_METHOD[Signal.TRACES]
SPANS = 3  # spans in traces(mark)


class Code(IntEnum):
    """gRPC status codes."""

    OK = 0
    INVALID_ARGUMENT = 3
    RESOURCE_EXHAUSTED = 8
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14


# The OTLP specification's retryable gRPC codes (RESOURCE_EXHAUSTED only with RetryInfo, left out):
# CANCELLED, DEADLINE_EXCEEDED, ABORTED, OUT_OF_RANGE, UNAVAILABLE, DATA_LOSS.
RETRYABLE = {1, 4, 10, 11, 14, 15}


# PROTOCOL-HTTP2.md: Percent-Byte-Unencoded = %x20-%x24 / %x26-%x7E, Percent-Byte-Encoded = "%" 2HEXDIGIT.
_PERCENT_ENCODED = re.compile(r"(?:[\x20-\x24\x26-\x7e]|%[0-9A-Fa-f]{2})*")


def request() -> tuple[str, trace_svc.ExportTraceServiceRequest, bytes]:
    """A marked traces request: (mark, the request, its gRPC-framed body)."""
    mark = marker()
    sent = traces(mark)
    return mark, sent, grpc_message(sent.SerializeToString())


def assert_grpc_response(result: StreamResult, code: int) -> None:
    """A complete gRPC response (PROTOCOL-HTTP2.md) with grpc-status ``code``."""
    assert result.ended, f"stream not ended by the server: {result.describe()}"
    # RFC 9113 §8.1: a server that answered before the request ended may RST_STREAM(NO_ERROR).
    assert result.reset in (None, Err.NO_ERROR), result.describe()
    assert result.status == 200, result.describe()
    assert (result.header("content-type") or "").startswith("application/grpc"), result.describe()
    assert result.grpc_status == code, result.describe()
    assert_percent_encoded(result.grpc_message_raw)


def assert_percent_encoded(raw: str | None) -> None:
    """grpc-message is percent-encoded UTF-8 in printable ASCII."""
    if raw is None:
        return
    assert _PERCENT_ENCODED.fullmatch(raw), f"grpc-message not percent-encoded: {raw!r}"
    urllib.parse.unquote_to_bytes(raw).decode("utf-8")  # raises if not UTF-8


def assert_connection_error(conn: RawConn, *codes: int) -> None:
    """RFC 9113 §5.4.1: the server closes the connection, after a GOAWAY with one of ``codes`` if any."""
    assert conn.closes(), f"connection still open, frames: {conn.describe()}"
    if conn.goaway is not None:
        assert conn.goaway.error_code in codes, f"{conn.goaway}, expected one of {codes}"


def assert_goaways_consistent(conn: RawConn, answered_stream: int) -> None:
    """GOAWAYs of a graceful close: NO_ERROR, last-stream-id never increasing (RFC 9113 §6.8), and
    covering a stream the server did answer."""
    assert conn.goaways, f"connection closed without GOAWAY: {conn.describe()}"
    ids = [g.last_stream_id for g in conn.goaways]
    assert ids == sorted(ids, reverse=True), f"GOAWAY last-stream-id increased: {conn.goaways}"
    assert all(g.error_code == Err.NO_ERROR for g in conn.goaways), conn.goaways
    assert ids[-1] >= answered_stream, f"stream {answered_stream} was answered but {conn.goaways}"


@pytest.fixture
def port(otlpd: Otlpd) -> int:
    return otlpd.grpc_port


@pytest.fixture(scope="module")
def tuned(package_sink: Sink) -> Iterator[Otlpd]:
    """An otlpd with the Collector's stream limit and keepalive settings on its gRPC receiver."""
    config = gateway_config(package_sink)
    config["receivers"]["otlp"]["protocols"]["grpc"].update(
        {
            "max_concurrent_streams": 2,
            "keepalive": {
                "enforcement_policy": {"min_time": "10s"},
                "server_parameters": {"max_connection_idle": "1s"},
            },
        }
    )
    with Otlpd(config) as process:
        yield process


# --------------------------------------------------------------------------- well-formed traffic


def test_unary_call_by_hand(port: int, package_sink: Sink) -> None:
    """HEADERS (:status 200, application/grpc), one length-prefixed response message, trailers."""
    mark, sent, body = request()
    with H2Client(port) as client:
        stream_id = client.start(grpc_request_headers(port, TRACES))
        client.send(stream_id, body, end_stream=True)
        [result] = client.wait(stream_id)
        kinds = [
            type(e).__name__
            for e in client.events
            if isinstance(
                e,
                h2.events.ResponseReceived
                | h2.events.DataReceived
                | h2.events.TrailersReceived
                | h2.events.StreamEnded
                | h2.events.StreamReset,
            )
            and e.stream_id == stream_id
        ]
    assert kinds[0] == "ResponseReceived"
    assert kinds[-2:] == ["TrailersReceived", "StreamEnded"]
    assert set(kinds[1:-2]) == {"DataReceived"}, kinds
    assert result.header("grpc-status") is None  # not Trailers-Only: status is in the trailers
    assert_grpc_response(result, Code.OK)
    [(compressed, payload)] = result.messages()
    assert compressed == 0  # we sent no grpc-accept-encoding: identity only
    trace_svc.ExportTraceServiceResponse.FromString(payload)
    assert arrived(package_sink, Signal.TRACES, mark, items=SPANS) == sent


def test_twenty_streams_multiplexed_with_interleaved_data(port: int, package_sink: Sink) -> None:
    """20 streams opened before any body; bodies sent round-robin in 40-byte DATA frames."""
    chunk = 40
    with H2Client(port) as client:
        calls = {client.start(grpc_request_headers(port, TRACES)): request() for _ in range(20)}
        longest = max(len(body) for _, _, body in calls.values())
        for offset in range(0, longest, chunk):
            for stream_id, (_, _, body) in calls.items():
                if offset < len(body):
                    client.send(
                        stream_id, body[offset : offset + chunk], end_stream=offset + chunk >= len(body)
                    )
        results = client.wait(*calls)
    for result in results:
        assert_grpc_response(result, Code.OK)
    for mark, sent, _ in calls.values():
        assert arrived(package_sink, Signal.TRACES, mark, items=SPANS) == sent


def test_request_split_into_tiny_data_frames(port: int, package_sink: Sink) -> None:
    """The message in DATA frames of 1, 2, ... 100, 1, 2 ... bytes."""
    mark, sent, body = request()
    with H2Client(port) as client:
        stream_id = client.start(grpc_request_headers(port, TRACES))
        frames = client.send(stream_id, body, end_stream=True, frame_size=lambda i: i % 100 + 1)
        [result] = client.wait(stream_id)
    assert frames >= 20
    assert_grpc_response(result, Code.OK)
    assert arrived(package_sink, Signal.TRACES, mark, items=SPANS) == sent


@pytest.mark.parametrize("pad_length", [0, 200])
def test_padded_data_frames(port: int, package_sink: Sink, pad_length: int) -> None:
    mark, sent, body = request()
    with H2Client(port) as client:
        stream_id = client.start(grpc_request_headers(port, TRACES))
        client.send(stream_id, body, end_stream=True, frame_size=50, pad_length=pad_length)
        [result] = client.wait(stream_id)
    assert_grpc_response(result, Code.OK)
    assert arrived(package_sink, Signal.TRACES, mark, items=SPANS) == sent


def _headers_frame_request(port: int, sink: Sink, flags: int, before: bytes, after: bytes) -> None:
    """One call whose HEADERS payload is ``before`` + header block + ``after``."""
    mark, sent, body = request()
    with RawConn(port) as conn:
        conn.handshake()
        conn.opened(1)
        block = conn.header_block(grpc_request_headers(port, TRACES))
        conn.send(frame(T.HEADERS, F.END_HEADERS | flags, 1, before + block + after))
        conn.body(1, body)
        result = conn.wait(1)
    assert_grpc_response(result, Code.OK)
    assert arrived(sink, Signal.TRACES, mark, items=SPANS) == sent


@pytest.mark.parametrize("exclusive", [False, True])
def test_headers_with_priority_flag(port: int, package_sink: Sink, exclusive: bool) -> None:
    """RFC 9113 §6.2: the PRIORITY fields are parsed (and may be ignored), not taken for the block."""
    dependency = 0x80000000 if exclusive else 0  # (E bit) on stream 0
    _headers_frame_request(port, package_sink, F.PRIORITY, struct.pack(">IB", dependency, 200), b"")


@pytest.mark.parametrize("priority", [False, True], ids=["padded", "padded+priority"])
def test_headers_with_padded_flag(port: int, package_sink: Sink, priority: bool) -> None:
    pad = 10
    flags = F.PADDED | (F.PRIORITY if priority else 0)
    before = bytes([pad]) + (struct.pack(">IB", 0, 15) if priority else b"")
    _headers_frame_request(port, package_sink, flags, before, bytes(pad))


def test_header_block_split_over_continuation_frames(port: int, package_sink: Sink) -> None:
    """RFC 9113 §6.10: HEADERS without END_HEADERS, then CONTINUATIONs (one of them empty)."""
    mark, sent, body = request()
    with RawConn(port) as conn:
        conn.handshake()
        conn.opened(1)
        block = conn.header_block(grpc_request_headers(port, TRACES))
        pieces = [block[i : i + 7] for i in range(0, len(block), 7)]
        assert len(pieces) >= 3
        frames = [frame(T.HEADERS, 0, 1, pieces[0]), frame(T.CONTINUATION, 0, 1, b"")]
        for i, piece in enumerate(pieces[1:], start=2):
            frames.append(frame(T.CONTINUATION, F.END_HEADERS if i == len(pieces) else 0, 1, piece))
        conn.send(*frames)
        conn.body(1, body)
        result = conn.wait(1)
    assert_grpc_response(result, Code.OK)
    assert arrived(package_sink, Signal.TRACES, mark, items=SPANS) == sent


@pytest.mark.parametrize(
    "between",
    [
        pytest.param(lambda block: frame(T.PING, 0, 0, bytes(8)), id="ping"),
        pytest.param(lambda block: frame(T.DATA, 0, 1, b"x"), id="data-same-stream"),
        pytest.param(lambda block: frame(T.HEADERS, F.END_HEADERS, 3, block), id="headers-other-stream"),
        pytest.param(
            lambda block: frame(T.CONTINUATION, F.END_HEADERS, 3, b""), id="continuation-other-stream"
        ),
    ],
)
def test_frame_inside_a_header_block_is_protocol_error(port: int, between: Callable[[bytes], bytes]) -> None:
    """RFC 9113 §6.10: anything but a CONTINUATION of the same stream inside a header block."""
    with RawConn(port) as conn:
        conn.handshake()
        block = hpack_plain(grpc_request_headers(port, TRACES))
        conn.send(frame(T.HEADERS, 0, 1, block[:5]), between(block))
        assert_connection_error(conn, Err.PROTOCOL_ERROR)


def _big_request(i: int, size: int) -> tuple[str, trace_svc.ExportTraceServiceRequest, bytes]:
    one = span(i)
    one.attributes.add(key="blob", value=common_pb2.AnyValue(string_value=str(i % 10) * size))
    mark = marker()
    sent = traces(mark, [one])
    return mark, sent, grpc_message(sent.SerializeToString())


def test_requests_beyond_the_initial_windows_complete_via_window_updates(
    port: int, package_sink: Sink
) -> None:
    """Bodies adding up to more than the windows the server granted at the start complete: the
    server sends WINDOW_UPDATEs (h2 never sends past a window, so without them this stalls)."""
    size = 1_500_000  # each message under LIMIT
    with H2Client(port, timeout=15) as client:
        client.handshake()
        conn_window = client.conn.outbound_flow_control_window
        stream_window = client.conn.remote_settings.initial_window_size
        count = min(6, conn_window // size + 1)
        if count * size <= conn_window and size <= stream_window:
            pytest.skip(f"the server's windows ({conn_window}, {stream_window}) exceed what this sends")
        calls = {
            client.start(grpc_request_headers(port, TRACES)): _big_request(i, size) for i in range(count)
        }
        for stream_id, (_, _, body) in calls.items():
            client.send(stream_id, body, end_stream=True)
        results = client.wait(*calls)
        updates = sum(
            e.delta or 0 for e in client.events if isinstance(e, h2.events.WindowUpdated) and e.stream_id == 0
        )
    total = sum(len(body) for _, _, body in calls.values())
    assert total > conn_window or size > stream_window
    assert 65535 + updates >= total  # connection window: RFC 9113 §6.9.2 initial 65,535 + updates
    for result in results:
        assert_grpc_response(result, Code.OK)
    for mark, sent, _ in calls.values():
        assert arrived(package_sink, Signal.TRACES, mark, items=1) == sent


# --------------------------------------------------------------------------- PING, SETTINGS, preface


def test_ping_is_acked_with_the_same_payload(port: int) -> None:
    payload = os.urandom(8)
    with RawConn(port) as conn:
        conn.handshake()
        conn.ping(payload)
        assert conn.read_until(lambda: payload in conn.ping_acks)
    [ack] = [f for f in conn.frames if isinstance(f, PingFrame) and bytes(f.opaque_data) == payload]
    assert set(ack.flags) == {"ACK"}
    assert ack.stream_id == 0


@pytest.mark.parametrize("length", [0, 7, 9])
def test_ping_of_wrong_length_is_frame_size_error(port: int, length: int) -> None:
    """RFC 9113 §6.7: a PING whose length is not 8 is a connection error FRAME_SIZE_ERROR."""
    with RawConn(port) as conn:
        conn.handshake()
        conn.send(frame(T.PING, 0, 0, b"p" * length))
        assert_connection_error(conn, Err.FRAME_SIZE_ERROR)


def test_server_preface_is_settings_and_client_settings_are_acked(port: int, package_sink: Sink) -> None:
    """RFC 9113 §3.4: the server's first frame is SETTINGS; §6.5.3: it ACKs ours (empty payload)."""
    with RawConn(port) as conn:
        conn.handshake({S.INITIAL_WINDOW_SIZE: 1 << 20, S.MAX_FRAME_SIZE: 1 << 15, S.ENABLE_PUSH: 0})
        first = conn.frames[0]
        assert isinstance(first, SettingsFrame)
        assert "ACK" not in first.flags
        assert first.stream_id == 0
        assert conn.read_until(lambda: conn.settings_acks >= 1)
        [ack] = [f for f in conn.frames if isinstance(f, SettingsFrame) and "ACK" in f.flags]
        assert ack.settings == {}
        mark, sent, body = request()
        result = conn.call(1, grpc_request_headers(port, TRACES), body)
    assert_grpc_response(result, Code.OK)
    assert arrived(package_sink, Signal.TRACES, mark, items=SPANS) == sent


@pytest.mark.parametrize(
    ("bad", "code"),
    [
        pytest.param(frame(T.SETTINGS, 0, 0, bytes(7)), Err.FRAME_SIZE_ERROR, id="length-7"),
        pytest.param(
            frame(T.SETTINGS, F.ACK, 0, settings_payload({S.ENABLE_PUSH: 0})),
            Err.FRAME_SIZE_ERROR,
            id="ack-with-payload",
        ),
        pytest.param(
            frame(T.SETTINGS, 0, 0, settings_payload({S.INITIAL_WINDOW_SIZE: 2**31})),
            Err.FLOW_CONTROL_ERROR,
            id="initial-window-2^31",
        ),
        pytest.param(
            frame(T.SETTINGS, 0, 0, settings_payload({S.MAX_FRAME_SIZE: 16383})),
            Err.PROTOCOL_ERROR,
            id="max-frame-size-16383",
        ),
        pytest.param(
            frame(T.SETTINGS, 0, 0, settings_payload({S.MAX_FRAME_SIZE: 2**24})),
            Err.PROTOCOL_ERROR,
            id="max-frame-size-2^24",
        ),
        pytest.param(
            frame(T.SETTINGS, 0, 0, settings_payload({S.ENABLE_PUSH: 2})),
            Err.PROTOCOL_ERROR,
            id="enable-push-2",
        ),
        pytest.param(frame(T.SETTINGS, 0, 1), Err.PROTOCOL_ERROR, id="on-stream-1"),
    ],
)
def test_invalid_settings_are_connection_errors(port: int, bad: bytes, code: int) -> None:
    """RFC 9113 §6.5 and §6.5.2."""
    with RawConn(port) as conn:
        conn.handshake()
        conn.send(bad)
        assert_connection_error(conn, code)


@pytest.mark.parametrize(
    "preface",
    [
        pytest.param(
            f"POST {TRACES} HTTP/1.1\r\nHost: x\r\nContent-Type: application/grpc\r\n"
            "Content-Length: 0\r\n\r\n".encode(),
            id="http1",
        ),
        pytest.param(b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + bytes(160), id="tls-client-hello"),
        pytest.param(PREFACE[:-4] + b"XX\r\n", id="almost-preface"),
    ],
)
def test_bad_client_preface_closes_the_connection(port: int, package_sink: Sink, preface: bytes) -> None:
    """RFC 9113 §3.4: an invalid preface is a connection error (GOAWAY optional); others are served."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(preface)
        reply = b""
        deadline = time.monotonic() + 5
        while chunk := _recv(sock, deadline):
            reply += chunk
    goaway = _goaway_code(reply)
    assert goaway in (None, Err.PROTOCOL_ERROR), f"GOAWAY {goaway} for an invalid preface"
    mark, sent, body = request()
    with H2Client(port) as client:
        result = client.call(TRACES, body)
    assert_grpc_response(result, Code.OK)
    assert arrived(package_sink, Signal.TRACES, mark, items=SPANS) == sent


def _recv(sock: socket.socket, deadline: float) -> bytes:
    """The next bytes, b"" at EOF; fails if the server keeps the connection open past ``deadline``."""
    remaining = deadline - time.monotonic()
    assert remaining > 0, "the server kept the connection open"
    sock.settimeout(remaining)
    try:
        return sock.recv(65536)
    except ConnectionResetError:
        return b""
    except TimeoutError:
        raise AssertionError("the server kept the connection open") from None


def _goaway_code(reply: bytes) -> int | None:
    """The error code of a GOAWAY among the HTTP/2 frames in ``reply``, if any."""
    pos = 0
    while len(reply) - pos >= 9:
        length = int.from_bytes(reply[pos : pos + 3], "big")
        if reply[pos + 3] == T.GOAWAY and len(reply) - pos >= 17:
            return int.from_bytes(reply[pos + 13 : pos + 17], "big")
        pos += 9 + length
    return None


# --------------------------------------------------------------------------- stream identifiers


def test_headers_on_even_stream_id_is_protocol_error(port: int) -> None:
    with RawConn(port) as conn:
        conn.handshake()
        conn.send(frame(T.HEADERS, F.END_HEADERS, 2, hpack_plain(grpc_request_headers(port, TRACES))))
        assert_connection_error(conn, Err.PROTOCOL_ERROR)


def test_headers_on_lower_stream_id_is_protocol_error(port: int) -> None:
    with RawConn(port) as conn:
        conn.handshake()
        conn.send(frame(T.HEADERS, F.END_HEADERS, 3, hpack_plain(grpc_request_headers(port, TRACES))))
        conn.send(frame(T.HEADERS, F.END_HEADERS, 1, hpack_plain(grpc_request_headers(port, TRACES))))
        # Stream 1 is closed (implicitly, §5.1.1), so STREAM_CLOSED (§5.1) is a fair code too.
        assert_connection_error(conn, Err.PROTOCOL_ERROR, Err.STREAM_CLOSED)


def test_data_on_stream_zero_is_protocol_error(port: int) -> None:
    with RawConn(port) as conn:
        conn.handshake()
        conn.send(frame(T.DATA, 0, 0, b"abc"))
        assert_connection_error(conn, Err.PROTOCOL_ERROR)


def test_client_reset_mid_request(port: int, package_sink: Sink) -> None:
    """RST_STREAM after half the body: the request is dropped, the connection goes on."""
    cancelled, _, cancelled_body = request()
    mark, sent, body = request()
    with H2Client(port) as client:
        stream_id = client.start(grpc_request_headers(port, TRACES))
        client.send(stream_id, cancelled_body[: len(cancelled_body) // 2])
        client.reset(stream_id, Err.CANCEL)
        result = client.call(TRACES, body)
        assert client.terminated is None
    assert_grpc_response(result, Code.OK)
    assert arrived(package_sink, Signal.TRACES, mark, items=SPANS) == sent
    assert nothing_arrived(package_sink, Signal.TRACES, cancelled)


# --------------------------------------------------------------------------- gRPC semantics


def _call(
    port: int,
    body: bytes,
    path: str = TRACES,
    *,
    content_type: str = "",
    extra: Iterable[tuple[str, str]] = (),
) -> StreamResult:
    """One call on a connection of its own."""
    with H2Client(port) as client:
        return client.call(path, body, content_type=content_type, extra=extra)


@pytest.mark.parametrize(
    "path",
    ["/opentelemetry.proto.collector.trace.v1.TraceService/Nope", "/no.such.Service/Export"],
)
def test_unknown_method_is_unimplemented(port: int, path: str) -> None:
    result = _call(port, request()[2], path)
    assert_grpc_response(result, Code.UNIMPLEMENTED)


def test_non_grpc_content_type_is_refused(port: int, package_sink: Sink) -> None:
    mark, _, body = request()
    result = _call(port, body, content_type="text/plain")
    assert result.status == 415 or (result.status == 200 and result.grpc_status not in (None, 0)), (
        result.describe()
    )
    assert nothing_arrived(package_sink, Signal.TRACES, mark)


def test_gzip_compressed_message(port: int, package_sink: Sink) -> None:
    mark, sent, _ = request()
    body = grpc_message(gzip.compress(sent.SerializeToString()), compressed=True)
    result = _call(port, body, extra=[("grpc-encoding", "gzip")])
    assert_grpc_response(result, Code.OK)
    assert arrived(package_sink, Signal.TRACES, mark, items=SPANS) == sent


def _unknown_encoding(port: int) -> tuple[str, StreamResult]:
    mark, sent, _ = request()
    body = grpc_message(gzip.compress(sent.SerializeToString()), compressed=True)
    return mark, _call(port, body, extra=[("grpc-encoding", "snappy-nope")])


def test_unknown_grpc_encoding_is_refused(port: int, package_sink: Sink) -> None:
    mark, result = _unknown_encoding(port)
    assert result.grpc_status not in (None, Code.OK), result.describe()
    assert_grpc_response(result, result.grpc_status or 0)
    assert nothing_arrived(package_sink, Signal.TRACES, mark)


def test_unknown_grpc_encoding_is_unimplemented(port: int) -> None:
    _, result = _unknown_encoding(port)
    assert_grpc_response(result, Code.UNIMPLEMENTED)
    assert result.header("grpc-accept-encoding") is not None, result.describe()


def test_body_not_protobuf_is_invalid_argument(port: int) -> None:
    result = _call(port, grpc_message(b"\xff\xff\xff\xff\xe9\x80 not protobuf"))
    assert_grpc_response(result, Code.INVALID_ARGUMENT)
    assert result.grpc_message


@pytest.mark.parametrize("cut", ["short-payload", "short-prefix"])
def test_truncated_message_is_an_error_not_a_hang(port: int, cut: str) -> None:
    payload = request()[1].SerializeToString()
    if cut == "short-payload":
        body = grpc_message(payload, declared_length=len(payload) + 100)
    else:
        body = grpc_message(payload)[:3]
    with H2Client(port) as client:
        stream_id = client.start(grpc_request_headers(port, TRACES))
        client.send(stream_id, body, end_stream=True)
        [result] = client.wait(stream_id, timeout=2)
    assert result.grpc_status not in (None, Code.OK), result.describe()
    assert_grpc_response(result, result.grpc_status or 0)


def test_message_over_limit_is_resource_exhausted_and_connection_stays_usable(
    port: int, package_sink: Sink
) -> None:
    mark, sent, body = request()
    with H2Client(port, timeout=15) as client:
        too_big = client.call(TRACES, grpc_message(bytes(LIMIT + 1)))
        after = client.call(TRACES, body)
        assert client.terminated is None
    assert_grpc_response(too_big, Code.RESOURCE_EXHAUSTED)
    assert_grpc_response(after, Code.OK)
    assert arrived(package_sink, Signal.TRACES, mark, items=SPANS) == sent


# --------------------------------------------------------------------------- HPACK


def test_hpack_dynamic_table_size_updates_and_reuse(port: int, package_sink: Sink) -> None:
    """RFC 7541 §6.3: size updates (to 0, then back) at the start of a block; the next request's
    block refers to dynamic-table entries the first one added (Huffman-coded by hpack)."""
    marks = []
    sizes = []
    with RawConn(port) as conn:
        conn.handshake()
        for stream_id in (1, 3):
            mark, sent, body = request()
            marks.append((mark, sent))
            block = conn.header_block(grpc_request_headers(port, TRACES, extra=[("x-test", "same")]))
            sizes.append(len(block))
            if stream_id == 1:
                block = hpack_size_update(0) + hpack_size_update(4096) + block
            conn.opened(stream_id)
            conn.send(frame(T.HEADERS, F.END_HEADERS, stream_id, block))
            conn.body(stream_id, body)
            assert_grpc_response(conn.wait(stream_id), Code.OK)
    assert sizes[1] < sizes[0] / 2, sizes  # the second block is (mostly) dynamic-table indexes
    for mark, sent in marks:
        assert arrived(package_sink, Signal.TRACES, mark, items=SPANS) == sent


def test_hpack_server_honours_header_table_size_zero(port: int) -> None:
    """RFC 7541 §4.2: after our SETTINGS_HEADER_TABLE_SIZE 0 the server's encoder signals a size
    update to 0 and never relies on a dynamic table (our decoder allows none)."""
    with RawConn(port) as conn:
        conn.handshake({S.HEADER_TABLE_SIZE: 0})
        conn.decoder.max_allowed_table_size = 0
        assert conn.read_until(lambda: conn.settings_acks >= 1)
        for stream_id in (1, 3):
            assert_grpc_response(
                conn.call(stream_id, grpc_request_headers(port, TRACES), request()[2]), Code.OK
            )
            assert conn.decoder.header_table.maxsize == 0


HPACK_DECODING_ERRORS = [
    pytest.param(hpack_indexed(200), id="index-beyond-tables"),
    pytest.param(hpack_indexed(0), id="index-0"),
    pytest.param(hpack_size_update(8192), id="size-update-over-4096"),
]


@pytest.mark.parametrize("broken", HPACK_DECODING_ERRORS)
def test_hpack_decoding_error_never_runs_the_request(port: int, broken: bytes) -> None:
    """Whatever else it does, a server cannot execute a request whose header block it cannot decode."""
    with RawConn(port) as conn:
        conn.handshake()
        conn.opened(1)
        conn.send(
            frame(T.HEADERS, F.END_HEADERS, 1, broken + hpack_plain(grpc_request_headers(port, TRACES)))
        )
        with contextlib.suppress(OSError):  # the server may have closed the connection already
            conn.body(1, request()[2])
        conn.read_until(lambda: conn.streams[1].done)
    assert conn.streams[1].grpc_status != Code.OK, conn.streams[1].describe()


@pytest.mark.parametrize("broken", HPACK_DECODING_ERRORS)
def test_hpack_decoding_error_is_compression_error(port: int, broken: bytes) -> None:
    """RFC 9113 §4.3: a field block that cannot be decoded is a connection error COMPRESSION_ERROR
    (grpc-core first answers the stream with grpc-status 13, then closes without GOAWAY)."""
    with RawConn(port) as conn:
        conn.handshake()
        conn.send(
            frame(T.HEADERS, F.END_HEADERS, 1, broken + hpack_plain(grpc_request_headers(port, TRACES)))
        )
        assert_connection_error(conn, Err.COMPRESSION_ERROR)


@pytest.mark.parametrize(
    "first",
    [
        "identity",
        "snappy-nope",
    ],
)
def test_hpack_literal_with_dynamic_name_reference_takes_the_new_value(
    port: int, package_sink: Sink, first: str
) -> None:
    """RFC 7541 §6.2.1: 'grpc-encoding: <first>' is added to the dynamic table (index 62); the next
    request's 'grpc-encoding: gzip' names it by index 62 and is a gzip request like any other."""
    mark, sent, _ = request()
    gzipped = grpc_message(gzip.compress(sent.SerializeToString()), compressed=True)
    base = hpack_plain(grpc_request_headers(port, TRACES))
    with RawConn(port) as conn:
        conn.handshake()
        conn.opened(1)
        conn.send(
            frame(T.HEADERS, F.END_HEADERS, 1, base + hpack_literal("grpc-encoding", first, indexing=True))
        )
        conn.body(1, grpc_message(request()[1].SerializeToString()))
        conn.wait(1)
        conn.opened(3)
        conn.send(frame(T.HEADERS, F.END_HEADERS, 3, base + hpack_literal(62, "gzip", indexing=True)))
        conn.body(3, gzipped)
        result = conn.wait(3)
    assert_grpc_response(result, Code.OK)
    assert arrived(package_sink, Signal.TRACES, mark, items=SPANS) == sent


# --------------------------------------------------------------------------- GOAWAY, limits, keepalive


def test_client_goaway_lets_the_in_flight_stream_finish(port: int, package_sink: Sink) -> None:
    """RFC 9113 §6.8: our GOAWAY (last-stream-id 0: we accept no pushes) does not end the stream we
    opened. Whether the server then closes the connection is up to it (grpc-core keeps it open)."""
    mark, sent, body = request()
    with RawConn(port) as conn:
        conn.handshake()
        conn.headers(1, grpc_request_headers(port, TRACES))
        conn.data(1, body[:10])
        conn.send(frame(T.GOAWAY, 0, 0, goaway_payload(0, Err.NO_ERROR)))
        conn.data(1, body[10:], end_stream=True)
        result = conn.wait(1)
    assert_grpc_response(result, Code.OK)
    assert all(g.error_code == Err.NO_ERROR for g in conn.goaways), conn.goaways
    assert arrived(package_sink, Signal.TRACES, mark, items=SPANS) == sent


def test_max_concurrent_streams_refuses_a_third_stream(tuned: Otlpd, package_sink: Sink) -> None:
    """max_concurrent_streams: 2 is advertised (RFC 9113 §6.5.2); a third stream is refused
    (§5.1.2: stream error REFUSED_STREAM or PROTOCOL_ERROR) while the first two complete."""
    port = tuned.grpc_port
    calls = {1: request(), 3: request()}
    with RawConn(port) as conn:
        conn.handshake()
        assert conn.server_settings.get(S.MAX_CONCURRENT_STREAMS) == 2, conn.server_settings
        for stream_id in (1, 3, 5):
            conn.headers(stream_id, grpc_request_headers(port, TRACES))
        conn.read_until(lambda: conn.streams[5].done or conn.goaway is not None)
        third = conn.streams[5]
        if third.reset is not None:
            assert third.reset in (Err.REFUSED_STREAM, Err.PROTOCOL_ERROR), third.describe()
        else:  # the brief allows a GOAWAY that leaves stream 5 out
            assert conn.goaway is not None
            assert conn.goaway.last_stream_id < 5, conn.goaway
        assert third.headers is None, f"stream 5 was served: {third.describe()}"
        for stream_id, (_, _, body) in calls.items():
            conn.body(stream_id, body)
        results = [conn.wait(stream_id) for stream_id in calls]
    for result in results:
        assert_grpc_response(result, Code.OK)
    for mark, sent, _ in calls.values():
        assert arrived(package_sink, Signal.TRACES, mark, items=SPANS) == sent


def test_rapid_pings_without_streams_get_enhance_your_calm(tuned: Otlpd) -> None:
    """keepalive.enforcement_policy.min_time 10s: five back-to-back PINGs with no stream open are
    abuse (gRPC A8 / the Collector's docs): GOAWAY ENHANCE_YOUR_CALM."""
    with RawConn(tuned.grpc_port) as conn:
        conn.handshake()
        conn.send(*(frame(T.PING, 0, 0, bytes([i]) * 8) for i in range(5)))
        assert conn.read_until(lambda: conn.goaway is not None), f"no GOAWAY: {conn.describe()}"
    assert conn.goaway is not None
    assert conn.goaway.error_code == Err.ENHANCE_YOUR_CALM, conn.goaway


def test_idle_connection_gets_goaway(tuned: Otlpd) -> None:
    """keepalive.server_parameters.max_connection_idle 1s: an idle connection is closed with a GOAWAY."""
    with RawConn(tuned.grpc_port, timeout=6) as conn:
        conn.handshake()
        started = time.monotonic()
        assert conn.read_until(lambda: conn.goaway is not None), f"closed without GOAWAY: {conn.describe()}"
        elapsed = time.monotonic() - started
        conn.read_to_close()
    assert 0.5 <= elapsed <= 5, elapsed
    ids = [g.last_stream_id for g in conn.goaways]
    assert ids == sorted(ids, reverse=True), conn.goaways


def test_sigterm_answers_in_flight_requests_and_sends_goaway(sink: Sink) -> None:
    """SIGTERM: a request being processed is answered OK; one still uploading is answered once its
    body is finished, OK or with a code the OTLP spec makes retryable (grpc-core: UNAVAILABLE from
    otlpd, or now and then CANCELLED from grpc-core's own shutdown); both connections see GOAWAY
    before they close."""
    sink.state.delay = 1.0  # keeps the first request in the receiver's handler (queue off)
    config = gateway_config(sink, sending_queue={"enabled": False})
    config["service"]["shutdown_timeout"] = "10s"
    busy_mark, busy_sent, busy_body = request()
    late_mark, late_sent, late_body = request()
    with Otlpd(config) as process:
        assert process.proc is not None
        port = process.grpc_port
        with RawConn(port, timeout=8) as busy, RawConn(port, timeout=8) as late:
            busy.handshake()
            late.handshake()
            busy.headers(1, grpc_request_headers(port, TRACES))
            busy.body(1, busy_body)
            late.headers(1, grpc_request_headers(port, TRACES))
            late.data(1, late_body[:10])
            assert sink.wait_until(lambda state: state.attempts >= 1, timeout=5)  # busy is exporting
            process.proc.send_signal(signal.SIGTERM)
            assert late.read_until(lambda: late.goaway is not None), late.describe()
            late.data(1, late_body[10:], end_stream=True)
            late_result = late.wait(1)
            busy_result = busy.wait(1)
            busy.read_to_close()
            late.read_to_close()
        process.proc.wait(15)
    assert_grpc_response(busy_result, Code.OK)
    assert arrived(sink, Signal.TRACES, busy_mark, items=SPANS) == busy_sent
    assert late_result.grpc_status in {Code.OK, *RETRYABLE}, late_result.describe()
    assert_grpc_response(late_result, late_result.grpc_status or 0)
    if late_result.grpc_status == Code.OK:
        assert arrived(sink, Signal.TRACES, late_mark, items=SPANS) == late_sent
    assert_goaways_consistent(busy, answered_stream=1)
    assert_goaways_consistent(late, answered_stream=1)
