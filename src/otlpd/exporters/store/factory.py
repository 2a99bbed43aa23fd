from __future__ import annotations

from otlpd.component import Factory, Kind, Settings
from otlpd.exporters.store.config import StoreConfig
from otlpd.exporters.store.exporter import StoreExporterComponent
from otlpd.pdata import Signal


def _create(settings: Settings) -> StoreExporterComponent:
    return StoreExporterComponent(settings)


FACTORY = Factory(
    type="store",
    kind=Kind.EXPORTER,
    config=StoreConfig,
    signals=frozenset(Signal),
    create=_create,
    description="keeps traces, metrics and logs in the embedded database behind the query API",
)
