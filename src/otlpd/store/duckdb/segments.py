"""Spans in Parquet segment files beside the database, read through the ``spans`` view.

Why: a big commit of spans into a DuckDB table costs 2.6 to 4 µs per span with
real (random) trace and span ids: DuckDB analyses every string column for
dictionary and FSST compression, ids included, and copies each value through
its transaction-local storage. Arrow's Parquet writer does the same job
(ZSTD on the serialized spans, dictionaries for names only) in ~1 µs, in C++
outside the GIL, and DuckDB reads Parquet natively, pruning row groups by
their ``start_ns`` statistics. So a commit of at least ``SEGMENT_MIN_ROWS``
spans becomes one file, written and synced before the transaction that
lists it in ``span_segments`` commits; smaller commits (a laptop's trickle)
go to the ``span_rows`` table until they add up to a file's worth, so a quiet
store does not make a file a second. Spans stored before schema v3 stay in
``span_legacy``. The ``spans`` view is all three, and every query reads spans
through it.

Retention deletes whole files, and rewrites the one file that straddles the
cutoff without its old rows: space comes back at once, unlike rows deleted
from a DuckDB table. A replaced file is unlinked a while later, not at once,
so a query that bound the previous view can finish reading it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

SEGMENT_MIN_ROWS = 16_384
_ROW_GROUP = 16_384  # rows per Parquet row group: what a time-bounded query skips by
_GRACE = 60.0  # seconds a replaced file stays for queries already reading it
_MAX_NS = 2**63 - 1  # timestamps past 2262 do not fit signed nanoseconds: clamped, as in span_rows

# The columns of span_rows, in order, with the types a segment stores them as.
COLUMNS = pa.schema(
    [
        ("trace_key", pa.int64()), ("trace_id", pa.binary()), ("span_id", pa.binary()),
        ("parent_span_id", pa.binary()), ("service_name", pa.string()), ("name", pa.string()),
        ("kind", pa.uint8()), ("start_ns", pa.int64()), ("end_ns", pa.int64()),
        ("status_code", pa.uint8()), ("resource_key", pa.int64()), ("scope_key", pa.int64()),
        ("data", pa.string()),
    ]
)  # fmt: skip
_SELECT = ", ".join(COLUMNS.names)


@dataclass(frozen=True)
class Segment:
    name: str
    rows: int
    bytes: int
    first_ns: int
    last_ns: int


class Segments:
    """The segment files of one database: ``<database path>.spans/`` (a temporary one for ``:memory:``)."""

    def __init__(self, database: str) -> None:
        self._temporary = database == ":memory:"
        if self._temporary:
            self.directory = Path(tempfile.mkdtemp(prefix="otlpd-spans-"))
        else:
            # appended, not a replaced suffix: a.duckdb and a.db must not share a directory
            self.directory = Path(database + ".spans").absolute()
        self._doomed: list[tuple[float, Path]] = []

    def path(self, name: str) -> Path:
        return self.directory / name

    def write(self, batch: pa.Table) -> Segment:
        """``batch`` (the engine's span columns) as a new segment file, on disk for good."""
        self.directory.mkdir(parents=True, exist_ok=True)
        table = _as_stored(batch)
        name = f"spans-{time.time_ns()}-{uuid.uuid4().hex[:8]}.parquet"
        final = self.path(name)
        partial = final.with_suffix(".tmp")
        try:
            pq.write_table(
                table,
                partial,
                compression="zstd",
                use_dictionary=["service_name", "name"],
                write_statistics=["trace_key", "start_ns", "end_ns", "service_name", "name", "status_code"],
                row_group_size=_ROW_GROUP,
            )
            with open(partial, "rb") as f:
                os.fsync(f.fileno())
            os.replace(partial, final)
            _sync_directory(self.directory)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        starts = table.column("start_ns")
        bounds = pc.min_max(starts)
        return Segment(
            name,
            table.num_rows,
            final.stat().st_size,
            int(bounds["min"].as_py() or 0),
            int(bounds["max"].as_py() or 0),
        )

    def rows_before(self, segment: Segment, before_ns: int) -> int:
        starts = pq.read_table(self.path(segment.name), columns=["start_ns"]).column("start_ns")
        return int(pc.sum(pc.less(starts, before_ns)).as_py() or 0)

    def without_before(self, segment: Segment, before_ns: int) -> Segment | None:
        """The rows of ``segment`` from ``before_ns`` on, as a new segment (None if none are)."""
        kept = pq.read_table(self.path(segment.name), filters=[("start_ns", ">=", before_ns)])
        return self.write(kept) if kept.num_rows else None

    def view(self, names: list[str]) -> str:
        """The ``spans`` view over ``span_rows`` and the segment files ``names``."""
        return f"CREATE OR REPLACE VIEW spans AS {self._union(names)}"

    def source(self, names: list[str]) -> str:
        """Spans in ``span_rows`` and the files ``names`` only, for a FROM clause.

        A query that knows its time range reads the files of that range alone:
        opening every file's footer costs more than finding a trace in one.
        """
        return f"({self._union(names)})"

    def _union(self, names: list[str]) -> str:
        sql = f"SELECT {_SELECT} FROM span_legacy UNION ALL SELECT {_SELECT} FROM span_rows"
        if names:
            files = ", ".join("'" + str(self.path(n)).replace("'", "''") + "'" for n in names)
            sql += f" UNION ALL SELECT {_SELECT} FROM read_parquet([{files}])"
        return sql

    def retire(self, names: list[str]) -> None:
        """Unlink these files once queries that may be reading them are done."""
        now = time.monotonic()
        self._doomed.extend((now, self.path(n)) for n in names)
        self.collect()

    def collect(self, everything: bool = False) -> None:
        now = time.monotonic()
        keep = []
        for since, path in self._doomed:
            if everything or now - since >= _GRACE:
                path.unlink(missing_ok=True)
            else:
                keep.append((since, path))
        self._doomed = keep

    def remove_strays(self, listed: set[str]) -> list[str]:
        """Delete segment files no commit listed (a crash between writing a file and its commit)."""
        if not self.directory.is_dir():
            return []
        strays = [
            p
            for p in self.directory.iterdir()
            if p.is_file()
            and p.name.startswith("spans-")
            and p.suffix in (".parquet", ".tmp")
            and p.name not in listed
        ]
        for p in strays:
            p.unlink(missing_ok=True)
        return [p.name for p in strays]

    def unreadable(self, names: list[str]) -> list[tuple[str, str]]:
        """Listed files that are missing or not whole Parquet files, and why."""
        bad = []
        for name in names:
            try:
                pq.read_metadata(self.path(name))
            except (OSError, pa.ArrowException) as exc:
                bad.append((name, str(exc)))
        return bad

    def set_aside(self, name: str) -> None:
        """Move a damaged file to ``damaged/``, out of every query but not deleted."""
        path = self.path(name)
        if path.exists():
            (self.directory / "damaged").mkdir(exist_ok=True)
            os.replace(path, self.directory / "damaged" / name)

    def close(self) -> None:
        self.collect(everything=True)
        if self._temporary:
            shutil.rmtree(self.directory, ignore_errors=True)


def _as_stored(batch: pa.Table) -> pa.Table:
    """Span columns (the engine's batch, or span_rows' own) with span_rows' types.

    The engine's times are unsigned nanoseconds: clamped to what a signed one holds.
    """
    columns = []
    for f in COLUMNS:
        column = batch.column(f.name)
        if f.name in ("start_ns", "end_ns") and column.type == pa.uint64():
            column = pc.min_element_wise(column, pa.scalar(_MAX_NS, pa.uint64()))
        columns.append(column.cast(f.type))
    return pa.table(columns, schema=COLUMNS)


def _sync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
