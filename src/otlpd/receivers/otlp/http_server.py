"""OTLP/HTTP: POST /v1/{traces,metrics,logs}, protobuf or JSON, compressed or not.

Replies use the request's content type; errors carry a google.rpc.Status in
that encoding (plain text only when the content type itself is unusable).
The body is read with a cap and inflated with a cap (see ``decompress``).
"""

from __future__ import annotations

import asyncio
import fnmatch
import time
from collections.abc import Mapping

from aiohttp import web
from google.protobuf.message import Message

from otlpd import otlpjson
from otlpd.config.endpoint import split_endpoint
from otlpd.errors import TooLargeError
from otlpd.pdata import Signal
from otlpd.receivers.otlp.config import HttpConfig
from otlpd.receivers.otlp.core import ReceiverCore, wire_error
from otlpd.receivers.otlp.decompress import UnsupportedEncoding, decompress

TRANSPORT = "http"
PROTOBUF = "application/x-protobuf"
JSON = "application/json"
_READ_CHUNK = 256 * 1024
_DEFAULT_CORS_HEADERS = ("content-type", "content-encoding", "accept", "accept-encoding", "x-requested-with")


class HttpServer:
    def __init__(
        self,
        core: ReceiverCore,
        config: HttpConfig,
        shutdown_timeout: float = 30.0,
        *,
        reuse_port: bool = False,
    ) -> None:
        self._core = core
        self._config = config
        self._reuse_port = reuse_port
        self._paths: Mapping[str, Signal] = {
            config.traces_url_path: Signal.TRACES,
            config.metrics_url_path: Signal.METRICS,
            config.logs_url_path: Signal.LOGS,
        }
        self._encodings = {e.lower() for e in config.compression_algorithms}
        self._runner = web.ServerRunner(
            web.Server(self._handle, auto_decompress=False), shutdown_timeout=shutdown_timeout
        )
        self._site: web.TCPSite | None = None
        self.port = 0

    async def start(self) -> None:
        host, port = split_endpoint(self._config.endpoint)
        ssl = self._config.tls.server_context() if self._config.tls else None
        await self._runner.setup()
        self._site = web.TCPSite(
            self._runner, host, port, ssl_context=ssl, backlog=1024, reuse_port=self._reuse_port or None
        )
        await self._site.start()
        self.port = int(self._runner.addresses[0][1])

    async def stop(self, grace: float) -> None:
        """Stop listening, give in-flight requests ``grace`` seconds, close connections.

        aiohttp's own wait is not bounded by our deadline (a handler blocked on a
        full queue could hold it), so the whole stop is.
        """
        if self._site is not None:
            await self._site.stop()
        try:
            await asyncio.wait_for(self._runner.cleanup(), grace)
        except TimeoutError:
            self._core.log_timeout()

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        headers = self._cors_headers(request)
        signal = self._paths.get(request.path)
        if signal is None or signal not in self._core.consumers:
            return _text(404, "404 not found", headers)
        if request.method == "OPTIONS" and self._config.cors is not None:
            return self._preflight(request, headers)
        if request.method != "POST":
            headers["Allow"] = "POST"
            return _text(405, "405 method not allowed, supported: [POST]", headers)
        started = time.perf_counter()
        content_type = request.content_type
        if content_type not in (PROTOBUF, JSON):
            self._core.record(signal, TRANSPORT, "415", time.perf_counter() - started)
            return _text(415, f"415 unsupported media type, supported: [{JSON}, {PROTOBUF}]", headers)
        is_json = content_type == JSON
        try:
            encoding = request.headers.get("Content-Encoding", "").strip().lower()
            if encoding not in self._encodings and encoding != "identity":
                raise UnsupportedEncoding(encoding)
            body = await self._read(request)
            data = decompress(encoding, body, self._config.max_request_body_size)
            response = await self._core.export(signal, data, json=is_json, transport=TRANSPORT)
        except UnsupportedEncoding as exc:
            self._core.record(signal, TRANSPORT, "415", time.perf_counter() - started)
            supported = ", ".join(sorted(e for e in self._encodings if e))
            return _text(
                415, f"415 unsupported content encoding {exc.encoding!r}, supported: [{supported}]", headers
            )
        except Exception as exc:
            wire = wire_error(exc)
            self._core.record(signal, TRANSPORT, str(wire.http_status), time.perf_counter() - started)
            after = wire.retry_after_header()
            if after is not None:
                headers["Retry-After"] = after
            return _message(wire.http_status, wire.status(), is_json, headers)
        self._core.record(signal, TRANSPORT, "200", time.perf_counter() - started)
        return _message(200, response, is_json, headers)

    async def _read(self, request: web.BaseRequest) -> bytes:
        limit = self._config.max_request_body_size
        too_large = TooLargeError(f"request body exceeds the limit of {limit} bytes")
        if request.content_length is not None and request.content_length > limit:
            raise too_large
        chunks: list[bytes] = []
        total = 0
        while True:
            chunk = await request.content.read(_READ_CHUNK)
            if not chunk:
                break
            total += len(chunk)
            if total > limit:
                raise too_large
            chunks.append(chunk)
        return b"".join(chunks)

    def _cors_headers(self, request: web.BaseRequest) -> dict[str, str]:
        headers = dict(self._config.response_headers)
        cors = self._config.cors
        origin = request.headers.get("Origin")
        if cors is None or origin is None:
            return headers
        if any(fnmatch.fnmatchcase(origin, pattern) for pattern in cors.allowed_origins):
            headers["Access-Control-Allow-Origin"] = origin
            headers["Vary"] = "Origin"
        return headers

    def _preflight(self, request: web.BaseRequest, headers: dict[str, str]) -> web.Response:
        cors = self._config.cors
        assert cors is not None
        if "Access-Control-Allow-Origin" in headers:
            allowed = {h.lower() for h in (*_DEFAULT_CORS_HEADERS, *cors.allowed_headers)}
            asked = request.headers.get("Access-Control-Request-Headers", "")
            wanted = [h.strip() for h in asked.split(",") if h.strip()]
            if "*" in cors.allowed_headers or all(h.lower() in allowed for h in wanted):
                headers["Access-Control-Allow-Methods"] = "POST"
                if wanted:
                    headers["Access-Control-Allow-Headers"] = ", ".join(wanted)
                if cors.max_age:
                    headers["Access-Control-Max-Age"] = str(cors.max_age)
        return web.Response(status=204, headers=headers)


def _text(status: int, text: str, headers: dict[str, str]) -> web.Response:
    return web.Response(status=status, text=text, headers=headers)


def _message(status: int, message: Message, is_json: bool, headers: dict[str, str]) -> web.Response:
    if is_json:
        return web.Response(status=status, body=otlpjson.dumps(message), content_type=JSON, headers=headers)
    return web.Response(
        status=status, body=message.SerializeToString(), content_type=PROTOBUF, headers=headers
    )
