from __future__ import annotations

from otlpd.component import Factory, Kind, Settings
from otlpd.exporters.debug.config import DebugConfig
from otlpd.exporters.debug.exporter import DebugExporter
from otlpd.pdata import Signal


def _create(settings: Settings) -> DebugExporter:
    return DebugExporter(settings)


FACTORY = Factory(
    type="debug",
    kind=Kind.EXPORTER,
    config=DebugConfig,
    signals=frozenset(Signal),
    create=_create,
    description="logs what arrives (counts, one line per item, or full detail)",
)
