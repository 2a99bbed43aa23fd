"""A minimal async gRPC unary client over HTTP/2 (``h2``), to send gzip at a fast level.

Why it exists: gRPC Python compresses every message itself, with zlib at its
fixed level 6, in the calling thread, and offers neither a compression level
nor a way to send an already-compressed message. For a 2.7 MB export batch
that is most of otlpd's CPU in the gzip scenario. Here the exporter
compresses the message itself (zlib-ng at level 1 when installed, else stdlib
zlib at level 1; gzip container, ``grpc-encoding: gzip``) and frames it as a
gRPC message with the compressed flag set.

Measured on the benchmark machine (a 3.2 MB batch of bench/requests traces,
one process, client CPU per send, answered by a grpc.aio peer in another
process): grpcio gzip (level 6) 33 ms; this client 4.8 ms with zlib-ng level
1, 12 ms with stdlib zlib level 1 (compression alone: zlib-ng L1 3.6 ms, ratio
6.6; stdlib L1 11 ms, ratio 7.0; stdlib L6 26 ms, ratio 8.3). Compression
runs inline, not in ``asyncio.to_thread``: on one pinned core a thread
saves no CPU and adds a hand-off, and ~4 ms per batch is a short stall.

Uncompressed sends stay on grpcio (``compression: none``; ``deflate`` too,
which this client does not send): for the same batch grpcio costs 1.2 ms,
this client 7.2 ms (Python per 16 KB DATA frame), so h2 is used for gzip only.

What it does: one HTTP/2 connection per exporter (re-dialled after a failure),
optional TLS with ALPN ``h2``, concurrent calls multiplexed as streams (up to
the server's ``max_concurrent_streams``), connection and stream flow control,
the gRPC request headers (``grpc-timeout``, ``te: trailers``, user headers),
responses with their messages possibly compressed, trailers and trailers-only
responses, and a server that answers before it took the whole request (the
rest of the body is not sent; the stream is reset with NO_ERROR). A non-OK
``grpc-status`` is raised as :class:`CallError` (mapped to
otlpd's typed errors by the exporter, the same way as grpcio's errors);
RST_STREAM, GOAWAY and a lost connection are raised as
:class:`~otlpd.errors.RetryableError`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ssl
import urllib.parse
import zlib
from collections.abc import Sequence
from types import ModuleType
from typing import Any

import grpc
import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions

from otlpd.errors import RetryableError

_zlib: ModuleType
try:  # zlib-ng: the same format, ~3x faster at level 1 than stdlib zlib
    from zlib_ng import zlib_ng as _zlib
except ImportError:  # pragma: no cover - zlib-ng is a dependency; stdlib zlib is the fallback
    _zlib = zlib

LEVEL = 1
"""gzip level of the messages this client sends: fast, ratio ~6.6 vs ~8.3 at level 6 on OTLP traces."""

_CODES = {code.value[0]: code for code in grpc.StatusCode}
# gRPC's mapping of an HTTP status without a grpc-status (doc/http-grpc-status-mapping.md)
_HTTP_CODES = {
    400: grpc.StatusCode.INTERNAL,
    401: grpc.StatusCode.UNAUTHENTICATED,
    403: grpc.StatusCode.PERMISSION_DENIED,
    404: grpc.StatusCode.UNIMPLEMENTED,
    429: grpc.StatusCode.UNAVAILABLE,
    502: grpc.StatusCode.UNAVAILABLE,
    503: grpc.StatusCode.UNAVAILABLE,
    504: grpc.StatusCode.UNAVAILABLE,
}


class CallError(Exception):
    """A call that ended with a non-OK gRPC status."""

    def __init__(self, code: grpc.StatusCode, details: str, status_details: bytes | None = None) -> None:
        super().__init__(f"{code.name}: {details}")
        self.code = code
        self.details = details
        self.status_details = status_details


def compress(data: bytes) -> bytes:
    """``data`` as a gzip member at :data:`LEVEL`."""
    out: bytes = _zlib.compress(data, LEVEL, 31)
    return out


def frame(message: bytes, *, compressed: bool) -> bytes:
    """The 5-byte gRPC length prefix + ``message``."""
    return (b"\x01" if compressed else b"\x00") + len(message).to_bytes(4, "big") + message


def grpc_timeout(seconds: float) -> bytes:
    """A ``grpc-timeout`` value (at most 8 digits)."""
    ms = max(1, int(seconds * 1000))
    if ms < 100_000_000:
        return b"%dm" % ms
    return b"%dS" % min(int(seconds), 99_999_999)


class _Stream:
    __slots__ = ("data", "done", "headers", "too_big", "trailers")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.headers: list[tuple[bytes, bytes]] = []
        self.trailers: list[tuple[bytes, bytes]] = []
        self.data = bytearray()
        self.too_big = False
        self.done: asyncio.Future[None] = loop.create_future()


_CLOSED = h2.connection.ConnectionState.CLOSED
_I = h2.connection.ConnectionInputs
_STILL_RECEIVING = (
    _I.RECV_HEADERS,
    _I.RECV_DATA,
    _I.RECV_RST_STREAM,
    _I.RECV_WINDOW_UPDATE,
    _I.RECV_PING,
    _I.RECV_SETTINGS,
    _I.SEND_RST_STREAM,
    _I.SEND_WINDOW_UPDATE,
    _I.SEND_PING,
    _I.SEND_SETTINGS,
)


class _FinishAfterGoaway(h2.connection.H2ConnectionStateMachine):
    """Let the server finish the streams it accepted before its GOAWAY.

    After a GOAWAY a server still completes every stream up to its
    ``last_stream_id`` (RFC 9113, section 6.8): grpc-go and gRPC C-core do so on
    a graceful stop or at ``max_connection_age``. h2 moves the connection to
    CLOSED at once and treats those frames as protocol errors, which would fail
    calls the server accepted, and our retry would send their data twice. In
    CLOSED we keep receiving (and acknowledging) frames for open streams.
    """

    _transitions = {
        **h2.connection.H2ConnectionStateMachine._transitions,
        **{(_CLOSED, event): (None, _CLOSED) for event in _STILL_RECEIVING},
    }


class _Connection(asyncio.Protocol):
    """One HTTP/2 connection: the h2 state machine fed by an asyncio transport."""

    def __init__(self, max_recv: int) -> None:
        self.h2 = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding=None)
        )
        self.h2.state_machine = _FinishAfterGoaway()
        self.transport: asyncio.Transport | None = None
        self.streams: dict[int, _Stream] = {}
        self.usable = True  # False after GOAWAY or a failure: no new streams
        self.error = ""
        self._max_recv = max_recv
        self._waiters: list[asyncio.Future[None]] = []
        self._writable = True

    # --- asyncio.Protocol ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.h2.initiate_connection()
        self.flush()

    def data_received(self, data: bytes) -> None:
        try:
            events = self.h2.receive_data(data)
        except h2.exceptions.ProtocolError as exc:
            self.flush()
            self._fail(f"HTTP/2 protocol error from the server: {exc}")
            return
        for event in events:
            self._handle(event)
        self.flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(f"connection lost: {exc}" if exc else "connection closed by the server")

    def pause_writing(self) -> None:
        self._writable = False

    def resume_writing(self) -> None:
        self._writable = True
        self._wake()

    # --- events -------------------------------------------------------------------------------

    def _handle(self, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.DataReceived):
            if event.flow_controlled_length:
                self.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            stream = self.streams.get(event.stream_id)
            if stream is not None and not stream.too_big:
                stream.data += event.data
                if len(stream.data) > self._max_recv + 5:
                    stream.too_big = True
                    stream.data = bytearray()
                    self._reset(event.stream_id)
                    self._finish(stream)
        elif isinstance(event, h2.events.ResponseReceived):
            stream = self.streams.get(event.stream_id)
            if stream is not None:
                stream.headers = list(event.headers)
        elif isinstance(event, h2.events.TrailersReceived):
            stream = self.streams.get(event.stream_id)
            if stream is not None:
                stream.trailers = list(event.headers)
        elif isinstance(event, h2.events.StreamEnded):
            stream = self.streams.get(event.stream_id)
            if stream is not None:
                self._finish(stream)
        elif isinstance(event, h2.events.StreamReset):
            stream = self.streams.get(event.stream_id)
            if stream is not None and not stream.done.done():
                why = f"the server reset the stream ({event.error_code!s})"
                stream.done.set_exception(RetryableError(why))
            self._wake()
        elif isinstance(event, h2.events.ConnectionTerminated):
            self.usable = False
            last = event.last_stream_id if event.error_code == 0 and event.last_stream_id is not None else 0
            why = f"the server is going away (GOAWAY {event.error_code!s})"
            for stream_id, stream in self.streams.items():
                if stream_id > last and not stream.done.done():
                    stream.done.set_exception(RetryableError(why))
            self._wake()
        elif isinstance(event, h2.events.WindowUpdated | h2.events.RemoteSettingsChanged):
            self._wake()

    def _finish(self, stream: _Stream) -> None:
        if not stream.done.done():
            stream.done.set_result(None)
        self._wake()

    def _fail(self, why: str) -> None:
        self.usable = False
        self.error = self.error or why
        for stream in self.streams.values():
            if not stream.done.done():
                stream.done.set_exception(RetryableError(self.error))
        self._wake()
        if self.transport is not None:
            self.transport.close()

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def _changed(self) -> None:
        """Wait until a window, a setting, the transport's buffer or some stream changes."""
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        await waiter

    def flush(self) -> None:
        out = self.h2.data_to_send()
        if out and self.transport is not None and not self.transport.is_closing():
            self.transport.write(out)

    def _reset(self, stream_id: int, code: h2.errors.ErrorCodes = h2.errors.ErrorCodes.CANCEL) -> None:
        with contextlib.suppress(h2.exceptions.H2Error):  # already closed (reset, or ended both ways)
            self.h2.reset_stream(stream_id, code)

    def close(self) -> None:
        self.usable = False
        if self.transport is not None and not self.transport.is_closing():
            with contextlib.suppress(h2.exceptions.H2Error):
                self.h2.close_connection()
                self.flush()
            self.transport.close()

    # --- one call -----------------------------------------------------------------------------

    async def call(self, headers: Sequence[tuple[bytes, bytes]], body: bytes) -> _Stream:
        """Send one request on a new stream; the finished stream (headers, data, trailers)."""
        while self.usable and self.h2.open_outbound_streams >= self.h2.remote_settings.max_concurrent_streams:
            await self._changed()
        if not self.usable:
            raise RetryableError(self.error or "the connection is closing")
        loop = asyncio.get_running_loop()
        try:
            stream_id = self.h2.get_next_available_stream_id()
            self.h2.send_headers(stream_id, headers)
        except h2.exceptions.NoAvailableStreamIDError:
            self.usable = False
            raise RetryableError("no stream ids left on the connection") from None
        stream = _Stream(loop)
        self.streams[stream_id] = stream
        try:
            self.flush()
            await self._send_body(stream_id, stream, body)
            await stream.done
            return stream
        except asyncio.CancelledError:
            self._reset(stream_id)
            self.flush()
            raise
        except h2.exceptions.H2Error as exc:
            raise RetryableError(f"HTTP/2 error: {exc}") from None
        finally:
            del self.streams[stream_id]
            if not stream.done.done():
                stream.done.cancel()
            elif not stream.done.cancelled():
                stream.done.exception()  # retrieved: no "never retrieved" warning after a cancel
            if not self.usable and not self.streams and self.transport is not None:
                self.transport.close()

    async def _send_body(self, stream_id: int, stream: _Stream, body: bytes) -> None:
        view = memoryview(body)
        sent = 0
        while sent < len(view) and not stream.done.done():
            window = self.h2.local_flow_control_window(stream_id)
            if window <= 0 or not self._writable:
                await self._changed()  # woken by a window update, the buffer draining, or the answer
                continue
            end = min(len(view), sent + window)
            step = self.h2.max_outbound_frame_size
            while sent < end:
                n = min(step, end - sent)
                self.h2.send_data(stream_id, view[sent : sent + n])
                sent += n
            self.flush()
        if stream.done.done():
            self._abandon_body(stream_id, stream)
        else:
            self.h2.end_stream(stream_id)
            self.flush()

    def _abandon_body(self, stream_id: int, stream: _Stream) -> None:
        """The stream ended before we sent all of the request (or its END_STREAM): stop sending.

        A server may answer before it read the whole request (a size limit, an
        error found in the headers). Our half of the stream would otherwise stay
        open: the rest of the body would never be sent, yet the stream would keep
        one of the server's ``max_concurrent_streams`` slots for as long as the
        connection lives, and the server would wait for data that never comes.
        RFC 9113 section 8.1 and gRPC over HTTP/2: after a complete response the
        client resets with NO_ERROR (as grpc-go does); after a failure of ours,
        CANCEL. A stream the server reset is closed already, and nothing is sent.
        """
        answered = not stream.done.cancelled() and stream.done.exception() is None
        self._reset(stream_id, h2.errors.ErrorCodes.NO_ERROR if answered else h2.errors.ErrorCodes.CANCEL)
        self.flush()


class H2Channel:
    """gRPC unary calls to one ``host:port`` over one (re-dialled) HTTP/2 connection."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        ssl_context: ssl.SSLContext | None,
        server_hostname: str | None,
        authority: str,
        max_recv: int,
        wait_for_ready: bool,
        metadata: Sequence[tuple[str, str]],
        timeout: float | None,
    ) -> None:
        self._host, self._port = host, port
        self._ssl = ssl_context
        self._server_hostname = server_hostname
        self._max_recv = max_recv
        self._wait_for_ready = wait_for_ready
        self._conn: _Connection | None = None
        self._connecting: asyncio.Lock | None = None
        scheme = b"https" if ssl_context is not None else b"http"
        self._head = [(b":method", b"POST"), (b":scheme", scheme)]
        self._tail = [
            (b":authority", authority.encode()),
            (b"content-type", b"application/grpc"),
            (b"te", b"trailers"),
            (b"user-agent", b"otlpd-h2-grpc"),
            (b"grpc-encoding", b"gzip"),
            (b"grpc-accept-encoding", b"gzip"),
        ]
        if timeout:
            self._tail.append((b"grpc-timeout", grpc_timeout(timeout)))
        self._tail += [(k.lower().encode(), v.encode()) for k, v in metadata]

    async def _connection(self) -> _Connection:
        conn = self._conn
        if conn is not None and conn.usable:
            return conn
        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:
            conn = self._conn
            if conn is not None and conn.usable:
                return conn
            delay = 0.05
            while True:
                try:
                    self._conn = await self._dial()
                    return self._conn
                except (OSError, ssl.SSLError) as exc:
                    if not self._wait_for_ready:
                        raise RetryableError(f"cannot connect to {self._host}:{self._port}: {exc}") from None
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)

    async def _dial(self) -> _Connection:
        loop = asyncio.get_running_loop()
        kwargs: dict[str, Any] = {}
        if self._ssl is not None:
            kwargs = {"ssl": self._ssl, "server_hostname": self._server_hostname}
        _, conn = await loop.create_connection(
            lambda: _Connection(self._max_recv), self._host, self._port, **kwargs
        )
        if self._ssl is not None:
            assert conn.transport is not None
            proto = conn.transport.get_extra_info("ssl_object").selected_alpn_protocol()
            if proto not in (None, "h2"):
                conn.close()
                raise ssl.SSLError(f"the server chose ALPN {proto!r}, not h2")
        return conn

    async def unary(self, path: str, message: bytes) -> bytes:
        """Call ``path`` with ``message`` (already gzip-compressed); the response message."""
        conn = await self._connection()
        headers = [*self._head, (b":path", path.encode()), *self._tail]
        stream = await conn.call(headers, frame(message, compressed=True))
        return self._result(stream)

    def _result(self, stream: _Stream) -> bytes:
        headers = dict(stream.headers)
        trailers = dict(stream.trailers) if stream.trailers else headers  # trailers-only response
        raw_status = trailers.get(b"grpc-status")
        if raw_status is None:
            http = headers.get(b":status", b"")
            if http != b"200":
                status = int(http) if http.isdigit() else 0
                code = _HTTP_CODES.get(status, grpc.StatusCode.UNKNOWN)
                raise CallError(code, f"HTTP status {http.decode(errors='replace')} without grpc-status")
            raise CallError(grpc.StatusCode.UNKNOWN, "the response has no grpc-status")
        code = _CODES.get(int(raw_status) if raw_status.isdigit() else -1, grpc.StatusCode.UNKNOWN)
        if code is not grpc.StatusCode.OK:
            details = urllib.parse.unquote(trailers.get(b"grpc-message", b"").decode(errors="replace"))
            bin_ = trailers.get(b"grpc-status-details-bin")
            status_details = None
            if bin_:
                with contextlib.suppress(ValueError):
                    status_details = base64.b64decode(bin_ + b"=" * (-len(bin_) % 4))
            raise CallError(code, details, status_details)
        if stream.too_big:
            raise CallError(grpc.StatusCode.RESOURCE_EXHAUSTED, "response larger than max_recv_msg_size")
        return self._message(stream.data, headers.get(b"grpc-encoding", b"identity"))

    def _message(self, data: bytearray, encoding: bytes) -> bytes:
        if len(data) < 5:
            return b""
        length = int.from_bytes(data[1:5], "big")
        message = bytes(data[5 : 5 + length])
        if not data[0] & 1:
            return message
        if encoding == b"gzip":
            d = zlib.decompressobj(31)
        elif encoding == b"deflate":
            d = zlib.decompressobj()
        else:
            raise CallError(grpc.StatusCode.INTERNAL, f"unsupported response encoding {encoding!r}")
        try:
            out = d.decompress(message, self._max_recv + 1)
        except zlib.error as exc:
            raise CallError(grpc.StatusCode.INTERNAL, f"cannot decompress the response: {exc}") from None
        if len(out) > self._max_recv:
            raise CallError(grpc.StatusCode.RESOURCE_EXHAUSTED, "response larger than max_recv_msg_size")
        return out

    async def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
