from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from otlpd.config.units import Duration
from otlpd.exporters.common import NetworkExporterConfig
from otlpd.pdata import Signal


class OtlpHttpExporterConfig(NetworkExporterConfig):
    """The Collector's ``otlphttp`` exporter keys."""

    endpoint: str = ""
    traces_endpoint: str = ""
    metrics_endpoint: str = ""
    logs_endpoint: str = ""
    encoding: Literal["proto", "json"] = "proto"
    timeout: Duration = 30.0
    max_idle_conns: int = Field(100, ge=0)
    idle_conn_timeout: Duration = 90.0

    @model_validator(mode="after")
    def _check(self) -> OtlpHttpExporterConfig:
        for name in ("endpoint", "traces_endpoint", "metrics_endpoint", "logs_endpoint"):
            value = getattr(self, name)
            if value and not value.startswith(("http://", "https://")):
                raise ValueError(f"{name} must be an http:// or https:// URL, not {value!r}")
        if not self.endpoint and not (self.traces_endpoint or self.metrics_endpoint or self.logs_endpoint):
            raise ValueError("endpoint (or a per-signal *_endpoint) must be set")
        return self

    def missing_endpoint(self, signal: Signal) -> str | None:
        if self.endpoint or getattr(self, f"{signal.value}_endpoint"):
            return None
        return f"has neither endpoint nor {signal.value}_endpoint, so it cannot send {signal.value}"

    def url(self, signal: Signal) -> str:
        """The signal's own endpoint, else ``endpoint`` + ``/v1/<signal>``."""
        specific: str = getattr(self, f"{signal.value}_endpoint")
        if specific:
            return specific
        return self.endpoint.rstrip("/") + f"/v1/{signal.value}"
