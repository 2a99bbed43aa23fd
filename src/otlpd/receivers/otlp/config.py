"""``receivers.otlp``: the Collector's keys, so its configs load unchanged."""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from otlpd.config.base import Strict
from otlpd.config.endpoint import Endpoint
from otlpd.config.tls import TLSServerConfig
from otlpd.config.units import Duration, Size


class KeepaliveServerParameters(Strict):
    max_connection_idle: Duration = 0.0
    max_connection_age: Duration = 0.0
    max_connection_age_grace: Duration = 0.0
    time: Duration = 0.0
    timeout: Duration = 0.0


class KeepaliveEnforcementPolicy(Strict):
    min_time: Duration = 0.0
    permit_without_stream: bool = False


class Keepalive(Strict):
    server_parameters: KeepaliveServerParameters = Field(default_factory=KeepaliveServerParameters)
    enforcement_policy: KeepaliveEnforcementPolicy = Field(default_factory=KeepaliveEnforcementPolicy)


class GrpcConfig(Strict):
    endpoint: Endpoint = "localhost:4317"
    transport: str = "tcp"
    max_recv_msg_size_mib: int = Field(4, ge=1)
    max_concurrent_streams: int = Field(0, ge=0)
    read_buffer_size: Size = 524288  # accepted for compatibility; gRPC core sizes its own
    write_buffer_size: Size = 0
    keepalive: Keepalive | None = None
    tls: TLSServerConfig | None = None
    include_metadata: bool = False

    @model_validator(mode="after")
    def _check(self) -> GrpcConfig:
        if self.transport != "tcp":
            raise ValueError(f'transport "{self.transport}" is not supported; use tcp')
        return self


class CorsConfig(Strict):
    allowed_origins: list[str] = Field(default_factory=list)
    allowed_headers: list[str] = Field(default_factory=list)
    max_age: int = 0


class HttpConfig(Strict):
    endpoint: Endpoint = "localhost:4318"
    max_request_body_size: Size = 20 * 1024 * 1024
    tls: TLSServerConfig | None = None
    cors: CorsConfig | None = None
    include_metadata: bool = False
    response_headers: dict[str, str] = Field(default_factory=dict)
    traces_url_path: str = "/v1/traces"
    metrics_url_path: str = "/v1/metrics"
    logs_url_path: str = "/v1/logs"
    compression_algorithms: list[str] = Field(default_factory=lambda: ["", "gzip", "zstd", "zlib", "deflate"])

    @model_validator(mode="after")
    def _check(self) -> HttpConfig:
        if self.max_request_body_size == 0:  # the Collector reads 0 as "the default"
            self.max_request_body_size = 20 * 1024 * 1024
        for name in ("traces_url_path", "metrics_url_path", "logs_url_path"):
            if not getattr(self, name).startswith("/"):
                raise ValueError(f"{name} must start with '/'")
        unknown = set(self.compression_algorithms) - {"", "gzip", "zstd", "zlib", "deflate"}
        if unknown:
            raise ValueError(
                f"compression_algorithms: {sorted(unknown)} not supported (gzip, zstd, zlib, deflate)"
            )
        return self


class Protocols(Strict):
    grpc: GrpcConfig | None = None
    http: HttpConfig | None = None

    @model_validator(mode="before")
    @classmethod
    def _present_means_enabled(cls, data: Any) -> Any:
        # In the Collector, `grpc:` with no value enables gRPC with defaults.
        if isinstance(data, dict):
            return {k: ({} if v is None else v) for k, v in data.items()}
        return data


class OtlpReceiverConfig(Strict):
    protocols: Protocols

    @model_validator(mode="after")
    def _one_protocol(self) -> OtlpReceiverConfig:
        if self.protocols.grpc is None and self.protocols.http is None:
            raise ValueError("must specify at least one protocol (grpc or http)")
        return self
