"""Raw HTTP/2 (h2c, prior knowledge) clients for black-box tests of the gRPC receiver.

Two clients, both over a real TCP socket with a timeout on every operation:

* ``H2Client`` drives the ``h2`` library: well-formed traffic only, and h2
  checks everything the server sends against RFC 9113 (frame and stream
  states, flow control, header validity), so a test that passes also says
  the server's side of the conversation was legal.
* ``RawConn`` writes frames byte by byte (``frame()``) so a test can send
  what h2 refuses to (bad lengths, bad stream ids, CONTINUATION, flow-control
  overruns, padded HEADERS), and parses what comes back with hyperframe and
  hpack, recording every frame in order.

Both keep per-stream results as ``StreamResult`` and know the gRPC framing
(``grpc_message``, ``grpc_request_headers``).
"""

from __future__ import annotations

import contextlib
import socket
import struct
import time
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import IntEnum

import h2.config
import h2.connection
import h2.events
import hpack
from hyperframe.frame import (
    ContinuationFrame,
    DataFrame,
    Frame,
    GoAwayFrame,
    HeadersFrame,
    PingFrame,
    RstStreamFrame,
    SettingsFrame,
    WindowUpdateFrame,
)

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DEFAULT_WINDOW = 65535
TIMEOUT = 5.0


class T(IntEnum):
    """Frame types (RFC 9113 §6)."""

    DATA = 0x0
    HEADERS = 0x1
    PRIORITY = 0x2
    RST_STREAM = 0x3
    SETTINGS = 0x4
    PUSH_PROMISE = 0x5
    PING = 0x6
    GOAWAY = 0x7
    WINDOW_UPDATE = 0x8
    CONTINUATION = 0x9


class F(IntEnum):
    """Frame flags."""

    END_STREAM = 0x1
    ACK = 0x1
    END_HEADERS = 0x4
    PADDED = 0x8
    PRIORITY = 0x20


class Err(IntEnum):
    """Error codes (RFC 9113 §7)."""

    NO_ERROR = 0x0
    PROTOCOL_ERROR = 0x1
    INTERNAL_ERROR = 0x2
    FLOW_CONTROL_ERROR = 0x3
    SETTINGS_TIMEOUT = 0x4
    STREAM_CLOSED = 0x5
    FRAME_SIZE_ERROR = 0x6
    REFUSED_STREAM = 0x7
    CANCEL = 0x8
    COMPRESSION_ERROR = 0x9
    CONNECT_ERROR = 0xA
    ENHANCE_YOUR_CALM = 0xB
    INADEQUATE_SECURITY = 0xC
    HTTP_1_1_REQUIRED = 0xD


class S(IntEnum):
    """SETTINGS parameters (RFC 9113 §6.5.2)."""

    HEADER_TABLE_SIZE = 0x1
    ENABLE_PUSH = 0x2
    MAX_CONCURRENT_STREAMS = 0x3
    INITIAL_WINDOW_SIZE = 0x4
    MAX_FRAME_SIZE = 0x5
    MAX_HEADER_LIST_SIZE = 0x6


def frame(type_: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    """One frame, serialized by hand: any length, flags and stream id, valid or not."""
    return (
        struct.pack(">I", len(payload))[1:] + bytes([type_, flags]) + struct.pack(">I", stream_id) + payload
    )


def settings_payload(settings: dict[int, int]) -> bytes:
    return b"".join(struct.pack(">HI", key, value) for key, value in settings.items())


def goaway_payload(last_stream_id: int, code: int, debug: bytes = b"") -> bytes:
    return struct.pack(">II", last_stream_id, code) + debug


# --------------------------------------------------------------------------- HPACK by hand


def hpack_int(value: int, prefix: int, first: int = 0) -> bytes:
    """RFC 7541 §5.1: an integer with an N-bit prefix; ``first`` holds the representation's high bits."""
    top = (1 << prefix) - 1
    if value < top:
        return bytes([first | value])
    out = bytearray([first | top])
    value -= top
    while value >= 128:
        out.append((value & 127) | 128)
        value >>= 7
    out.append(value)
    return bytes(out)


def hpack_string(text: str) -> bytes:
    """RFC 7541 §5.2: a string literal, not Huffman-coded."""
    raw = text.encode()
    return hpack_int(len(raw), 7) + raw


def hpack_literal(name: str | int, value: str, *, indexing: bool = False) -> bytes:
    """RFC 7541 §6.2: a literal field, with incremental indexing or without; ``name`` is a new
    name or the index of an entry (static or dynamic table) whose name is reused."""
    prefix, first = (6, 0x40) if indexing else (4, 0x00)
    if isinstance(name, int):
        return hpack_int(name, prefix, first) + hpack_string(value)
    return bytes([first]) + hpack_string(name) + hpack_string(value)


def hpack_indexed(index: int) -> bytes:
    """RFC 7541 §6.1: an indexed field."""
    return hpack_int(index, 7, 0x80)


def hpack_size_update(size: int) -> bytes:
    """RFC 7541 §6.3: a dynamic table size update."""
    return hpack_int(size, 5, 0x20)


def hpack_plain(headers: list[tuple[str, str]]) -> bytes:
    """A block that leaves the dynamic table alone: every field a literal without indexing."""
    return b"".join(hpack_literal(name, value) for name, value in headers)


# --------------------------------------------------------------------------- gRPC framing


def grpc_message(payload: bytes, *, compressed: bool = False, declared_length: int | None = None) -> bytes:
    """A gRPC length-prefixed message; ``declared_length`` may lie about the payload."""
    length = len(payload) if declared_length is None else declared_length
    return bytes([1 if compressed else 0]) + struct.pack(">I", length) + payload


def parse_grpc_messages(data: bytes) -> list[tuple[int, bytes]]:
    """(compressed flag, payload) for each length-prefixed message; fails on a truncated one."""
    out = []
    pos = 0
    while pos < len(data):
        assert len(data) - pos >= 5, f"truncated gRPC message prefix: {data[pos:]!r}"
        flag, length = data[pos], struct.unpack(">I", data[pos + 1 : pos + 5])[0]
        assert len(data) - pos - 5 >= length, f"gRPC message shorter than its prefix ({length})"
        out.append((flag, data[pos + 5 : pos + 5 + length]))
        pos += 5 + length
    return out


def grpc_request_headers(
    port: int,
    path: str,
    *,
    content_type: str = "application/grpc",
    extra: Iterable[tuple[str, str]] = (),
) -> list[tuple[str, str]]:
    return [
        (":method", "POST"),
        (":scheme", "http"),
        (":path", path),
        (":authority", f"127.0.0.1:{port}"),
        ("content-type", content_type),
        ("te", "trailers"),
        *extra,
    ]


@dataclass
class StreamResult:
    """What came back on one stream: the first HEADERS, DATA, the trailing HEADERS, or a reset."""

    headers: list[tuple[bytes, bytes]] | None = None
    trailers: list[tuple[bytes, bytes]] | None = None
    data: bytes = b""
    ended: bool = False  # END_STREAM received
    reset: int | None = None  # RST_STREAM error code

    @property
    def done(self) -> bool:
        return self.ended or self.reset is not None

    def _get(self, block: list[tuple[bytes, bytes]] | None, name: str) -> str | None:
        for key, value in block or []:
            if key == name.encode():
                return value.decode("latin-1")
        return None

    def header(self, name: str) -> str | None:
        return self._get(self.headers, name)

    @property
    def status(self) -> int | None:
        value = self.header(":status")
        return None if value is None else int(value)

    def _trailer(self, name: str) -> str | None:
        # A Trailers-Only response (PROTOCOL-HTTP2.md) puts grpc-status in its only HEADERS.
        block = self.trailers if self.trailers is not None else self.headers
        return self._get(block, name)

    @property
    def grpc_status(self) -> int | None:
        value = self._trailer("grpc-status")
        return None if value is None else int(value)

    @property
    def grpc_message_raw(self) -> str | None:
        return self._trailer("grpc-message")

    @property
    def grpc_message(self) -> str | None:
        raw = self.grpc_message_raw
        return None if raw is None else urllib.parse.unquote(raw, errors="strict")

    def messages(self) -> list[tuple[int, bytes]]:
        return parse_grpc_messages(self.data)

    def describe(self) -> str:
        return (
            f"headers={self.headers} data={self.data[:80]!r} trailers={self.trailers} "
            f"ended={self.ended} reset={self.reset}"
        )


# --------------------------------------------------------------------------- h2-driven client


class H2Client:
    """A client on the ``h2`` library; every frame the server sends is validated by h2."""

    def __init__(self, port: int, *, host: str = "127.0.0.1", timeout: float = TIMEOUT) -> None:
        self.port = port
        self.timeout = timeout
        self.sock = socket.create_connection((host, port), timeout=timeout)
        config = h2.config.H2Configuration(client_side=True, header_encoding=None)
        self.conn = h2.connection.H2Connection(config=config)
        self.conn.initiate_connection()
        self.streams: dict[int, StreamResult] = {}
        self.events: list[h2.events.Event] = []
        self.terminated: h2.events.ConnectionTerminated | None = None
        self.eof = False
        self.flush()

    def __enter__(self) -> H2Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()

    def flush(self) -> None:
        out = self.conn.data_to_send()
        if out:
            self.sock.sendall(out)

    def start(self, headers: list[tuple[str, str]], *, end_stream: bool = False) -> int:
        stream_id = self.conn.get_next_available_stream_id()
        self.conn.send_headers(stream_id, headers, end_stream=end_stream)
        self.streams[stream_id] = StreamResult()
        self.flush()
        return stream_id

    def handshake(self) -> None:
        """Wait until the server ACKed our SETTINGS (its own SETTINGS, RFC 9113 §3.4, came first)."""
        deadline = time.monotonic() + self.timeout
        while not any(isinstance(e, h2.events.SettingsAcknowledged) for e in self.events):
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"no SETTINGS ACK from the server: {self.events}"
            self.pump(remaining)

    def send(
        self,
        stream_id: int,
        data: bytes,
        *,
        end_stream: bool = False,
        frame_size: int | Callable[[int], int] | None = None,
        pad_length: int | None = None,
    ) -> int:
        """``data`` in DATA frames of ``frame_size`` bytes (an int, or a function of the frame's index),
        within the windows the server granted (waiting for WINDOW_UPDATEs); stops if the stream ends.
        Returns how many DATA frames were sent."""
        assert data, "send() needs bytes to send"
        overhead = 0 if pad_length is None else pad_length + 1  # padding counts against the windows
        pos = index = 0
        while pos < len(data):
            if self.streams[stream_id].done:
                return index  # answered (or reset) early: the rest is not wanted
            room = min(self.conn.local_flow_control_window(stream_id), self.conn.max_outbound_frame_size)
            room -= overhead
            if room <= 0:
                self.pump()  # blocked by flow control: wait for a WINDOW_UPDATE
                continue
            want = frame_size(index) if callable(frame_size) else frame_size
            n = min(len(data) - pos, room, want if want is not None else room)
            last = pos + n == len(data)
            self.conn.send_data(
                stream_id, data[pos : pos + n], end_stream=end_stream and last, pad_length=pad_length
            )
            self.flush()
            pos += n
            index += 1
        return index

    def reset(self, stream_id: int, code: int = Err.CANCEL) -> None:
        self.conn.reset_stream(stream_id, code)
        self.flush()

    def pump(self, timeout: float | None = None) -> list[h2.events.Event]:
        """Read once (waiting at most ``timeout``), feed h2, answer what h2 answers."""
        self.sock.settimeout(timeout if timeout is not None else self.timeout)
        try:
            chunk = self.sock.recv(65536)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            self.eof = True
            raise ConnectionError("connection closed by the server")
        events = self.conn.receive_data(chunk)
        for event in events:
            self._on(event)
        self.events += events
        self.flush()
        return events

    def _on(self, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.ResponseReceived):  # (1xx responses are not kept)
            assert event.stream_id is not None
            self.streams[event.stream_id].headers = list(event.headers or [])
        elif isinstance(event, h2.events.TrailersReceived):
            assert event.stream_id is not None
            self.streams[event.stream_id].trailers = list(event.headers or [])
        elif isinstance(event, h2.events.DataReceived):
            assert event.stream_id is not None
            assert event.data is not None
            self.streams[event.stream_id].data += event.data
            if event.flow_controlled_length:
                self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        elif isinstance(event, h2.events.StreamEnded):
            assert event.stream_id is not None
            self.streams[event.stream_id].ended = True
        elif isinstance(event, h2.events.StreamReset):
            assert event.stream_id is not None
            if event.stream_id in self.streams:
                self.streams[event.stream_id].reset = int(event.error_code or 0)
        elif isinstance(event, h2.events.ConnectionTerminated):
            self.terminated = event

    def wait(self, *stream_ids: int, timeout: float | None = None) -> list[StreamResult]:
        """Pump until every stream is done (ended or reset)."""
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        while not all(self.streams[s].done for s in stream_ids):
            remaining = deadline - time.monotonic()
            try:
                assert remaining > 0
                self.pump(remaining)
            except (AssertionError, TimeoutError):
                raise AssertionError(f"streams not answered in time: {self.streams}") from None
        return [self.streams[s] for s in stream_ids]

    def call(
        self, path: str, body: bytes, *, extra: Iterable[tuple[str, str]] = (), content_type: str = ""
    ) -> StreamResult:
        """One unary call whose request body is ``body`` (already gRPC-framed)."""
        headers = grpc_request_headers(
            self.port, path, content_type=content_type or "application/grpc", extra=extra
        )
        stream_id = self.start(headers)
        self.send(stream_id, body, end_stream=True)
        return self.wait(stream_id)[0]


# --------------------------------------------------------------------------- frame-level client


@dataclass
class Goaway:
    last_stream_id: int
    error_code: int
    debug: bytes


@dataclass
class RawConn:
    """A frame-level client: sends any bytes, records every frame received, in order.

    It answers the server's SETTINGS with an ACK and its PINGs with a PING ACK
    (unless ``auto_ack`` is off), tracks the windows the server grants, and
    decodes response header blocks (HEADERS + CONTINUATION) with hpack.
    """

    port: int
    host: str = "127.0.0.1"
    timeout: float = TIMEOUT
    auto_ack: bool = True
    sock: socket.socket = field(init=False)
    frames: list[Frame] = field(default_factory=list)  # received, in order
    streams: dict[int, StreamResult] = field(default_factory=dict)
    server_settings: dict[int, int] = field(default_factory=dict)
    settings_acks: int = 0  # SETTINGS ACKs received
    ping_acks: list[bytes] = field(default_factory=list)
    goaways: list[Goaway] = field(default_factory=list)
    eof: bool = False
    conn_window: int = DEFAULT_WINDOW  # what we may still send, connection level
    stream_windows: dict[int, int] = field(default_factory=dict)
    initial_window: int = DEFAULT_WINDOW
    encoder: hpack.Encoder = field(default_factory=hpack.Encoder)
    decoder: hpack.Decoder = field(default_factory=hpack.Decoder)
    _buf: bytearray = field(default_factory=bytearray)

    def __post_init__(self) -> None:
        self.sock = socket.create_connection((self.host, self.port), timeout=self.timeout)

    def __enter__(self) -> RawConn:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()

    # ---- sending

    def send(self, *chunks: bytes) -> None:
        self.sock.sendall(b"".join(chunks))

    def handshake(self, settings: dict[int, int] | None = None) -> None:
        """Preface + our SETTINGS, then wait for the server's SETTINGS."""
        self.send(PREFACE, frame(T.SETTINGS, 0, 0, settings_payload(settings or {})))
        self.read_until(
            lambda: any(isinstance(f, SettingsFrame) and "ACK" not in f.flags for f in self.frames)
        )

    def header_block(self, headers: list[tuple[str, str]]) -> bytes:
        return bytes(self.encoder.encode(headers))

    def headers(self, stream_id: int, headers: list[tuple[str, str]], *, end_stream: bool = False) -> None:
        """A HEADERS frame with the whole block (END_HEADERS)."""
        flags = F.END_HEADERS | (F.END_STREAM if end_stream else 0)
        self.opened(stream_id)
        self.send(frame(T.HEADERS, flags, stream_id, self.header_block(headers)))

    def opened(self, stream_id: int) -> None:
        self.streams.setdefault(stream_id, StreamResult())
        self.stream_windows.setdefault(stream_id, self.initial_window)

    def data(self, stream_id: int, payload: bytes, *, end_stream: bool = False) -> None:
        """One DATA frame, regardless of flow control (the caller decides)."""
        self.send(frame(T.DATA, F.END_STREAM if end_stream else 0, stream_id, payload))
        self.conn_window -= len(payload)
        self.opened(stream_id)
        self.stream_windows[stream_id] -= len(payload)

    def body(
        self, stream_id: int, payload: bytes, *, end_stream: bool = True, max_frame: int = 16384
    ) -> None:
        """``payload`` in DATA frames within the windows the server granted, waiting for more."""
        pos = 0
        while True:
            if self.streams[stream_id].done:
                return
            n = min(len(payload) - pos, max_frame, self.conn_window, self.stream_windows[stream_id])
            last = pos + n == len(payload)
            if n > 0 or last:
                self.data(stream_id, payload[pos : pos + n], end_stream=end_stream and last)
                pos += n
                if last:
                    return
            elif self.recv_frame() is None:  # blocked by flow control: wait for a WINDOW_UPDATE
                raise ConnectionError(f"connection closed while sending stream {stream_id}'s body")

    def call(self, stream_id: int, headers: list[tuple[str, str]], body: bytes) -> StreamResult:
        self.headers(stream_id, headers)
        self.body(stream_id, body)
        return self.wait(stream_id)

    # ---- receiving

    def _exact(self, n: int, deadline: float) -> bytes | None:
        while len(self._buf) < n:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no frame from the server in time; got {self.describe()}")
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(65536)
            except (ConnectionResetError, BrokenPipeError):
                chunk = b""
            except TimeoutError:
                raise TimeoutError(f"no frame from the server in time; got {self.describe()}") from None
            if not chunk:
                self.eof = True
                return None
            self._buf += chunk
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out

    def recv_frame(self, timeout: float | None = None) -> Frame | None:
        """The next frame (handled and recorded), or None once the server closed the connection."""
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        head = self._exact(9, deadline)
        if head is None:
            return None
        parsed, length = Frame.parse_frame_header(memoryview(head))
        body = self._exact(length, deadline)
        if body is None:
            return None
        parsed.parse_body(memoryview(body))
        self.frames.append(parsed)
        self._on(parsed, deadline)
        return parsed

    def _reply(self, data: bytes) -> None:
        """An automatic answer; the server may have closed the connection already (after an error)."""
        with contextlib.suppress(OSError):
            self.send(data)

    def _on(self, f: Frame, deadline: float) -> None:
        if isinstance(f, SettingsFrame):
            if "ACK" in f.flags:
                self.settings_acks += 1
                return
            for key, value in f.settings.items():
                if key == S.INITIAL_WINDOW_SIZE:
                    for sid in self.stream_windows:
                        self.stream_windows[sid] += value - self.initial_window
                    self.initial_window = value
                self.server_settings[key] = value
            if self.auto_ack:
                self._reply(frame(T.SETTINGS, F.ACK, 0))
        elif isinstance(f, PingFrame):
            if "ACK" in f.flags:
                self.ping_acks.append(bytes(f.opaque_data))
            elif self.auto_ack:
                self._reply(frame(T.PING, F.ACK, 0, bytes(f.opaque_data)))
        elif isinstance(f, WindowUpdateFrame):
            if f.stream_id == 0:
                self.conn_window += f.window_increment
            else:
                self.stream_windows[f.stream_id] = (
                    self.stream_windows.get(f.stream_id, self.initial_window) + f.window_increment
                )
        elif isinstance(f, GoAwayFrame):
            self.goaways.append(Goaway(f.last_stream_id, f.error_code, bytes(f.additional_data)))
        elif isinstance(f, RstStreamFrame):
            self.streams.setdefault(f.stream_id, StreamResult()).reset = f.error_code
        elif isinstance(f, HeadersFrame):
            block = bytes(f.data)
            end_headers = "END_HEADERS" in f.flags
            while not end_headers:  # RFC 9113 §6.10: CONTINUATIONs of this stream, nothing between
                head = self._exact(9, deadline)
                assert head is not None, "connection closed inside a header block"
                cont, length = Frame.parse_frame_header(memoryview(head))
                body = self._exact(length, deadline)
                assert body is not None, "connection closed inside a header block"
                cont.parse_body(memoryview(body))
                assert isinstance(cont, ContinuationFrame), f"{cont} inside a header block"
                assert cont.stream_id == f.stream_id, f"{cont} inside a header block of {f.stream_id}"
                self.frames.append(cont)
                block += bytes(cont.data)
                end_headers = "END_HEADERS" in cont.flags
            decoded = [(bytes(k), bytes(v)) for k, v in self.decoder.decode(block, raw=True)]
            result = self.streams.setdefault(f.stream_id, StreamResult())
            if result.headers is None:
                result.headers = decoded
            else:
                result.trailers = decoded
            result.ended = result.ended or "END_STREAM" in f.flags
        elif isinstance(f, DataFrame):
            result = self.streams.setdefault(f.stream_id, StreamResult())
            result.data += bytes(f.data)
            result.ended = result.ended or "END_STREAM" in f.flags

    def read_until(self, done: Callable[[], bool], timeout: float | None = None) -> bool:
        """Read frames until ``done()``; False if the connection closed first."""
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        while not done():
            if self.eof or self.recv_frame(max(0.0, deadline - time.monotonic())) is None:
                return done()
        return True

    def wait(self, stream_id: int, timeout: float | None = None) -> StreamResult:
        self.opened(stream_id)
        answered = self.read_until(lambda: self.streams[stream_id].done, timeout)
        assert answered, f"connection closed before stream {stream_id} was answered: {self.describe()}"
        return self.streams[stream_id]

    def read_to_close(self, timeout: float | None = None) -> None:
        """Read until the server closes the connection (TimeoutError if it does not)."""
        self.read_until(lambda: False, timeout)

    def ping(self, payload: bytes = b"12345678") -> None:
        self.send(frame(T.PING, 0, 0, payload))

    def closes(self, *, grace: float = 0.5, timeout: float | None = None) -> bool:
        """Did the server close the connection over what was sent so far?

        A PING goes out after it as a barrier: frames are processed in order, so a
        server that ACKs the barrier and then keeps the connection open for
        ``grace`` seconds did not treat anything before it as a connection error.
        This answers quickly either way, instead of waiting for a timeout.
        """
        barrier = b"barrier!"
        with contextlib.suppress(OSError):  # already closed (and maybe reset) by the server
            self.ping(barrier)
        if not self.read_until(lambda: barrier in self.ping_acks, timeout):
            return True  # closed before the barrier was answered
        try:
            self.read_until(lambda: False, grace)
        except TimeoutError:
            return False
        return True

    @property
    def goaway(self) -> Goaway | None:
        """The last GOAWAY received."""
        return self.goaways[-1] if self.goaways else None

    def describe(self) -> str:
        return f"frames={self.frames} eof={self.eof}"
