from __future__ import annotations

from otlpd.component import Factory, Host, Kind, Settings
from otlpd.extensions.health_check.config import HealthCheckConfig
from otlpd.extensions.health_check.extension import HealthCheckExtension


def _create(settings: Settings, host: Host) -> HealthCheckExtension:
    return HealthCheckExtension(settings, host)


FACTORY = Factory(
    type="health_check",
    kind=Kind.EXTENSION,
    config=HealthCheckConfig,
    signals=frozenset(),
    create=_create,
    description="the Collector's health probe endpoint (default :13133)",
)
