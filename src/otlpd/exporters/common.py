"""Settings every network exporter has: timeout, queue, retry, headers, TLS."""

from __future__ import annotations

from datetime import UTC
from typing import Literal

from pydantic import Field

from otlpd.config.base import Strict
from otlpd.config.tls import TLSClientConfig
from otlpd.config.units import Duration, Secret
from otlpd.exporters.helper.config import QueueConfig, RetryConfig


class NetworkExporterConfig(Strict):
    timeout: Duration = 5.0
    sending_queue: QueueConfig = Field(default_factory=QueueConfig)
    retry_on_failure: RetryConfig = Field(default_factory=RetryConfig)
    headers: dict[str, Secret] = Field(default_factory=dict)
    compression: Literal["gzip", "zstd", "deflate", "none", ""] = "gzip"
    tls: TLSClientConfig = Field(default_factory=TLSClientConfig)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    from datetime import datetime
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
