"""OTLP/gRPC: the three Export methods, served over otlpd's own HTTP/2 connection.

gRPC over HTTP/2 (grpc/grpc ``PROTOCOL-HTTP2.md``) for unary calls: POST to
``/<service>/Export`` with ``content-type: application/grpc[+proto]``, one
length-prefixed message, optionally compressed (``grpc-encoding`` gzip,
deflate or zstd), an optional ``grpc-timeout``; the answer is HEADERS, one
message and trailers with ``grpc-status``, or a trailers-only error carrying
``grpc-message`` and ``grpc-status-details-bin`` (a google.rpc.Status, with
RetryInfo when the client should back off). The request reaches the core as
the bytes that were sent. Why our own HTTP/2 and not grpc.aio: see
``h2/connection.py``.

Limits as in the Collector: ``max_recv_msg_size_mib`` bounds the message as
sent and after decompression (RESOURCE_EXHAUSTED, answered as soon as the
body passes the limit, without reading the rest); ``max_concurrent_streams``
is advertised and enforced; keepalive server parameters (idle, age + grace,
ping time + timeout) and the enforcement policy (``min_time``,
``permit_without_stream``) behave as in gRPC.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import random
import re
import socket
import time
from typing import Any

import grpc

from otlpd.config.endpoint import split_endpoint
from otlpd.errors import InvalidDataError, TooLargeError
from otlpd.pdata import Signal
from otlpd.receivers.otlp.config import GrpcConfig
from otlpd.receivers.otlp.core import ReceiverCore, wire_error
from otlpd.receivers.otlp.decompress import decompress
from otlpd.receivers.otlp.h2 import frames
from otlpd.receivers.otlp.h2.connection import READ_SIZE, Connection, Limits, Stream
from otlpd.telemetry import logging as otlpd_logging

TRANSPORT = "grpc"
_ENCODINGS = frozenset({"gzip", "deflate", "zstd"})
_ACCEPT_ENCODING = "identity,deflate,gzip,zstd"
_OK_HEADERS = frames.hpack_literals(
    [(":status", "200"), ("content-type", "application/grpc"), ("grpc-accept-encoding", _ACCEPT_ENCODING)]
)
_OK_TRAILERS = frames.hpack_literals([("grpc-status", "0")])
_TIMEOUT = re.compile(r"([0-9]{1,8})([HMSmun])")
# what PROTOCOL-HTTP2.md allows for protobuf messages: "application/grpc" [+proto]
_CONTENT_TYPES = frozenset({"application/grpc", "application/grpc+proto"})
_TIMEOUT_UNIT = {"H": 3600.0, "M": 60.0, "S": 1.0, "m": 1e-3, "u": 1e-6, "n": 1e-9}
_TICK = 0.5  # how often keepalive deadlines are checked


class _Call:
    """What a stream carries between its headers and its message."""

    __slots__ = ("deadline", "encoding", "signal")

    def __init__(self, signal: Signal, encoding: str, deadline: float | None) -> None:
        self.signal = signal
        self.encoding = encoding
        self.deadline = deadline


class GrpcServer:
    def __init__(self, core: ReceiverCore, config: GrpcConfig, *, reuse_port: bool = False) -> None:
        self._core = core
        self._config = config
        self._reuse_port = reuse_port
        self._paths = {f"/{signal.grpc_service}/Export": signal for signal in core.consumers}
        self._max_message = config.max_recv_msg_size_mib * 1024 * 1024
        ka = config.keepalive
        self._limits = Limits(
            max_concurrent_streams=config.max_concurrent_streams,
            max_body=self._max_message + 5,
            ping_min_interval=ka.enforcement_policy.min_time
            if ka and ka.enforcement_policy.min_time
            else 300.0,
            ping_without_streams=bool(ka and ka.enforcement_policy.permit_without_stream),
        )
        self._servers: list[asyncio.Server] = []
        self._connections: set[Connection] = set()
        self._calls: set[asyncio.Task[None]] = set()
        self._ticker: asyncio.Task[None] | None = None
        self._age: dict[Connection, float] = {}
        self._read_buffer = memoryview(bytearray(READ_SIZE))  # shared: see Connection
        self._log = otlpd_logging.get("receiver.grpc")
        self.port = 0

    # lifecycle

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        ssl = None
        if self._config.tls is not None:
            ssl = self._config.tls.server_context()
            ssl.set_alpn_protocols(["h2"])
        for sock in _listen(self._config.endpoint, self._reuse_port):
            try:
                server = await loop.create_server(self._connection, sock=sock, ssl=ssl, backlog=1024)
            except BaseException:
                sock.close()
                await self.stop(0)
                raise
            self._servers.append(server)
            self.port = sock.getsockname()[1]
        sp = self._config.keepalive.server_parameters if self._config.keepalive else None
        if sp and (sp.max_connection_idle or sp.max_connection_age or sp.time):
            self._ticker = asyncio.create_task(self._keepalive())

    async def stop(self, grace: float) -> None:
        """Stop accepting; GOAWAY every connection; give in-flight calls ``grace`` seconds."""
        for server in self._servers:
            server.close()
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        for conn in list(self._connections):
            conn.goaway()
        # Streams the GOAWAY still covers may be mid-upload: they are served too, until the grace ends.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        while self._calls or any(conn.streams for conn in self._connections):
            left = deadline - loop.time()
            if left <= 0:
                break
            if self._calls:
                await asyncio.wait(set(self._calls), timeout=min(left, 0.05))
            else:
                await asyncio.sleep(min(left, 0.05))
        for call in list(self._calls):
            call.cancel()
        for conn in list(self._connections):
            conn.close()
        await asyncio.sleep(0)  # let the transports close
        for conn in list(self._connections):
            conn.abort()
        for server in self._servers:
            await server.wait_closed()
        self._servers.clear()

    def open_connections(self) -> int:
        return len(self._connections)

    def _connection(self) -> Connection:
        return Connection(self, self._limits, self._read_buffer)

    # Application (called by Connection)

    def connection_opened(self, conn: Connection) -> None:
        self._connections.add(conn)
        sp = self._config.keepalive.server_parameters if self._config.keepalive else None
        if sp and sp.max_connection_age:
            # gRPC's ±10 % jitter, so connections made together do not all end together
            self._age[conn] = time.monotonic() + sp.max_connection_age * random.uniform(0.9, 1.1)

    def connection_closed(self, conn: Connection) -> None:
        self._connections.discard(conn)
        self._age.pop(conn, None)

    def headers_received(self, conn: Connection, stream: Stream) -> None:
        method = path = content_type = encoding = timeout = ""
        for name, value in stream.headers:
            if name == ":path":
                path = value
            elif name == ":method":
                method = value
            elif name == "content-type":
                content_type = value
            elif name == "grpc-encoding":
                encoding = value
            elif name == "grpc-timeout":
                timeout = value
        if method != "POST":
            conn.respond(stream, frames.hpack_literals([(":status", "405"), ("allow", "POST")]))
            return
        if content_type.split(";", 1)[0].strip().lower() not in _CONTENT_TYPES:
            # PROTOCOL-HTTP2.md: 415, so that no HTTP client reads a gRPC error as success.
            # gRPC-Web (application/grpc-web...) frames trailers in the body: not served here.
            conn.respond(stream, frames.hpack_literals([(":status", "415")]))
            return
        signal = self._paths.get(path)
        if signal is None:
            self._fail(conn, stream, grpc.StatusCode.UNIMPLEMENTED, f"unknown method {path}")
            return
        deadline = None
        if timeout:
            match = _TIMEOUT.fullmatch(timeout)
            if match is None:  # as gRPC's own servers answer it
                self._fail(conn, stream, grpc.StatusCode.INTERNAL, f"malformed grpc-timeout: {timeout!r}")
                return
            deadline = time.monotonic() + int(match[1]) * _TIMEOUT_UNIT[match[2]]
        stream.context = _Call(signal, encoding.strip().lower(), deadline)

    def body_too_large(self, conn: Connection, stream: Stream) -> None:
        call: _Call = stream.context
        error = TooLargeError(f"grpc: received message larger than max ({self._max_message} bytes)")
        self._refuse(conn, stream, call.signal, error, time.perf_counter())

    def request_received(self, conn: Connection, stream: Stream) -> None:
        started = time.perf_counter()
        call: _Call = stream.context
        prefix = stream.prefix
        if len(prefix) < 5:
            message = "missing request message" if not prefix else "truncated gRPC message prefix"
            self._fail(conn, stream, grpc.StatusCode.INTERNAL, message)
            return
        length = int.from_bytes(prefix[1:5], "big")
        body = stream.body()
        stream.chunks = []
        if len(body) != length:
            what = "truncated" if len(body) < length else "followed by more data (a unary call takes one)"
            self._fail(conn, stream, grpc.StatusCode.INTERNAL, f"request message is {what}")
            return
        if prefix[0] & 1:
            if call.encoding not in _ENCODINGS:
                if call.encoding in ("", "identity"):
                    why = "compressed message without grpc-encoding"
                    self._fail(conn, stream, grpc.StatusCode.INTERNAL, why)
                else:
                    why = f"grpc-encoding {call.encoding!r} is not supported ({_ACCEPT_ENCODING})"
                    self._fail(conn, stream, grpc.StatusCode.UNIMPLEMENTED, why)
                return
            try:
                body = decompress(call.encoding, body, self._max_message)
            except TooLargeError:
                why = (
                    f"grpc: received message after decompression larger than max ({self._max_message} bytes)"
                )
                self._refuse(conn, stream, call.signal, TooLargeError(why), started)
                return
            except InvalidDataError as exc:
                self._fail(conn, stream, grpc.StatusCode.INTERNAL, exc.message)
                return
        task = asyncio.get_running_loop().create_task(self._export(conn, stream, call, body, started))
        conn.call_started(stream)
        self._calls.add(task)
        task.add_done_callback(self._calls.discard)
        task.add_done_callback(lambda _: conn.call_done(stream))

    # the call

    async def _export(
        self, conn: Connection, stream: Stream, call: _Call, body: bytes, started: float
    ) -> None:
        core = self._core
        signal = call.signal
        try:
            if call.deadline is None:
                response = await core.export(signal, body, json=False, transport=TRANSPORT)
            else:
                async with asyncio.timeout(call.deadline - time.monotonic()):
                    response = await core.export(signal, body, json=False, transport=TRANSPORT)
        except TimeoutError:
            core.record(
                signal, TRANSPORT, grpc.StatusCode.DEADLINE_EXCEEDED.name, time.perf_counter() - started
            )
            self._fail(conn, stream, grpc.StatusCode.DEADLINE_EXCEEDED, "deadline exceeded")
            return
        except Exception as exc:
            self._refuse(conn, stream, signal, exc, started)
            return
        core.record(signal, TRANSPORT, "OK", time.perf_counter() - started)
        data = response.SerializeToString()
        conn.respond(stream, _OK_HEADERS, len(data).to_bytes(5, "big") + data, _OK_TRAILERS)

    def _refuse(
        self, conn: Connection, stream: Stream, signal: Signal, exc: BaseException, started: float
    ) -> None:
        wire = wire_error(exc)
        self._core.record(signal, TRANSPORT, wire.grpc_code.name, time.perf_counter() - started)
        self._fail(conn, stream, wire.grpc_code, wire.message, wire.status().SerializeToString())

    @staticmethod
    def _fail(
        conn: Connection, stream: Stream, code: grpc.StatusCode, message: str, details: bytes = b""
    ) -> None:
        fields: list[tuple[str, str | bytes]] = [
            (":status", "200"),
            ("content-type", "application/grpc"),
            ("grpc-status", str(code.value[0])),
            ("grpc-message", _percent_encode(message)),
        ]
        if code is grpc.StatusCode.UNIMPLEMENTED:
            fields.append(("grpc-accept-encoding", _ACCEPT_ENCODING))
        if details:
            fields.append(("grpc-status-details-bin", base64.b64encode(details).rstrip(b"=")))
        conn.respond(stream, frames.hpack_literals(fields))

    # keepalive

    async def _keepalive(self) -> None:
        assert self._config.keepalive is not None
        sp = self._config.keepalive.server_parameters
        while True:
            await asyncio.sleep(_TICK)
            try:
                self._keepalive_tick(sp)
            except Exception:  # one bad connection must not end keepalive for all
                self._log.exception("keepalive check failed")

    def _keepalive_tick(self, sp: Any) -> None:
        now = time.monotonic()
        for conn in list(self._connections):
            if conn.closed:
                continue
            age_limit = self._age.get(conn)
            if age_limit is not None and now >= age_limit and not conn.goaway_sent:
                conn.goaway(debug="max_age")
                grace = sp.max_connection_age_grace
                if grace:  # abort: a peer that stops reading cannot hold a graceful close open
                    asyncio.get_running_loop().call_later(grace, conn.abort)
            elif (
                sp.max_connection_idle
                and not conn.streams
                and now - conn.last_activity >= sp.max_connection_idle
            ):
                conn.goaway(debug="max_idle")
            if sp.time:
                if conn.ping_sent_at is not None:
                    if now - conn.ping_sent_at >= (sp.timeout or 20.0):
                        conn.abort()  # the peer did not answer our keepalive ping
                elif now - max(conn.last_activity, conn.last_read) >= sp.time:
                    conn.ping()


def _percent_encode(message: str) -> bytes:
    """grpc-message: UTF-8, with bytes outside printable ASCII and '%' as %XX."""
    out = bytearray()
    for byte in message[:1024].encode("utf-8"):
        if 0x20 <= byte <= 0x7E and byte != 0x25:
            out.append(byte)
        else:
            out += b"%%%02X" % byte
    return bytes(out)


def _listen(endpoint: str, reuse_port: bool) -> list[socket.socket]:
    """Bound sockets for ``host:port``; ``localhost`` is every loopback address, on one port."""
    host, port = split_endpoint(endpoint)
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    seen: set[Any] = set()
    socks: list[socket.socket] = []
    try:
        for family, type_, proto, _, address in infos:
            if (family, address[0]) in seen:
                continue
            seen.add((family, address[0]))
            sock = socket.socket(family, type_, proto)
            socks.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if reuse_port:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            if port == 0 and len(socks) > 1:
                address = (address[0], socks[0].getsockname()[1], *address[2:])
            try:
                sock.bind(address)
            except OSError as exc:
                if len(socks) > 1 and family == socket.AF_INET6:
                    socks.pop().close()  # no IPv6 on this host: IPv4 is enough
                    continue
                raise OSError(exc.errno, f"cannot listen on {endpoint}: {exc.strerror}") from None
            sock.setblocking(False)
    except BaseException:
        for sock in socks:
            sock.close()
        raise
    return socks
