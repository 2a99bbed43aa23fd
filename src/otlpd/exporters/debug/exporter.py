"""The ``debug`` exporter: shows what arrives, in the log stream.

``basic`` logs counts per request (no decoding: the count travels with the
payload); ``normal`` one line per span / log record / metric; ``detailed``
the whole request as OTLP/JSON. Sampling as in the Collector: the first
``sampling_initial`` messages each second, then every ``sampling_thereafter``-th.
"""

from __future__ import annotations

import time
from typing import Any

from otlpd import otlpjson
from otlpd.component import Consumer, Settings
from otlpd.exporters.debug.config import DebugConfig
from otlpd.pdata import Payload, Signal
from otlpd.telemetry import logging as otlpd_logging


class DebugExporter:
    def __init__(self, settings: Settings) -> None:
        self._cfg: DebugConfig = settings.config
        self._log = otlpd_logging.get(f"exporter.{settings.id}")
        self._labels = str(settings.id)
        self._sent = settings.metrics.exporter_sent
        self._second = 0
        self._seen = 0

    def consumer(self, signal: Signal) -> Consumer:
        return _SignalConsumer(self, signal)

    async def start(self) -> None:
        return None

    async def shutdown(self, deadline: float) -> None:
        return None

    def _sampled(self) -> bool:
        now = int(time.monotonic())
        if now != self._second:
            self._second, self._seen = now, 0
        self._seen += 1
        if self._seen <= self._cfg.sampling_initial:
            return True
        return (self._seen - self._cfg.sampling_initial) % self._cfg.sampling_thereafter == 0

    def show(self, payload: Payload) -> None:
        self._sent.labels(self._labels, payload.signal.value).inc(payload.items)
        if not self._sampled():
            return
        signal = payload.signal
        extra: dict[str, Any] = {"signal": signal.value, signal.item_name: payload.items}
        verbosity = self._cfg.verbosity
        if verbosity == "basic":
            self._log.info(f"{signal.value} received", extra=extra)
        elif verbosity == "normal":
            for line in _lines(payload):
                self._log.info(line, extra={"signal": signal.value})
        else:
            extra["request"] = otlpjson.to_dict(payload.message)
            self._log.info(f"{signal.value} received", extra=extra)
        payload.release()


class _SignalConsumer:
    def __init__(self, exporter: DebugExporter, signal: Signal) -> None:
        self._exporter = exporter

    async def consume(self, payload: Payload) -> None:
        self._exporter.show(payload)


def _lines(payload: Payload) -> list[str]:
    message: Any = payload.message
    out = []
    if payload.signal is Signal.TRACES:
        for rs in message.resource_spans:
            for ss in rs.scope_spans:
                for s in ss.spans:
                    out.append(f"span {s.name} trace_id={s.trace_id.hex()} span_id={s.span_id.hex()}")
    elif payload.signal is Signal.LOGS:
        for rl in message.resource_logs:
            for sl in rl.scope_logs:
                for r in sl.log_records:
                    body = r.body.WhichOneof("value")
                    text = getattr(r.body, body) if body == "string_value" else body or ""
                    out.append(f"log {r.severity_text or r.severity_number} {text}")
    else:
        for rm in message.resource_metrics:
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    kind = m.WhichOneof("data") or "empty"
                    points = len(getattr(m, kind).data_points) if kind != "empty" else 0
                    out.append(f"metric {m.name} {kind} points={points}")
    return out
