"""The ``debug`` exporter in-process: sampling and counting (verbosity is tested whole-process)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from otlpd.pdata import Signal
from otlpd.telemetry.metrics import Metrics
from tests.exporters.helpers import build_exporter, metric, payload, traces


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def records() -> Iterator[Records]:
    """Records of the ``debug/s`` exporter's logger, whatever the global logging setup."""
    logger = logging.getLogger("otlpd.exporter.debug/s")
    handler = Records()
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(level)


async def test_sampling_logs_the_first_then_every_nth_but_counts_all(records: Records) -> None:
    m = Metrics()
    exporter = build_exporter("debug", {"sampling_initial": 2, "sampling_thereafter": 50}, m, name="s")
    consumer = exporter.consumer(Signal.TRACES)
    await exporter.start()
    for _ in range(40):
        await consumer.consume(payload(Signal.TRACES, traces(2)))
    await exporter.shutdown(0)
    # 2 per second, then one in 50: 40 requests within (at most) two seconds log 2 to 4 lines
    assert 2 <= len(records.records) <= 4
    assert {r.getMessage() for r in records.records} == {"traces received"}
    assert metric(m, "otlpd_exporter_sent_items_total", exporter="debug/s", signal="traces") == 80


async def test_default_sampling_logs_everything(records: Records) -> None:
    exporter = build_exporter("debug", {}, Metrics(), name="s")
    consumer = exporter.consumer(Signal.TRACES)
    for i in range(10):
        await consumer.consume(payload(Signal.TRACES, traces(i + 1)))
    assert [r.spans for r in records.records] == list(range(1, 11))  # type: ignore[attr-defined]
