"""The ``otlphttp`` exporter: OTLP/HTTP with protobuf (bytes as they are) or JSON."""

from __future__ import annotations

import zlib

import aiohttp
import zstandard
from google.protobuf.message import DecodeError
from google.rpc import status_pb2

from otlpd import otlpjson
from otlpd.errors import InvalidDataError, OtlpdError, PermanentError, RetryableError, ThrottledError
from otlpd.exporters.common import parse_retry_after, rejected_items
from otlpd.exporters.helper.sender import SendFn
from otlpd.exporters.otlphttp.config import OtlpHttpExporterConfig
from otlpd.pdata import Payload, Signal
from otlpd.telemetry import logging as otlpd_logging

_RETRYABLE_STATUS = frozenset({429, 502, 503, 504})  # OTLP spec: nothing else is retried


class OtlpHttpExporter:
    def __init__(self, name: str, config: OtlpHttpExporterConfig) -> None:
        self._config = config
        self._log = otlpd_logging.get(f"exporter.{name}")
        self._session: aiohttp.ClientSession | None = None
        self._zstd = zstandard.ZstdCompressor(level=3)

    async def start(self) -> None:
        c = self._config
        urls = [c.url(s) for s in Signal]
        # tls.insecure (plaintext) is for gRPC: an https:// URL is always verified, as in the Collector
        needs_tls = any(u.startswith("https://") for u in urls)
        ssl = c.tls.client_context() if needs_tls else False
        connector = aiohttp.TCPConnector(
            ssl=ssl, limit=c.max_idle_conns or 0, keepalive_timeout=c.idle_conn_timeout or None
        )
        self._session = aiohttp.ClientSession(connector=connector, auto_decompress=True)

    def _encode(self, payload: Payload) -> tuple[bytes, dict[str, str]]:
        c = self._config
        if c.encoding == "json":
            body, ctype = otlpjson.dumps(payload.message), "application/json"
            payload.release()  # a retry decodes again; meanwhile the queue holds only bytes
        else:
            body, ctype = payload.data, "application/x-protobuf"
        headers = {"Content-Type": ctype, **c.headers}
        if c.compression == "gzip":
            # wbits 31 = gzip container; level 1 as the Collector's default speed-first choice
            compressor = zlib.compressobj(1, zlib.DEFLATED, 31)
            body = compressor.compress(body) + compressor.flush()
            headers["Content-Encoding"] = "gzip"
        elif c.compression == "zstd":
            body = self._zstd.compress(body)
            headers["Content-Encoding"] = "zstd"
        elif c.compression == "deflate":
            body = zlib.compress(body, 1)
            headers["Content-Encoding"] = "deflate"
        return body, headers

    def sender(self, signal: Signal) -> SendFn:
        url = self._config.url(signal)
        timeout = aiohttp.ClientTimeout(total=self._config.timeout or None)
        tls = url.startswith("https://")
        server_hostname = (self._config.tls.server_name_override or None) if tls else None

        async def send(payload: Payload) -> int:
            assert self._session is not None, "exporter not started"
            body, headers = self._encode(payload)
            try:
                async with self._session.post(
                    url, data=body, headers=headers, timeout=timeout, server_hostname=server_hostname
                ) as resp:
                    content = await resp.read()
                    if 200 <= resp.status < 300:
                        is_json = resp.content_type == "application/json"
                        return rejected_items(payload, content, json=is_json, log=self._log)
                    raise _typed(resp.status, resp.content_type, content, resp.headers.get("Retry-After"))
            except OtlpdError:
                raise
            except (aiohttp.ClientError, OSError) as exc:
                raise RetryableError(f"cannot reach {url}: {exc or type(exc).__name__}") from None
            except TimeoutError:
                raise RetryableError(f"request to {url} timed out") from None

        return send

    async def shutdown(self) -> None:
        if self._session is not None:
            await self._session.close()


def _typed(status: int, ctype: str, content: bytes, retry_after: str | None) -> OtlpdError:
    detail = _status_message(ctype, content)
    message = f"upstream returned HTTP {status}" + (f": {detail}" if detail else "")
    if status == 429:
        return ThrottledError(message, parse_retry_after(retry_after))
    if status in _RETRYABLE_STATUS:
        return RetryableError(message, parse_retry_after(retry_after))
    return PermanentError(message)


def _status_message(ctype: str, content: bytes) -> str:
    if not content:
        return ""
    status = status_pb2.Status()
    try:
        if ctype == "application/json":
            otlpjson.parse(content, status)
        elif ctype == "application/x-protobuf":
            status.ParseFromString(content)
        else:
            return content[:200].decode(errors="replace").strip()
    except (DecodeError, InvalidDataError):
        return content[:200].decode(errors="replace").strip()
    return str(status.message)
