"""An engine run off the event loop, with background flushing and retention.

A writer thread converts requests to columns and buffers them in the engine;
a committer thread commits the buffer (once it is big enough, or every
``flush_interval``) and prunes, so conversion (Python) and commits (the
engine's native code, which releases the GIL and waits on the disk) overlap.
When commits fall behind by ``backlog`` commits' worth of rows, writes wait
for the commit in progress: back-pressure instead of unbounded memory.
Queries run on a small pool of reader threads, each with its own
connection; a slow query never holds up ingest.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from otlpd.errors import RetryableError
from otlpd.pdata import Payload, Signal
from otlpd.store import columns
from otlpd.store.engine import Engine, Usage
from otlpd.telemetry import logging as otlpd_logging

T = TypeVar("T")


@dataclass(frozen=True)
class Retention:
    max_age: float  # seconds, 0 = forever
    max_size: int  # bytes, 0 = unlimited
    check_interval: float


class Store:
    def __init__(
        self,
        name: str,
        open_engine: Callable[[], Engine],
        *,
        retention: Retention,
        flush_interval: float,
        on_usage: Callable[[Usage], None] | None = None,
        on_pruned: Callable[[str, int], None] | None = None,
        readers: int = 4,
        backlog: int = 1,
    ) -> None:
        self.name = name
        self._open_engine = open_engine
        self._engine: Engine | None = None
        self._retention = retention
        self._flush_interval = flush_interval
        self._on_usage = on_usage
        self._on_pruned = on_pruned
        self._writer = ThreadPoolExecutor(1, thread_name_prefix=f"{name}-writer")
        self._committer = ThreadPoolExecutor(1, thread_name_prefix=f"{name}-committer")
        self._commit: asyncio.Future[int] | None = None
        self._backlog = backlog
        self._stuck = 0  # items size retention deleted since the file last shrank
        self._stuck_logged = False
        self._grown_from = 0
        self._readers = ThreadPoolExecutor(readers, thread_name_prefix=f"{name}-reader")
        self._tasks: list[asyncio.Task[None]] = []
        self._log = otlpd_logging.get(f"store.{name}")

    @property
    def ready(self) -> bool:
        return self._engine is not None

    async def _on_writer(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._writer, fn, *args)

    async def _on_committer(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._committer, fn, *args)

    async def read(self, fn: Callable[[Engine], T]) -> T:
        """Run a query against the engine on a reader thread."""
        engine = self._engine
        if engine is None:
            raise StoreUnavailable(f"store {self.name} is not open")
        return await asyncio.get_running_loop().run_in_executor(self._readers, fn, engine)

    async def start(self) -> list[int]:
        """Open the database and bring its schema up to date; the migrations applied."""
        engine = await self._on_writer(self._open_engine)
        try:
            applied = await self._on_writer(engine.migrate)
        except BaseException:
            await self._on_writer(engine.close)
            raise
        self._engine = engine
        if applied:
            self._log.info("schema migrated", extra={"store": self.name, "applied": applied})
        for name, spans, why in engine.set_aside:
            self._log.error(
                "a span segment file is missing or damaged: set aside, its spans are not queried",
                extra={"store": self.name, "file": name, "spans": spans, "error": why},
            )
        self._tasks = [
            asyncio.create_task(self._flush_loop(), name=f"{self.name}-flush"),
            asyncio.create_task(self._retention_loop(), name=f"{self.name}-retention"),
        ]
        return applied

    async def write(self, payload: Payload) -> None:
        engine = self._engine
        if engine is None:
            raise StoreUnavailable(f"store {self.name} is not open")
        limit = self._backlog * engine.flush_rows
        if engine.pending_rows() >= limit:
            # Wait for the commit in progress, then for one that takes what is pending now.
            for _ in range(2):
                with contextlib.suppress(Exception):  # its failure is for the flush loop to report
                    await self._start_commit()
                if engine.pending_rows() < limit:
                    break
            else:
                # Commits are failing. Refused before it is buffered: a retry cannot store it twice.
                raise RetryableError(f"store {self.name} cannot commit what it holds; try again later")
        await self._on_writer(_write, engine, payload)
        if engine.pending_rows() >= engine.flush_rows:
            self._start_commit()

    def _start_commit(self) -> asyncio.Future[int]:
        """The commit in progress, or a new one."""
        engine = self._engine
        if self._commit is None or self._commit.done():
            if engine is None:
                done: asyncio.Future[int] = asyncio.get_running_loop().create_future()
                done.set_result(0)
                return done
            self._commit = asyncio.get_running_loop().run_in_executor(self._committer, engine.flush)
            self._commit.add_done_callback(_consume_exception)
        return self._commit

    async def flush(self) -> None:
        """Commit what is buffered (what a commit in progress did not take, too)."""
        await self._start_commit()
        if self._engine is not None and self._engine.pending_rows():
            await self._start_commit()

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(self._flush_interval)
            try:
                await self.flush()
            except Exception as exc:  # the rows stay pending; the next round retries them
                self._log.error("flush failed", extra={"store": self.name, "error": str(exc)})

    async def _retention_loop(self) -> None:
        while True:
            try:
                await self.enforce_retention()
            except Exception as exc:
                self._log.error("retention failed", extra={"store": self.name, "error": str(exc)})
            await asyncio.sleep(self._retention.check_interval)

    async def enforce_retention(self, now_ns: int | None = None) -> dict[str, int]:
        """Delete what is older than ``max_age``, then the oldest data until under ``max_size``."""
        engine = self._engine
        if engine is None:
            return {}
        pruned = {"age": 0, "size": 0}
        now_ns = now_ns or time.time_ns()
        if self._retention.max_age > 0:
            cutoff = now_ns - int(self._retention.max_age * 1e9)
            pruned["age"] = await self._on_committer(engine.prune, cutoff)
        usage = await self._on_committer(engine.usage)
        # DuckDB gives space back by row group (``flush_rows`` items, oldest first as data
        # arrives in time order): size retention never touches the newest row group's worth,
        # and stops once it has deleted a row group's worth without the file shrinking.
        group = engine.flush_rows
        for _ in range(8):
            limit = self._retention.max_size
            items = usage.spans + usage.logs + usage.points
            if not limit or usage.bytes <= limit or items <= group or self._stuck >= group:
                break
            share = min((usage.bytes - limit) / usage.bytes + 0.05, 1 - group / items)
            oldest = await self._on_committer(engine.oldest_ns, share)
            if oldest is None:
                break
            before = usage.bytes
            deleted = await self._on_committer(engine.prune, oldest + 1)
            pruned["size"] += deleted
            usage = await self._on_committer(engine.usage)
            if not deleted:
                break
            self._stuck = self._stuck + deleted if usage.bytes >= before else 0
        over = bool(self._retention.max_size) and usage.bytes > self._retention.max_size
        items = usage.spans + usage.logs + usage.points
        if over and (self._stuck >= group or items <= group) and not self._stuck_logged:
            self._stuck_logged = True
            self._log.warning(
                "retention cannot bring the store under max_size: DuckDB frees space by row group"
                f" ({group:,} items); keep max_size a few row groups above the data you want",
                extra={"store": self.name, "bytes": usage.bytes, "limit": self._retention.max_size},
            )
        if usage.bytes > self._grown_from * 1.05:  # new data since: deleting may free space again
            self._stuck, self._stuck_logged = 0, False
        self._grown_from = usage.bytes
        for reason, count in pruned.items():
            if count and self._on_pruned:
                self._on_pruned(reason, count)
        if any(pruned.values()):
            self._log.info("retention pruned", extra={"store": self.name, **pruned, "bytes": usage.bytes})
        if self._on_usage:
            self._on_usage(usage)
        return pruned

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        await asyncio.get_running_loop().run_in_executor(self._writer, lambda: None)  # writes in progress
        engine = self._engine
        if engine is not None:
            try:
                await self.flush()
            finally:
                self._engine = None
                await self._on_committer(engine.close)
        self._writer.shutdown(wait=False)
        self._committer.shutdown(wait=False)
        self._readers.shutdown(wait=False)


class StoreUnavailable(Exception):
    pass


def _consume_exception(future: asyncio.Future[int]) -> None:
    """A commit's failure is reported by whoever awaits it, or the flush loop; never as unretrieved."""
    if not future.cancelled():
        future.exception()


def _write(engine: Engine, payload: Payload) -> None:
    # Span columns come from the bytes alone (columns.spans), and from the span skeleton
    # the receiver made if it is there, so a batch's spans are not parsed in full again;
    # log and metric columns use the decoded message.
    if payload.signal is Signal.TRACES:
        engine.write_spans(columns.spans(payload.data, payload.decoded, payload.span_skeleton))  # type: ignore[arg-type]
    elif payload.signal is Signal.LOGS:
        engine.write_logs(columns.logs(payload.data, payload.message))  # type: ignore[arg-type]
    else:
        engine.write_metrics(columns.metrics(payload.data, payload.message))  # type: ignore[arg-type]
    payload.release()
