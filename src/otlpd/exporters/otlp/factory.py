from __future__ import annotations

from otlpd.component import Factory, Kind, Settings
from otlpd.exporters.helper.component import ExporterComponent
from otlpd.exporters.otlp.config import OtlpGrpcExporterConfig
from otlpd.exporters.otlp.exporter import OtlpGrpcExporter
from otlpd.pdata import Signal


def _create(settings: Settings) -> ExporterComponent:
    c: OtlpGrpcExporterConfig = settings.config
    return ExporterComponent(
        settings,
        OtlpGrpcExporter(str(settings.id), c),
        queue=c.sending_queue,
        retry=c.retry_on_failure,
        timeout=c.timeout,
    )


FACTORY = Factory(
    type="otlp",
    kind=Kind.EXPORTER,
    config=OtlpGrpcExporterConfig,
    signals=frozenset(Signal),
    create=_create,
    aliases=("otlp_grpc",),
    description="OTLP/gRPC to an upstream collector or backend",
)
