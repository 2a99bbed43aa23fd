"""The ``otlp`` exporter: OTLP/gRPC with the request bytes sent as they are."""

from __future__ import annotations

from typing import Any

import grpc
from google.rpc import error_details_pb2, status_pb2

from otlpd.errors import OtlpdError, PermanentError, RetryableError, ThrottledError
from otlpd.exporters.common import rejected_items
from otlpd.exporters.helper.sender import SendFn
from otlpd.exporters.otlp.config import OtlpGrpcExporterConfig
from otlpd.pdata import Payload, Signal
from otlpd.telemetry import logging as otlpd_logging

# OTLP spec, "Failures": codes a client should retry.
_RETRYABLE = frozenset({
    grpc.StatusCode.CANCELLED, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.ABORTED,
    grpc.StatusCode.OUT_OF_RANGE, grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DATA_LOSS,
})  # fmt: skip


def target_of(endpoint: str) -> tuple[str, bool | None]:
    """gRPC target and whether the scheme asks for TLS (None: no scheme given)."""
    for scheme, secure in (("https://", True), ("http://", False)):
        if endpoint.startswith(scheme):
            return endpoint[len(scheme) :].rstrip("/"), secure
    return endpoint, None


class OtlpGrpcExporter:
    def __init__(self, name: str, config: OtlpGrpcExporterConfig) -> None:
        self._config = config
        self._log = otlpd_logging.get(f"exporter.{name}")
        self._channel: grpc.aio.Channel | None = None
        self._metadata = tuple((k.lower(), v) for k, v in config.headers.items())
        self._compression = (
            grpc.Compression.Gzip
            if config.compression in ("gzip", "deflate")
            else grpc.Compression.NoCompression
        )
        if config.compression == "deflate":
            self._compression = grpc.Compression.Deflate

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
                raise _typed(exc) from None
            return rejected_items(payload, raw, json=False, log=self._log)

        return send

    async def shutdown(self) -> None:
        if self._channel is not None:
            await self._channel.close()


def _typed(exc: grpc.aio.AioRpcError) -> OtlpdError:
    code = exc.code()
    message = f"upstream returned {code.name}: {exc.details()}"
    retry_after = _retry_info(exc)
    if code is grpc.StatusCode.RESOURCE_EXHAUSTED:
        # Retryable only when the server says when (RetryInfo), per the OTLP spec.
        if retry_after is not None:
            return ThrottledError(message, retry_after)
        return PermanentError(message)
    if code in _RETRYABLE:
        return RetryableError(message, retry_after)
    return PermanentError(message)


def _retry_info(exc: grpc.aio.AioRpcError) -> float | None:
    for key, value in exc.trailing_metadata() or ():
        if key != "grpc-status-details-bin" or not isinstance(value, bytes):
            continue
        status = status_pb2.Status()
        try:
            status.ParseFromString(value)
        except Exception:
            return None
        for detail in status.details:
            info = error_details_pb2.RetryInfo()
            if detail.Unpack(info):
                return float(info.retry_delay.seconds + info.retry_delay.nanos / 1e9)
    return None
