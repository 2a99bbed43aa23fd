"""OTLP/gRPC: the three Export methods on a grpc.aio server, taking raw bytes.

Handlers are registered without a deserializer, so the request reaches the
core as the bytes that were sent: nothing is decoded or copied by gRPC. gRPC
core enforces ``max_recv_msg_size_mib`` while it decompresses, so a gzip bomb
is refused with RESOURCE_EXHAUSTED before it is inflated.
"""

from __future__ import annotations

import time
from typing import Any

import grpc

from otlpd.pdata import Signal
from otlpd.receivers.otlp.config import GrpcConfig
from otlpd.receivers.otlp.core import ReceiverCore, wire_error

TRANSPORT = "grpc"


class GrpcServer:
    def __init__(self, core: ReceiverCore, config: GrpcConfig, *, reuse_port: bool = False) -> None:
        self._core = core
        self._config = config
        self._reuse_port = reuse_port
        self._server: grpc.aio.Server | None = None
        self.port = 0

    def _options(self) -> list[tuple[str, Any]]:
        c = self._config
        opts: list[tuple[str, Any]] = [
            ("grpc.max_receive_message_length", c.max_recv_msg_size_mib * 1024 * 1024),
            # gRPC sets SO_REUSEPORT by default, which would let a second otlpd bind
            # the same port silently; only workers of one otlpd share a port on purpose.
            ("grpc.so_reuseport", 1 if self._reuse_port else 0),
        ]
        if c.max_concurrent_streams:
            opts.append(("grpc.max_concurrent_streams", c.max_concurrent_streams))
        if c.keepalive is not None:
            sp, ep = c.keepalive.server_parameters, c.keepalive.enforcement_policy
            for key, seconds in (
                ("grpc.max_connection_idle_ms", sp.max_connection_idle),
                ("grpc.max_connection_age_ms", sp.max_connection_age),
                ("grpc.max_connection_age_grace_ms", sp.max_connection_age_grace),
                ("grpc.keepalive_time_ms", sp.time),
                ("grpc.keepalive_timeout_ms", sp.timeout),
                ("grpc.http2.min_ping_interval_without_data_ms", ep.min_time),
            ):
                if seconds:
                    opts.append((key, int(seconds * 1000)))
            if ep.permit_without_stream:
                opts.append(("grpc.keepalive_permit_without_calls", 1))
        return opts

    async def start(self) -> None:
        server = grpc.aio.server(options=self._options())
        for signal in self._core.consumers:
            handler: grpc.RpcMethodHandler[bytes, bytes] = grpc.unary_unary_rpc_method_handler(
                self._handler(signal)
            )
            # Registered, not generic: gRPC core matches the path, no Python lookup per call.
            server.add_registered_method_handlers(signal.grpc_service, {"Export": handler})
        tls = self._config.tls
        if tls is not None:
            key = tls.read(tls.key_file, tls.key_pem)
            cert = tls.read(tls.cert_file, tls.cert_pem)
            assert key is not None
            assert cert is not None
            ca = tls.read(tls.client_ca_file, "")
            creds = grpc.ssl_server_credentials([(key, cert)], ca, require_client_auth=bool(ca))
            self.port = server.add_secure_port(self._config.endpoint, creds)
        else:
            self.port = server.add_insecure_port(self._config.endpoint)
        await server.start()
        self._server = server

    def _handler(self, signal: Signal) -> Any:
        core = self._core

        async def export(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
            started = time.perf_counter()
            try:
                response = await core.export(signal, request, json=False, transport=TRANSPORT)
            except Exception as exc:
                wire = wire_error(exc)
                core.record(signal, TRANSPORT, wire.grpc_code.name, time.perf_counter() - started)
                await context.abort(
                    wire.grpc_code,
                    wire.message,
                    trailing_metadata=(("grpc-status-details-bin", wire.status().SerializeToString()),),
                )
                raise  # abort() raises; this keeps type checkers satisfied
            core.record(signal, TRANSPORT, "OK", time.perf_counter() - started)
            return response.SerializeToString()

        return export

    async def stop(self, grace: float) -> None:
        """Stop accepting; give in-flight calls ``grace`` seconds to finish."""
        if self._server is not None:
            await self._server.stop(grace)
