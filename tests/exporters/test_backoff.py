"""Exponential backoff with jitter: grows by multiplier, capped, within ±randomization_factor."""

from __future__ import annotations

import random

import pytest
from pydantic import ValidationError

from otlpd.exporters.helper.backoff import Backoff
from otlpd.exporters.helper.config import RetryConfig


class Fixed(random.Random):
    """A Random whose random() always returns ``value``: pins the jitter to one edge."""

    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value

    def random(self) -> float:
        return self.value


def retry(**kw: str | float) -> RetryConfig:
    return RetryConfig.model_validate(kw)


def test_without_jitter_intervals_grow_by_multiplier_and_stop_at_max() -> None:
    b = Backoff(retry(initial_interval="100ms", multiplier=2.0, max_interval="1s", randomization_factor=0))
    got = [round(b.next(), 6) for _ in range(7)]
    assert got == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0]


def test_collector_defaults_without_jitter() -> None:
    b = Backoff(RetryConfig(randomization_factor=0))
    got = [round(b.next(), 6) for _ in range(10)]
    assert got[:4] == [5.0, 7.5, 11.25, 16.875]
    assert got[-1] == 30.0
    assert max(got) == 30.0


@pytest.mark.parametrize("seed", range(5))
def test_every_delay_is_within_randomization_factor_of_its_interval(seed: int) -> None:
    cfg = retry(initial_interval="10ms", multiplier=1.5, max_interval="200ms", randomization_factor=0.5)
    b = Backoff(cfg, random.Random(seed))
    interval = 0.01
    for _ in range(30):
        d = b.next()
        assert interval * 0.5 - 1e-12 <= d <= interval * 1.5 + 1e-12
        interval = min(interval * 1.5, 0.2)


def test_jitter_reaches_both_edges() -> None:
    cfg = retry(initial_interval="1s", multiplier=2.0, max_interval="4s", randomization_factor=0.25)
    low = Backoff(cfg, Fixed(0.0))
    assert [low.next() for _ in range(4)] == pytest.approx([0.75, 1.5, 3.0, 3.0])
    high = Backoff(cfg, Fixed(0.999999))
    assert [high.next() for _ in range(4)] == pytest.approx([1.25, 2.5, 5.0, 5.0], rel=1e-5)


def test_jitter_varies_the_delays() -> None:
    cfg = retry(initial_interval="1s", multiplier=1.0, max_interval="1s", randomization_factor=0.5)
    b = Backoff(cfg, random.Random(7))
    delays = [b.next() for _ in range(50)]
    assert len({round(d, 6) for d in delays}) > 40
    assert min(delays) < 0.75 < 1.25 < max(delays)


def test_each_backoff_starts_again_at_initial_interval() -> None:
    cfg = retry(initial_interval="100ms", multiplier=3.0, max_interval="10s", randomization_factor=0)
    first = Backoff(cfg)
    for _ in range(5):
        first.next()
    assert Backoff(cfg).next() == pytest.approx(0.1)


@pytest.mark.parametrize(
    "bad",
    [
        {"initial_interval": "0s"},
        {"initial_interval": "2s", "max_interval": "1s"},
        {"max_elapsed_time": "-1s"},
        {"multiplier": 0.5},
        {"randomization_factor": 1.5},
        {"initial_interval": 5},  # a bare number would be nanoseconds in the Collector
    ],
)
def test_invalid_retry_settings_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        RetryConfig.model_validate(bad)
