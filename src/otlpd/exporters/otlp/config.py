from __future__ import annotations

from pydantic import Field, model_validator

from otlpd.config.base import Strict
from otlpd.config.units import Duration, Size
from otlpd.exporters.common import NetworkExporterConfig


class ClientKeepalive(Strict):
    time: Duration = 0.0
    timeout: Duration = 0.0
    permit_without_stream: bool = False


class OtlpGrpcExporterConfig(NetworkExporterConfig):
    """The Collector's ``otlp`` exporter keys."""

    endpoint: str
    balancer_name: str = ""
    authority: str = ""
    keepalive: ClientKeepalive | None = None
    wait_for_ready: bool = False
    read_buffer_size: Size = 0  # accepted for compatibility; gRPC core sizes its own
    write_buffer_size: Size = 0
    max_recv_msg_size_mib: int = Field(4, ge=1)

    @model_validator(mode="after")
    def _check(self) -> OtlpGrpcExporterConfig:
        if not self.endpoint.strip():
            raise ValueError("endpoint must be set")
        if self.compression == "zstd":
            raise ValueError("compression zstd is not available for gRPC in otlpd; use gzip or none")
        problem = self.tls.grpc_problem()
        if problem:
            raise ValueError(f"tls: {problem}")
        return self
