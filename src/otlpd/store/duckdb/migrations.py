"""The DuckDB schema, as numbered migrations.

A database records the migrations applied to it in ``otlpd_schema``; opening
it applies the missing ones in order, each in one transaction, so a crash
mid-way leaves the previous version intact. Never edit a released migration:
add the next one.

Layout: every item is one row with the columns queries filter and sort on,
plus ``data``, its serialized protobuf as latin-1 text (see
:mod:`otlpd.store.columns`). Resources and scopes are stored once, by key.
``data`` is ZSTD-compressed: about 4x smaller than DuckDB's automatic choice
(dictionary + FSST, which finds little to share between serialized spans),
and faster to write and to search.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    statements: tuple[str, ...]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "spans, logs, metric points, resources, scopes",
        (
            """CREATE TABLE resources (
                key BIGINT PRIMARY KEY, service_name VARCHAR, data VARCHAR, schema_url VARCHAR)""",
            """CREATE TABLE scopes (
                key BIGINT PRIMARY KEY, name VARCHAR, version VARCHAR, data VARCHAR, schema_url VARCHAR)""",
            """CREATE TABLE spans (
                trace_key BIGINT, trace_id BLOB, span_id BLOB, parent_span_id BLOB,
                service_name VARCHAR, name VARCHAR, kind UTINYINT,
                start_ns BIGINT, end_ns BIGINT, status_code UTINYINT,
                resource_key BIGINT, scope_key BIGINT, data VARCHAR USING COMPRESSION zstd)""",
            """CREATE TABLE logs (
                time_ns BIGINT, observed_ns BIGINT, service_name VARCHAR,
                severity_number UTINYINT, severity_text VARCHAR, body VARCHAR,
                trace_id BLOB, span_id BLOB, resource_key BIGINT, scope_key BIGINT,
                data VARCHAR USING COMPRESSION zstd)""",
            """CREATE TABLE metric_points (
                name VARCHAR, type VARCHAR, unit VARCHAR, description VARCHAR,
                temporality UTINYINT, monotonic BOOLEAN, service_name VARCHAR,
                time_ns BIGINT, start_ns BIGINT, value DOUBLE, count UBIGINT, sum DOUBLE,
                attributes VARCHAR, series_key BIGINT, resource_key BIGINT, scope_key BIGINT,
                data VARCHAR USING COMPRESSION zstd)""",
        ),
    ),
    Migration(
        2,
        "catalogs (operations, metric names) and a trace index, backfilled from stored data",
        (
            """CREATE TABLE operations (
                service_name VARCHAR, name VARCHAR, kind UTINYINT, last_seen_ns BIGINT,
                PRIMARY KEY (service_name, name, kind))""",
            """INSERT INTO operations
                SELECT service_name, name, kind, max(start_ns) FROM spans GROUP BY ALL""",
            """CREATE TABLE metric_catalog (
                name VARCHAR PRIMARY KEY, type VARCHAR, unit VARCHAR, description VARCHAR,
                last_seen_ns BIGINT)""",
            """INSERT INTO metric_catalog
                SELECT name, arg_max(type, time_ns), arg_max(unit, time_ns),
                       arg_max(description, time_ns), max(time_ns)
                FROM metric_points GROUP BY name""",
            # One row per trace per written batch: where in time a trace's spans lie,
            # so fetching a trace scans only the row groups of that time range.
            """CREATE TABLE trace_index (trace_key BIGINT, first_ns BIGINT, last_ns BIGINT)""",
            """INSERT INTO trace_index
                SELECT trace_key, min(start_ns), max(start_ns) FROM spans GROUP BY trace_key""",
        ),
    ),
    Migration(
        3,
        "spans in Parquet segment files: span_legacy (the spans stored so far), span_rows, "
        "span_segments, the spans view",
        (
            # The spans stored so far stay where they are, in span_legacy, until retention
            # deletes them. New commits of a file's worth become segment files
            # (otlpd.store.duckdb.segments); smaller ones go to span_rows until they add up to
            # one. The engine makes the view over all three at start.
            "ALTER TABLE spans RENAME TO span_legacy",
            """CREATE TABLE span_rows (
                trace_key BIGINT, trace_id BLOB, span_id BLOB, parent_span_id BLOB,
                service_name VARCHAR, name VARCHAR, kind UTINYINT,
                start_ns BIGINT, end_ns BIGINT, status_code UTINYINT,
                resource_key BIGINT, scope_key BIGINT, data VARCHAR USING COMPRESSION zstd)""",
            """CREATE TABLE span_segments (
                name VARCHAR PRIMARY KEY, rows BIGINT, bytes BIGINT, first_ns BIGINT, last_ns BIGINT)""",
            "CREATE VIEW spans AS SELECT * FROM span_legacy UNION ALL SELECT * FROM span_rows",
        ),
    ),
)

LATEST = MIGRATIONS[-1].version

BOOKKEEPING = """CREATE TABLE IF NOT EXISTS otlpd_schema (
    version INTEGER PRIMARY KEY, description VARCHAR, applied_at TIMESTAMP DEFAULT current_timestamp)"""
