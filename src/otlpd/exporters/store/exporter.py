"""The ``store`` exporter: keeps everything it is sent in the embedded store.

It goes through the same queue → retry → timeout path as every exporter, so a
database that is briefly unwritable (disk full, a long checkpoint) holds data
back and retries instead of losing it. The :class:`Store` it opens is also
what the query API reads.
"""

from __future__ import annotations

import os

from otlpd.component import Settings
from otlpd.exporters.helper.component import ExporterComponent
from otlpd.exporters.helper.sender import SendFn
from otlpd.exporters.store.config import StoreConfig
from otlpd.pdata import Payload, Signal
from otlpd.store.engine import Engine, Usage
from otlpd.store.store import Retention, Store


def open_engine(cfg: StoreConfig) -> Engine:
    from pathlib import Path

    from otlpd.store.duckdb.engine import DuckDBEngine

    if cfg.path != ":memory:":
        Path(cfg.path).parent.mkdir(parents=True, exist_ok=True)
    threads = cfg.threads or min(4, len(os.sched_getaffinity(0)))
    return DuckDBEngine(cfg.path, threads=threads, memory_limit=cfg.memory_limit)


class StoreExporter:
    def __init__(self, settings: Settings) -> None:
        cfg: StoreConfig = settings.config
        name = str(settings.id)
        metrics = settings.metrics

        def on_usage(usage: Usage) -> None:
            metrics.store_size.labels(name).set(usage.bytes)
            metrics.store_items.labels(name, "traces").set(usage.spans)
            metrics.store_items.labels(name, "logs").set(usage.logs)
            metrics.store_items.labels(name, "metrics").set(usage.points)

        self.store = Store(
            name,
            lambda: open_engine(cfg),
            retention=Retention(cfg.retention.max_age, cfg.retention.max_size, cfg.retention.check_interval),
            flush_interval=cfg.flush_interval,
            on_usage=on_usage,
            on_pruned=lambda reason, count: metrics.store_pruned.labels(name, reason).inc(count),
        )

    async def start(self) -> None:
        await self.store.start()

    def sender(self, signal: Signal) -> SendFn:
        async def send(payload: Payload) -> int:
            await self.store.write(payload)  # raises RetryableError / PermanentError
            return 0

        return send

    async def shutdown(self) -> None:
        await self.store.close()


class StoreExporterComponent(ExporterComponent):
    """An exporter component that also offers its store to the query API."""

    def __init__(self, settings: Settings) -> None:
        cfg: StoreConfig = settings.config
        self.exporter_impl = StoreExporter(settings)
        super().__init__(
            settings,
            self.exporter_impl,
            queue=cfg.sending_queue,
            retry=cfg.retry_on_failure,
            # No timeout: a write runs in a thread that cannot be cancelled, so a
            # timed-out attempt could still land and its retry store the data twice.
            timeout=0.0,
            # A request straight from the receiver is already decoded: the store reads log
            # and metric columns from it instead of parsing the bytes again. Span columns
            # come from the bytes alone, so spans do not hold ~4x their size in the queue.
            keep_decoded=(Signal.LOGS, Signal.METRICS),
            # ... and from the span skeleton the receiver made, when the request has it
            keep_span_skeleton=True,
        )

    @property
    def store(self) -> Store:
        return self.exporter_impl.store
