"""Null sink: accepts OTLP exports over gRPC and HTTP/protobuf and answers OK at once.

Nothing is decoded into messages. To tell whether a collector delivered what
it accepted, the sink counts items (spans, log records, data points) by
walking only the protobuf framing down to the repeated item field: the item
bodies are skipped by their length prefix, never parsed. A resource-level
sub-message seen before is counted from a small cache keyed by its bytes, so
the usual cost is one hash per resource. ``--no-count`` turns counting off.

It prints one JSON line with its ports when it is listening, serves
``GET /stats`` (JSON counters) on its HTTP port, and prints the final counters
on SIGTERM/SIGINT.

    python -m bench.sink            # ports chosen by the OS
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
import zlib
from typing import Any

import grpc
from aiohttp import web

from bench.requests import GRPC_METHODS

_SIGNAL_OF_METHOD = {method: signal for signal, method in GRPC_METHODS.items()}
_METRIC_DATA_FIELDS = frozenset({5, 7, 9, 10, 11})  # gauge, sum, histogram, exponential_histogram, summary


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    b = buf[pos]
    pos += 1
    if b < 0x80:
        return b, pos
    result = b & 0x7F
    shift = 7
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7


def _submessages(buf: bytes, start: int, end: int, wanted: int | frozenset[int]) -> list[tuple[int, int]]:
    """(start, end) of every length-delimited field ``wanted`` in buf[start:end]; others skipped."""
    out = []
    pos = start
    many = isinstance(wanted, frozenset)
    while pos < end:
        key, pos = _varint(buf, pos)
        wire = key & 7
        if wire == 2:
            length, pos = _varint(buf, pos)
            number = key >> 3
            if (number in wanted) if many else (number == wanted):  # type: ignore[operator]
                out.append((pos, pos + length))
            pos += length
        elif wire == 0:
            _, pos = _varint(buf, pos)
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        else:
            raise ValueError(f"unsupported wire type {wire}")
    return out


def _count_in_resource(signal: str, buf: bytes, start: int, end: int) -> int:
    total = 0
    for s_start, s_end in _submessages(buf, start, end, 2):  # scope_spans / scope_logs / scope_metrics
        items = _submessages(buf, s_start, s_end, 2)  # spans / log_records / metrics
        if signal != "metrics":
            total += len(items)
            continue
        for m_start, m_end in items:
            for d_start, d_end in _submessages(buf, m_start, m_end, _METRIC_DATA_FIELDS):
                total += len(_submessages(buf, d_start, d_end, 1))  # data_points
    return total


class ItemCounter:
    """Counts items in serialized Export*ServiceRequest bytes without building messages."""

    def __init__(self, cache_size: int = 4096) -> None:
        self._cache: dict[tuple[str, bytes], int] = {}
        self._cache_size = cache_size

    def count(self, signal: str, data: bytes) -> int:
        total = 0
        cache = self._cache
        for start, end in _submessages(data, 0, len(data), 1):  # resource_spans / _logs / _metrics
            key = (signal, data[start:end])
            n = cache.get(key)
            if n is None:
                n = _count_in_resource(signal, data, start, end)
                if len(cache) < self._cache_size:
                    cache[key] = n
            total += n
        return total


class Sink:
    def __init__(self, count: bool = True) -> None:
        self.counter = ItemCounter() if count else None
        self.stats: dict[str, Any] = {
            "requests": 0,
            "bytes": 0,
            "items": {"traces": 0, "metrics": 0, "logs": 0},
            "by_transport": {"grpc": 0, "http": 0},
            "counting": count,
        }

    def record(self, signal: str, data: bytes, transport: str) -> None:
        st = self.stats
        st["requests"] += 1
        st["bytes"] += len(data)
        st["by_transport"][transport] += 1
        if self.counter is not None:
            st["items"][signal] += self.counter.count(signal, data)


class _GrpcHandler(grpc.GenericRpcHandler):
    def __init__(self, sink: Sink) -> None:
        self._sink = sink
        self._handlers = {
            method: grpc.unary_unary_rpc_method_handler(self._export(signal))
            for method, signal in _SIGNAL_OF_METHOD.items()
        }

    def service(
        self, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        return self._handlers.get(handler_call_details.method)  # type: ignore[return-value]

    def _export(self, signal: str) -> Any:
        sink = self._sink

        async def export(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
            sink.record(signal, request, "grpc")
            return b""

        return export


async def serve(host: str, grpc_port: int, http_port: int, count: bool) -> None:
    sink = Sink(count)
    server = grpc.aio.server(
        options=[("grpc.max_receive_message_length", -1), ("grpc.max_send_message_length", -1)]
    )
    server.add_generic_rpc_handlers((_GrpcHandler(sink),))
    bound_grpc = server.add_insecure_port(f"{host}:{grpc_port}")
    await server.start()

    async def http_export(request: web.Request) -> web.Response:
        sig = request.match_info["signal"]
        if sig not in sink.stats["items"]:
            return web.Response(status=404)
        body = await request.read()
        if request.headers.get("Content-Encoding", "").lower() == "gzip" and sink.counter is not None:
            body = zlib.decompress(body, zlib.MAX_WBITS | 16)
        sink.record(sig, body, "http")
        return web.Response(body=b"", content_type="application/x-protobuf")

    async def stats(_: web.Request) -> web.Response:
        return web.json_response(sink.stats)

    app = web.Application(client_max_size=1 << 30)
    app.router.add_post("/v1/{signal}", http_export)
    app.router.add_get("/stats", stats)
    runner = web.AppRunner(app, access_log=None, auto_decompress=False)
    await runner.setup()
    site = web.TCPSite(runner, host, http_port)
    await site.start()
    bound_http = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    print(json.dumps({"event": "listening", "grpc_port": bound_grpc, "http_port": bound_http}), flush=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop(0)
    await runner.cleanup()
    print(json.dumps({"event": "stats", **sink.stats}), flush=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--grpc-port", type=int, default=0)
    p.add_argument("--http-port", type=int, default=0)
    p.add_argument("--no-count", action="store_true", help="do not count items (requests and bytes only)")
    a = p.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(a.host, a.grpc_port, a.http_port, not a.no_count))
    return 0


if __name__ == "__main__":
    sys.exit(main())
