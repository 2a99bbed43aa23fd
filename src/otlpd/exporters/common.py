"""Settings every network exporter has: timeout, queue, retry, headers, TLS."""

from __future__ import annotations

import logging
from datetime import UTC
from typing import Literal

from google.protobuf.message import DecodeError
from pydantic import Field

from otlpd.config.base import Strict
from otlpd.config.tls import TLSClientConfig
from otlpd.config.units import Duration, Secret
from otlpd.errors import InvalidDataError
from otlpd.exporters.helper.config import QueueConfig, RetryConfig
from otlpd.pdata import Payload, Signal


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


def rejected_items(payload: Payload, content: bytes, *, json: bool, log: logging.Logger) -> int:
    """Items a peer's success response says it rejected (OTLP partial success).

    The count comes from the peer, so it is clamped to what was sent: a bogus
    count must not turn into negative metrics. A success whose body cannot be
    read is still a success.
    """
    if not content:
        return 0
    signal: Signal = payload.signal
    response = signal.response_type()
    try:
        if json:
            from otlpd import otlpjson

            otlpjson.parse(content, response)
        else:
            response.ParseFromString(content)
    except (DecodeError, InvalidDataError):
        return 0
    partial = response.partial_success
    claimed: int = getattr(partial, f"rejected_{signal.item_name}")
    if claimed or partial.error_message:
        log.warning(
            "upstream accepted part of the data",
            extra={"signal": signal.value, "rejected": claimed, "error": partial.error_message},
        )
    return min(max(claimed, 0), payload.items)
