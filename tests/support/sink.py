"""A real OTLP peer for tests: gRPC and HTTP servers that record what they get.

It can be told to fail the next N requests with a chosen gRPC code / HTTP
status (optionally with RetryInfo / Retry-After) and to answer slowly, so
exporter retry and shutdown behaviour is tested against real sockets.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
from aiohttp import web
from google.protobuf import duration_pb2
from google.rpc import error_details_pb2, status_pb2

from otlpd.pdata import Signal


@dataclass
class Failure:
    grpc_code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE
    http_status: int = 503
    retry_after: float | None = None  # RetryInfo (gRPC) / Retry-After (HTTP)


@dataclass
class Received:
    signal: Signal
    body: bytes  # serialized protobuf request (HTTP JSON bodies are converted)
    transport: str
    headers: dict[str, str]
    at: float


@dataclass
class SinkState:
    received: list[Received] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)  # consumed one per request
    attempts: int = 0
    delay: float = 0.0  # seconds to wait before answering

    def messages(self, signal: Signal) -> list[Any]:
        out = []
        for r in self.received:
            if r.signal is signal:
                m = signal.request_type()
                m.ParseFromString(r.body)
                out.append(m)
        return out

    def items(self, signal: Signal) -> int:
        from otlpd.pdata import count_items

        return sum(count_items(signal, m) for m in self.messages(signal))


class Sink:
    """Runs on its own event loop in a thread, so sync tests and subprocesses can use it."""

    def __init__(self) -> None:
        self.state = SinkState()
        self.grpc_port = 0
        self.http_port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._grpc: grpc.aio.Server | None = None
        self._runner: web.AppRunner | None = None

    def __enter__(self) -> Sink:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    @property
    def grpc_endpoint(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def http_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def fail_next(self, n: int, failure: Failure | None = None) -> None:
        self.state.failures.extend([failure or Failure()] * n)

    def wait_for_items(self, signal: Signal, n: int, timeout: float = 10.0) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.state.items(signal)
            if got >= n:
                return got
            time.sleep(0.02)
        return self.state.items(signal)

    def wait_until(self, predicate: Callable[[SinkState], bool], timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self.state):
                return True
            time.sleep(0.02)
        return False

    async def _respond(self) -> Failure | None:
        self.state.attempts += 1
        if self.state.delay:
            await asyncio.sleep(self.state.delay)
        if self.state.failures:
            return self.state.failures.pop(0)
        return None

    async def _start(self) -> None:
        server = grpc.aio.server()
        for signal in Signal:
            handler = grpc.unary_unary_rpc_method_handler(self._grpc_handler(signal))
            server.add_generic_rpc_handlers(
                (grpc.method_handlers_generic_handler(signal.grpc_service, {"Export": handler}),)
            )
        self.grpc_port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        self._grpc = server
        app = web.Application(client_max_size=64 * 1024 * 1024)
        for signal in Signal:
            app.router.add_post(f"/v1/{signal.value}", self._http_handler(signal))
        # auto_decompress off: aiohttp cannot inflate zstd, so the handler inflates everything
        self._runner = web.AppRunner(app, access_log=None, auto_decompress=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.http_port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def _stop(self) -> None:
        if self._grpc is not None:
            await self._grpc.stop(0)
        if self._runner is not None:
            await self._runner.cleanup()

    def _grpc_handler(self, signal: Signal) -> Any:
        async def export(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
            failure = await self._respond()
            if failure is not None:
                st = status_pb2.Status(code=failure.grpc_code.value[0], message="sink told to fail")
                if failure.retry_after is not None:
                    info = error_details_pb2.RetryInfo(
                        retry_delay=duration_pb2.Duration(
                            seconds=int(failure.retry_after), nanos=int((failure.retry_after % 1) * 1e9)
                        )
                    )
                    st.details.add().Pack(info)
                await context.abort(
                    failure.grpc_code,
                    "sink told to fail",
                    trailing_metadata=(("grpc-status-details-bin", st.SerializeToString()),),
                )
            headers = {k: v for k, v in context.invocation_metadata() or () if isinstance(v, str)}
            self.state.received.append(Received(signal, request, "grpc", headers, time.monotonic()))
            return b""

        return export

    def _http_handler(self, signal: Signal) -> Any:
        from otlpd import otlpjson

        async def export(request: web.Request) -> web.Response:
            failure = await self._respond()
            if failure is not None:
                headers = {}
                if failure.retry_after is not None:
                    headers["Retry-After"] = str(int(failure.retry_after))
                return web.Response(status=failure.http_status, text="sink told to fail", headers=headers)
            body = _inflate(request.headers.get("Content-Encoding", ""), await request.read())
            if request.content_type == "application/json":
                m = signal.request_type()
                otlpjson.parse(body, m)
                body = m.SerializeToString()
            self.state.received.append(
                Received(signal, body, "http", dict(request.headers), time.monotonic())
            )
            return web.Response(body=b"", content_type="application/x-protobuf")

        return export


def _inflate(encoding: str, body: bytes) -> bytes:
    import zlib

    import zstandard

    if encoding == "gzip":
        return zlib.decompress(body, zlib.MAX_WBITS | 16)
    if encoding == "deflate":
        try:
            return zlib.decompress(body)
        except zlib.error:
            return zlib.decompress(body, -zlib.MAX_WBITS)
    if encoding == "zstd":
        return zstandard.ZstdDecompressor().decompressobj().decompress(body)
    return body
