"""A tiny cleartext HTTP/2 (h2c, prior knowledge) client for one gRPC call.

grpcio compresses messages itself, so it cannot send a message that is
*already* compressed (a gzip bomb) without first holding the inflated bytes.
This client frames the bytes it is given as one gRPC message with the
compressed flag set, honours HTTP/2 flow control, and decodes the response
headers/trailers (HPACK static + dynamic table; Huffman-coded strings, which
gRPC does not use for the status headers, are reported as ``None``).
"""

from __future__ import annotations

import select
import socket
import struct
from dataclasses import dataclass, field

from tests.receivers.otlp.h2raw import hpack_int

_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = 0, 1, 3, 4, 6, 7, 8, 9
END_STREAM, ACK, END_HEADERS, PADDED, PRIORITY = 0x1, 0x1, 0x4, 0x8, 0x20
_MAX_FRAME = 16384

# RFC 7541, Appendix A.
_STATIC: list[tuple[str, str]] = [
    (":authority", ""), (":method", "GET"), (":method", "POST"), (":path", "/"),
    (":path", "/index.html"), (":scheme", "http"), (":scheme", "https"), (":status", "200"),
    (":status", "204"), (":status", "206"), (":status", "304"), (":status", "400"),
    (":status", "404"), (":status", "500"), ("accept-charset", ""), ("accept-encoding", "gzip, deflate"),
    ("accept-language", ""), ("accept-ranges", ""), ("accept", ""), ("access-control-allow-origin", ""),
    ("age", ""), ("allow", ""), ("authorization", ""), ("cache-control", ""),
    ("content-disposition", ""), ("content-encoding", ""), ("content-language", ""),
    ("content-length", ""), ("content-location", ""), ("content-range", ""), ("content-type", ""),
    ("cookie", ""), ("date", ""), ("etag", ""), ("expect", ""), ("expires", ""), ("from", ""),
    ("host", ""), ("if-match", ""), ("if-modified-since", ""), ("if-none-match", ""),
    ("if-range", ""), ("if-unmodified-since", ""), ("last-modified", ""), ("link", ""),
    ("location", ""), ("max-forwards", ""), ("proxy-authenticate", ""), ("proxy-authorization", ""),
    ("range", ""), ("referer", ""), ("refresh", ""), ("retry-after", ""), ("server", ""),
    ("set-cookie", ""), ("strict-transport-security", ""), ("transfer-encoding", ""),
    ("user-agent", ""), ("vary", ""), ("via", ""), ("www-authenticate", ""),
]  # fmt: skip


@dataclass
class Response:
    headers: dict[str, str | None] = field(default_factory=dict)  # headers and trailers merged
    data: bytes = b""
    reset_code: int | None = None  # RST_STREAM / GOAWAY error code, if the stream was reset

    @property
    def grpc_status(self) -> int | None:
        value = self.headers.get("grpc-status")
        return None if value is None else int(value)


def _encode(headers: list[tuple[str, str]]) -> bytes:
    """Every field as 'literal without indexing, new name', no Huffman."""
    out = bytearray()
    for name, value in headers:
        out += b"\x00"
        for s in (name.encode(), value.encode()):
            out += hpack_int(len(s), 7, 0) + s
    return bytes(out)


class _Decoder:
    def __init__(self) -> None:
        self.table: list[tuple[str, str | None]] = []
        self.max_size = 4096

    def _size(self) -> int:
        return sum(len(n) + len(v or "") + 32 for n, v in self.table)

    def _evict(self) -> None:
        while self.table and self._size() > self.max_size:
            self.table.pop()

    def _entry(self, index: int) -> tuple[str, str | None]:
        if index <= len(_STATIC):
            return _STATIC[index - 1]
        return self.table[index - len(_STATIC) - 1]

    @staticmethod
    def _read_int(block: bytes, pos: int, prefix: int) -> tuple[int, int]:
        top = (1 << prefix) - 1
        value = block[pos] & top
        pos += 1
        if value < top:
            return value, pos
        shift = 0
        while True:
            b = block[pos]
            pos += 1
            value += (b & 127) << shift
            shift += 7
            if not b & 128:
                return value, pos

    def _read_str(self, block: bytes, pos: int) -> tuple[str | None, int]:
        huffman = bool(block[pos] & 0x80)
        length, pos = self._read_int(block, pos, 7)
        raw = block[pos : pos + length]
        return (None if huffman else raw.decode("latin-1")), pos + length

    def decode(self, block: bytes) -> list[tuple[str, str | None]]:
        out: list[tuple[str, str | None]] = []
        pos = 0
        while pos < len(block):
            b = block[pos]
            if b & 0x80:  # indexed field
                index, pos = self._read_int(block, pos, 7)
                out.append(self._entry(index))
                continue
            if b & 0xE0 == 0x20:  # dynamic table size update
                self.max_size, pos = self._read_int(block, pos, 5)
                self._evict()
                continue
            indexing = b & 0xC0 == 0x40
            index, pos = self._read_int(block, pos, 6 if indexing else 4)
            if index:
                name: str | None = self._entry(index)[0]
            else:
                name, pos = self._read_str(block, pos)
            value, pos = self._read_str(block, pos)
            name = name if name is not None else "<huffman>"
            out.append((name, value))
            if indexing:
                self.table.insert(0, (name, value))
                self._evict()
        return out


class _Conn:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""

    def send(self, type_: int, flags: int, stream: int, payload: bytes = b"") -> None:
        header = struct.pack(">I", len(payload))[1:] + bytes([type_, flags]) + struct.pack(">I", stream)
        self.sock.sendall(header + payload)

    def _exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed by peer")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def readable(self) -> bool:
        return bool(self.buf) or bool(select.select([self.sock], [], [], 0)[0])

    def recv(self) -> tuple[int, int, int, bytes]:
        head = self._exact(9)
        length = int.from_bytes(head[:3], "big")
        stream = int.from_bytes(head[5:9], "big") & 0x7FFFFFFF
        return head[3], head[4], stream, self._exact(length)


def grpc_call(
    host: str,
    port: int,
    path: str,
    message: bytes,
    *,
    encoding: str = "gzip",
    timeout: float = 60.0,
) -> Response:
    """One unary gRPC call whose single message is ``message``, sent as already compressed."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        conn = _Conn(sock)
        sock.sendall(_PREFACE)
        conn.send(SETTINGS, 0, 0)
        headers = [
            (":method", "POST"),
            (":scheme", "http"),
            (":path", path),
            (":authority", f"{host}:{port}"),
            ("content-type", "application/grpc"),
            ("te", "trailers"),
            ("grpc-encoding", encoding),
            ("grpc-accept-encoding", "identity"),
        ]
        conn.send(HEADERS, END_HEADERS, 1, _encode(headers))
        body = memoryview(b"\x01" + struct.pack(">I", len(message)) + message)
        windows = {"conn": 65535, "stream": 65535}
        state = {"initial": 65535}
        decoder = _Decoder()
        response = Response()
        done = False

        def handle(type_: int, flags: int, stream: int, payload: bytes) -> bool:
            if type_ == SETTINGS and not flags & ACK:
                for i in range(0, len(payload), 6):
                    key, value = struct.unpack(">HI", payload[i : i + 6])
                    if key == 0x4:  # SETTINGS_INITIAL_WINDOW_SIZE
                        windows["stream"] += value - state["initial"]
                        state["initial"] = value
                conn.send(SETTINGS, ACK, 0)
            elif type_ == WINDOW_UPDATE:
                windows["conn" if stream == 0 else "stream"] += struct.unpack(">I", payload)[0] & 0x7FFFFFFF
            elif type_ == PING and not flags & ACK:
                conn.send(PING, ACK, 0, payload)
            elif type_ == HEADERS and stream == 1:
                if flags & PADDED:
                    payload = payload[1 : len(payload) - payload[0]]
                if flags & PRIORITY:
                    payload = payload[5:]
                block, end_headers = payload, bool(flags & END_HEADERS)
                while not end_headers:
                    t, f, _, more = conn.recv()
                    assert t == CONTINUATION
                    block += more
                    end_headers = bool(f & END_HEADERS)
                for name, value in decoder.decode(block):
                    response.headers[name] = value
                return bool(flags & END_STREAM)
            elif type_ == DATA and stream == 1:
                response.data += payload
                return bool(flags & END_STREAM)
            elif type_ == RST_STREAM and stream == 1:
                response.reset_code = struct.unpack(">I", payload)[0]
                return True
            elif type_ == GOAWAY:
                response.reset_code = struct.unpack(">I", payload[4:8])[0]
                return True
            return False

        sent = 0
        while sent < len(body) and not done:
            while conn.readable() and not done:
                done = handle(*conn.recv())
            n = min(len(body) - sent, windows["conn"], windows["stream"], _MAX_FRAME)
            if done:
                break
            if n <= 0:
                done = handle(*conn.recv())  # wait for WINDOW_UPDATE
                continue
            last = sent + n == len(body)
            conn.send(DATA, END_STREAM if last else 0, 1, bytes(body[sent : sent + n]))
            windows["conn"] -= n
            windows["stream"] -= n
            sent += n
        while not done:
            done = handle(*conn.recv())
        return response
