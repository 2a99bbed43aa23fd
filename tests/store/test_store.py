"""The async store around the engine: writes, flushes, close, and retention by age and by size."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from otlpd.pdata import Payload, Signal
from otlpd.store.duckdb.engine import DuckDBEngine
from otlpd.store.engine import Engine, LogQuery, SeriesQuery, TraceQuery, Usage
from otlpd.store.store import Retention, Store
from otlpd.telemetry.metrics import Metrics
from tests.exporters.helpers import build_exporter
from tests.store.support import (
    SECOND,
    bulk_spans,
    gauge,
    log_record,
    logs_request,
    metrics_request,
    number,
    span,
    tid,
    traces_request,
)

T = TypeVar("T")
HOUR = 3600 * SECOND
NOW = 1_800_000_000 * SECOND


def run(coro: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(asyncio.wait_for(coro(), 60))


class Recorder:
    """Collects what the store reports: usage after every retention check, and what it pruned."""

    def __init__(self) -> None:
        self.usage: list[Usage] = []
        self.pruned: list[tuple[str, int]] = []

    def store(self, path: Path, retention: Retention, flush_interval: float = 3600.0) -> Store:
        return Store(
            "store",
            lambda: DuckDBEngine(str(path)),
            retention=retention,
            flush_interval=flush_interval,
            on_usage=self.usage.append,
            on_pruned=lambda reason, n: self.pruned.append((reason, n)),
        )

    async def first_check(self) -> None:
        """The retention loop checks once as the store starts, concurrently: wait for it to finish."""
        for _ in range(1000):
            if self.usage:
                return
            await asyncio.sleep(0.01)
        raise AssertionError("the retention loop did not run at start")


def test_writes_are_queryable_after_flush_and_kept_by_close(tmp_path: Path) -> None:
    path = tmp_path / "otlpd.duckdb"
    recorder = Recorder()

    async def first() -> None:
        store = recorder.store(path, Retention(0, 0, 3600))
        assert not store.ready
        assert await store.start() == [1, 2, 3]
        assert store.ready
        traces = traces_request("cart", [span(tid(1), b"\x01" * 8, "GET /cart", NOW, NOW + 1)])
        await store.write(Payload.from_message(Signal.TRACES, traces))
        await store.write(Payload.from_message(Signal.LOGS, logs_request("cart", [log_record(NOW, "hi")])))
        assert await store.read(lambda e: e.services()) == []  # not committed yet: flush_interval is an hour
        await store.flush()
        assert await store.read(lambda e: e.services()) == ["cart"]
        # written, not flushed: close commits it
        more = traces_request("cart", [span(tid(2), b"\x02" * 8, "GET /more", NOW, NOW + 1)])
        await store.write(Payload.from_message(Signal.TRACES, more))
        await store.write(
            Payload.from_message(Signal.METRICS, metrics_request("cart", [gauge("g", [number(NOW, 1)])]))
        )
        await store.close()
        assert not store.ready

    async def second() -> None:
        store = recorder.store(path, Retention(0, 0, 3600))
        assert await store.start() == []  # already migrated
        try:
            summaries = await store.read(lambda e: e.find_traces(TraceQuery()))
            assert sorted(s.trace_id for s in summaries) == [tid(1), tid(2)]
            assert len(await store.read(lambda e: e.find_logs(LogQuery()))) == 1
            assert [m.name for m in await store.read(lambda e: e.metrics())] == ["g"]
        finally:
            await store.close()

    run(first)
    run(second)
    # the retention loop runs at start (nothing to prune) and reports usage each time
    assert recorder.pruned == []
    assert len(recorder.usage) >= 2


def test_the_flush_loop_commits_within_flush_interval(tmp_path: Path) -> None:
    async def scenario() -> None:
        store = Recorder().store(tmp_path / "db.duckdb", Retention(0, 0, 3600), flush_interval=0.05)
        await store.start()
        try:
            traces = traces_request("svc", [span(tid(1), b"\x01" * 8, "op", NOW, NOW + 1)])
            await store.write(Payload.from_message(Signal.TRACES, traces))
            for _ in range(200):
                if await store.read(lambda e: e.services()):
                    break
                await asyncio.sleep(0.01)
            assert await store.read(lambda e: e.services()) == ["svc"]
        finally:
            await store.close()

    run(scenario)


def test_age_retention(tmp_path: Path) -> None:
    recorder = Recorder()

    async def scenario() -> dict[str, int]:
        store = recorder.store(
            tmp_path / "db.duckdb", Retention(max_age=3600, max_size=0, check_interval=3600)
        )
        await store.start()
        try:
            await recorder.first_check()
            old, recent = NOW - 2 * HOUR, NOW - HOUR // 2
            traces = traces_request(
                "svc",
                [
                    span(tid(1), b"\x01" * 8, "old", old, old + 1),
                    span(tid(2), b"\x02" * 8, "recent", recent, recent),
                ],
            )
            logs = logs_request("svc", [log_record(old, "old"), log_record(recent, "recent")])
            metrics = metrics_request(
                "svc", [gauge("old.only", [number(old, 1.0)]), gauge("g", [number(recent, 2.0)])]
            )
            for signal, message in ((Signal.TRACES, traces), (Signal.LOGS, logs), (Signal.METRICS, metrics)):
                await store.write(Payload.from_message(signal, message))
            await store.flush()
            recorder.usage.clear()
            # an hour and a half ago is within max_age: nothing goes
            assert await store.enforce_retention(now_ns=old + HOUR) == {"age": 0, "size": 0}
            pruned = await store.enforce_retention(now_ns=NOW)
            assert await store.read(lambda e: e.operations("svc")) == [("recent", 1)]
            assert [m.name for m in await store.read(lambda e: e.metrics())] == ["g"]
            assert [s.trace_id for s in await store.read(lambda e: e.find_traces(TraceQuery()))] == [tid(2)]
            assert len(await store.read(lambda e: e.find_logs(LogQuery()))) == 1
            return pruned
        finally:
            await store.close()

    assert run(scenario) == {"age": 3, "size": 0}
    assert recorder.pruned == [("age", 3)]
    assert [(u.spans, u.logs, u.points) for u in recorder.usage] == [(2, 2, 2), (1, 1, 1)]


def test_size_retention_frees_space_and_keeps_the_newest(tmp_path: Path) -> None:
    """Deleting frees space in whole row groups (122,880 rows), so a few of them, oldest first."""
    path = tmp_path / "db.duckdb"
    total = 320_000
    engine = DuckDBEngine(str(path))
    engine.migrate()
    engine.write_spans(bulk_spans(0, total))
    assert engine.flush() == total
    size = engine.usage().bytes
    engine.close()
    limit = int(size * 0.7)
    recorder = Recorder()

    async def scenario() -> tuple[Usage, int | None, Any, Any]:
        store = recorder.store(path, Retention(max_age=0, max_size=limit, check_interval=3600))
        await store.start()
        try:
            await recorder.first_check()
            # readers have run every kind of query: a half-read result once kept a transaction
            # open on its thread, and with it the space of every row deleted since
            assert len(await store.read(lambda e: e.trace(tid(total - 1)))) == 1
            queries: list[Callable[[Engine], Any]] = [
                lambda e: e.services(),
                lambda e: e.operations("bulk"),
                lambda e: e.find_traces(TraceQuery(limit=3)),
                lambda e: e.find_traces(TraceQuery(service="bulk", min_duration_ns=1)),
                lambda e: e.find_logs(LogQuery()),
                lambda e: e.metrics(),
                lambda e: e.points(SeriesQuery("none", 0, NOW)),
                lambda e: e.usage(),
                lambda e: e.oldest_ns(0.5),
                lambda e: e.schema_version(),
            ]
            for _ in range(2):  # more than one round: the pool's threads each get some
                await asyncio.gather(*(store.read(query) for query in queries))
            for _ in range(3):  # checks until it fits: each frees what whole row groups it emptied
                if recorder.usage[-1].bytes <= limit:
                    break
                await store.enforce_retention()
            usage = await store.read(lambda e: e.usage())
            oldest = await store.read(lambda e: e.oldest_ns(0.0))
            newest = await store.read(lambda e: e.trace(tid(total - 1)))
            first = await store.read(lambda e: e.trace(tid(0)))
            return usage, oldest, newest, first
        finally:
            await store.close()

    usage, oldest, newest, first = run(scenario)
    deleted = sum(n for _, n in recorder.pruned)
    assert {reason for reason, _ in recorder.pruned} == {"size"}
    assert recorder.usage[-1].bytes == usage.bytes <= limit, (size, limit, usage)
    assert usage.spans == total - deleted
    # the oldest went, in time order; the newest stayed; not much more than needed went
    assert oldest == NOW + deleted * SECOND
    assert len(newest) == 1
    assert first == []
    assert total * 0.3 <= deleted < total * 0.7, (deleted, total)


def test_size_retention_does_not_empty_a_store_it_cannot_shrink(tmp_path: Path) -> None:
    """Under a row group (122,880 items) deleting frees no space until everything is gone.

    So size retention leaves such a store alone (and says why) instead of emptying it a share
    at a time, check after check.
    """
    path = tmp_path / "db.duckdb"
    total = 20_000
    engine = DuckDBEngine(str(path))
    engine.migrate()
    engine.write_spans(bulk_spans(0, total))
    engine.flush()
    limit = int(engine.usage().bytes * 0.7)
    engine.close()
    recorder = Recorder()
    checks: list[dict[str, int]] = []

    async def scenario() -> None:
        store = recorder.store(path, Retention(max_age=0, max_size=limit, check_interval=3600))
        await store.start()
        try:
            await recorder.first_check()
            for _ in range(3):
                checks.append(await store.enforce_retention())
        finally:
            await store.close()

    run(scenario)
    assert recorder.pruned == []
    assert checks == [{"age": 0, "size": 0}] * 3
    assert recorder.usage[-1].spans == total


def test_no_retention_configured(tmp_path: Path) -> None:
    async def scenario() -> dict[str, int]:
        store = Recorder().store(tmp_path / "db.duckdb", Retention(0, 0, 3600))
        await store.start()
        try:
            await store.write(
                Payload.from_message(
                    Signal.TRACES, traces_request("svc", [span(tid(1), b"\x01" * 8, "op", 1, 2)])
                )
            )
            await store.flush()
            return await store.enforce_retention(now_ns=NOW)
        finally:
            await store.close()

    assert run(scenario) == {"age": 0, "size": 0}


def test_an_in_memory_database_works_as_an_engine() -> None:
    engine: Engine = DuckDBEngine(":memory:")
    try:
        assert engine.migrate() == [1, 2, 3]
    finally:
        engine.close()


def test_the_store_queue_keeps_decoded_logs_and_metrics_but_not_spans(tmp_path: Path) -> None:
    """Log and metric columns are read from the decoded request; span columns from its bytes
    alone, so a queued span request need not hold its decoding (~4x its size)."""
    exporter = build_exporter("store", {"path": str(tmp_path / "db.duckdb")}, Metrics())
    kept = {s: exporter.consumer(s)._keep_decoded for s in Signal}
    assert kept == {Signal.TRACES: False, Signal.LOGS: True, Signal.METRICS: True}
    # span columns are read from the span skeleton the receiver made, when a request has one
    assert exporter.consumer(Signal.TRACES)._keep_span_skeleton
