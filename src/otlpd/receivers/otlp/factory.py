from __future__ import annotations

from collections.abc import Mapping

from otlpd.component import Consumer, Factory, Kind, Settings
from otlpd.pdata import Signal
from otlpd.receivers.otlp.config import OtlpReceiverConfig
from otlpd.receivers.otlp.receiver import OtlpReceiver


def _create(settings: Settings, consumers: Mapping[Signal, Consumer]) -> OtlpReceiver:
    return OtlpReceiver(settings, consumers)


FACTORY = Factory(
    type="otlp",
    kind=Kind.RECEIVER,
    config=OtlpReceiverConfig,
    signals=frozenset(Signal),
    create=_create,
    description="OTLP over gRPC and HTTP (protobuf and JSON)",
)
