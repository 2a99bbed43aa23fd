"""Every component otlpd knows. Adding a component = one folder + one line here."""

from __future__ import annotations

from otlpd.component import Factory, Kind
from otlpd.exporters.debug.factory import FACTORY as DEBUG_EXPORTER
from otlpd.exporters.file.factory import FACTORY as FILE_EXPORTER
from otlpd.exporters.otlp.factory import FACTORY as OTLP_EXPORTER
from otlpd.exporters.otlphttp.factory import FACTORY as OTLPHTTP_EXPORTER
from otlpd.exporters.store.factory import FACTORY as STORE_EXPORTER
from otlpd.extensions.health_check.factory import FACTORY as HEALTH_CHECK_EXTENSION
from otlpd.processors.batch.factory import FACTORY as BATCH_PROCESSOR
from otlpd.receivers.otlp.factory import FACTORY as OTLP_RECEIVER

FACTORIES: tuple[Factory, ...] = (
    OTLP_RECEIVER,
    BATCH_PROCESSOR,
    OTLP_EXPORTER,
    OTLPHTTP_EXPORTER,
    DEBUG_EXPORTER,
    FILE_EXPORTER,
    STORE_EXPORTER,
    HEALTH_CHECK_EXTENSION,
)

_BY_NAME = {(f.kind, name): f for f in FACTORIES for name in (f.type, *f.aliases)}


def lookup(kind: Kind, type_: str) -> Factory | None:
    return _BY_NAME.get((kind, type_))


def types(kind: Kind) -> list[str]:
    return sorted(name for (k, name) in _BY_NAME if k is kind)
