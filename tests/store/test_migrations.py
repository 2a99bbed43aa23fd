"""Schema migrations in-process: v1 → v2 backfills, refusing newer schemas, atomic failure."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from otlpd.store.duckdb.engine import DuckDBEngine, SchemaError
from otlpd.store.duckdb.migrations import LATEST, MIGRATIONS
from otlpd.store.engine import LogQuery, SeriesQuery, TraceQuery
from tests.store import v1
from tests.store.support import MS, SECOND

T0 = 1_800_000_000 * SECOND
V1_TABLES = {"otlpd_schema", "resources", "scopes", "spans", "logs", "metric_points"}


def test_migrations_are_numbered_in_order() -> None:
    assert [m.version for m in MIGRATIONS] == list(range(1, len(MIGRATIONS) + 1))
    assert LATEST == MIGRATIONS[-1].version == 3


def test_v1_database_is_migrated_and_backfilled(tmp_path: Path) -> None:
    path = str(tmp_path / "old.duckdb")
    v1.create(path, T0)
    assert v1.version(path) == 1
    assert v1.tables(path) == V1_TABLES
    e = DuckDBEngine(path)
    try:
        assert e.schema_version() == 1
        with pytest.raises(duckdb.CatalogException):  # v1 has no catalogs to read
            e.services()
        assert e.migrate() == [2, 3]
        assert e.schema_version() == 3
        # the catalogs, from the stored data
        assert e.services() == ["legacy-api", "legacy-worker"]
        assert e.operations("legacy-api") == [("GET /orders", 2), ("SELECT orders", 3)]
        assert [(m.name, m.type, m.unit) for m in e.metrics()] == [
            ("legacy.latency", "histogram", "ms"),
            ("legacy.queue", "gauge", ""),
        ]
        # the trace index: traces are found and fetched
        summaries = e.find_traces(TraceQuery())
        assert [(s.trace_id, s.span_count, s.error_count) for s in summaries] == [
            (v1.OTHER_TRACE, 1, 0),
            (v1.TRACE, 2, 1),
        ]
        assert len(e.trace(v1.TRACE)) == 2
        assert [s.trace_id for s in e.find_traces(TraceQuery(attributes=(("db.rows", "12"),)))] == [v1.TRACE]
        index = e._con().execute("SELECT trace_key, first_ns, last_ns FROM trace_index ORDER BY 2").fetchall()
        assert [(first, last) for _, first, last in index] == [(T0, T0 + 5 * MS), (T0 + SECOND, T0 + SECOND)]
        assert len(e.find_logs(LogQuery(trace_id=v1.TRACE))) == 1
        info, rows = e.points(SeriesQuery("legacy.latency", T0, T0 + 60 * SECOND))
        assert info is not None
        assert len(rows) == 2
        # and new data goes on from there
        assert e.migrate() == []
    finally:
        e.close()
    assert v1.tables(path) == V1_TABLES | {
        "operations",
        "metric_catalog",
        "trace_index",
        "span_legacy",
        "span_rows",
        "span_segments",
    }


def test_newer_schema_is_refused_untouched(tmp_path: Path) -> None:
    path = str(tmp_path / "future.duckdb")
    v1.create(path, T0, version=LATEST + 1)
    e = DuckDBEngine(path)
    try:
        with pytest.raises(
            SchemaError, match=rf"schema version {LATEST + 1}; this otlpd knows up to {LATEST}"
        ):
            e.migrate()
    finally:
        e.close()
    assert v1.version(path) == LATEST + 1
    assert v1.tables(path) == V1_TABLES  # migration 2 was not applied under it


def test_a_failed_migration_leaves_the_previous_version(tmp_path: Path) -> None:
    path = str(tmp_path / "broken.duckdb")
    v1.create(path, T0)
    con = duckdb.connect(path)
    con.execute("CREATE TABLE trace_index (something_else VARCHAR)")  # migration 2 will trip on it
    con.close()
    e = DuckDBEngine(path)
    try:
        with pytest.raises(duckdb.CatalogException, match="trace_index"):
            e.migrate()
        assert e.schema_version() == 1
    finally:
        e.close()
    # all or nothing: the statements of migration 2 that ran before the failing one were rolled back
    assert v1.tables(path) == V1_TABLES | {"trace_index"}
    assert v1.version(path) == 1


def test_an_empty_file_is_migrated_from_scratch(tmp_path: Path) -> None:
    path = str(tmp_path / "new.duckdb")
    e = DuckDBEngine(path)
    try:
        assert e.schema_version() == 0
        assert e.migrate() == [1, 2, 3]
    finally:
        e.close()
    con = duckdb.connect(path, read_only=True)
    try:
        rows = con.execute(
            "SELECT version, description, applied_at IS NOT NULL FROM otlpd_schema ORDER BY 1"
        ).fetchall()
    finally:
        con.close()
    assert rows == [(m.version, m.description, True) for m in MIGRATIONS]
