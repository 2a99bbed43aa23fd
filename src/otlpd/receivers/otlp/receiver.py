"""The ``otlp`` receiver: one core shared by the gRPC and HTTP servers."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from otlpd.component import Consumer, Settings
from otlpd.pdata import Signal
from otlpd.receivers.otlp.config import OtlpReceiverConfig
from otlpd.receivers.otlp.core import ReceiverCore
from otlpd.receivers.otlp.grpc_server import GrpcServer
from otlpd.receivers.otlp.http_server import HttpServer
from otlpd.telemetry import logging as otlpd_logging


class OtlpReceiver:
    def __init__(self, settings: Settings, consumers: Mapping[Signal, Consumer]) -> None:
        config: OtlpReceiverConfig = settings.config
        log = otlpd_logging.get(f"receiver.{settings.id}")
        self.core = ReceiverCore(settings.id, consumers, settings.metrics, log)
        self._log = log
        protocols = config.protocols
        shared = settings.worker is not None  # workers share the ports (SO_REUSEPORT)
        self.grpc = GrpcServer(self.core, protocols.grpc, reuse_port=shared) if protocols.grpc else None
        self.http = HttpServer(self.core, protocols.http, reuse_port=shared) if protocols.http else None

    async def start(self) -> None:
        if self.grpc is not None:
            await self.grpc.start()
            self._log.info("listening", extra={"transport": "grpc", "port": self.grpc.port})
        if self.http is not None:
            try:
                await self.http.start()
            except BaseException:
                if self.grpc is not None:
                    await self.grpc.stop(0)
                raise
            self._log.info("listening", extra={"transport": "http", "port": self.http.port})

    async def shutdown(self, deadline: float) -> None:
        """Refuse new data, let in-flight requests finish (until the deadline)."""
        self.core.accepting = False
        grace = max(0.0, deadline - asyncio.get_running_loop().time())
        stops = []
        if self.grpc is not None:
            stops.append(self.grpc.stop(grace))
        if self.http is not None:
            stops.append(self.http.stop(grace))
        await asyncio.gather(*stops)
