"""Exponential backoff with jitter, as the Collector (and cenkalti/backoff) do it."""

from __future__ import annotations

import random

from otlpd.exporters.helper.config import RetryConfig


class Backoff:
    def __init__(self, config: RetryConfig, rng: random.Random | None = None) -> None:
        self._config = config
        self._interval = config.initial_interval
        self._rng = rng or random.Random()

    def next(self) -> float:
        """The next delay: the current interval ± randomization_factor, then grow it."""
        c = self._config
        delta = c.randomization_factor * self._interval
        delay = self._interval - delta + self._rng.random() * 2 * delta
        self._interval = min(self._interval * c.multiplier, c.max_interval)
        return delay
