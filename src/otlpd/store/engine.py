"""The storage contract between the store exporter, the query API and an engine.

Engines are synchronous and thread-safe for one writer plus concurrent
readers; :class:`otlpd.store.store.Store` runs them off the event loop. Rows
handed back are plain values (stored protobuf as bytes), so the API renders
them the same whatever engine produced them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from otlpd.store.columns import LogColumns, MetricColumns, SpanColumns


@dataclass(frozen=True)
class TraceQuery:
    """Traces with at least one span matching every given condition."""

    service: str | None = None
    operation: str | None = None
    attributes: tuple[tuple[str, str], ...] = ()
    min_duration_ns: int | None = None
    max_duration_ns: int | None = None
    errors_only: bool = False
    start_ns: int | None = None
    end_ns: int | None = None
    limit: int = 20


@dataclass(frozen=True)
class TraceSummary:
    trace_id: bytes
    root_service: str
    root_name: str
    start_ns: int
    duration_ns: int
    span_count: int
    error_count: int
    services: list[str]


@dataclass(frozen=True)
class SpanRow:
    service_name: str
    data: bytes  # serialized Span
    resource: bytes  # serialized Resource
    scope: bytes  # serialized InstrumentationScope
    scope_schema_url: str = ""
    resource_schema_url: str = ""


@dataclass(frozen=True)
class LogQuery:
    service: str | None = None
    min_severity: int | None = None
    text: str | None = None
    trace_id: bytes | None = None
    start_ns: int | None = None
    end_ns: int | None = None
    limit: int = 100


@dataclass(frozen=True)
class LogRow:
    service_name: str
    data: bytes  # serialized LogRecord
    resource: bytes
    scope: bytes
    resource_schema_url: str = ""
    scope_schema_url: str = ""


@dataclass(frozen=True)
class MetricInfo:
    name: str
    type: str
    unit: str
    description: str


@dataclass(frozen=True)
class PointRow:
    series_key: int
    service_name: str
    attributes: str  # JSON object
    temporality: int
    monotonic: bool
    time_ns: int
    start_ns: int
    data: bytes  # serialized data point


@dataclass(frozen=True)
class SeriesQuery:
    name: str
    start_ns: int
    end_ns: int
    attributes: tuple[tuple[str, str], ...] = ()
    limit: int = 100_000


@dataclass
class Usage:
    """What the store holds; for /metrics, retention and the benchmark report."""

    bytes: int
    spans: int
    logs: int
    points: int
    tables: dict[str, int] = field(default_factory=dict)


class Engine(Protocol):
    # What ``migrate`` found unreadable and took out of every query: (file, items, why).
    set_aside: list[tuple[str, int, str]]

    def migrate(self) -> list[int]:
        """Bring the schema to the latest version; the versions applied, oldest first."""
        ...

    def schema_version(self) -> int: ...

    def write_spans(self, columns: SpanColumns) -> None: ...

    def write_logs(self, columns: LogColumns) -> None: ...

    def write_metrics(self, columns: MetricColumns) -> None: ...

    flush_rows: int
    """Rows worth committing at once; the store commits when this many are pending."""

    def pending_rows(self) -> int:
        """Rows written but not yet committed."""
        ...

    def flush(self) -> int:
        """Make everything written so far durable and visible to queries; rows committed.

        Safe to call while writes continue from another thread.
        """
        ...

    def services(self) -> list[str]: ...

    def operations(self, service: str) -> list[tuple[str, int]]:
        """(span name, span kind) pairs seen for a service."""
        ...

    def find_traces(self, query: TraceQuery) -> list[TraceSummary]: ...

    def trace(self, trace_id: bytes) -> list[SpanRow]: ...

    def find_logs(self, query: LogQuery) -> list[LogRow]: ...

    def metrics(self) -> list[MetricInfo]: ...

    def points(self, query: SeriesQuery) -> tuple[MetricInfo | None, list[PointRow]]: ...

    def prune(self, before_ns: int) -> int:
        """Delete everything older than ``before_ns``; the number of rows deleted."""
        ...

    def oldest_ns(self, fraction: float) -> int | None:
        """The time before which about ``fraction`` of the stored items lie (for size retention)."""
        ...

    def usage(self) -> Usage: ...

    def close(self) -> None: ...
