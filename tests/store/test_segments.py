"""Spans in Parquet segment files: big commits become files, read through the ``spans`` view."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from otlpd.errors import RetryableError
from otlpd.store.duckdb import segments
from otlpd.store.duckdb.engine import DuckDBEngine
from otlpd.store.engine import TraceQuery
from tests.store.support import SECOND, bulk_spans, tid

NOW = 1_800_000_000 * SECOND
BIG = segments.SEGMENT_MIN_ROWS  # spans in a commit that becomes a file


def open_engine(path: Path) -> DuckDBEngine:
    engine = DuckDBEngine(str(path))
    engine.migrate()
    return engine


def files(path: Path) -> list[str]:
    directory = path.with_suffix(".spans")
    return sorted(p.name for p in directory.iterdir()) if directory.is_dir() else []


def span_count(engine: DuckDBEngine) -> int:
    return engine.usage().spans


def test_a_big_commit_is_a_segment_file_and_a_small_one_a_table_row(tmp_path: Path) -> None:
    path = tmp_path / "otlpd.duckdb"
    engine = open_engine(path)
    try:
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
        file_bytes = (path.with_suffix(".spans") / files(path)[0]).stat().st_size
        assert engine.usage().bytes > file_bytes
    finally:
        engine.close()


def test_segments_are_kept_across_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "otlpd.duckdb"
    engine = open_engine(path)
    engine.write_spans(bulk_spans(0, BIG))
    engine.flush()
    engine.close()
    again = open_engine(path)
    try:
        assert span_count(again) == BIG
        assert len(again.trace(tid(BIG - 1))) == 1
    finally:
        again.close()
    # and another process (DuckDB's own client, read-only) sees them through the view
    with duckdb.connect(str(path), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM spans").fetchall() == [(BIG,)]


def test_retention_drops_old_files_and_rewrites_the_one_across_the_cutoff(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(segments, "_GRACE", 0.0)  # no query is reading: unlink at once
    path = tmp_path / "otlpd.duckdb"
    engine = open_engine(path)
    try:
        for n in range(3):  # three files, BIG seconds each
            engine.write_spans(bulk_spans(n * BIG, BIG))
            engine.flush()
        engine.write_spans(bulk_spans(3 * BIG, 5))
        engine.flush()
        first, second, third = files(path)
        cutoff = NOW + (BIG + 100) * SECOND  # all of the first file, 100 spans of the second
        assert engine.prune(cutoff) == BIG + 100
        left = files(path)
        assert first not in left
        assert second not in left
        assert third in left
        assert len(left) == 2  # the third, and what is left of the second
        assert span_count(engine) == 2 * BIG - 100 + 5
        assert engine.trace(tid(BIG + 99)) == []
        assert len(engine.trace(tid(BIG + 100))) == 1
        assert engine.oldest_ns(0.0) == cutoff
        # everything, the table's rows too
        assert engine.prune(NOW + 10 * BIG * SECOND) == 2 * BIG - 100 + 5
        assert files(path) == []
        assert span_count(engine) == 0
    finally:
        engine.close()


def test_files_no_commit_listed_are_removed_at_start(tmp_path: Path) -> None:
    path = tmp_path / "otlpd.duckdb"
    engine = open_engine(path)
    engine.write_spans(bulk_spans(0, BIG))
    engine.flush()
    engine.close()
    (kept,) = files(path)
    directory = path.with_suffix(".spans")
    (directory / "spans-1-crashed.tmp").write_bytes(b"half a file")
    (directory / "spans-2-unlisted.parquet").write_bytes(b"written, never committed")
    again = open_engine(path)
    try:
        assert files(path) == [kept]
        assert span_count(again) == BIG
    finally:
        again.close()


def test_a_failed_commit_leaves_no_file_and_keeps_the_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "otlpd.duckdb"
    engine = open_engine(path)
    try:
        engine.write_spans(bulk_spans(0, BIG))

        def disk_full(con: duckdb.DuckDBPyConnection) -> str:
            raise duckdb.IOException("No space left on device")

        monkeypatch.setattr(engine, "_view", disk_full)
        with pytest.raises(RetryableError, match="No space left"):
            engine.flush()
        assert files(path) == []
        assert engine.pending_rows() == BIG
        monkeypatch.undo()
        assert engine.flush() == BIG
        assert len(files(path)) == 1
        assert span_count(engine) == BIG  # once
    finally:
        engine.close()


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
    engine = open_engine(path)
    try:
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
    finally:
        engine.close()
