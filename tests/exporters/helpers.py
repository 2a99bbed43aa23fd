"""Shared by the exporter and processor tests: requests, metrics, senders, small peers.

Everything here talks over real sockets on 127.0.0.1; the peers below exist
only for answers the shared :class:`~tests.support.sink.Sink` cannot give
(partial success) or to look at the bytes on the wire (compression).
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import urllib.error
import urllib.request
import zlib
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import grpc
import zstandard
from aiohttp import web
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2 as logs_svc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2 as metrics_svc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as trace_svc

from otlpd import otlpjson
from otlpd.component import ComponentID, Kind, Settings
from otlpd.exporters.helper.component import ExporterComponent
from otlpd.pdata import ExportRequest, Payload, Signal
from otlpd.service import registry
from otlpd.telemetry.metrics import Metrics

# Fast retries: tests must not wait for the Collector's 5 s initial interval.
FAST_RETRY = {"initial_interval": "10ms", "max_interval": "50ms", "max_elapsed_time": "20s"}


# --- requests ---------------------------------------------------------------------------------


def traces(n: int, tag: str = "t", *, attr_bytes: int = 0) -> trace_svc.ExportTraceServiceRequest:
    """``n`` spans named ``{tag}-{i}`` with distinct valid ids, under one resource."""
    m = trace_svc.ExportTraceServiceRequest()
    rs = m.resource_spans.add()
    kv = rs.resource.attributes.add()
    kv.key, kv.value.string_value = "service.name", f"svc-{tag}"
    ss = rs.scope_spans.add()
    ss.scope.name = "tests"
    for i in range(n):
        s = ss.spans.add()
        s.name = f"{tag}-{i}"
        s.trace_id = zlib.crc32(tag.encode()).to_bytes(8, "big") + (i + 1).to_bytes(8, "big")
        s.span_id = (i + 1).to_bytes(8, "big")
        s.start_time_unix_nano = 1_700_000_000_000_000_000 + i
        s.end_time_unix_nano = 1_700_000_000_000_000_100 + i
        if attr_bytes:
            a = s.attributes.add()
            a.key, a.value.string_value = "blob", "x" * attr_bytes
    return m


def logs(n: int, tag: str = "l") -> logs_svc.ExportLogsServiceRequest:
    m = logs_svc.ExportLogsServiceRequest()
    sl = m.resource_logs.add().scope_logs.add()
    for i in range(n):
        r = sl.log_records.add()
        r.time_unix_nano = 1_700_000_000_000_000_000 + i
        r.severity_text = "INFO"
        r.severity_number = 9
        r.body.string_value = f"{tag}-{i}"
    return m


def metrics(points_per_metric: list[int], tag: str = "m") -> metrics_svc.ExportMetricsServiceRequest:
    """One gauge per entry, each with that many data points."""
    m = metrics_svc.ExportMetricsServiceRequest()
    sm = m.resource_metrics.add().scope_metrics.add()
    for i, points in enumerate(points_per_metric):
        metric = sm.metrics.add()
        metric.name = f"{tag}-{i}"
        for j in range(points):
            p = metric.gauge.data_points.add()
            p.time_unix_nano = 1_700_000_000_000_000_000 + j
            p.as_int = j
    return m


def payload(signal: Signal, message: ExportRequest) -> Payload:
    return Payload.from_message(signal, message)


def span_names(messages: list[Any]) -> list[str]:
    return [s.name for m in messages for rs in m.resource_spans for ss in rs.scope_spans for s in ss.spans]


# --- metrics -----------------------------------------------------------------------------------


def metric(m: Metrics, name: str, **labels: str) -> float:
    """Sum of a metric's samples in ``m`` whose labels include ``labels``."""
    total = 0.0
    for family in m.registry.collect():
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


# --- exporters in-process ------------------------------------------------------------------------


def build_exporter(type_: str, config: dict[str, Any], m: Metrics, name: str = "") -> Any:
    """An exporter component built the way the service builds it: factory + validated config."""
    factory = registry.lookup(Kind.EXPORTER, type_)
    assert factory is not None
    cid = ComponentID(type_, name)
    return factory.create(Settings(cid, factory.config.model_validate(config), m))


@contextlib.asynccontextmanager
async def running(
    type_: str, config: dict[str, Any], signal: Signal = Signal.TRACES, name: str = ""
) -> AsyncIterator[Running]:
    """Start an exporter for one signal; shut it down (deadline 5 s) on exit."""
    m = Metrics()
    component = build_exporter(type_, config, m, name)
    consumer = component.consumer(signal)
    await component.start()
    r = Running(component, consumer, m, str(ComponentID(type_, name)), signal)
    try:
        yield r
    finally:
        if not r.stopped:
            await r.shutdown(5.0)


@dataclass
class Running:
    component: ExporterComponent
    consumer: Any
    metrics: Metrics
    id: str
    signal: Signal
    stopped: bool = False

    def m(self, name: str, **labels: str) -> float:
        return metric(self.metrics, name, exporter=self.id, signal=self.signal.value, **labels)

    async def shutdown(self, within: float) -> None:
        self.stopped = True
        await self.component.shutdown(asyncio.get_running_loop().time() + within)


async def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Poll ``predicate`` on the running loop (a Sink lives in its own thread)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.01)
    return predicate()


# --- peers ---------------------------------------------------------------------------------------


@dataclass
class PartialPeer:
    """An OTLP peer (gRPC + HTTP) that accepts every request but reports some items rejected."""

    rejected: int
    message: str = "some items were bad"
    grpc_port: int = 0
    http_port: int = 0
    requests: list[tuple[str, bytes, str]] = field(default_factory=list)  # transport, body, ctype

    def response(self, signal: Signal) -> Any:
        r = signal.response_type()
        setattr(r.partial_success, f"rejected_{signal.item_name}", self.rejected)
        r.partial_success.error_message = self.message
        return r


@contextlib.asynccontextmanager
async def partial_peer(rejected: int) -> AsyncIterator[PartialPeer]:
    peer = PartialPeer(rejected)
    server = grpc.aio.server()
    for signal in Signal:

        def grpc_export(sig: Signal) -> Any:
            async def export(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
                peer.requests.append(("grpc", request, "application/grpc"))
                return bytes(peer.response(sig).SerializeToString())

            return export

        handler = grpc.unary_unary_rpc_method_handler(grpc_export(signal))
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(signal.grpc_service, {"Export": handler}),)
        )
    peer.grpc_port = server.add_insecure_port("127.0.0.1:0")
    await server.start()

    def http_export(sig: Signal) -> Any:
        async def export(request: web.Request) -> web.Response:
            body = await request.read()
            peer.requests.append(("http", body, request.content_type))
            response = peer.response(sig)
            if request.content_type == "application/json":
                return web.Response(body=otlpjson.dumps(response), content_type="application/json")
            return web.Response(body=response.SerializeToString(), content_type="application/x-protobuf")

        return export

    app = web.Application()
    for signal in Signal:
        app.router.add_post(f"/v1/{signal.value}", http_export(signal))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    peer.http_port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield peer
    finally:
        await runner.cleanup()
        await server.stop(0)


@dataclass
class RawRequest:
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes  # as it came off the wire (still compressed)

    def inflated(self) -> bytes:
        """The body with its Content-Encoding undone."""
        body = self.body
        encoding = self.headers.get("content-encoding", "")
        if encoding == "gzip":
            body = gzip.decompress(body)
        elif encoding == "deflate":
            body = zlib.decompress(body)
        elif encoding == "zstd":
            body = zstandard.ZstdDecompressor().decompressobj().decompress(body)
        else:
            assert not encoding, encoding
        return body

    def decoded(self, signal: Signal) -> Any:
        """The request message, after undoing Content-Encoding and the JSON/protobuf encoding."""
        body = self.inflated()
        message = signal.request_type()
        if self.headers.get("content-type") == "application/json":
            otlpjson.parse(body, message)
        else:
            message.ParseFromString(body)
        return message


@dataclass
class HttpPeer:
    """An OTLP/HTTP peer that keeps requests exactly as they arrived (no decompression)."""

    port: int = 0
    requests: list[RawRequest] = field(default_factory=list)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextlib.asynccontextmanager
async def http_peer() -> AsyncIterator[HttpPeer]:
    peer = HttpPeer()

    async def handle(request: web.BaseRequest) -> web.Response:
        body = await request.read()
        headers = {k.lower(): v for k, v in request.headers.items()}
        peer.requests.append(RawRequest(request.path, headers, body))
        return web.Response(body=b"", content_type="application/x-protobuf")

    runner = web.ServerRunner(web.Server(handle, auto_decompress=False), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    peer.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield peer
    finally:
        await runner.cleanup()


@dataclass
class Proxy:
    """A TCP relay: counts the bytes a client sends (a request's size on the wire) and the
    connections it took; ``target`` may be changed to send new connections elsewhere."""

    port: int = 0
    target: int = 0
    upstream_bytes: int = 0
    connections: int = 0


@contextlib.asynccontextmanager
async def byte_counting_proxy(target_port: int) -> AsyncIterator[Proxy]:
    proxy = Proxy(target=target_port)
    tasks: set[asyncio.Task[None]] = set()

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, count: bool) -> None:
        try:
            while data := await reader.read(65536):
                if count:
                    proxy.upstream_bytes += len(data)
                writer.write(data)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def on_client(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        proxy.connections += 1
        try:
            up_r, up_w = await asyncio.open_connection("127.0.0.1", proxy.target)
        except OSError:  # nothing listens there (a test stopped the peer): refuse this client
            client_w.close()
            return
        for t in (pipe(client_r, up_w, True), pipe(up_r, client_w, False)):
            task = asyncio.create_task(t)
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    server = await asyncio.start_server(on_client, "127.0.0.1", 0)
    proxy.port = server.sockets[0].getsockname()[1]
    try:
        yield proxy
    finally:
        server.close()
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


# --- whole-process helpers -------------------------------------------------------------------------


def post(base_url: str, signal: Signal, message: ExportRequest) -> int:
    """POST one protobuf request to an OTLP/HTTP endpoint; the HTTP status."""
    req = urllib.request.Request(
        f"{base_url}/v1/{signal.value}",
        data=message.SerializeToString(),
        headers={"Content-Type": "application/x-protobuf"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as err:
        return int(err.code)


def events(log_events: list[dict[str, Any]], logger: str) -> Iterator[dict[str, Any]]:
    return (e for e in log_events if e.get("logger") == logger)


def as_json(message: ExportRequest) -> Any:
    return json.loads(otlpjson.dumps(message))


def upstream(kind: str, sink: Any, **extra: Any) -> dict[str, Any]:
    """Config of an ``otlp`` or ``otlphttp`` exporter pointed at ``sink``, with fast retries."""
    retry = {**FAST_RETRY, **extra.pop("retry_on_failure", {})}
    if kind == "otlp":
        base: dict[str, Any] = {"endpoint": sink.grpc_endpoint, "tls": {"insecure": True}}
    else:
        base = {"endpoint": sink.http_endpoint}
    return {**base, "retry_on_failure": retry, **extra}


# --- async tests without a plugin ----------------------------------------------------------------


def run_async_test(pyfuncitem: Any) -> bool | None:
    """``pytest_pyfunc_call`` body: run ``async def`` tests with asyncio.run (60 s cap)."""
    import inspect

    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    args = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
    asyncio.run(asyncio.wait_for(pyfuncitem.obj(**args), 60))
    return True
