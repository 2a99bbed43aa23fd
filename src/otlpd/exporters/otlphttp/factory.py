from __future__ import annotations

from otlpd.component import Factory, Kind, Settings
from otlpd.exporters.helper.component import ExporterComponent
from otlpd.exporters.otlphttp.config import OtlpHttpExporterConfig
from otlpd.exporters.otlphttp.exporter import OtlpHttpExporter
from otlpd.pdata import Signal


def _create(settings: Settings) -> ExporterComponent:
    c: OtlpHttpExporterConfig = settings.config
    return ExporterComponent(
        settings,
        OtlpHttpExporter(str(settings.id), c),
        queue=c.sending_queue,
        retry=c.retry_on_failure,
        timeout=c.timeout,
    )


FACTORY = Factory(
    type="otlphttp",
    kind=Kind.EXPORTER,
    config=OtlpHttpExporterConfig,
    signals=frozenset(Signal),
    create=_create,
    aliases=("otlp_http",),
    check_signal=lambda config, signal: config.missing_endpoint(signal),
    description="OTLP/HTTP (protobuf or JSON) to an upstream",
)
