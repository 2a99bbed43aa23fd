"""The ``service`` section: pipelines, otlpd's own HTTP server, telemetry."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from otlpd.config.base import Strict
from otlpd.config.endpoint import Endpoint
from otlpd.config.units import Duration


class PipelineConfig(Strict):
    receivers: list[str] = Field(default_factory=list)
    processors: list[str] = Field(default_factory=list)
    exporters: list[str] = Field(default_factory=list)


class HttpConfig(Strict):
    """otlpd's own server: health, metrics, and later the query API and UI."""

    endpoint: Endpoint = "0.0.0.0:8080"


class LogsTelemetry(BaseModel):
    # The Collector has many more logging keys (sampling, output paths...);
    # they are accepted and ignored so Collector configs load unchanged.
    model_config = ConfigDict(extra="allow")
    level: Literal["debug", "info", "warn", "warning", "error"] = "info"
    encoding: Literal["json", "console", "text", "auto"] = "auto"


class Telemetry(BaseModel):
    model_config = ConfigDict(extra="allow")
    logs: LogsTelemetry = Field(default_factory=LogsTelemetry)
    metrics: dict[str, Any] = Field(default_factory=dict)


class ServiceConfig(Strict):
    extensions: list[str] = Field(default_factory=list)
    pipelines: dict[str, PipelineConfig] = Field(default_factory=dict)
    http: HttpConfig = Field(default_factory=HttpConfig)
    shutdown_timeout: Duration = 30.0
    workers: int = Field(1, ge=1, le=256)  # processes sharing the receiver ports (docs/workers.md)
    # a worker not ready by then is killed (docs/workers.md); 0: no limit
    worker_start_timeout: Duration = 60.0
    telemetry: Telemetry = Field(default_factory=Telemetry)
