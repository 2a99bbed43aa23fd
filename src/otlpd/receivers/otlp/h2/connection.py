"""One HTTP/2 server connection (RFC 9113), shaped for gRPC unary calls.

Why not grpc.aio: on one core its per-call cost (~400 µs for a 166 KB
request, about 0.8 µs per span) was the largest piece of the OTLP/gRPC hot
path, most of it hand-offs between the event loop, gRPC core's poller and its
event-engine threads. Here the event loop reads the socket itself, into one
buffer shared by all connections: with the large frames we advertise, a
request costs a few frame headers to parse and one copy of its bytes out of
that buffer (see ``docs/performance.md``).

What it does: the connection preface and SETTINGS exchange (both ways,
validated), HPACK header blocks (with CONTINUATION and padding), stream
state and the client's stream-id rules, flow control both ways (windows
are credited as data arrives; the bound on memory is the body limit times
``max_concurrent_streams``, which a call keeps counting against until it
ends, even if the client resets its stream), PING, RST_STREAM, GOAWAY in both
directions, PRIORITY ignored, unknown frame types ignored. Requests are
gathered per stream (the gRPC 5-byte message prefix apart from the message
bytes) and handed to the application when the client ends the stream; a
body over the limit is handed over at once so it can be refused without
reading it all. Responses are queued per stream while the peer's window is
closed. Malformed input is a stream error (RST_STREAM) or a connection error
(GOAWAY, then close) as the RFC says; it never raises into the event loop.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Protocol, cast

import hpack
import hpack.exceptions

from otlpd.receivers.otlp.h2 import frames as f

_unpack_header = f.HEADER.unpack_from
_CONNECTION_HEADERS = frozenset(
    {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"}
)
_REQUEST_PSEUDO = frozenset({":method", ":scheme", ":path", ":authority"})
_RECENTLY_RESET = 256  # streams we reset whose late frames are ignored
READ_SIZE = 256 * 1024  # as asyncio's own reads
_SMALL_PIECE = 4096
_MAX_PING_STRIKES = 2  # as gRPC: the third early ping ends the connection
_PREFACE_TIMEOUT = 20.0  # a connection that never speaks HTTP/2 is closed
_KNOWN_CONTROL = frozenset(
    {
        f.HEADERS,
        f.PRIORITY,
        f.RST_STREAM,
        f.SETTINGS,
        f.PUSH_PROMISE,
        f.PING,
        f.GOAWAY,
        f.WINDOW_UPDATE,
        f.CONTINUATION,
    }
)


@dataclass(frozen=True)
class Limits:
    """What this side advertises and enforces."""

    max_concurrent_streams: int = 0  # 0: no limit advertised
    stream_window: int = 1 << 20
    connection_window: int = 8 << 20
    max_frame_size: int = 1 << 20
    max_header_list_size: int = 64 << 10
    max_body: int = 4 << 20  # gRPC prefix + message, as sent
    ping_min_interval: float = 300.0  # gRPC's default: a client pings at most every 5 min without data
    ping_without_streams: bool = False


class Application(Protocol):
    def connection_opened(self, conn: Connection) -> None: ...
    def headers_received(self, conn: Connection, stream: Stream) -> None: ...
    def request_received(self, conn: Connection, stream: Stream) -> None: ...
    def body_too_large(self, conn: Connection, stream: Stream) -> None: ...
    def connection_closed(self, conn: Connection) -> None: ...


class Stream:
    __slots__ = (
        "answered",
        "chunks",
        "closed",
        "context",
        "ended",
        "headers",
        "id",
        "orphaned",
        "pending",
        "prefix",
        "recv_avail",
        "recv_unacked",
        "running",
        "send_avail",
        "size",
    )

    def __init__(self, stream_id: int, headers: list[tuple[str, str]], recv: int, send: int) -> None:
        self.id = stream_id
        self.headers = headers
        self.prefix = b""  # the gRPC message prefix (flag + length)
        self.chunks: list[bytes | bytearray] = []  # the message bytes after the prefix
        self.size = 0  # body bytes received, prefix included
        self.recv_avail = recv
        self.recv_unacked = 0
        self.send_avail = send
        self.ended = False  # the client sent END_STREAM
        self.answered = False  # our END_STREAM is queued
        self.pending: list[bytes | tuple[bytes]] = []  # DATA payloads, then a (trailer block,)
        self.closed = False  # reset or fully answered: nothing more goes out
        self.context: Any = None  # the application's
        self.running = False  # the application's call for it is in progress
        self.orphaned = False  # reset by the client while its call runs

    def body(self) -> bytes:
        chunks = self.chunks
        if len(chunks) == 1 and type(chunks[0]) is bytes:
            return chunks[0]
        return b"".join(chunks)


class ConnectionError_(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


class Connection(asyncio.BufferedProtocol):
    def __init__(self, app: Application, limits: Limits, read_buffer: memoryview) -> None:
        self._app = app
        self._limits = limits
        self._transport: asyncio.Transport | None = None
        # Socket reads land in one buffer shared by every connection of the server (the
        # loop runs one read and its parsing at a time). Only the bytes of a frame that
        # is not whole yet are kept per connection, in ``_partial``, which the next reads
        # fill directly until it is complete. Reading a long DATA frame's rest straight
        # into a chunk of its own saved a copy but cost more socket reads: slower (bench.ab).
        self._shared = read_buffer
        self._partial: bytearray | None = None
        self._partial_fill = 0
        self._preface_timer: asyncio.TimerHandle | None = None
        self.orphans = 0  # calls still running whose stream the client reset
        self._preface_left = len(f.PREFACE)
        self._settings_seen = False
        self._decoder = hpack.Decoder(max_header_list_size=limits.max_header_list_size)
        self._block: bytearray | None = None  # a header block awaiting CONTINUATION
        self._block_stream = 0
        self._block_end_stream = False
        self.streams: dict[int, Stream] = {}
        self._last_stream_id = 0
        self._recent_resets: OrderedDict[int, None] = OrderedDict()
        # DATA payload being read across socket reads
        self._data_left = 0
        self._pad_left = 0
        self._data_stream: Stream | None = None
        self._data_end = False
        # flow control
        self._recv_conn_avail = limits.connection_window
        self._recv_conn_unacked = 0
        self._send_conn_avail = f.DEFAULT_WINDOW
        self._peer_window = f.DEFAULT_WINDOW
        self._peer_max_frame = f.DEFAULT_MAX_FRAME
        self._blocked: dict[int, Stream] = {}  # streams with output waiting for window
        self._table_update = b""  # an HPACK dynamic table size update owed to the peer
        # output
        self._out: list[bytes] = []
        self._receiving = False
        # lifecycle
        self.goaway_sent = False
        self._goaway_received = False
        self.closed = False
        now = time.monotonic()
        self.last_activity = now  # a stream opened or closed
        self.last_read = now
        self.ping_sent_at: float | None = None
        self._last_ping_at = -1e18
        self._ping_strikes = 0

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        lim = self._limits
        values = {
            f.ENABLE_PUSH: 0,
            f.INITIAL_WINDOW_SIZE: lim.stream_window,
            f.MAX_FRAME_SIZE: lim.max_frame_size,
            f.MAX_HEADER_LIST_SIZE: lim.max_header_list_size,
        }
        if lim.max_concurrent_streams:
            values[f.MAX_CONCURRENT_STREAMS] = lim.max_concurrent_streams
        out = f.settings(values)
        if lim.connection_window > f.DEFAULT_WINDOW:
            out += f.window_update(0, lim.connection_window - f.DEFAULT_WINDOW)
        transport.write(out)
        self._preface_timer = asyncio.get_running_loop().call_later(_PREFACE_TIMEOUT, self._check_preface)
        # Registered only now: with TLS this runs after the handshake, and a connection
        # whose handshake fails never gets here, nor to connection_lost.
        self._app.connection_opened(self)

    def _check_preface(self) -> None:
        if not self._settings_seen and not self.closed:
            self.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._partial = None
        if self._preface_timer is not None:
            self._preface_timer.cancel()
        for stream in self.streams.values():
            stream.closed = True
        self.streams.clear()
        self._blocked.clear()
        self._app.connection_closed(self)

    def pause_writing(self) -> None:
        # The client does not read its responses: stop reading its requests.
        if self._transport is not None:
            self._transport.pause_reading()

    def resume_writing(self) -> None:
        if self._transport is not None and not self.closed:
            self._transport.resume_reading()

    def get_buffer(self, sizehint: int) -> memoryview:
        if self._partial is not None:
            return memoryview(self._partial)[self._partial_fill :]
        return self._shared

    def buffer_updated(self, nbytes: int) -> None:
        if self.closed:
            return
        self.last_read = time.monotonic()
        self._receiving = True
        try:
            partial = self._partial
            if partial is None:
                self._receive(self._shared, nbytes)
            else:
                self._partial_fill += nbytes
                if self._partial_fill == len(partial):  # the frame waited for is whole
                    self._partial = None
                    self._receive(memoryview(partial), len(partial))
        except ConnectionError_ as exc:
            self._fail(exc.code, str(exc))
        finally:
            self._receiving = False
            self._flush()

    def eof_received(self) -> bool | None:
        return False  # close; in-flight calls have nobody to answer to

    # reading

    def _receive(self, data: memoryview, end: int) -> None:
        pos = 0
        if self._preface_left:
            take = min(self._preface_left, end)
            start = len(f.PREFACE) - self._preface_left
            if data[:take] != f.PREFACE[start : start + take]:
                raise ConnectionError_(f.PROTOCOL_ERROR, "not an HTTP/2 connection preface")
            self._preface_left -= take
            pos = take
        max_frame = self._limits.max_frame_size
        max_control = self._limits.max_header_list_size
        need = 0
        while pos < end:
            if self._data_left or self._pad_left:
                pos = self._data_payload(data, pos, end)
                continue
            if end - pos < 9:
                need = 9
                break
            hi, lo, type_, flags, sid = _unpack_header(data, pos)
            length = (hi << 16) | lo
            sid &= 0x7FFFFFFF
            if length > max_frame:
                raise ConnectionError_(
                    f.FRAME_SIZE_ERROR, f"frame of {length} bytes over the {max_frame} advertised"
                )
            if not self._settings_seen and type_ != f.SETTINGS:
                raise ConnectionError_(f.PROTOCOL_ERROR, "the first frame must be SETTINGS")
            if type_ == f.DATA and self._block is None:
                if flags & f.PADDED:
                    if length == 0:
                        raise ConnectionError_(f.FRAME_SIZE_ERROR, "padded DATA frame without a pad length")
                    if end - pos < 10:
                        need = 10
                        break
                    pad = data[pos + 9]
                    if pad >= length:
                        raise ConnectionError_(f.PROTOCOL_ERROR, "DATA padding exceeds the frame")
                    self._start_data(sid, flags, length, length - 1 - pad, pad)
                    pos += 10
                else:
                    self._start_data(sid, flags, length, length, 0)
                    pos += 9
                if not (self._data_left or self._pad_left):
                    self._end_data()
                continue
            if length > max_control:
                if type_ in _KNOWN_CONTROL or self._block is not None:
                    raise ConnectionError_(f.ENHANCE_YOUR_CALM, f"a {length}-byte control frame")
                self._data_stream, self._data_end, self._data_left = None, False, length  # skipped unread
                pos += 9
                continue
            if end - pos - 9 < length:
                need = 9 + length
                break
            payload = bytes(data[pos + 9 : pos + 9 + length])
            pos += 9 + length
            self._frame(type_, flags, sid, payload)
            if self.closed:
                return
        rest = end - pos
        if rest:
            self._partial = bytearray(need)
            self._partial[:rest] = data[pos:end]
            self._partial_fill = rest

    def _data_payload(self, data: memoryview, pos: int, end: int) -> int:
        take = min(self._data_left, end - pos)
        stream = self._data_stream
        if take:
            if stream is not None:
                self._body(stream, data, pos, pos + take)
            self._data_left -= take
            pos += take
        if not self._data_left:
            skip = min(self._pad_left, end - pos)
            self._pad_left -= skip
            pos += skip
            if not self._pad_left:
                self._end_data()
        return pos

    @staticmethod
    def _body(stream: Stream, data: memoryview, start: int, stop: int) -> None:
        if stream.answered:
            return  # refused early: the rest is read and dropped
        need = 5 - len(stream.prefix)
        if need > 0:
            cut = min(start + need, stop)
            stream.prefix += bytes(data[start:cut])
            start = cut
            if start == stop:
                return
        if stop - start >= _SMALL_PIECE:
            stream.chunks.append(bytes(data[start:stop]))
            return
        # Tiny DATA frames would cost an object each (~28x their size): gather them in one tail.
        chunks = stream.chunks
        if not chunks or type(chunks[-1]) is not bytearray:
            chunks.append(bytearray())
        chunks[-1] += data[start:stop]

    def _start_data(self, sid: int, flags: int, length: int, body: int, pad: int) -> None:
        if sid == 0:
            raise ConnectionError_(f.PROTOCOL_ERROR, "DATA on stream 0")
        self._recv_conn_avail -= length
        if self._recv_conn_avail < 0:
            raise ConnectionError_(f.FLOW_CONTROL_ERROR, "DATA beyond the connection window")
        self._recv_conn_unacked += length
        if self._recv_conn_unacked >= self._limits.connection_window >> 1:
            self._write(f.window_update(0, self._recv_conn_unacked))
            self._recv_conn_avail += self._recv_conn_unacked
            self._recv_conn_unacked = 0
        self._data_left, self._pad_left = body, pad
        self._data_end = bool(flags & f.END_STREAM)
        stream = self.streams.get(sid)
        self._data_stream = None
        if stream is None:
            if sid > self._last_stream_id:
                raise ConnectionError_(f.PROTOCOL_ERROR, f"DATA on idle stream {sid}")
            # Closed: counted against the window above and dropped. Often it is a stream we
            # reset or answered early, whose rest was in flight (RFC 9113 §5.1).
            return
        if stream.ended:
            self._reset(stream, f.STREAM_CLOSED)
            return
        stream.recv_avail -= length
        if stream.recv_avail < 0:
            self._reset(stream, f.FLOW_CONTROL_ERROR)
            return
        if not self._data_end:
            stream.recv_unacked += length
            if stream.recv_unacked >= self._limits.stream_window >> 1:
                self._write(f.window_update(sid, stream.recv_unacked))
                stream.recv_avail += stream.recv_unacked
                stream.recv_unacked = 0
        self._data_stream = stream
        stream.size += body
        if stream.size > self._limits.max_body and not stream.answered:
            stream.chunks = []
            self._app.body_too_large(self, stream)

    def _end_data(self) -> None:
        stream = self._data_stream
        self._data_stream = None
        if stream is not None and self._data_end and not stream.closed:
            self._request_ended(stream)

    def _request_ended(self, stream: Stream) -> None:
        stream.ended = True
        if stream.answered:
            if not stream.pending:
                self._forget(stream)
            return
        if _content_length(stream.headers) not in (None, stream.size):
            self._reset(stream, f.PROTOCOL_ERROR)  # RFC 9113 §8.1.1: malformed, a stream error
            return
        self._app.request_received(self, stream)

    def _frame(self, type_: int, flags: int, sid: int, payload: bytes) -> None:
        if self._block is not None and type_ != f.CONTINUATION:
            raise ConnectionError_(f.PROTOCOL_ERROR, "a header block was not continued")
        if type_ == f.HEADERS:
            self._headers_frame(flags, sid, payload)
        elif type_ == f.CONTINUATION:
            if self._block is None or sid != self._block_stream:
                raise ConnectionError_(f.PROTOCOL_ERROR, "CONTINUATION without a header block")
            self._block += payload
            if len(self._block) > self._limits.max_header_list_size:
                raise ConnectionError_(f.ENHANCE_YOUR_CALM, "header block too large")
            if flags & f.END_HEADERS:
                self._header_block_done()
        elif type_ == f.SETTINGS:
            self._settings_frame(flags, sid, payload)
        elif type_ == f.WINDOW_UPDATE:
            self._window_update(sid, payload)
        elif type_ == f.PING:
            self._ping(flags, sid, payload)
        elif type_ == f.RST_STREAM:
            self._rst_stream(sid, payload)
        elif type_ == f.GOAWAY:
            if sid != 0:
                raise ConnectionError_(f.PROTOCOL_ERROR, "GOAWAY on a stream")
            if len(payload) < 8:
                raise ConnectionError_(f.FRAME_SIZE_ERROR, "GOAWAY shorter than 8 bytes")
            self._goaway_received = True
            self._close_if_done()
        elif type_ == f.PRIORITY:
            if sid == 0:
                raise ConnectionError_(f.PROTOCOL_ERROR, "PRIORITY on stream 0")
            if len(payload) != 5:
                stream = self.streams.get(sid)
                if stream is not None:
                    self._reset(stream, f.FRAME_SIZE_ERROR)
                else:
                    self._write(f.rst_stream(sid, f.FRAME_SIZE_ERROR))
        elif type_ == f.PUSH_PROMISE:
            raise ConnectionError_(f.PROTOCOL_ERROR, "a client cannot push")
        # other types are extensions: ignored (RFC 9113 §5.5)

    def _headers_frame(self, flags: int, sid: int, payload: bytes) -> None:
        if sid == 0:
            raise ConnectionError_(f.PROTOCOL_ERROR, "HEADERS on stream 0")
        start, stop = 0, len(payload)
        if flags & f.PADDED:
            if stop < 1 or payload[0] >= stop:
                raise ConnectionError_(f.PROTOCOL_ERROR, "HEADERS padding exceeds the frame")
            stop -= payload[0]
            start = 1
        if flags & f.PRIORITY_FLAG:
            if stop - start < 5:
                raise ConnectionError_(f.FRAME_SIZE_ERROR, "HEADERS too short for its priority")
            if int.from_bytes(payload[start : start + 4], "big") & 0x7FFFFFFF == sid:
                raise ConnectionError_(f.PROTOCOL_ERROR, "a stream cannot depend on itself")
            start += 5
        self._block = bytearray(payload[start:stop])
        self._block_stream = sid
        self._block_end_stream = bool(flags & f.END_STREAM)
        if flags & f.END_HEADERS:
            self._header_block_done()

    def _header_block_done(self) -> None:
        assert self._block is not None
        block, sid, end_stream = bytes(self._block), self._block_stream, self._block_end_stream
        self._block = None
        try:
            # Every block is decoded, even for a stream about to be refused: HPACK state is shared.
            headers = cast(list[tuple[str, str]], self._decoder.decode(block))
        except hpack.exceptions.OversizedHeaderListError:
            raise ConnectionError_(f.ENHANCE_YOUR_CALM, "header list over the advertised size") from None
        except hpack.exceptions.HPACKError as exc:
            raise ConnectionError_(f.COMPRESSION_ERROR, f"bad header block: {exc}") from None
        stream = self.streams.get(sid)
        if stream is not None:  # trailers from the client
            if stream.ended:
                self._reset(stream, f.STREAM_CLOSED)
            elif not end_stream or any(name.startswith(":") for name, _ in headers):
                self._reset(stream, f.PROTOCOL_ERROR)
            else:
                self._request_ended(stream)
            return
        if sid <= self._last_stream_id:
            if sid in self._recent_resets:
                return
            raise ConnectionError_(
                f.STREAM_CLOSED if sid % 2 else f.PROTOCOL_ERROR, f"HEADERS on stream {sid}"
            )
        if sid % 2 == 0:
            raise ConnectionError_(f.PROTOCOL_ERROR, f"client stream ids are odd, got {sid}")
        self._last_stream_id = sid
        if self.goaway_sent or self._goaway_received:
            self._refuse(sid, f.REFUSED_STREAM)
            return
        limit = self._limits.max_concurrent_streams
        if limit and len(self.streams) + self.orphans >= limit:
            self._refuse(sid, f.REFUSED_STREAM)
            return
        problem = _malformed(headers)
        if problem:
            self._refuse(sid, f.PROTOCOL_ERROR)
            return
        stream = Stream(sid, headers, self._limits.stream_window, self._peer_window)
        stream.ended = end_stream
        self.streams[sid] = stream
        self.last_activity = time.monotonic()
        self._app.headers_received(self, stream)
        if end_stream and not (stream.closed or stream.answered):
            self._request_ended(stream)

    def _settings_frame(self, flags: int, sid: int, payload: bytes) -> None:
        if sid != 0:
            raise ConnectionError_(f.PROTOCOL_ERROR, "SETTINGS on a stream")
        if flags & f.ACK:
            if payload:
                raise ConnectionError_(f.FRAME_SIZE_ERROR, "SETTINGS ACK with a payload")
            return
        if len(payload) % 6:
            raise ConnectionError_(f.FRAME_SIZE_ERROR, "SETTINGS length is not a multiple of 6")
        self._settings_seen = True
        for key, value in f.parse_settings(payload):
            if key == f.ENABLE_PUSH and value > 1:
                raise ConnectionError_(f.PROTOCOL_ERROR, "SETTINGS_ENABLE_PUSH must be 0 or 1")
            if key == f.INITIAL_WINDOW_SIZE:
                if value > f.MAX_WINDOW:
                    raise ConnectionError_(f.FLOW_CONTROL_ERROR, "SETTINGS_INITIAL_WINDOW_SIZE over 2^31-1")
                delta = value - self._peer_window
                self._peer_window = value
                for stream in self.streams.values():
                    stream.send_avail += delta
                    if stream.send_avail > f.MAX_WINDOW:
                        raise ConnectionError_(f.FLOW_CONTROL_ERROR, "a stream window over 2^31-1")
            elif key == f.HEADER_TABLE_SIZE:
                # RFC 7541 §4.2: the next block starts with a table size update. Ours is 0:
                # responses never index, and 0 is within any size the peer allows.
                self._table_update = b"\x20"
            elif key == f.MAX_FRAME_SIZE:
                if not f.DEFAULT_MAX_FRAME <= value <= f.MAX_FRAME_LIMIT:
                    raise ConnectionError_(f.PROTOCOL_ERROR, "SETTINGS_MAX_FRAME_SIZE out of range")
                self._peer_max_frame = value
        self._write(f.frame(f.SETTINGS, f.ACK, 0))
        self._unblock()

    def _window_update(self, sid: int, payload: bytes) -> None:
        if len(payload) != 4:
            raise ConnectionError_(f.FRAME_SIZE_ERROR, "WINDOW_UPDATE is 4 bytes")
        increment = f.u32(payload) & 0x7FFFFFFF
        if sid == 0:
            if increment == 0:
                raise ConnectionError_(f.PROTOCOL_ERROR, "WINDOW_UPDATE of 0")
            self._send_conn_avail += increment
            if self._send_conn_avail > f.MAX_WINDOW:
                raise ConnectionError_(f.FLOW_CONTROL_ERROR, "connection window over 2^31-1")
            self._unblock()
            return
        stream = self.streams.get(sid)
        if stream is None:
            if sid > self._last_stream_id:
                raise ConnectionError_(f.PROTOCOL_ERROR, f"WINDOW_UPDATE on idle stream {sid}")
            return
        if increment == 0:
            self._reset(stream, f.PROTOCOL_ERROR)
            return
        stream.send_avail += increment
        if stream.send_avail > f.MAX_WINDOW:
            self._reset(stream, f.FLOW_CONTROL_ERROR)
            return
        if stream.pending:
            self._send_pending(stream)

    def _ping(self, flags: int, sid: int, payload: bytes) -> None:
        if sid != 0:
            raise ConnectionError_(f.PROTOCOL_ERROR, "PING on a stream")
        if len(payload) != 8:
            raise ConnectionError_(f.FRAME_SIZE_ERROR, "PING is 8 bytes")
        if flags & f.ACK:
            self.ping_sent_at = None
            return
        now = time.monotonic()
        lim = self._limits
        if (
            not self.streams and not lim.ping_without_streams
        ) or now - self._last_ping_at < lim.ping_min_interval:
            self._ping_strikes += 1
            if self._ping_strikes > _MAX_PING_STRIKES:
                raise ConnectionError_(f.ENHANCE_YOUR_CALM, "too_many_pings")
        self._last_ping_at = now
        self._write(f.frame(f.PING, f.ACK, 0, payload))

    def _rst_stream(self, sid: int, payload: bytes) -> None:
        if sid == 0:
            raise ConnectionError_(f.PROTOCOL_ERROR, "RST_STREAM on stream 0")
        if len(payload) != 4:
            raise ConnectionError_(f.FRAME_SIZE_ERROR, "RST_STREAM is 4 bytes")
        if sid > self._last_stream_id:
            raise ConnectionError_(f.PROTOCOL_ERROR, f"RST_STREAM on idle stream {sid}")
        stream = self.streams.get(sid)
        if stream is not None:
            if stream.running:
                # Its call goes on, and keeps counting against max_concurrent_streams:
                # resetting streams must not open room for more calls ("rapid reset").
                stream.orphaned = True
                self.orphans += 1
            self._forget(stream)

    def call_started(self, stream: Stream) -> None:
        stream.running = True

    def call_done(self, stream: Stream) -> None:
        stream.running = False
        if stream.orphaned:
            stream.orphaned = False
            self.orphans -= 1

    # writing

    def respond(
        self, stream: Stream, block: bytes, data: bytes | None = None, trailers: bytes | None = None
    ) -> None:
        """Answer a stream: headers, then optionally one DATA payload and trailers (END_STREAM last)."""
        if stream.closed or stream.answered:
            return
        stream.answered = True
        self._ping_strikes = 0  # as gRPC: sending headers or data resets the ping budget
        corked = self._receiving
        self._receiving = True  # everything below leaves in one write
        try:
            if data is None and trailers is None:
                self._write(self._header_frames(stream.id, block, end_stream=True))
            else:
                self._write(self._header_frames(stream.id, block, end_stream=False))
                if data:
                    stream.pending.append(data)
                stream.pending.append((trailers or b"",))
            self._send_pending(stream)
        finally:
            self._receiving = corked
            if not corked:
                self._flush()

    def _send_pending(self, stream: Stream) -> None:
        pending = stream.pending
        out = []
        while pending:
            item = pending[0]
            if isinstance(item, tuple):
                out.append(self._header_frames(stream.id, item[0], end_stream=True))
                pending.pop(0)
                break
            n = min(len(item), stream.send_avail, self._send_conn_avail, self._peer_max_frame)
            if n <= 0:
                self._blocked[stream.id] = stream
                break
            out.append(f.frame(f.DATA, 0, stream.id, item[:n]))
            stream.send_avail -= n
            self._send_conn_avail -= n
            if n == len(item):
                pending.pop(0)
            else:
                pending[0] = item[n:]
        if out:
            self._write(b"".join(out))
        if not pending:
            self._blocked.pop(stream.id, None)
            if stream.answered:
                if stream.ended:
                    self._forget(stream)
                else:  # answered before the whole request came (RFC 9113 §8.1)
                    self._reset(stream, f.NO_ERROR)

    def _unblock(self) -> None:
        for stream in list(self._blocked.values()):
            self._send_pending(stream)

    def _header_frames(self, sid: int, block: bytes, *, end_stream: bool) -> bytes:
        if self._table_update:
            block = self._table_update + block
            self._table_update = b""
        size = self._peer_max_frame
        flags = f.END_STREAM if end_stream else 0
        if len(block) <= size:
            return f.frame(f.HEADERS, flags | f.END_HEADERS, sid, block)
        parts = [block[i : i + size] for i in range(0, len(block), size)]
        out = [f.frame(f.HEADERS, flags, sid, parts[0])]
        for i, part in enumerate(parts[1:], 2):
            out.append(f.frame(f.CONTINUATION, f.END_HEADERS if i == len(parts) else 0, sid, part))
        return b"".join(out)

    def _write(self, data: bytes) -> None:
        if self._receiving:
            self._out.append(data)
        elif self._transport is not None and not self.closed:
            self._transport.write(data)

    def _flush(self) -> None:
        if self._out:
            out, self._out = self._out, []
            if self._transport is not None and not self.closed:
                self._transport.write(out[0] if len(out) == 1 else b"".join(out))

    # stream and connection ends

    def _forget(self, stream: Stream) -> None:
        stream.closed = True
        stream.chunks = []
        if self.streams.pop(stream.id, None) is not None:
            self.last_activity = time.monotonic()
        self._blocked.pop(stream.id, None)
        if self._data_stream is stream:
            self._data_stream = None
        self._close_if_done()

    def _reset(self, stream: Stream, code: int) -> None:
        self._write(f.rst_stream(stream.id, code))
        self._remember_reset(stream.id)
        self._forget(stream)

    def _refuse(self, sid: int, code: int) -> None:
        self._write(f.rst_stream(sid, code))
        self._remember_reset(sid)

    def _remember_reset(self, sid: int) -> None:
        self._recent_resets[sid] = None
        if len(self._recent_resets) > _RECENTLY_RESET:
            self._recent_resets.popitem(last=False)

    def goaway(self, code: int = f.NO_ERROR, debug: str = "") -> None:
        """Stop taking new streams; the connection closes when the open ones are answered."""
        if self.goaway_sent or self.closed or self._transport is None:
            return
        self.goaway_sent = True
        self._write(f.goaway(self._last_stream_id, code, debug.encode("ascii", "replace")))
        self._close_if_done()

    def ping(self) -> None:
        if self._transport is None or self.closed:
            return
        self.ping_sent_at = time.monotonic()
        self._write(f.frame(f.PING, 0, 0, b"\0" * 8))

    def close(self) -> None:
        if self._transport is not None and not self.closed:
            self._flush()
            self._transport.close()

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()

    def _close_if_done(self) -> None:
        if (self.goaway_sent or self._goaway_received) and not self.streams:
            if self._receiving:
                self._flush()
            self.close()

    def _fail(self, code: int, message: str) -> None:
        if not self.goaway_sent:
            self.goaway_sent = True
            self._out.append(f.goaway(self._last_stream_id, code, message.encode("ascii", "replace")))
        self._flush()
        for stream in list(self.streams.values()):
            stream.closed = True
        self.close()


def _content_length(headers: list[tuple[str, str]]) -> int | None:
    for name, value in headers:
        if name == "content-length":
            return int(value)  # digits: checked with the headers (``_malformed``)
    return None


def _malformed(headers: list[tuple[str, str]]) -> str | None:
    """RFC 9113 §8.1.1 / §8.3: what makes a request malformed (a stream error)."""
    seen_regular = False
    pseudo: set[str] = set()
    lengths = 0
    for name, value in headers:
        if name.startswith(":"):
            if seen_regular:
                return "pseudo-header after a regular header"
            if name not in _REQUEST_PSEUDO or name in pseudo:
                return f"bad pseudo-header {name}"
            pseudo.add(name)
        else:
            seen_regular = True
            if name in _CONNECTION_HEADERS or (name == "te" and value != "trailers"):
                return f"connection-specific header {name}"
            if name != name.lower():
                return "upper-case header name"
            if name == "content-length":
                if not (value.isascii() and value.isdigit()) or lengths:
                    return "content-length is not one number"
                lengths += 1
    if not {":method", ":scheme", ":path"} <= pseudo:
        return "missing a required pseudo-header"
    return None
