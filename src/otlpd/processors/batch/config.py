from __future__ import annotations

from pydantic import Field, model_validator

from otlpd.config.base import Strict
from otlpd.config.units import Duration


class BatchConfig(Strict):
    """The Collector's ``batch`` processor keys and defaults."""

    send_batch_size: int = Field(8192, ge=0)
    send_batch_max_size: int = Field(0, ge=0)
    timeout: Duration = 0.2
    metadata_keys: list[str] = Field(default_factory=list)
    metadata_cardinality_limit: int = 1000

    @model_validator(mode="after")
    def _check(self) -> BatchConfig:
        if self.send_batch_max_size and self.send_batch_max_size < self.send_batch_size:
            raise ValueError("send_batch_max_size must be greater or equal to send_batch_size")
        if self.timeout < 0:
            raise ValueError("timeout must not be negative")
        if self.metadata_keys:
            raise ValueError("metadata_keys is not supported by otlpd yet")
        return self

    @property
    def pending_limit(self) -> int:
        """Items held before new data is refused (back-pressure to receivers)."""
        return 8 * max(self.send_batch_size, self.send_batch_max_size, 1024)
