"""Load generator: the same pre-encoded OTLP request, N in flight, for a bounded time.

The request is built and serialized once (see :mod:`bench.requests`;
``--fresh-ids`` gives each traces request new ids, for a store); for
HTTP with gzip it is also compressed once and sent with
``Content-Encoding: gzip``. Each request's latency is recorded. The run has a
warm-up and a measurement window; the generator prints one JSON line when
the window opens, one when it closes and one with the results, so a runner can
sample the collector's CPU at exactly those moments.

gRPC uses a ``grpc.aio`` unary call with no serializer (bytes in, bytes out).
gRPC Python cannot send a pre-compressed message, so with gzip gRPC core
compresses every request again: that costs the load generator's core, not
the collector's. HTTP/protobuf uses a minimal keep-alive HTTP/1.1 client on
raw asyncio transports, one connection per in-flight request, because an
HTTP library's per-request cost would otherwise dominate the load core.

    python -m bench.loadgen --endpoint 127.0.0.1:4317 --signal traces --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import sys
import time
from array import array
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import grpc

from bench.requests import GRPC_METHODS, REJECTED_FIELD, RESPONSE_TYPES, SIGNALS, Encoded, FreshIds, build


@dataclass
class Options:
    endpoint: str  # host:port
    signal: str = "traces"
    transport: str = "grpc"  # grpc | http
    compression: str = "none"  # none | gzip
    resources: int = 5
    items: int = 500
    attributes: int = 8
    concurrency: int = 16
    connections: int = 1  # gRPC channels; HTTP/1.1 always uses one connection per in-flight request
    assign: str = "rotate"  # rotate: each request on the next channel; fixed: slot i on channel i % N
    warmup: float = 2.0
    seconds: float = 10.0
    max_requests: int = 0  # 0 = bounded by time only
    timeout: float = 10.0
    fresh_ids: bool = False  # traces over gRPC: new trace and span ids in every request


@dataclass
class Stats:
    requests: int = 0  # completed, any outcome
    ok: int = 0
    items_ok: int = 0  # items in requests answered OK, less partial-success rejections
    rejected_items: int = 0  # partial success
    errors: Counter[str] = field(default_factory=Counter)
    window_ok: int = 0
    window_items: int = 0
    window_latencies: array[float] = field(default_factory=lambda: array("d"))


def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


class _GrpcClient:
    def __init__(self, opts: Options, request: Encoded) -> None:
        options = [
            ("grpc.max_send_message_length", -1),
            ("grpc.max_receive_message_length", -1),
            ("grpc.use_local_subchannel_pool", 1),  # one TCP connection per channel, not one shared
        ]
        self._channels = [
            grpc.aio.insecure_channel(opts.endpoint, options=options) for _ in range(max(1, opts.connections))
        ]
        self._calls = [ch.unary_unary(GRPC_METHODS[opts.signal]) for ch in self._channels]
        self._next = 0
        self._fixed = opts.assign == "fixed"
        self._body = request.body
        self._fresh = FreshIds(request.body) if opts.fresh_ids else None
        self._timeout = opts.timeout
        self._compression = grpc.Compression.Gzip if opts.compression == "gzip" else None

    async def send(self, slot: int) -> tuple[str, bytes]:
        if self._fixed:  # each connection is its own closed-loop client: slow peer, fewer requests
            call = self._calls[slot % len(self._calls)]
        else:  # every connection gets the same number of requests
            self._next = (self._next + 1) % len(self._calls)
            call = self._calls[self._next]
        try:
            body = self._fresh.next() if self._fresh else self._body
            response = await call(body, timeout=self._timeout, compression=self._compression)
        except grpc.aio.AioRpcError as exc:
            return exc.code().name, b""
        return "OK", response

    async def close(self) -> None:
        for channel in self._channels:
            await channel.close()


class _HttpConnection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection that carries one request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._buf = bytearray()
        self._waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(ConnectionError("connection closed by the server"))

    def data_received(self, data: bytes) -> None:
        self._buf += data
        if self._waiter is None or self._waiter.done():
            return
        end = self._buf.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self._buf[:end]).lower()
        status = int(head[9:12])
        body_start = end + 4
        if b"transfer-encoding: chunked" in head:
            if not self._buf.endswith(b"0\r\n\r\n"):
                return
            body = _dechunk(bytes(self._buf[body_start:]))
            del self._buf[:]
        else:
            length = 0
            at = head.find(b"content-length:")
            if at >= 0:
                eol = head.find(b"\r\n", at)
                length = int(head[at + 15 : eol if eol >= 0 else len(head)])
            if len(self._buf) < body_start + length:
                return
            body = bytes(self._buf[body_start : body_start + length])
            del self._buf[: body_start + length]
        if b"connection: close" in head and self.transport is not None:
            self.transport.close()
        self._waiter.set_result((status, body))

    def request(self, data: bytes) -> asyncio.Future[tuple[int, bytes]]:
        assert self.transport is not None
        self._waiter = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        return self._waiter


def _dechunk(data: bytes) -> bytes:
    out = bytearray()
    pos = 0
    while True:
        eol = data.index(b"\r\n", pos)
        size = int(data[pos:eol].split(b";")[0], 16)
        if size == 0:
            return bytes(out)
        out += data[eol + 2 : eol + 2 + size]
        pos = eol + 2 + size + 2


class _HttpClient:
    def __init__(self, opts: Options, request: Encoded) -> None:
        self._host, port = opts.endpoint.rsplit(":", 1)
        self._port = int(port)
        body = request.body
        headers = [
            f"POST /v1/{opts.signal} HTTP/1.1",
            f"Host: {opts.endpoint}",
            "Content-Type: application/x-protobuf",
            "User-Agent: otlpd-bench",
        ]
        if opts.compression == "gzip":
            body = gzip.compress(body, compresslevel=6)
            headers.append("Content-Encoding: gzip")
        headers.append(f"Content-Length: {len(body)}")
        self._request = ("\r\n".join(headers) + "\r\n\r\n").encode() + body
        self._timeout = opts.timeout
        self._idle: list[_HttpConnection] = []
        self._all: list[_HttpConnection] = []

    async def _connection(self) -> _HttpConnection:
        while self._idle:
            conn = self._idle.pop()
            if not conn.closed:
                return conn
        _, conn = await asyncio.get_running_loop().create_connection(_HttpConnection, self._host, self._port)
        self._all.append(conn)
        return conn

    async def send(self, slot: int) -> tuple[str, bytes]:
        try:
            conn = await self._connection()
            status, body = await asyncio.wait_for(conn.request(self._request), self._timeout)
        except (OSError, TimeoutError) as exc:
            return type(exc).__name__, b""
        if not conn.closed:
            self._idle.append(conn)
        return ("OK" if status == 200 else str(status)), body

    async def close(self) -> None:
        for conn in self._all:
            if conn.transport is not None:
                conn.transport.close()


def _rejected(signal: str, response: bytes) -> int:
    if not response:
        return 0
    message = RESPONSE_TYPES[signal]()
    try:
        message.ParseFromString(response)
    except Exception:
        return 0
    return int(getattr(message.partial_success, REJECTED_FIELD[signal]))


def _emit(event: str, **fields: Any) -> None:
    sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
    sys.stdout.flush()


async def run(opts: Options, request: Encoded | None = None, quiet: bool = False) -> dict[str, Any]:
    """Send until the window closes (or ``max_requests``); return the results as a dict."""
    request = request or build(opts.signal, opts.resources, opts.items, opts.attributes)
    client: _GrpcClient | _HttpClient = (
        _GrpcClient(opts, request) if opts.transport == "grpc" else _HttpClient(opts, request)
    )
    loop = asyncio.get_running_loop()
    stats = Stats()
    started = loop.time()
    window_start = started + opts.warmup
    window_end = window_start + opts.seconds
    issued = 0
    in_window = False
    stopping = False

    def open_window() -> None:
        nonlocal in_window
        in_window = True
        if not quiet:
            _emit("measure-start", t=time.time())

    def close_window() -> None:
        nonlocal in_window, stopping
        in_window = False
        stopping = True
        if not quiet:
            _emit("measure-end", t=time.time())

    opened = loop.call_at(window_start, open_window)
    closed = loop.call_at(window_end, close_window)
    items = request.items
    signal = request.signal
    latencies = stats.window_latencies

    async def worker(slot: int) -> None:
        nonlocal issued
        while not stopping and (not opts.max_requests or issued < opts.max_requests):
            issued += 1
            t0 = time.perf_counter()
            outcome, response = await client.send(slot)
            dt = time.perf_counter() - t0
            stats.requests += 1
            if outcome == "OK":
                rejected = _rejected(signal, response)
                stats.ok += 1
                stats.items_ok += items - rejected
                stats.rejected_items += rejected
                if in_window:
                    stats.window_ok += 1
                    stats.window_items += items - rejected
                    latencies.append(dt)
            else:
                stats.errors[outcome] += 1
                await asyncio.sleep(0.01)  # a refused or failed request: do not spin on the peer
        return

    try:
        await asyncio.gather(*(worker(slot) for slot in range(opts.concurrency)))
    finally:
        opened.cancel()
        closed.cancel()
        await client.close()
    if in_window:  # ended by max_requests before the window closed
        close_window()
    elapsed = loop.time() - started
    window = max(0.0, min(opts.seconds, elapsed - opts.warmup))
    lat = sorted(latencies)
    return {
        "signal": signal,
        "transport": opts.transport,
        "compression": opts.compression,
        "request_bytes": len(request.body),
        "items_per_request": items,
        "concurrency": opts.concurrency,
        "connections": opts.connections,
        "assign": opts.assign,
        "requests": stats.requests,
        "ok": stats.ok,
        "items_ok": stats.items_ok,
        "rejected_items": stats.rejected_items,
        "errors": dict(stats.errors),
        "window_seconds": window,
        "window_ok": stats.window_ok,
        "window_items": stats.window_items,
        "latency_p50_ms": _percentile(lat, 0.50) * 1000,
        "latency_p99_ms": _percentile(lat, 0.99) * 1000,
        "latency_max_ms": (lat[-1] if lat else 0.0) * 1000,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--endpoint", required=True, help="host:port of the collector's gRPC or HTTP receiver")
    p.add_argument("--signal", choices=SIGNALS, default="traces")
    p.add_argument("--transport", choices=("grpc", "http"), default="grpc")
    p.add_argument("--compression", choices=("none", "gzip"), default="none")
    p.add_argument("--resources", type=int, default=5)
    p.add_argument("--items", type=int, default=500, help="spans, log records or data points per request")
    p.add_argument("--attributes", type=int, default=8, help="attributes per span / record / point")
    p.add_argument("--concurrency", type=int, default=16, help="requests in flight")
    p.add_argument("--connections", type=int, default=1, help="gRPC channels (TCP connections)")
    p.add_argument(
        "--assign",
        choices=("rotate", "fixed"),
        default="rotate",
        help="gRPC: each request on the next channel (rotate), or request slot i always on channel i %% N "
        "(fixed: every channel is an independent closed-loop client)",
    )
    p.add_argument("--warmup", type=float, default=2.0)
    p.add_argument("--seconds", type=float, default=10.0, help="measurement window")
    p.add_argument("--max-requests", type=int, default=0)
    p.add_argument("--timeout", type=float, default=10.0, help="per request")
    p.add_argument(
        "--fresh-ids", action="store_true", help="traces over gRPC: new trace and span ids in every request"
    )
    a = p.parse_args(argv)
    opts = Options(**{k: v for k, v in vars(a).items()})
    result = asyncio.run(run(opts))
    _emit("result", **result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
