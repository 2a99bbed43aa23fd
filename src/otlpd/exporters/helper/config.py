"""``sending_queue`` and ``retry_on_failure``, with the Collector's keys and defaults."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from otlpd.config.base import Strict
from otlpd.config.units import Duration


class QueueConfig(Strict):
    enabled: bool = True
    num_consumers: int = Field(10, ge=1)
    queue_size: int = Field(1000, ge=1)
    blocking: bool = False
    sizer: Literal["requests"] = "requests"


class RetryConfig(Strict):
    enabled: bool = True
    initial_interval: Duration = 5.0
    randomization_factor: float = Field(0.5, ge=0, le=1)
    multiplier: float = Field(1.5, ge=1)
    max_interval: Duration = 30.0
    max_elapsed_time: Duration = 300.0  # 0 = retry forever

    @model_validator(mode="after")
    def _check(self) -> RetryConfig:
        if self.initial_interval <= 0:
            raise ValueError("initial_interval must be positive")
        if self.max_interval < self.initial_interval:
            raise ValueError("max_interval must not be less than initial_interval")
        if self.max_elapsed_time < 0:
            raise ValueError("max_elapsed_time must not be negative")
        return self
