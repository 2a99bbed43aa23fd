"""The embedded engine: one DuckDB database file (or ``:memory:``).

Writes are columnar: a request's columns become an Arrow table that DuckDB
reads in one ``INSERT … SELECT``. One writer thread at a time (the store
serializes writes); every reader thread gets its own DuckDB connection on the
same database, so queries run while data arrives.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence
from itertools import repeat
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from otlpd.errors import PermanentError, RetryableError
from otlpd.store import attributes
from otlpd.store.columns import Dimensions, LogColumns, MetricColumns, SpanColumns, trace_key
from otlpd.store.duckdb.migrations import BOOKKEEPING, LATEST, MIGRATIONS
from otlpd.store.duckdb.segments import SEGMENT_MIN_ROWS, Segment, Segments
from otlpd.store.engine import (
    LogQuery,
    LogRow,
    MetricInfo,
    PointRow,
    SeriesQuery,
    SpanRow,
    TraceQuery,
    TraceSummary,
    Usage,
)

STATUS_ERROR = 2
_REWRITE_SHARE = 10  # a segment is written again without its pruned spans once they are 1/10 of it


class SchemaError(Exception):
    """The database was written by a newer otlpd, or is not an otlpd database."""


def _latin1(text: str | None) -> bytes:
    return (text or "").encode("latin-1")


def _array(f: pa.Field, values: Sequence[Any]) -> pa.Array:
    """A column as Arrow; serialized protobuf (``data``) as latin-1 text; an enum value
    out of its column's range as 0 (``_in_range``).

    One character per byte keeps the mapping exact, and the text searchable:
    DuckDB has no substring search on BLOBs, and attribute search is a
    substring search for the serialized ``KeyValue`` (:mod:`otlpd.store.attributes`).
    The UTF-8 of that text is made here, in C, and handed to Arrow as bytes:
    half the cost of Arrow converting Python strings.
    """
    if f.name != "data":
        try:
            return values.cast(f.type) if isinstance(values, pa.Array) else pa.array(values, f.type)
        except (pa.ArrowInvalid, OverflowError):
            if f.type != pa.uint8():  # only enums are narrower than what OTLP sends
                raise
            return _in_range(values, f.type)
    utf8 = map(str.encode, map(bytes.decode, values, repeat("latin-1")))
    return pa.array(list(utf8), pa.binary()).view(pa.string())


def _in_range(values: Sequence[int] | pa.Array, type_: pa.DataType) -> pa.Array:
    """An enum column (kind, status code, severity: uint8) whose values may be any int32: an OTLP enum
    is open, and a client may send a value no version defines. Out of the column's range,
    it is stored as 0 (unspecified); the item's data keeps the value sent."""
    wide = values.cast(pa.int64()) if isinstance(values, pa.Array) else pa.array(values, pa.int64())
    fits = pc.and_(pc.greater_equal(wide, 0), pc.less_equal(wide, 255))
    return pc.if_else(fits, wide, 0).cast(type_)


class DuckDBEngine:
    def __init__(
        self, path: str, *, threads: int = 2, memory_limit: int = 256 * 2**20, flush_rows: int = 122_880
    ) -> None:
        self.path = path
        config: dict[str, str | bool | int | float | list[str]] = {
            "threads": str(threads),
            "memory_limit": f"{memory_limit // 2**20}MB",
            # Give memory back after every commit rather than keeping up to 128 MB cached.
            "allocator_flush_threshold": "16MB",
        }
        self._db = duckdb.connect(path, config=config)
        # Segment files never change: their footers need reading once, not every query.
        self._db.execute("SET parquet_metadata_cache = true")
        self._segments = Segments(path)
        self._local = threading.local()
        self._lock = threading.Lock()  # the write buffer; reads never take it
        self._commit_lock = threading.Lock()  # one transaction that writes at a time
        self._known_resources: set[int] = set()
        self._known_scopes: set[int] = set()
        self._connections: list[duckdb.DuckDBPyConnection] = []
        self._connections_lock = threading.Lock()
        self.flush_rows = flush_rows
        self._pending: dict[str, list[pa.Table]] = {}
        self._pending_dims = Dimensions()
        self._pending_rows = 0
        self.set_aside: list[tuple[str, int, str]] = []  # segment files found unreadable: name, spans, why

    # -- connections -------------------------------------------------------

    def _con(self) -> duckdb.DuckDBPyConnection:
        con: duckdb.DuckDBPyConnection | None = getattr(self._local, "con", None)
        if con is None:
            with self._connections_lock:  # the parent connection is not thread-safe, even to fork
                con = self._db.cursor()
                self._connections.append(con)
            self._local.con = con
        return con

    def close(self) -> None:
        with self._commit_lock, self._lock, self._connections_lock:
            for con in self._connections:
                con.close()
            self._connections.clear()
            self._db.close()
            self._segments.close()

    # -- schema ------------------------------------------------------------

    def schema_version(self) -> int:
        con = self._con()
        exists = _one(
            con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'otlpd_schema'")
        )
        if not exists or not exists[0]:
            return 0
        row = _one(con.execute("SELECT coalesce(max(version), 0) FROM otlpd_schema"))
        return int(row[0]) if row else 0

    def migrate(self) -> list[int]:
        with self._commit_lock:
            con = self._con()
            con.execute(BOOKKEEPING)
            current = self.schema_version()
            if current > LATEST:
                raise SchemaError(
                    f"{self.path} has schema version {current}; this otlpd knows up to {LATEST}"
                    " (upgrade otlpd, or point the store at another path)"
                )
            applied: list[int] = []
            for migration in MIGRATIONS:
                if migration.version <= current:
                    continue
                con.execute("BEGIN TRANSACTION")
                try:
                    for statement in migration.statements:
                        con.execute(statement)
                    con.execute(
                        "INSERT INTO otlpd_schema (version, description) VALUES (?, ?)",
                        [migration.version, migration.description],
                    )
                    con.execute("COMMIT")
                except BaseException:
                    con.execute("ROLLBACK")
                    raise
                applied.append(migration.version)
            listed = dict(con.execute("SELECT name, rows FROM span_segments").fetchall())
            self._segments.remove_strays(set(listed))
            # A listed file that is gone or damaged would fail every query of spans, and the
            # start: it is set aside (damaged/) and unlisted, and the store says so.
            self.set_aside = []
            for name, why in self._segments.unreadable(list(listed)):
                self._segments.set_aside(name)
                con.execute("DELETE FROM span_segments WHERE name = ?", [name])
                self.set_aside.append((name, int(listed[name]), why))
            con.execute(self._view(con))
            return applied

    def _add_segment(self, con: duckdb.DuckDBPyConnection, batch: pa.Table, written: list[Segment]) -> None:
        """Write ``batch`` as a file and list it; ``written`` gets it first, to unlink on rollback."""
        segment = self._segments.write(batch)
        written.append(segment)
        _list(con, segment)

    def _compact(self, con: duckdb.DuckDBPyConnection, written: list[Segment]) -> None:
        """Once small commits have put a file's worth in span_rows, move them to a file.

        So spans are nearly all in files whatever the traffic: size retention
        frees what it deletes, and the database stays small. span_rows holds
        only what arrived since the last file (spans stored before schema v3
        are in span_legacy and stay there), so this reads a bounded amount.
        """
        row = _one(con.execute("SELECT count(*) FROM span_rows"))
        if not row or row[0] < SEGMENT_MIN_ROWS:
            return
        rows = con.sql("SELECT * FROM span_rows ORDER BY start_ns").to_arrow_table()
        self._add_segment(con, rows, written)
        con.execute("DELETE FROM span_rows")

    def _spans_between(self, con: duckdb.DuckDBPyConnection, low: int, high: int) -> str:
        """Spans, for a FROM clause, where those starting in [low, high] are: see Segments.source."""
        names = con.execute(
            "SELECT name FROM span_segments WHERE last_ns >= ? AND first_ns <= ? ORDER BY first_ns",
            [low, high],
        ).fetchall()
        return self._segments.source([r[0] for r in names])

    def _view(self, con: duckdb.DuckDBPyConnection) -> str:
        names = [r[0] for r in con.execute("SELECT name FROM span_segments ORDER BY first_ns").fetchall()]
        return self._segments.view(names)

    # -- writes ------------------------------------------------------------

    def _write_dimensions(self, con: duckdb.DuckDBPyConnection, dims: Dimensions) -> None:
        for table, known, met in (
            ("resources", self._known_resources, dims.resources),
            ("scopes", self._known_scopes, dims.scopes),
        ):
            new = [(key, *values) for key, values in met.items() if key not in known]
            if not new:
                continue
            schema = _SCHEMAS[table]
            columns = zip(*new, strict=True)  # rows (key, *values) -> columns
            rows = pa.table([_array(f, c) for c, f in zip(columns, schema, strict=True)], schema=schema)
            con.register(f"new_{table}", rows)
            try:
                con.execute(f"INSERT OR IGNORE INTO {table} SELECT * FROM new_{table}")
            finally:
                con.unregister(f"new_{table}")

    def _buffer(self, table: str, batch: pa.Table, dims: Dimensions) -> None:
        """Keep a batch for the next commit (see :meth:`flush`)."""
        with self._lock:
            self._pending.setdefault(table, []).append(batch)
            self._pending_dims.resources.update(dims.resources)
            self._pending_dims.scopes.update(dims.scopes)
            self._pending_rows += batch.num_rows

    def pending_rows(self) -> int:
        return self._pending_rows

    def flush(self) -> int:
        """Commit everything buffered in one transaction; the number of rows committed.

        Commits are meant to be big: DuckDB writes a transaction that appends
        at least a row group (``flush_rows``, 122,880 rows) straight to the
        database file, compressed; smaller ones go through the WAL first and
        cost about twice the CPU per row. Writers keep buffering while a commit
        runs (it holds only the commit lock).

        An I/O failure (disk full) or running out of memory puts the rows back
        in front of what arrived since and raises :class:`RetryableError`;
        anything else means the rows can never be written, so they are
        discarded and :class:`PermanentError` says how many.
        """
        with self._commit_lock:
            with self._lock:
                pending, dims, rows = self._pending, self._pending_dims, self._pending_rows
                self._pending, self._pending_dims, self._pending_rows = {}, Dimensions(), 0
            if not rows:
                return 0
            con = self._con()
            written: list[Segment] = []
            try:
                con.execute("BEGIN TRANSACTION")
                try:
                    self._write_dimensions(con, dims)
                    for table, batches in pending.items():
                        batch = batches[0] if len(batches) == 1 else pa.concat_tables(batches)
                        statements = _INSERTS[table]
                        if table == "spans" and batch.num_rows >= SEGMENT_MIN_ROWS:
                            self._add_segment(con, batch, written)
                            statements = statements[1:]  # the rows are in the file: index and catalog
                        name = f"{table}_batch"
                        con.register(name, batch)
                        try:
                            for statement in statements:
                                con.execute(statement.format(batch=name))
                        finally:
                            con.unregister(name)
                    if "spans" in pending and not written:
                        self._compact(con, written)
                    if written:
                        con.execute(self._view(con))
                    con.execute("COMMIT")
                except BaseException:
                    with contextlib.suppress(duckdb.Error):
                        con.execute("ROLLBACK")
                    for segment in written:  # listed nowhere: nobody reads it
                        self._segments.path(segment.name).unlink(missing_ok=True)
                    raise
            except (
                OSError,
                MemoryError,
                pa.ArrowMemoryError,
                duckdb.IOException,
                duckdb.OutOfMemoryException,
            ) as exc:
                with self._lock:
                    for table, batches in pending.items():
                        self._pending[table] = batches + self._pending.get(table, [])
                    self._pending_dims.resources.update(dims.resources)
                    self._pending_dims.scopes.update(dims.scopes)
                    self._pending_rows += rows
                raise RetryableError(f"cannot write {self.path}: {exc}") from None
            except duckdb.Error as exc:
                raise PermanentError(f"{rows} items could not be stored in {self.path}: {exc}") from None
            # Only once committed: a rolled-back batch must write its resources again.
            self._known_resources.update(dims.resources)
            self._known_scopes.update(dims.scopes)
            del pending
            self._segments.collect()
            pa.default_memory_pool().release_unused()  # Arrow's allocator, too, keeps freed memory
            return rows

    def _write(self, table: str, columns: SpanColumns | LogColumns | MetricColumns) -> None:
        if not len(columns):
            return
        schema = _SCHEMAS[table]
        batch = pa.table([_array(f, getattr(columns, f.name)) for f in schema], schema=schema)
        self._buffer(table, batch, columns.dims)

    def write_spans(self, c: SpanColumns) -> None:
        self._write("spans", c)

    def write_logs(self, c: LogColumns) -> None:
        self._write("logs", c)

    def write_metrics(self, c: MetricColumns) -> None:
        self._write("metric_points", c)

    # -- reads -------------------------------------------------------------

    def services(self) -> list[str]:
        rows = self._con().execute("SELECT DISTINCT service_name FROM operations ORDER BY 1").fetchall()
        return [r[0] for r in rows]

    def operations(self, service: str) -> list[tuple[str, int]]:
        rows = (
            self._con()
            .execute(
                "SELECT name, kind FROM operations WHERE service_name = ? ORDER BY name, kind",
                [service],
            )
            .fetchall()
        )
        return [(r[0], int(r[1])) for r in rows]

    def find_traces(self, q: TraceQuery) -> list[TraceSummary]:
        con = self._con()
        with _snapshot(con):
            return self._find_traces(con, q)

    def _find_traces(self, con: duckdb.DuckDBPyConnection, q: TraceQuery) -> list[TraceSummary]:
        where, params = _span_conditions(q)
        ids = self._recent_traces(con, where, params, q)
        if not ids:
            return []
        keys = sorted({trace_key(i) for i in ids})
        first, last = self._bounds(con, keys)
        rows = con.execute(
            f"""SELECT trace_id,
                    arg_min(service_name, (octet_length(parent_span_id) > 0, start_ns)),
                    arg_min(name, (octet_length(parent_span_id) > 0, start_ns)),
                    min(start_ns), max(end_ns), count(*), count_if(status_code = {STATUS_ERROR}),
                    list(DISTINCT service_name ORDER BY service_name)
                FROM {self._spans_between(con, first, last)}
                WHERE trace_key IN (SELECT unnest(?::BIGINT[])) AND start_ns BETWEEN ? AND ?
                    AND trace_id IN (SELECT unnest(?::BLOB[]))
                GROUP BY trace_id""",
            [keys, first, last, ids],
        ).fetchall()
        by_id = {
            bytes(r[0]): TraceSummary(
                trace_id=bytes(r[0]),
                root_service=r[1],
                root_name=r[2],
                start_ns=int(r[3]),
                duration_ns=max(0, int(r[4]) - int(r[3])),
                span_count=int(r[5]),
                error_count=int(r[6]),
                services=list(r[7]),
            )
            for r in rows
        }
        return [by_id[i] for i in ids if i in by_id]

    def _recent_traces(
        self, con: duckdb.DuckDBPyConnection, where: str, params: list[Any], q: TraceQuery
    ) -> list[bytes]:
        """The ``q.limit`` traces whose latest matching span started last, most recent first.

        Looks at the most recent matching spans, a few times ``limit`` of them,
        in time windows that grow backwards from the newest span (15 min, then
        4x wider each round): a filter that is costly per row (attribute search)
        then only runs over recent data when recent data has the answer. The
        trace ids in order are the answer, exactly, once ``limit`` distinct ones
        are found (any other trace's latest matching span started before all of
        these). Only when many spans of few traces match does it group them all.
        """
        sample = q.limit * 25
        row = _one(con.execute("SELECT max(last_ns), min(first_ns) FROM trace_index"))
        if not row or row[0] is None:
            return []
        top = int(row[0]) if q.end_ns is None else min(int(row[0]), q.end_ns)
        bottom = int(row[1]) if q.start_ns is None else max(int(row[1]), q.start_ns)
        window = 15 * 60 * 10**9
        joiner = "AND" if where else "WHERE"
        while True:
            low = top - window
            spans = self._spans_between(con, low, top)
            rows = con.execute(
                f"SELECT trace_id FROM {spans} {where} {joiner} start_ns >= ? ORDER BY start_ns DESC LIMIT ?",
                [*params, low, sample],
            ).fetchall()
            ids = list(dict.fromkeys(bytes(r[0]) for r in rows))
            if len(ids) >= q.limit:
                return ids[: q.limit]
            if len(rows) >= sample:
                break  # many spans of few traces: group them
            if low <= bottom:
                return ids
            window *= 4
        found = con.execute(
            f"""SELECT trace_id, max(start_ns) AS last FROM spans {where}
                GROUP BY trace_id ORDER BY last DESC LIMIT ?""",
            [*params, q.limit],
        ).fetchall()
        return [bytes(r[0]) for r in found]

    def _bounds(self, con: duckdb.DuckDBPyConnection, keys: Sequence[int]) -> tuple[int, int]:
        row = _one(
            con.execute(
                """SELECT min(first_ns), max(last_ns) FROM trace_index
                   WHERE trace_key IN (SELECT unnest(?::BIGINT[]))""",
                [list(keys)],
            )
        )
        if not row or row[0] is None:
            return -(2**63), 2**63 - 1
        return int(row[0]), int(row[1])

    def trace(self, trace_id: bytes) -> list[SpanRow]:
        con = self._con()
        with _snapshot(con):
            return self._trace(con, trace_id)

    def _trace(self, con: duckdb.DuckDBPyConnection, trace_id: bytes) -> list[SpanRow]:
        key = trace_key(trace_id)
        first, last = self._bounds(con, [key])
        spans = self._spans_between(con, first, last)
        rows = con.execute(
            f"""SELECT s.service_name, s.data, r.data, sc.data, sc.schema_url, r.schema_url
               FROM (SELECT service_name, data, resource_key, scope_key, start_ns FROM {spans}
                     WHERE trace_key = ? AND start_ns BETWEEN ? AND ? AND trace_id = ?) s
               LEFT JOIN resources r ON r.key = s.resource_key
               LEFT JOIN scopes sc ON sc.key = s.scope_key
               ORDER BY s.start_ns""",
            [key, first, last, trace_id],
        ).fetchall()
        return [
            SpanRow(
                service_name=r[0],
                data=_latin1(r[1]),
                resource=_latin1(r[2]),
                scope=_latin1(r[3]),
                scope_schema_url=r[4] or "",
                resource_schema_url=r[5] or "",
            )
            for r in rows
        ]

    def find_logs(self, q: LogQuery) -> list[LogRow]:
        conditions: list[str] = []
        params: list[Any] = []
        if q.service is not None:
            conditions.append("service_name = ?")
            params.append(q.service)
        if q.min_severity is not None:
            conditions.append("severity_number >= ?")
            params.append(q.min_severity)
        if q.text:
            conditions.append("contains(lower(body), ?)")
            params.append(q.text.lower())
        if q.trace_id is not None:
            conditions.append("trace_id = ?")
            params.append(q.trace_id)
        if q.start_ns is not None:
            conditions.append("time_ns >= ?")
            params.append(q.start_ns)
        if q.end_ns is not None:
            conditions.append("time_ns <= ?")
            params.append(q.end_ns)
        where = ("WHERE " + " AND ".join(conditions)) if conditions else ""
        rows = (
            self._con()
            .execute(
                f"""SELECT l.service_name, l.data, r.data, sc.data, r.schema_url, sc.schema_url
                FROM (SELECT * FROM logs {where} ORDER BY time_ns DESC LIMIT ?) l
                LEFT JOIN resources r ON r.key = l.resource_key
                LEFT JOIN scopes sc ON sc.key = l.scope_key
                ORDER BY l.time_ns DESC""",
                [*params, q.limit],
            )
            .fetchall()
        )
        return [
            LogRow(r[0], _latin1(r[1]), _latin1(r[2]), _latin1(r[3]), r[4] or "", r[5] or "") for r in rows
        ]

    def metrics(self) -> list[MetricInfo]:
        rows = (
            self._con()
            .execute("SELECT name, type, unit, description FROM metric_catalog ORDER BY name")
            .fetchall()
        )
        return [MetricInfo(*r) for r in rows]

    def points(self, q: SeriesQuery) -> tuple[MetricInfo | None, list[PointRow]]:
        con = self._con()
        info = _one(
            con.execute("SELECT name, type, unit, description FROM metric_catalog WHERE name = ?", [q.name])
        )
        if info is None:
            return None, []
        conditions = ["name = ?", "time_ns >= ?", "time_ns <= ?"]
        params: list[Any] = [q.name, q.start_ns, q.end_ns]
        for key, value in q.attributes:
            if key == "service.name":
                conditions.append("service_name = ?")
                params.append(value)
                continue
            conditions.append("json_extract_string(attributes, ?) = ?")
            params.extend([_json_path(key), value])
        rows = con.execute(
            f"""SELECT series_key, service_name, attributes, temporality, monotonic, time_ns,
                    start_ns, data FROM metric_points WHERE {" AND ".join(conditions)}
                ORDER BY series_key, time_ns LIMIT ?""",
            [*params, q.limit],
        ).fetchall()
        return MetricInfo(*info), [
            PointRow(int(r[0]), r[1], r[2], int(r[3]), bool(r[4]), int(r[5]), int(r[6]), _latin1(r[7]))
            for r in rows
        ]

    # -- retention ---------------------------------------------------------

    def prune(self, before_ns: int) -> int:
        with self._commit_lock:
            con = self._con()
            deleted = self._prune_segments(con, before_ns)
            for table, column in (
                ("span_legacy", "start_ns"),
                ("span_rows", "start_ns"),
                ("logs", "time_ns"),
                ("metric_points", "time_ns"),
                ("trace_index", "last_ns"),
                ("operations", "last_seen_ns"),
                ("metric_catalog", "last_seen_ns"),
            ):
                row = _one(con.execute(f"DELETE FROM {table} WHERE {column} < ?", [before_ns]))
                if table in ("span_legacy", "span_rows", "logs", "metric_points") and row:
                    deleted += int(row[0])
            if deleted:
                for table in ("resources", "scopes"):
                    column = "resource_key" if table == "resources" else "scope_key"
                    con.execute(
                        f"""DELETE FROM {table} WHERE key NOT IN (
                            SELECT {column} FROM spans UNION SELECT {column} FROM logs
                            UNION SELECT {column} FROM metric_points)"""
                    )
                self._known_resources.clear()
                self._known_scopes.clear()
                # Gives the space back to DuckDB now; with a reader's transaction open it cannot
                # run, and DuckDB checkpoints on its own later: what was deleted stays deleted.
                with contextlib.suppress(duckdb.TransactionException):
                    con.execute("CHECKPOINT")
            return deleted

    def _prune_segments(self, con: duckdb.DuckDBPyConnection, before_ns: int) -> int:
        """Drop the segments wholly before ``before_ns``; rewrite those it cuts through.

        Whole files go first, in their own transaction: that frees space even
        when the disk is too full to write anything. A file the cutoff cuts
        through is written again without its older spans only when they are at
        least a tenth of it (a long-running span can put a file's start far
        back); until then those few stay, and go with the rest of the file. A
        file that cannot be written again (disk full) is left for the next round.
        """
        old = [
            Segment(*r)
            for r in con.execute(
                "SELECT name, rows, bytes, first_ns, last_ns FROM span_segments WHERE first_ns < ?",
                [before_ns],
            ).fetchall()
        ]
        gone = [s for s in old if s.last_ns < before_ns]
        deleted = sum(s.rows for s in gone)
        if gone:
            self._replace_segments(con, gone, [])
        for segment in (s for s in old if s.last_ns >= before_ns):
            try:
                older = self._segments.rows_before(segment, before_ns)
                if older * _REWRITE_SHARE < segment.rows:
                    continue
                kept = self._segments.without_before(segment, before_ns)
            except OSError:
                continue
            try:
                self._replace_segments(con, [segment], [kept] if kept else [])
            except BaseException:
                if kept:
                    self._segments.path(kept.name).unlink(missing_ok=True)
                raise
            deleted += segment.rows - (kept.rows if kept else 0)
        return deleted

    def _replace_segments(
        self, con: duckdb.DuckDBPyConnection, old: list[Segment], new: list[Segment]
    ) -> None:
        con.execute("BEGIN TRANSACTION")
        try:
            for segment in old:
                con.execute("DELETE FROM span_segments WHERE name = ?", [segment.name])
            for segment in new:
                _list(con, segment)
            con.execute(self._view(con))
            con.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(duckdb.Error):
                con.execute("ROLLBACK")
            raise
        self._segments.retire([s.name for s in old])

    def oldest_ns(self, fraction: float) -> int | None:
        row = _one(
            self._con().execute(
                """SELECT quantile_disc(t, ?) FROM (
                    SELECT start_ns AS t FROM spans UNION ALL SELECT time_ns FROM logs
                    UNION ALL SELECT time_ns FROM metric_points)""",
                [min(max(fraction, 0.0), 1.0)],
            )
        )
        return None if not row or row[0] is None else int(row[0])

    def usage(self) -> Usage:
        con = self._con()
        row = _one(con.execute("SELECT used_blocks * block_size, wal_size FROM pragma_database_size()"))
        used, wal = (row[0], row[1]) if row else (0, 0)
        files = _one(con.execute("SELECT coalesce(sum(bytes), 0) FROM span_segments"))
        used = int(used or 0) + (int(files[0]) if files else 0)
        counts = {}
        for table in ("spans", "logs", "metric_points"):
            row = _one(con.execute(f"SELECT count(*) FROM {table}"))
            counts[table] = int(row[0]) if row else 0
        return Usage(
            bytes=int(used or 0) + _bytes(wal),
            spans=counts["spans"],
            logs=counts["logs"],
            points=counts["metric_points"],
            tables=counts,
        )


# What a write hands DuckDB: one Arrow column per column-list field of otlpd.store.columns
# (same names), in the order of the table's columns; the INSERTs below clamp and cast.
_SCHEMAS: dict[str, pa.Schema] = {
    "resources": pa.schema(
        [
            ("key", pa.int64()), ("service_name", pa.string()), ("data", pa.string()),
            ("schema_url", pa.string()),
        ]
    ),
    "scopes": pa.schema(
        [
            ("key", pa.int64()), ("name", pa.string()), ("version", pa.string()),
            ("data", pa.string()), ("schema_url", pa.string()),
        ]
    ),
    "spans": pa.schema(
        [
            ("trace_key", pa.int64()), ("trace_id", pa.binary()), ("span_id", pa.binary()),
            ("parent_span_id", pa.binary()), ("service_name", pa.string()), ("name", pa.string()),
            ("kind", pa.uint8()), ("start_ns", pa.uint64()), ("end_ns", pa.uint64()),
            ("status_code", pa.uint8()), ("resource_key", pa.int64()), ("scope_key", pa.int64()),
            ("data", pa.string()),
        ]
    ),
    "logs": pa.schema(
        [
            ("time_ns", pa.uint64()), ("observed_ns", pa.uint64()), ("service_name", pa.string()),
            ("severity_number", pa.uint8()), ("severity_text", pa.string()), ("body", pa.string()),
            ("trace_id", pa.binary()), ("span_id", pa.binary()), ("resource_key", pa.int64()),
            ("scope_key", pa.int64()), ("data", pa.string()),
        ]
    ),
    "metric_points": pa.schema(
        [
            ("name", pa.string()), ("type", pa.string()), ("unit", pa.string()),
            ("description", pa.string()), ("temporality", pa.uint8()), ("monotonic", pa.bool_()),
            ("service_name", pa.string()), ("time_ns", pa.uint64()), ("start_ns", pa.uint64()),
            ("value", pa.float64()), ("count", pa.uint64()), ("sum", pa.float64()),
            ("attributes", pa.string()), ("series_key", pa.int64()), ("resource_key", pa.int64()),
            ("scope_key", pa.int64()), ("data", pa.string()),
        ]
    ),
}  # fmt: skip

_MAX_NS = "9223372036854775807"  # timestamps past 2262 do not fit signed nanoseconds: clamped

_INSERTS: dict[str, tuple[str, ...]] = {
    "spans": (
        f"""INSERT INTO span_rows SELECT trace_key, trace_id, span_id, parent_span_id, service_name,
            name, kind, least(start_ns, {_MAX_NS})::BIGINT, least(end_ns, {_MAX_NS})::BIGINT,
            status_code, resource_key, scope_key, data FROM {{batch}}""",
        f"""INSERT INTO trace_index SELECT trace_key, min(least(start_ns, {_MAX_NS}))::BIGINT,
            max(least(start_ns, {_MAX_NS}))::BIGINT FROM {{batch}} GROUP BY trace_key""",
        f"""INSERT INTO operations
            SELECT service_name, name, kind, max(least(start_ns, {_MAX_NS}))::BIGINT
            FROM {{batch}} GROUP BY ALL
            ON CONFLICT DO UPDATE SET last_seen_ns = greatest(last_seen_ns, excluded.last_seen_ns)""",
    ),
    "logs": (
        f"""INSERT INTO logs SELECT least(time_ns, {_MAX_NS})::BIGINT,
            least(observed_ns, {_MAX_NS})::BIGINT, service_name, severity_number, severity_text,
            body, trace_id, span_id, resource_key, scope_key, data FROM {{batch}}""",
    ),
    "metric_points": (
        f"""INSERT INTO metric_points SELECT name, type, unit, description, temporality,
            monotonic, service_name, least(time_ns, {_MAX_NS})::BIGINT,
            least(start_ns, {_MAX_NS})::BIGINT, value, count, sum, attributes, series_key,
            resource_key, scope_key, data FROM {{batch}}""",
        f"""INSERT INTO metric_catalog
            SELECT name, arg_max(type, time_ns), arg_max(unit, time_ns),
                   arg_max(description, time_ns), max(least(time_ns, {_MAX_NS}))::BIGINT
            FROM {{batch}} GROUP BY name
            ON CONFLICT DO UPDATE SET type = excluded.type, unit = excluded.unit,
                description = excluded.description,
                last_seen_ns = greatest(last_seen_ns, excluded.last_seen_ns)""",
    ),
}


def _list(con: duckdb.DuckDBPyConnection, segment: Segment) -> None:
    con.execute(
        "INSERT INTO span_segments VALUES (?, ?, ?, ?, ?)",
        [segment.name, segment.rows, segment.bytes, segment.first_ns, segment.last_ns],
    )


@contextlib.contextmanager
def _snapshot(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """One transaction for a query's statements: the segment list it reads and the
    rows it then reads are of the same moment (a compaction in between moves rows
    from span_rows into a file the first statement did not list)."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield
    finally:
        with contextlib.suppress(duckdb.Error):
            con.execute("ROLLBACK")


def _one(result: duckdb.DuckDBPyConnection) -> Any:
    """The first row of a result (None if empty), read to the end.

    ``fetchone()`` leaves the rest of the result open, and with it the cursor's
    transaction until its next statement: while any reader thread's cursor is
    left so, a checkpoint cannot reclaim the space of deleted rows (retention
    deletes them, yet the database's used blocks never go down).
    """
    rows = result.fetchall()
    return rows[0] if rows else None


def _bytes(text: Any) -> int:
    """DuckDB reports the WAL size as text such as '1.2 MiB'."""
    if isinstance(text, int | float):
        return int(text)
    value, _, unit = str(text or "0").strip().partition(" ")
    scale = {"": 1, "bytes": 1, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40}.get(unit, 1)
    try:
        return int(float(value) * scale)
    except ValueError:
        return 0


def _json_path(key: str) -> str:
    escaped = key.replace("\\", "\\\\").replace('"', '\\"')
    return f'$."{escaped}"'


def _span_conditions(q: TraceQuery) -> tuple[str, list[Any]]:
    conditions: list[str] = []
    params: list[Any] = []
    if q.service is not None:
        conditions.append("service_name = ?")
        params.append(q.service)
    if q.operation is not None:
        conditions.append("name = ?")
        params.append(q.operation)
    if q.min_duration_ns is not None:
        conditions.append("end_ns - start_ns >= ?")
        params.append(q.min_duration_ns)
    if q.max_duration_ns is not None:
        conditions.append("end_ns - start_ns <= ?")
        params.append(q.max_duration_ns)
    if q.errors_only:
        conditions.append(f"status_code = {STATUS_ERROR}")
    if q.start_ns is not None:
        conditions.append("start_ns >= ?")
        params.append(q.start_ns)
    if q.end_ns is not None:
        conditions.append("start_ns <= ?")
        params.append(q.end_ns)
    for key, value in q.attributes:
        options = attributes.patterns(key, value)
        span_match = " OR ".join("contains(data, ?)" for _ in options)
        resource_match = " OR ".join("contains(r.data, ?)" for _ in options)
        conditions.append(
            f"""(({span_match}) OR resource_key IN (
                SELECT r.key FROM resources r WHERE {resource_match}))"""
        )
        params.extend(options)
        params.extend(options)
    return (("WHERE " + " AND ".join(conditions)) if conditions else ""), params
