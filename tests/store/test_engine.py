"""The DuckDB engine in-process: writes become visible on flush, every query, prune, usage, reopening."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.logs.v1 import logs_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from otlpd.store import columns
from otlpd.store.duckdb.engine import DuckDBEngine
from otlpd.store.engine import LogQuery, SeriesQuery, TraceQuery
from tests.store.support import (
    DELTA,
    MS,
    SECOND,
    gauge,
    log_record,
    logs_request,
    metrics_request,
    number,
    span,
    sum_metric,
    tid,
    traces_request,
)

T0 = 1_800_000_000 * SECOND


def sid(n: int) -> bytes:
    return n.to_bytes(8, "big")


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[DuckDBEngine]:
    e = DuckDBEngine(str(tmp_path / "otlpd.duckdb"))
    assert e.migrate() == [1, 2, 3]
    yield e
    e.close()


def write_spans(e: DuckDBEngine, service: str, spans: list[trace_pb2.Span], **resource: object) -> None:
    e.write_spans(columns.spans(traces_request(service, spans, **resource).SerializeToString()))


def test_migrate_once(engine: DuckDBEngine) -> None:
    assert engine.schema_version() == 3
    assert engine.migrate() == []
    assert engine.schema_version() == 3


def test_nothing_is_visible_until_flushed(engine: DuckDBEngine) -> None:
    write_spans(engine, "cart", [span(tid(1), sid(1), "GET /cart", T0, T0 + MS, kind=2)])
    engine.write_logs(columns.logs(logs_request("cart", [log_record(T0, "hello")]).SerializeToString()))
    engine.write_metrics(
        columns.metrics(metrics_request("cart", [gauge("g", [number(T0, 1.0)])]).SerializeToString())
    )
    assert engine.pending_rows() == 3
    assert engine.services() == []
    assert engine.trace(tid(1)) == []
    assert engine.find_logs(LogQuery()) == []
    assert engine.metrics() == []
    assert engine.usage().spans == 0
    assert engine.flush() == 3
    assert engine.pending_rows() == 0
    assert engine.flush() == 0
    assert engine.services() == ["cart"]
    assert engine.operations("cart") == [("GET /cart", 2)]
    assert len(engine.trace(tid(1))) == 1
    assert len(engine.find_logs(LogQuery())) == 1
    assert [m.name for m in engine.metrics()] == ["g"]
    usage = engine.usage()
    assert (usage.spans, usage.logs, usage.points) == (1, 1, 1)
    assert usage.tables == {"spans": 1, "logs": 1, "metric_points": 1}
    assert usage.bytes > 0


def test_a_trace_written_in_pieces_is_one_trace(engine: DuckDBEngine) -> None:
    """Spans of one trace in several commits (and services) come back together, by start time."""
    write_spans(engine, "backend", [span(tid(7), sid(3), "db", T0 + 30 * MS, T0 + 40 * MS, parent=sid(2))])
    engine.flush()
    write_spans(engine, "frontend", [span(tid(7), sid(1), "root", T0, T0 + 100 * MS, kind=2)])
    write_spans(
        engine, "backend", [span(tid(7), sid(2), "handler", T0 + 10 * MS, T0 + 90 * MS, parent=sid(1))]
    )
    engine.flush()
    rows = engine.trace(tid(7))
    assert [trace_pb2.Span.FromString(r.data).name for r in rows] == ["root", "handler", "db"]
    assert [r.service_name for r in rows] == ["frontend", "backend", "backend"]
    (summary,) = engine.find_traces(TraceQuery())
    assert (summary.root_service, summary.root_name, summary.span_count) == ("frontend", "root", 3)
    assert (summary.start_ns, summary.duration_ns, summary.services) == (
        T0,
        100 * MS,
        ["backend", "frontend"],
    )


def test_a_trace_without_its_root_is_named_after_its_earliest_span(engine: DuckDBEngine) -> None:
    write_spans(
        engine,
        "worker",
        [
            span(tid(9), sid(2), "late", T0 + 20 * MS, T0 + 30 * MS, parent=sid(1)),
            span(tid(9), sid(3), "early", T0 + 10 * MS, T0 + 50 * MS, parent=sid(1), status=2),
        ],
    )
    engine.flush()
    (summary,) = engine.find_traces(TraceQuery())
    assert (summary.root_name, summary.start_ns, summary.duration_ns) == ("early", T0 + 10 * MS, 40 * MS)
    assert summary.error_count == 1


def test_trace_search_order_and_limit(engine: DuckDBEngine) -> None:
    for i in range(5):
        write_spans(
            engine, "svc", [span(tid(100 + i), sid(1), f"op{i % 2}", T0 + i * SECOND, T0 + i * SECOND + i)]
        )
    engine.flush()
    assert [s.trace_id for s in engine.find_traces(TraceQuery())] == [
        tid(104),
        tid(103),
        tid(102),
        tid(101),
        tid(100),
    ]
    assert [s.trace_id for s in engine.find_traces(TraceQuery(limit=2))] == [tid(104), tid(103)]
    assert [s.trace_id for s in engine.find_traces(TraceQuery(operation="op1"))] == [tid(103), tid(101)]
    got = engine.find_traces(TraceQuery(min_duration_ns=2, max_duration_ns=3))
    assert [s.trace_id for s in got] == [tid(103), tid(102)]
    got = engine.find_traces(TraceQuery(start_ns=T0 + SECOND, end_ns=T0 + 3 * SECOND))
    assert [s.trace_id for s in got] == [tid(103), tid(102), tid(101)]
    assert engine.find_traces(TraceQuery(service="other")) == []
    assert engine.trace(tid(999)) == []


def test_timestamps_past_2262_are_clamped_not_refused(engine: DuckDBEngine) -> None:
    write_spans(engine, "svc", [span(tid(5), sid(1), "far", 2**64 - 2, 2**64 - 1)])
    engine.write_logs(columns.logs(logs_request("svc", [log_record(2**64 - 1, "far")]).SerializeToString()))
    assert engine.flush() == 2
    (row,) = engine.trace(tid(5))
    assert trace_pb2.Span.FromString(row.data).start_time_unix_nano == 2**64 - 2  # the item itself is intact
    (summary,) = engine.find_traces(TraceQuery())
    assert summary.start_ns == 2**63 - 1
    assert len(engine.find_logs(LogQuery(start_ns=T0))) == 1


def test_enum_values_no_version_defines_are_stored(engine: DuckDBEngine) -> None:
    """OTLP enums are open: a client may send any int32. The columns cannot hold every one, but the
    items must still be stored (they once failed the whole commit), their data intact."""
    spans = [
        span(tid(6), sid(1), "negative", T0, T0 + MS, kind=-1, status=77),
        span(tid(6), sid(2), "large", T0, T0 + MS, kind=300, status=-5),
        span(tid(6), sid(3), "error", T0, T0 + MS, kind=2, status=2),
    ]
    write_spans(engine, "svc", spans)
    odd_log = logs_request("svc", [log_record(T0, "odd", severity=300)])
    engine.write_logs(columns.logs(odd_log.SerializeToString()))
    assert engine.flush() == 4
    rows = engine.trace(tid(6))
    assert sorted(trace_pb2.Span.FromString(r.data).kind for r in rows) == [-1, 2, 300]
    assert sorted(trace_pb2.Span.FromString(r.data).status.code for r in rows) == [-5, 2, 77]
    (summary,) = engine.find_traces(TraceQuery(errors_only=True))
    assert summary.error_count == 1
    (record,) = engine.find_logs(LogQuery())
    assert logs_pb2.LogRecord.FromString(record.data).severity_number == 300


def test_log_queries(engine: DuckDBEngine) -> None:
    records = [
        log_record(T0 + 1, "Alpha one", 9, trace_id=tid(1)),
        log_record(T0 + 2, "beta TWO", 17),
        log_record(T0 + 3, {"k": "Gamma"}, 13, trace_id=tid(1)),
    ]
    engine.write_logs(columns.logs(logs_request("a", records).SerializeToString()))
    engine.write_logs(columns.logs(logs_request("b", [log_record(T0 + 4, "delta", 21)]).SerializeToString()))
    engine.flush()

    def texts(**q: Any) -> list[str]:
        return [
            columns.text(logs_pb2.LogRecord.FromString(r.data).body) for r in engine.find_logs(LogQuery(**q))
        ]

    assert texts() == ["delta", '{"k":"Gamma"}', "beta TWO", "Alpha one"]
    assert texts(service="a", min_severity=13) == ['{"k":"Gamma"}', "beta TWO"]
    assert texts(text="gamma") == ['{"k":"Gamma"}']
    assert texts(text="ALPHA") == ["Alpha one"]
    assert texts(trace_id=tid(1)) == ['{"k":"Gamma"}', "Alpha one"]
    assert texts(start_ns=T0 + 2, end_ns=T0 + 3) == ['{"k":"Gamma"}', "beta TWO"]
    assert texts(limit=1) == ["delta"]
    (row,) = engine.find_logs(LogQuery(service="b"))
    assert (row.service_name, row.scope) == ("b", b"\n\x05tests")


def test_points_by_name_time_and_attributes(engine: DuckDBEngine) -> None:
    request = metrics_request(
        "api",
        [
            gauge(
                "temp", [number(T0 + i * SECOND, float(i), room="lab" if i % 2 else "hall") for i in range(4)]
            ),
            sum_metric("jobs", [number(T0, 3, code=200)], temporality=DELTA),
        ],
    )
    engine.write_metrics(columns.metrics(request.SerializeToString()))
    engine.write_metrics(
        columns.metrics(
            metrics_request("other", [gauge("temp", [number(T0, 9.0, room="lab")])]).SerializeToString()
        )
    )
    engine.flush()
    info, rows = engine.points(SeriesQuery("temp", T0, T0 + 10 * SECOND))
    assert info is not None
    assert (info.name, info.type) == ("temp", "gauge")
    assert len(rows) == 5
    assert len({r.series_key for r in rows}) == 3  # (api, hall), (api, lab), (other, lab)
    _, rows = engine.points(SeriesQuery("temp", T0 + SECOND, T0 + 2 * SECOND))
    assert [r.time_ns for r in rows] == [T0 + SECOND, T0 + 2 * SECOND]
    _, rows = engine.points(SeriesQuery("temp", T0, T0 + 10 * SECOND, (("room", "lab"),)))
    assert sorted((r.service_name, r.time_ns) for r in rows) == [
        ("api", T0 + SECOND),
        ("api", T0 + 3 * SECOND),
        ("other", T0),
    ]
    _, rows = engine.points(
        SeriesQuery("temp", T0, T0 + 10 * SECOND, (("room", "lab"), ("service.name", "api")))
    )
    assert len(rows) == 2
    _, rows = engine.points(SeriesQuery("jobs", T0, T0, (("code", "200"),)))  # an int attribute, by its text
    assert [(r.temporality, r.attributes) for r in rows] == [(DELTA, '{"code": 200}')]
    assert engine.points(SeriesQuery("nope", T0, T0 + 1)) == (None, [])


def test_prune_deletes_everything_older_and_what_only_it_referenced(engine: DuckDBEngine) -> None:
    old, new = T0, T0 + 3600 * SECOND
    write_spans(engine, "gone", [span(tid(1), sid(1), "old op", old, old + 1)])
    write_spans(
        engine,
        "kept",
        [span(tid(2), sid(1), "old op", old, old + 1), span(tid(3), sid(1), "new", new, new + 1)],
    )
    engine.write_logs(columns.logs(logs_request("gone", [log_record(old, "old")]).SerializeToString()))
    engine.write_logs(columns.logs(logs_request("kept", [log_record(new, "new")]).SerializeToString()))
    engine.write_metrics(
        columns.metrics(
            metrics_request("gone", [gauge("old.metric", [number(old, 1.0)])]).SerializeToString()
        )
    )
    engine.write_metrics(
        columns.metrics(
            metrics_request("kept", [gauge("m", [number(old, 1.0), number(new, 2.0)])]).SerializeToString()
        )
    )
    engine.flush()
    con = engine._con()
    resources = con.execute("SELECT count(*) FROM resources").fetchall()
    assert resources == [(2,)]

    assert engine.oldest_ns(0.0) == old
    assert engine.oldest_ns(1.0) == new
    assert engine.prune(old) == 0  # strictly older only
    assert engine.prune(new) == 5  # 2 old spans, 1 old log record, 2 old points

    assert engine.services() == ["kept"]
    assert engine.operations("kept") == [("new", 1)]
    assert engine.trace(tid(1)) == engine.trace(tid(2)) == []
    assert len(engine.trace(tid(3))) == 1
    assert [m.name for m in engine.metrics()] == ["m"]
    usage = engine.usage()
    assert (usage.spans, usage.logs, usage.points) == (1, 1, 1)
    assert con.execute("SELECT count(*) FROM resources").fetchall() == [
        (1,)
    ]  # "gone" is no longer referenced
    assert engine.oldest_ns(0.0) == new
    # what was pruned can be written again (its resource is not assumed to exist any more)
    write_spans(engine, "gone", [span(tid(4), sid(1), "back", new, new + 1)])
    engine.flush()
    (row,) = engine.trace(tid(4))
    assert row.resource != b""


def test_oldest_of_an_empty_store(engine: DuckDBEngine) -> None:
    assert engine.oldest_ns(0.5) is None
    assert engine.prune(T0) == 0


def test_data_survives_reopening(tmp_path: Path) -> None:
    path = str(tmp_path / "otlpd.duckdb")
    e = DuckDBEngine(path)
    e.migrate()
    write_spans(e, "cart", [span(tid(1), sid(1), "GET /cart", T0, T0 + MS)])
    e.flush()
    e.close()
    e = DuckDBEngine(path)
    try:
        assert e.migrate() == []
        assert e.services() == ["cart"]
        assert len(e.trace(tid(1))) == 1
    finally:
        e.close()


def test_readers_on_other_threads_see_commits(engine: DuckDBEngine) -> None:
    seen: list[list[str]] = []

    def read() -> None:
        seen.append(engine.services())

    reader = threading.Thread(target=read)
    reader.start()
    reader.join()
    write_spans(engine, "svc", [span(tid(1), sid(1), "op", T0, T0 + 1)])
    engine.flush()
    reader = threading.Thread(target=read)
    reader.start()
    reader.join()
    assert seen == [[], ["svc"]]
