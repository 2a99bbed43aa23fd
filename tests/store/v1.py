"""A database as otlpd wrote it at schema version 1, for the migration tests.

The v1 tables are made by the v1 migration's own statements and filled the
way v1 filled them: the engine's conversion (columns → Arrow batches) and its
insert statements for the v1 tables only (``_INSERTS[table][0]``); the v2
catalogs and trace index did not exist, so nothing writes them.
"""

from __future__ import annotations

from typing import Any

import duckdb
import pyarrow as pa

from otlpd.store import columns
from otlpd.store.duckdb import engine as duckdb_engine
from otlpd.store.duckdb.migrations import BOOKKEEPING, MIGRATIONS
from tests.store.support import (
    CUMULATIVE,
    MS,
    SECOND,
    gauge,
    histogram,
    histogram_point,
    log_record,
    logs_request,
    metrics_request,
    number,
    span,
    traces_request,
)

TRACE = bytes.fromhex("5b8efff798038103d269b633813fc60c")
OTHER_TRACE = bytes.fromhex("00000000000000000000000000c0ffee")


def create(path: str, t0: int, version: int = 1) -> None:
    """A v1 database at ``path`` with a few spans, log records and points around ``t0``.

    ``version`` > 1 records that (unknown) version on top, as a newer otlpd would have.
    """
    e = duckdb_engine.DuckDBEngine(path)
    try:
        con = e._con()
        con.execute(BOOKKEEPING)
        v1 = MIGRATIONS[0]
        assert v1.version == 1
        for statement in v1.statements:
            con.execute(statement)
        con.execute("INSERT INTO otlpd_schema (version, description) VALUES (?, ?)", [1, v1.description])
        if version > 1:
            con.execute(
                "INSERT INTO otlpd_schema (version, description) VALUES (?, ?)", [version, "from the future"]
            )
        for request in traces(t0):
            e.write_spans(columns.spans(request.SerializeToString()))
        e.write_logs(columns.logs(logs(t0).SerializeToString()))
        e.write_metrics(columns.metrics(metrics(t0).SerializeToString()))
        _commit_as_v1(e, con)
    finally:
        e.close()


def _commit_as_v1(e: duckdb_engine.DuckDBEngine, con: duckdb.DuckDBPyConnection) -> None:
    pending: dict[str, list[pa.Table]] = e._pending
    con.execute("BEGIN TRANSACTION")
    e._write_dimensions(con, e._pending_dims)
    for table, batches in pending.items():
        con.register("v1_batch", pa.concat_tables(batches))
        # v1 stored spans in the table ``spans`` (span_rows since v3)
        insert = duckdb_engine._INSERTS[table][0].replace("INTO span_rows", "INTO spans")
        con.execute(insert.format(batch="v1_batch"))
        con.unregister("v1_batch")
    con.execute("COMMIT")
    e._pending, e._pending_dims, e._pending_rows = {}, columns.Dimensions(), 0


def traces(t0: int) -> list[Any]:
    return [
        traces_request(
            "legacy-api",
            [
                span(TRACE, b"\x00\x00\x00\x00\x00\x00\x00\x01", "GET /orders", t0, t0 + 50 * MS, kind=2),
                span(
                    TRACE,
                    b"\x00\x00\x00\x00\x00\x00\x00\x02",
                    "SELECT orders",
                    t0 + 5 * MS,
                    t0 + 45 * MS,
                    parent=b"\x00\x00\x00\x00\x00\x00\x00\x01",
                    kind=3,
                    status=2,
                    attrs={"db.rows": 12},
                ),
            ],
        ),
        traces_request(
            "legacy-worker",
            [span(OTHER_TRACE, b"\x00\x00\x00\x00\x00\x00\x00\x03", "tick", t0 + SECOND, t0 + SECOND + MS)],
        ),
    ]


def logs(t0: int) -> Any:
    return logs_request(
        "legacy-api",
        [
            log_record(t0 + MS, "order 42 loaded", 9, trace_id=TRACE),
            log_record(t0 + 2 * MS, "slow query", 13),
        ],
    )


def metrics(t0: int) -> Any:
    return metrics_request(
        "legacy-api",
        [
            gauge("legacy.queue", [number(t0 + 10 * SECOND, 3.0), number(t0 + 20 * SECOND, 5.0)]),
            histogram(
                "legacy.latency",
                [
                    histogram_point(t0 + 10 * SECOND, [10.0, 100.0], [1, 1, 0], 60.0, t0),
                    histogram_point(t0 + 20 * SECOND, [10.0, 100.0], [1, 3, 0], 160.0, t0),
                ],
                CUMULATIVE,
                unit="ms",
            ),
        ],
    )


def version(path: str) -> int:
    con = duckdb.connect(path, read_only=True)
    try:
        rows = con.execute("SELECT coalesce(max(version), 0) FROM otlpd_schema").fetchall()
        return int(rows[0][0])
    finally:
        con.close()


def tables(path: str) -> set[str]:
    con = duckdb.connect(path, read_only=True)
    try:
        return {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    finally:
        con.close()
