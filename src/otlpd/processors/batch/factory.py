from __future__ import annotations

from otlpd.component import Consumer, Factory, Kind, Settings
from otlpd.pdata import Signal
from otlpd.processors.batch.config import BatchConfig
from otlpd.processors.batch.processor import BatchProcessor


def _create(settings: Settings, signal: Signal, next: Consumer) -> BatchProcessor:
    return BatchProcessor(settings, signal, next)


FACTORY = Factory(
    type="batch",
    kind=Kind.PROCESSOR,
    config=BatchConfig,
    signals=frozenset(Signal),
    create=_create,
    description="batches requests by concatenating their bytes",
)
