"""Stored rows → API JSON: the edge cases the e2e data set does not reach."""

from __future__ import annotations

from opentelemetry.proto.logs.v1 import logs_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from otlpd.query import render
from otlpd.store.engine import LogRow, SpanRow
from tests.store.support import any_value, kvs, resource


def test_severity_names_follow_the_data_model_ranges() -> None:
    assert [render.severity_name(n) for n in (0, 1, 4, 5, 8, 9, 12, 13, 16, 17, 20, 21, 24, 25)] == [
        "UNSPECIFIED",
        "TRACE",
        "TRACE",
        "DEBUG",
        "DEBUG",
        "INFO",
        "INFO",
        "WARN",
        "WARN",
        "ERROR",
        "ERROR",
        "FATAL",
        "FATAL",
        "UNSPECIFIED",
    ]


def test_unknown_enum_values_are_shown_as_numbers() -> None:
    s = trace_pb2.Span(
        trace_id=b"\x01" * 16,
        span_id=b"\x02" * 8,
        kind=9,  # type: ignore[arg-type]
        status=trace_pb2.Status(code=7),  # type: ignore[arg-type]
        trace_state="k=v",
        end_time_unix_nano=5,
        start_time_unix_nano=10,  # ends before it starts: duration 0, not negative
    )
    out = render.span(SpanRow("svc", s.SerializeToString(), resource("svc").SerializeToString(), b""))
    assert (out["kind"], out["status"], out["traceState"], out["durationNs"]) == (
        "9",
        {"code": "7", "message": ""},
        "k=v",
        0,
    )
    assert out["scope"] == {"name": "", "version": ""}


def test_log_bodies_and_attribute_values_of_every_type() -> None:
    record = logs_pb2.LogRecord(
        observed_time_unix_nano=42,  # no time: the observed time stands in
        severity_number=3,  # type: ignore[arg-type]
        attributes=kvs({"b": b"\x00\xff", "list": [1, "x", True], "map": {"k": 1.5}}),
    )
    record.attributes.add(key="empty")  # a KeyValue without a value
    out = render.log(LogRow("svc", record.SerializeToString(), b"", b""))
    assert out["timeUnixNano"] == out["observedTimeUnixNano"] == "42"
    assert (out["severityNumber"], out["severityText"], out["body"]) == (3, "TRACE", None)
    assert out["attributes"] == {"b": "AP8=", "list": [1, "x", True], "map": {"k": 1.5}, "empty": None}
    assert out["resource"] == {"attributes": {}}

    record = logs_pb2.LogRecord(time_unix_nano=1, body=any_value({"nested": [{"a": 1}]}))
    assert render.log(LogRow("svc", record.SerializeToString(), b"", b""))["body"] == {"nested": [{"a": 1}]}


def test_jaeger_logs_let_an_event_attribute_override_the_event_name() -> None:
    """As the Collector's OTLP → Jaeger translator does: no second "event" field."""
    from opentelemetry.proto.common.v1 import common_pb2

    from otlpd.query.jaeger import jaeger_trace

    s = trace_pb2.Span(trace_id=b"\x01" * 16, span_id=b"\x02" * 8, name="op")
    s.events.add(name="named", time_unix_nano=2000)
    overridden = s.events.add(name="ignored", time_unix_nano=3000)
    overridden.attributes.add(key="event", value=common_pb2.AnyValue(string_value="custom"))
    row = SpanRow("svc", s.SerializeToString(), resource("svc").SerializeToString(), b"")
    logs = jaeger_trace(b"\x01" * 16, [row])["spans"][0]["logs"]
    assert logs == [
        {"timestamp": 2, "fields": [{"key": "event", "type": "string", "value": "named"}]},
        {"timestamp": 3, "fields": [{"key": "event", "type": "string", "value": "custom"}]},
    ]
