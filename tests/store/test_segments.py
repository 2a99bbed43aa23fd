"""Spans in Parquet segment files: big commits become files, read through the ``spans`` view."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest

from otlpd.errors import RetryableError
from otlpd.store.duckdb import segments
from otlpd.store.duckdb.engine import DuckDBEngine
from otlpd.store.engine import TraceQuery
from tests.store import v1
from tests.store.support import SECOND, bulk_spans, tid

NOW = 1_800_000_000 * SECOND
BIG = segments.SEGMENT_MIN_ROWS  # spans in a commit that becomes a file


def open_engine(path: Path) -> DuckDBEngine:
    engine = DuckDBEngine(str(path))
    engine.migrate()
    return engine


@contextlib.contextmanager
def opened(path: Path) -> Iterator[DuckDBEngine]:
    engine = open_engine(path)
    try:
        yield engine
    finally:
        engine.close()


def with_files(path: Path, count: int) -> None:
    """A database at ``path`` holding ``count`` segment files of BIG spans each, closed."""
    engine = open_engine(path)
    for n in range(count):
        engine.write_spans(bulk_spans(n * BIG, BIG))
        engine.flush()
    engine.close()


def directory_of(path: Path) -> Path:
    return path.parent / (path.name + ".spans")


def files(path: Path) -> list[str]:
    directory = directory_of(path)
    return sorted(p.name for p in directory.iterdir()) if directory.is_dir() else []


def span_count(engine: DuckDBEngine) -> int:
    return engine.usage().spans


def test_a_big_commit_is_a_segment_file_and_a_small_one_a_table_row(tmp_path: Path) -> None:
    path = tmp_path / "otlpd.duckdb"
    with opened(path) as engine:
        engine.write_spans(bulk_spans(0, BIG))
        assert engine.flush() == BIG
        assert len(files(path)) == 1
        engine.write_spans(bulk_spans(BIG, 10))
        assert engine.flush() == 10
        assert len(files(path)) == 1  # a trickle does not make a file a commit
        con = engine._con()
        assert con.execute("SELECT count(*) FROM span_rows").fetchall() == [(10,)]
        assert con.execute("SELECT rows, first_ns, last_ns FROM span_segments").fetchall() == [
            (BIG, NOW, NOW + (BIG - 1) * SECOND)
        ]
        # every query reads both
        assert span_count(engine) == BIG + 10
        assert engine.services() == ["bulk"]
        assert len(engine.trace(tid(5))) == 1  # in the file
        assert len(engine.trace(tid(BIG + 5))) == 1  # in the table
        found = engine.find_traces(TraceQuery(service="bulk", limit=3))
        assert [s.trace_id for s in found] == [tid(BIG + 9), tid(BIG + 8), tid(BIG + 7)]
        oldest = engine.find_traces(TraceQuery(end_ns=NOW + 2 * SECOND, limit=5))
        assert [s.trace_id for s in oldest] == [tid(2), tid(1), tid(0)]
        file_bytes = (directory_of(path) / files(path)[0]).stat().st_size
        assert engine.usage().bytes > file_bytes


def test_segments_are_kept_across_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "otlpd.duckdb"
    with_files(path, 1)
    with opened(path) as again:
        assert span_count(again) == BIG
        assert len(again.trace(tid(BIG - 1))) == 1
    # and another process (DuckDB's own client, read-only) sees them through the view
    with duckdb.connect(str(path), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM spans").fetchall() == [(BIG,)]


def test_retention_drops_old_files_and_rewrites_the_one_across_the_cutoff(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(segments, "_GRACE", 0.0)  # no query is reading: unlink at once
    path = tmp_path / "otlpd.duckdb"
    with opened(path) as engine:
        for n in range(3):  # three files, BIG seconds each
            engine.write_spans(bulk_spans(n * BIG, BIG))
            engine.flush()
        engine.write_spans(bulk_spans(3 * BIG, 5))
        engine.flush()
        first, second, third = files(path)
        half = BIG // 2
        cutoff = NOW + (BIG + half) * SECOND  # all of the first file, half of the second
        assert engine.prune(cutoff) == BIG + half
        left = files(path)
        assert first not in left
        assert second not in left
        assert third in left
        assert len(left) == 2  # the third, and what is left of the second
        assert span_count(engine) == 2 * BIG - half + 5
        assert engine.trace(tid(BIG + half - 1)) == []
        assert len(engine.trace(tid(BIG + half))) == 1
        assert engine.oldest_ns(0.0) == cutoff
        # everything, the table's rows too
        assert engine.prune(NOW + 10 * BIG * SECOND) == 2 * BIG - half + 5
        assert files(path) == []
        assert span_count(engine) == 0


def test_a_file_is_not_written_again_for_a_few_old_spans(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One long-running span can put a file's start far back: rewriting it every round for that
    span would write the whole store again and again. Its few old spans go with the file."""
    monkeypatch.setattr(segments, "_GRACE", 0.0)
    path = tmp_path / "otlpd.duckdb"
    with opened(path) as engine:
        engine.write_spans(bulk_spans(0, BIG))
        engine.flush()
        (only,) = files(path)
        few = BIG // 20
        assert engine.prune(NOW + few * SECOND) == 0  # a twentieth of the file: kept as it is
        assert files(path) == [only]
        assert span_count(engine) == BIG
        assert engine.prune(NOW + (BIG // 5) * SECOND) == BIG // 5  # a fifth: written again
        assert only not in files(path)
        assert span_count(engine) == BIG - BIG // 5


def test_a_full_disk_does_not_keep_retention_from_deleting_whole_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(segments, "_GRACE", 0.0)
    path = tmp_path / "otlpd.duckdb"
    with opened(path) as engine:
        for n in range(2):
            engine.write_spans(bulk_spans(n * BIG, BIG))
            engine.flush()
        _, second = files(path)

        def disk_full(batch: object) -> None:
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(engine._segments, "write", disk_full)
        # the first file goes; the second, cut in half, cannot be written again: left as it is
        assert engine.prune(NOW + (BIG + BIG // 2) * SECOND) == BIG
        assert files(path) == [second]
        assert span_count(engine) == BIG


def test_a_missing_or_damaged_file_is_set_aside_and_the_store_opens(tmp_path: Path) -> None:
    path = tmp_path / "otlpd.duckdb"
    with_files(path, 3)
    first, second, third = files(path)
    directory = directory_of(path)
    (directory / first).unlink()
    (directory / second).write_bytes(b"PAR1 not really")
    with opened(path) as again:
        assert sorted(name for name, _, _ in again.set_aside) == sorted([first, second])
        assert [spans for _, spans, _ in again.set_aside] == [BIG, BIG]
        assert files(path) == sorted(["damaged", third])
        assert (directory / "damaged" / second).exists()  # kept, for whoever wants to look
        assert span_count(again) == BIG
        assert len(again.trace(tid(2 * BIG))) == 1


def test_databases_with_the_same_stem_keep_their_files_apart(tmp_path: Path) -> None:
    """Opening a.db must not take a.duckdb's files for strays."""
    a, b = tmp_path / "a.duckdb", tmp_path / "a.db"
    with_files(a, 1)
    open_engine(b).close()
    with opened(a) as again:
        assert again.set_aside == []
        assert span_count(again) == BIG


def test_files_no_commit_listed_are_removed_at_start(tmp_path: Path) -> None:
    path = tmp_path / "otlpd.duckdb"
    with_files(path, 1)
    (kept,) = files(path)
    directory = directory_of(path)
    (directory / "spans-1-crashed.tmp").write_bytes(b"half a file")
    (directory / "spans-2-unlisted.parquet").write_bytes(b"written, never committed")
    with opened(path) as again:
        assert files(path) == [kept]
        assert span_count(again) == BIG


def _no_space(engine: DuckDBEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    def disk_full(con: duckdb.DuckDBPyConnection) -> str:  # after the file is written
        raise duckdb.IOException("No space left on device")

    monkeypatch.setattr(engine, "_view", disk_full)


def _no_memory(engine: DuckDBEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_memory(batch: object) -> None:  # Arrow's, writing the file
        raise pa.ArrowMemoryError("malloc of size 123 failed")

    monkeypatch.setattr(engine._segments, "write", no_memory)


@pytest.mark.parametrize(("fail", "message"), [(_no_space, "No space left"), (_no_memory, "malloc")])
def test_a_failed_commit_leaves_no_file_and_keeps_the_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fail: Any, message: str
) -> None:
    path = tmp_path / "otlpd.duckdb"
    with opened(path) as engine:
        engine.write_spans(bulk_spans(0, BIG))
        fail(engine, monkeypatch)
        with pytest.raises(RetryableError, match=message):
            engine.flush()
        assert files(path) == []
        assert engine.pending_rows() == BIG
        monkeypatch.undo()
        assert engine.flush() == BIG
        assert len(files(path)) == 1
        assert span_count(engine) == BIG  # once


def test_an_in_memory_database_keeps_its_files_in_a_directory_it_removes() -> None:
    engine = DuckDBEngine(":memory:")
    engine.migrate()
    directory = engine._segments.directory
    try:
        engine.write_spans(bulk_spans(0, BIG))
        engine.flush()
        assert len(list(directory.iterdir())) == 1
        assert span_count(engine) == BIG
    finally:
        engine.close()
    assert not directory.exists()


def test_small_commits_are_moved_to_a_file_once_they_add_up_to_one(tmp_path: Path) -> None:
    """So that spans live in files whatever the traffic, and size retention frees what it deletes."""
    path = tmp_path / "otlpd.duckdb"
    with opened(path) as engine:
        step = BIG // 4
        for n in range(3):
            engine.write_spans(bulk_spans(n * step, step))
            engine.flush()
        assert files(path) == []
        engine.write_spans(bulk_spans(3 * step, step))
        engine.flush()
        assert len(files(path)) == 1
        con = engine._con()
        assert con.execute("SELECT count(*) FROM span_rows").fetchall() == [(0,)]
        assert con.execute("SELECT rows, first_ns FROM span_segments").fetchall() == [(4 * step, NOW)]
        assert span_count(engine) == 4 * step
        assert len(engine.trace(tid(0))) == len(engine.trace(tid(4 * step - 1))) == 1


def test_spans_stored_before_schema_v3_stay_in_their_table(tmp_path: Path) -> None:
    """A small commit moves what small commits put in span_rows, never the spans a v2 store held:
    moving those would read the whole old store into memory and write it as one file."""
    path = tmp_path / "old.duckdb"
    v1.create(str(path), NOW)
    with opened(path) as engine:
        con = engine._con()
        ((legacy,),) = con.execute("SELECT count(*) FROM span_legacy").fetchall()
        assert legacy == 3
        monkeypatched_min = 2  # as if the old table held a file's worth and more
        with pytest.MonkeyPatch.context() as m:
            m.setattr("otlpd.store.duckdb.engine.SEGMENT_MIN_ROWS", monkeypatched_min)
            engine.write_spans(bulk_spans(0, 1))
            engine.flush()
            engine.write_spans(bulk_spans(1, 1))
            engine.flush()
        assert con.execute("SELECT count(*) FROM span_legacy").fetchall() == [(legacy,)]
        assert len(files(path)) == 1  # the two new spans, not the old ones
        assert con.execute("SELECT rows FROM span_segments").fetchall() == [(2,)]
        assert span_count(engine) == legacy + 2


def test_pruning_while_a_query_reads_does_not_fail(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A reader's open transaction keeps the CHECKPOINT after deleting from running: what was
    deleted must still be counted, not reported as a failed prune."""
    monkeypatch.setattr(segments, "_GRACE", 0.0)
    path = tmp_path / "otlpd.duckdb"
    with opened(path) as engine:
        engine.write_spans(bulk_spans(0, BIG))
        engine.flush()
        engine.write_spans(bulk_spans(BIG, 10))
        engine.flush()
        reader = engine._db.cursor()
        reader.execute("BEGIN TRANSACTION")
        reader.execute("SELECT count(*) FROM spans").fetchall()
        assert engine.prune(NOW + (BIG + 5) * SECOND) == BIG + 5
        reader.execute("ROLLBACK")
        reader.close()
        assert span_count(engine) == 5
