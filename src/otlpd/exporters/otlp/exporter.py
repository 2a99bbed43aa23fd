"""The ``otlp`` exporter: OTLP/gRPC with the request bytes sent as they are.

With gzip (the default) the messages go through :mod:`.h2client`, which
compresses them at a fast level itself; gRPC Python can only compress at
level 6. Everything else (no compression, deflate, and the settings only
gRPC core implements: ``balancer_name``, ``keepalive``, targets that are not
``host:port``) uses grpcio.
"""

from __future__ import annotations

import os
import ssl
from typing import Any

import grpc
from google.rpc import error_details_pb2, status_pb2

from otlpd.errors import OtlpdError, PermanentError, RetryableError, ThrottledError
from otlpd.exporters.common import rejected_items
from otlpd.exporters.helper.sender import SendFn
from otlpd.exporters.otlp import h2client
from otlpd.exporters.otlp.config import OtlpGrpcExporterConfig
from otlpd.pdata import Payload, Signal
from otlpd.telemetry import logging as otlpd_logging

_GRPC_ROOTS = "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH"

# OTLP spec, "Failures": codes a client should retry.
_RETRYABLE = frozenset({
    grpc.StatusCode.CANCELLED, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.ABORTED,
    grpc.StatusCode.OUT_OF_RANGE, grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DATA_LOSS,
})  # fmt: skip

USE_H2 = True
"""Internal switch: send gzip through :mod:`.h2client` (fast level) instead of grpcio (level 6)."""


def target_of(endpoint: str) -> tuple[str, bool | None]:
    """gRPC target and whether the scheme asks for TLS (None: no scheme given)."""
    for scheme, secure in (("https://", True), ("http://", False)):
        if endpoint.startswith(scheme):
            return endpoint[len(scheme) :].rstrip("/"), secure
    return endpoint, None


def host_port(target: str) -> tuple[str, int] | None:
    """``(host, port)`` of a ``host:port`` / ``[v6]:port`` target; None for anything else."""
    host, sep, port = target.rpartition(":")
    if not sep or not port.isdigit() or not host or "/" in host:
        return None
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        return None
    return host, int(port)


class OtlpGrpcExporter:
    def __init__(self, name: str, config: OtlpGrpcExporterConfig) -> None:
        self._config = config
        self._log = otlpd_logging.get(f"exporter.{name}")
        self._channel: grpc.aio.Channel | None = None
        self._metadata = tuple((k.lower(), v) for k, v in config.headers.items())
        self._compression = {"gzip": grpc.Compression.Gzip, "deflate": grpc.Compression.Deflate}.get(
            config.compression, grpc.Compression.NoCompression
        )
        self._h2: h2client.H2Channel | None = None

    def _h2_channel(self) -> h2client.H2Channel | None:
        """The h2 client, when the config asks for gzip and nothing only grpcio does."""
        c = self._config
        keepalive = c.keepalive is not None and bool(c.keepalive.time or c.keepalive.timeout)
        if not USE_H2 or c.compression != "gzip" or c.balancer_name or keepalive:
            return None
        target, secure = target_of(c.endpoint)
        address = host_port(target)
        if address is None:
            return None
        insecure = c.tls.insecure if secure is None else not secure
        context: ssl.SSLContext | None = None
        if not insecure:
            context = c.tls.client_context()
            if not (c.tls.ca_file or c.tls.ca_pem) and (roots := os.environ.get(_GRPC_ROOTS)):
                context.load_verify_locations(roots)  # gRPC's own roots override, as grpcio honours it
            context.set_alpn_protocols(["h2"])
        name = c.tls.server_name_override or address[0]
        return h2client.H2Channel(
            address[0],
            address[1],
            ssl_context=context,
            server_hostname=name if context is not None else None,
            authority=c.authority or c.tls.server_name_override or target,
            max_recv=c.max_recv_msg_size_mib * 1024 * 1024,
            wait_for_ready=c.wait_for_ready,
            metadata=self._metadata,
            timeout=c.timeout or None,
        )

    def _options(self) -> list[tuple[str, Any]]:
        c = self._config
        opts: list[tuple[str, Any]] = [
            ("grpc.max_send_message_length", -1),
            ("grpc.max_receive_message_length", c.max_recv_msg_size_mib * 1024 * 1024),
        ]
        if c.balancer_name:
            opts.append(("grpc.lb_policy_name", c.balancer_name))
        if c.authority:
            opts.append(("grpc.default_authority", c.authority))
        if c.tls.server_name_override:
            opts.append(("grpc.ssl_target_name_override", c.tls.server_name_override))
        if c.keepalive is not None:
            if c.keepalive.time:
                opts.append(("grpc.keepalive_time_ms", int(c.keepalive.time * 1000)))
            if c.keepalive.timeout:
                opts.append(("grpc.keepalive_timeout_ms", int(c.keepalive.timeout * 1000)))
            if c.keepalive.permit_without_stream:
                opts.append(("grpc.keepalive_permit_without_calls", 1))
        return opts

    async def start(self) -> None:
        c = self._config
        self._h2 = self._h2_channel()
        if self._h2 is not None:
            return
        target, secure = target_of(c.endpoint)
        insecure = c.tls.insecure if secure is None else not secure
        if insecure:
            self._channel = grpc.aio.insecure_channel(target, options=self._options())
        else:
            creds = grpc.ssl_channel_credentials(
                root_certificates=c.tls.read(c.tls.ca_file, c.tls.ca_pem),
                private_key=c.tls.read(c.tls.key_file, c.tls.key_pem),
                certificate_chain=c.tls.read(c.tls.cert_file, c.tls.cert_pem),
            )
            self._channel = grpc.aio.secure_channel(target, creds, options=self._options())

    def sender(self, signal: Signal) -> SendFn:
        method = f"/{signal.grpc_service}/Export"
        timeout = self._config.timeout or None
        wait_for_ready = self._config.wait_for_ready
        call: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] | None = None

        async def send(payload: Payload) -> int:
            nonlocal call
            if self._h2 is not None:
                try:
                    raw = await self._h2.unary(method, h2client.compress(payload.data))
                except h2client.CallError as exc:
                    raise typed_error(exc.code, exc.details, exc.status_details) from None
                return rejected_items(payload, raw, json=False, log=self._log)
            if call is None:  # the channel exists only once the exporter has started
                assert self._channel is not None, "exporter not started"
                call = self._channel.unary_unary(method)
            try:
                raw = await call(
                    payload.data,
                    timeout=timeout,
                    metadata=self._metadata,
                    compression=self._compression,
                    wait_for_ready=wait_for_ready,
                )
            except grpc.aio.AioRpcError as exc:
                raise typed_error(exc.code(), exc.details() or "", _status_details(exc)) from None
            return rejected_items(payload, raw, json=False, log=self._log)

        return send

    async def shutdown(self) -> None:
        if self._h2 is not None:
            await self._h2.close()
        if self._channel is not None:
            await self._channel.close()


def typed_error(code: grpc.StatusCode, details: str, status_details: bytes | None) -> OtlpdError:
    """otlpd's typed error for a failed call: ``code``, its message, grpc-status-details-bin."""
    message = f"upstream returned {code.name}: {details}"
    retry_after = retry_info(status_details)
    if code is grpc.StatusCode.RESOURCE_EXHAUSTED:
        # Retryable only when the server says when (RetryInfo), per the OTLP spec.
        if retry_after is not None:
            return ThrottledError(message, retry_after)
        return PermanentError(message)
    if code in _RETRYABLE:
        return RetryableError(message, retry_after)
    return PermanentError(message)


def _status_details(exc: grpc.aio.AioRpcError) -> bytes | None:
    for key, value in exc.trailing_metadata() or ():
        if key == "grpc-status-details-bin" and isinstance(value, bytes):
            return value
    return None


def retry_info(status_details: bytes | None) -> float | None:
    """The RetryInfo delay in a serialized ``google.rpc.Status``, if any."""
    if not status_details:
        return None
    status = status_pb2.Status()
    try:
        status.ParseFromString(status_details)
    except Exception:
        return None
    for detail in status.details:
        info = error_details_pb2.RetryInfo()
        if detail.Unpack(info):
            return float(info.retry_delay.seconds + info.retry_delay.nanos / 1e9)
    return None
