"""OTLP requests → column lists: every column of every signal, and the item itself kept byte for byte."""

from __future__ import annotations

import json

from opentelemetry.proto.collector.logs.v1 import logs_service_pb2 as logs_svc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2 as metrics_svc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as trace_svc
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.logs.v1 import logs_pb2
from opentelemetry.proto.metrics.v1 import metrics_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from otlpd.store import columns
from tests.store.support import (
    DELTA,
    gauge,
    histogram,
    histogram_point,
    kvs,
    log_record,
    metrics_request,
    number,
    resource,
    span,
    sum_metric,
)

TID = bytes.fromhex("4bf92f3577b34da6a3ce929d0e0e4736")
TID2 = bytes.fromhex("ffffffffffffffff0000000000000001")


def test_digest_and_trace_key_fit_a_signed_bigint() -> None:
    assert columns.digest(b"x") == columns.digest(b"x") != columns.digest(b"y")
    assert 0 <= columns.digest(b"\xff" * 100) < 2**63
    assert columns.trace_key(TID) == int.from_bytes(TID[:8], "big") >> 1
    assert columns.trace_key(TID2) == (2**64 - 1) >> 1 < 2**63


def test_service_name_falls_back_to_unknown_service() -> None:
    assert columns.service_name(resource("cart")) == "cart"
    assert columns.service_name(resource(None, host="h")) == "unknown_service"
    assert columns.service_name(resource("")) == "unknown_service"
    assert columns.service_name(resource(None, **{"service.namespace": "shop"})) == "unknown_service"


def test_span_columns() -> None:
    a = span(TID, b"\x01" * 8, "GET /cart", 10, 30, kind=2, status=2, attrs={"k": "v"})
    b = span(TID, b"\x02" * 8, "SELECT", 12, 20, parent=b"\x01" * 8, kind=3)
    c = span(TID2, b"\x03" * 8, "consume", 50, 50, kind=5, status=1)
    request = trace_svc.ExportTraceServiceRequest(
        resource_spans=[
            trace_pb2.ResourceSpans(
                resource=resource("cart", env="prod"),
                schema_url="https://schema/1",
                scope_spans=[
                    trace_pb2.ScopeSpans(
                        scope=common_pb2.InstrumentationScope(name="lib", version="1.0"), spans=[a, b]
                    ),
                    trace_pb2.ScopeSpans(scope=common_pb2.InstrumentationScope(name="other"), spans=[]),
                ],
            ),
            trace_pb2.ResourceSpans(
                resource=resource(None),
                scope_spans=[
                    trace_pb2.ScopeSpans(
                        scope=common_pb2.InstrumentationScope(name="q"),
                        schema_url="https://schema/2",
                        spans=[c],
                    )
                ],
            ),
        ]
    )
    cols = columns.spans(request.SerializeToString())
    assert len(cols) == 3
    assert columns.values(cols.trace_id) == [TID, TID, TID2]
    assert columns.values(cols.trace_key) == [columns.trace_key(TID)] * 2 + [columns.trace_key(TID2)]
    assert columns.values(cols.span_id) == [b"\x01" * 8, b"\x02" * 8, b"\x03" * 8]
    assert columns.values(cols.parent_span_id) == [b"", b"\x01" * 8, b""]
    assert cols.service_name == ["cart", "cart", "unknown_service"]
    assert columns.values(cols.name) == ["GET /cart", "SELECT", "consume"]
    assert columns.values(cols.kind) == [2, 3, 5]
    assert (columns.values(cols.start_ns), columns.values(cols.end_ns)) == ([10, 12, 50], [30, 20, 50])
    assert columns.values(cols.status_code) == [2, 0, 1]
    # the item itself, byte for byte, as latin-1 text
    assert [trace_pb2.Span.FromString(d) for d in cols.data] == [a, b, c]
    assert cols.data[0] == a.SerializeToString()
    # resources and scopes once each, by key
    r1, r2 = request.resource_spans[0].resource, request.resource_spans[1].resource
    assert cols.resource_key[0] == cols.resource_key[1] != cols.resource_key[2]
    assert cols.dims.resources == {
        cols.resource_key[0]: ("cart", r1.SerializeToString(), "https://schema/1"),
        cols.resource_key[2]: ("unknown_service", r2.SerializeToString(), ""),
    }
    lib = request.resource_spans[0].scope_spans[0].scope
    assert cols.scope_key[0] == cols.scope_key[1] != cols.scope_key[2]
    assert cols.dims.scopes[cols.scope_key[0]] == (
        "lib",
        "1.0",
        lib.SerializeToString(),
        "",
    )
    assert cols.dims.scopes[cols.scope_key[2]][0] == "q"
    assert cols.dims.scopes[cols.scope_key[2]][3] == "https://schema/2"
    assert len(cols.dims.scopes) == 3  # the empty scope is recorded too, harmlessly


def test_same_resource_same_key_and_schema_url_tells_apart() -> None:
    def key(schema_url: str) -> int:
        request = trace_svc.ExportTraceServiceRequest(
            resource_spans=[
                trace_pb2.ResourceSpans(
                    resource=resource("cart"),
                    schema_url=schema_url,
                    scope_spans=[trace_pb2.ScopeSpans(spans=[span(TID, b"\x01" * 8, "s", 1, 2)])],
                )
            ]
        )
        return columns.spans(request.SerializeToString()).resource_key[0]

    assert key("") == key("")
    assert key("") != key("https://schema/1")


def test_log_columns() -> None:
    records = [
        log_record(100, "plain text", 9, text="INFO", trace_id=TID, span_id=b"\x01" * 8, observed_ns=101),
        log_record(0, {"msg": "structured", "n": 1, "nested": {"ok": True}}, 17, observed_ns=200),
        log_record(300, ["a", 1, 2.5, b"\x00\x01"], 13),
    ]
    empty_body = logs_pb2.LogRecord(time_unix_nano=400, severity_number=5)  # type: ignore[arg-type]
    request = logs_svc.ExportLogsServiceRequest(
        resource_logs=[
            logs_pb2.ResourceLogs(
                resource=resource("api"),
                scope_logs=[logs_pb2.ScopeLogs(log_records=[*records, empty_body])],
            )
        ]
    )
    cols = columns.logs(request.SerializeToString())
    assert len(cols) == 4
    assert cols.time_ns == [100, 200, 300, 400]  # no time: when it was observed
    assert cols.observed_ns == [101, 200, 0, 0]
    assert cols.service_name == ["api"] * 4
    assert cols.severity_number == [9, 17, 13, 5]
    assert cols.severity_text == ["INFO", "", "", ""]
    assert cols.body == [
        "plain text",
        '{"msg":"structured","n":1,"nested":{"ok":true}}',
        '["a",1,2.5,"AAE="]',
        "",
    ]
    assert cols.trace_id == [TID, b"", b"", b""]
    assert cols.span_id == [b"\x01" * 8, b"", b"", b""]
    assert len(set(cols.resource_key)) == 1
    assert [logs_pb2.LogRecord.FromString(d) for d in cols.data] == [*records, empty_body]


def test_text_of_any_value() -> None:
    assert columns.text(common_pb2.AnyValue(string_value="ünï ✓")) == "ünï ✓"
    assert columns.text(common_pb2.AnyValue()) == ""
    assert columns.text(common_pb2.AnyValue(int_value=5)) == "5"
    assert columns.text(common_pb2.AnyValue(bool_value=False)) == "false"
    assert columns.text(common_pb2.AnyValue(double_value=0.5)) == "0.5"
    assert json.loads(
        columns.text(common_pb2.AnyValue(kvlist_value=common_pb2.KeyValueList(values=kvs({"é": 1}))))
    ) == {"é": 1}


def test_metric_columns_for_every_type() -> None:
    exp = metrics_pb2.Metric(
        name="size",
        exponential_histogram=metrics_pb2.ExponentialHistogram(
            aggregation_temporality=DELTA,
            data_points=[metrics_pb2.ExponentialHistogramDataPoint(time_unix_nano=5, count=3, sum=1.5)],
        ),
    )
    summary = metrics_pb2.Metric(
        name="rpc",
        description="d",
        summary=metrics_pb2.Summary(data_points=[metrics_pb2.SummaryDataPoint(time_unix_nano=6, count=4)]),
    )
    no_sum = histogram_point(7, [1.0], [1, 1], 0.0, 3)
    no_sum.ClearField("sum")
    request = metrics_request(
        "m",
        [
            gauge("temp", [number(1, 21.5, room="lab"), number(2, 7, room="lab", floor=2)], unit="Cel"),
            sum_metric("reqs", [number(3, 10, 1, route="/a")], monotonic=True),
            sum_metric("delta", [number(4, 1.5)], temporality=DELTA, monotonic=False),
            histogram("lat", [histogram_point(5, [1.0, 5.0], [1, 2, 3], 20.0, 2, code=200), no_sum]),
            exp,
            summary,
            metrics_pb2.Metric(name="empty"),  # no data at all: skipped
        ],
    )
    cols = columns.metrics(request.SerializeToString())
    assert cols.name == ["temp", "temp", "reqs", "delta", "lat", "lat", "size", "rpc"]
    assert cols.type == [
        "gauge",
        "gauge",
        "sum",
        "sum",
        "histogram",
        "histogram",
        "exponential_histogram",
        "summary",
    ]
    assert cols.unit == ["Cel", "Cel", "", "", "", "", "", ""]
    assert cols.description == ["", "", "", "", "", "", "", "d"]
    assert cols.temporality == [0, 0, 2, 1, 2, 2, 1, 0]
    assert cols.monotonic == [False, False, True, False, False, False, False, False]
    assert cols.service_name == ["m"] * 8
    assert cols.time_ns == [1, 2, 3, 4, 5, 7, 5, 6]
    assert cols.start_ns == [0, 0, 1, 0, 2, 3, 0, 0]
    assert cols.value == [21.5, 7.0, 10.0, 1.5, None, None, None, None]
    assert cols.count == [None, None, None, None, 6, 2, 3, 4]
    assert cols.sum == [None, None, None, None, 20.0, None, 1.5, 0.0]  # a histogram may have no sum
    assert [json.loads(a) for a in cols.attributes] == [
        {"room": "lab"},
        {"floor": 2, "room": "lab"},
        {"route": "/a"},
        {},
        {"code": 200},
        {},
        {},
        {},
    ]
    assert cols.attributes[1] == '{"floor": 2, "room": "lab"}'  # keys sorted: one spelling per series
    # a series is resource + name + attributes
    assert cols.series_key[0] != cols.series_key[1]
    assert len(set(cols.series_key)) == 8
    again = columns.metrics(
        metrics_request("m", [gauge("temp", [number(99, 1.0, room="lab")])]).SerializeToString()
    )
    assert again.series_key == [cols.series_key[0]]
    other = columns.metrics(
        metrics_request("n", [gauge("temp", [number(99, 1.0, room="lab")])]).SerializeToString()
    )
    assert other.series_key != [cols.series_key[0]]
    points = request.resource_metrics[0].scope_metrics[0].metrics
    assert cols.data[0] == points[0].gauge.data_points[0].SerializeToString()
    assert cols.data[4] == points[3].histogram.data_points[0].SerializeToString()
    assert cols.data[7] == points[5].summary.data_points[0].SerializeToString()


def test_items_are_cut_from_the_request_as_received() -> None:
    """Spans (and log records) are stored as the bytes the client sent, each next to its own columns."""
    spans = [span(TID, bytes([i + 1]) * 8, f"op{i}", i, i + 1) for i in range(5)]
    request = trace_svc.ExportTraceServiceRequest(
        resource_spans=[
            trace_pb2.ResourceSpans(
                resource=resource(f"svc{r}"),
                scope_spans=[trace_pb2.ScopeSpans(spans=spans[r * 2 : r * 2 + 2])],
            )
            for r in range(3)
        ]
    )
    # An unknown field (number 99, a varint) at the end of the last span, as a newer SDK might send.
    extended = spans[4].SerializeToString() + b"\x98\x06\x01"
    parsed = trace_svc.ExportTraceServiceRequest.FromString(
        trace_svc.ExportTraceServiceRequest(
            resource_spans=[
                *request.resource_spans[:2],
                trace_pb2.ResourceSpans(
                    resource=resource("svc2"),
                    scope_spans=[trace_pb2.ScopeSpans(spans=[trace_pb2.Span.FromString(extended)])],
                ),
            ]
        ).SerializeToString()
    )
    received = parsed.SerializeToString()  # upb keeps the unknown field when serializing again
    assert extended in received
    cols = columns.spans(received, parsed)
    assert columns.values(cols.name) == [f"op{i}" for i in range(5)]
    assert cols.service_name == ["svc0", "svc0", "svc1", "svc1", "svc2"]
    assert [d for d in cols.data[:4]] == [s.SerializeToString() for s in spans[:4]]
    assert cols.data[4] == extended


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field, by hand: for wire encodings no SDK writes."""
    head, n = bytearray([number << 3 | 2]), len(payload)
    while n >= 0x80:
        head.append(n & 0x7F | 0x80)
        n >>= 7
    head.append(n)
    return bytes(head) + payload


def test_metric_points_are_cut_from_the_data_field_the_full_parse_keeps() -> None:
    """``data`` is a oneof: sent twice, the last one wins, and the stored points are its points."""
    first = gauge("temp", [number(1, 1.0)])
    last = sum_metric("temp", [number(2, 2.0)], DELTA)
    metric = first.SerializeToString() + metrics_pb2.Metric(sum=last.sum).SerializeToString()
    received = _field(1, _field(2, _field(2, metric)))  # resource_metrics > scope_metrics > metrics
    request = metrics_svc.ExportMetricsServiceRequest.FromString(received)
    assert request.resource_metrics[0].scope_metrics[0].metrics[0].WhichOneof("data") == "sum"
    cols = columns.metrics(received, request)
    assert cols.type == ["sum"]
    assert [d for d in cols.data] == [last.sum.data_points[0].SerializeToString()]
