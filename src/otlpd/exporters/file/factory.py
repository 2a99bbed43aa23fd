from __future__ import annotations

from otlpd.component import Factory, Kind, Settings
from otlpd.exporters.file.config import FileConfig
from otlpd.exporters.file.exporter import FileExporter
from otlpd.pdata import Signal


def _create(settings: Settings) -> FileExporter:
    return FileExporter(settings)


FACTORY = Factory(
    type="file",
    kind=Kind.EXPORTER,
    config=FileConfig,
    signals=frozenset(Signal),
    create=_create,
    description="writes OTLP/JSON lines (or length-prefixed protobuf) to a file",
)
