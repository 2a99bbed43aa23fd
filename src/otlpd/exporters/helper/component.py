"""Wraps an :class:`Exporter` into a component with one sender per signal."""

from __future__ import annotations

import asyncio
from collections.abc import Collection

from otlpd.component import Consumer, Settings
from otlpd.exporters.helper.config import QueueConfig, RetryConfig
from otlpd.exporters.helper.sender import Exporter, QueuedRetrySender
from otlpd.pdata import Signal
from otlpd.telemetry import logging as otlpd_logging


class ExporterComponent:
    def __init__(
        self,
        settings: Settings,
        exporter: Exporter,
        *,
        queue: QueueConfig | None = None,
        retry: RetryConfig | None = None,
        timeout: float = 0.0,
        keep_decoded: Collection[Signal] = (),
        keep_span_skeleton: bool = False,
    ) -> None:
        self.settings = settings
        # the signals whose queued payloads keep the decoded message, for an exporter that reads it
        self._keep_decoded = frozenset(keep_decoded)
        # whether queued traces keep the receiver's span skeleton, for an exporter that reads it
        self._keep_span_skeleton = keep_span_skeleton
        self.exporter = exporter
        self._queue = queue or QueueConfig(enabled=False)
        self._retry = retry or RetryConfig(enabled=False)
        self._timeout = timeout
        self._senders: dict[Signal, QueuedRetrySender] = {}
        self._log = otlpd_logging.get(f"exporter.{settings.id}")

    def consumer(self, signal: Signal) -> Consumer:
        if signal not in self._senders:
            self._senders[signal] = QueuedRetrySender(
                self.settings.id,
                signal,
                self.exporter.sender(signal),
                queue=self._queue,
                retry=self._retry,
                timeout=self._timeout,
                metrics=self.settings.metrics,
                log=self._log,
                keep_decoded=signal in self._keep_decoded,
                keep_span_skeleton=self._keep_span_skeleton,
            )
        return self._senders[signal]

    @property
    def refusing(self) -> bool:
        return any(s.full for s in self._senders.values())

    async def start(self) -> None:
        await self.exporter.start()
        for sender in self._senders.values():
            await sender.start()

    async def shutdown(self, deadline: float) -> None:
        """Drain every signal's queue (in parallel) until the deadline, then close."""
        await asyncio.gather(*(s.shutdown(deadline) for s in self._senders.values()))
        await self.exporter.shutdown()
