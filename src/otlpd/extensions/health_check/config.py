from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from otlpd.config.base import Strict
from otlpd.config.endpoint import Endpoint
from otlpd.config.tls import TLSServerConfig


class ResponseBody(Strict):
    healthy: str = ""
    unhealthy: str = ""


class HealthCheckConfig(Strict):
    """The Collector's ``health_check`` extension keys."""

    endpoint: Endpoint = "localhost:13133"
    path: str = "/"
    response_body: ResponseBody | None = None
    tls: TLSServerConfig | None = None
    # Deprecated in the Collector and without effect there; accepted so configs load.
    check_collector_pipeline: dict[str, Any] = Field(default_factory=dict)

    @field_validator("path")
    @classmethod
    def _absolute(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError("path must start with '/'")
        return value
