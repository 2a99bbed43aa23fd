"""pdata: payloads as bytes, item counting, concatenation (batching) and splitting."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2 as metrics_svc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as trace_svc
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.metrics.v1 import metrics_pb2

from otlpd.errors import InvalidDataError
from otlpd.pdata import Payload, Signal, concat, count_items, decode, split
from tests.receivers.otlp.helpers import all_metric_types, log_record, logs, metrics, span, traces


def _marker(resource_x: Any) -> str:
    return next(kv.value.string_value for kv in resource_x.resource.attributes if kv.key == "test.marker")


# --------------------------------------------------------------------------- basics


def test_signal_properties() -> None:
    assert Signal.TRACES.request_type is trace_svc.ExportTraceServiceRequest
    assert Signal.METRICS.response_type is metrics_svc.ExportMetricsServiceResponse
    assert Signal.LOGS.grpc_service == "opentelemetry.proto.collector.logs.v1.LogsService"
    assert [s.item_name for s in Signal] == ["spans", "data_points", "log_records"]
    # item_name is the partial-success field of each response
    for s in Signal:
        assert hasattr(s.response_type().partial_success, f"rejected_{s.item_name}")


def test_count_items_per_signal() -> None:
    assert count_items(Signal.TRACES, traces("a", [span(i) for i in range(7)])) == 7
    assert count_items(Signal.LOGS, logs("a", [log_record(i) for i in range(4)])) == 4
    assert count_items(Signal.METRICS, metrics("a")) == 6
    assert count_items(Signal.TRACES, trace_svc.ExportTraceServiceRequest()) == 0


@pytest.mark.parametrize(
    ("kind", "points"),
    [("gauge", 2), ("sum", 1), ("histogram", 1), ("exponential_histogram", 1), ("summary", 1)],
)
def test_count_items_counts_data_points_of_every_metric_type(kind: str, points: int) -> None:
    metric = next(m for m in all_metric_types() if m.WhichOneof("data") == kind)
    assert count_items(Signal.METRICS, metrics("a", [metric])) == points
    metric_x3 = metrics_pb2.Metric()
    metric_x3.CopyFrom(metric)
    getattr(metric_x3, kind).data_points.extend(list(getattr(metric, kind).data_points) * 2)
    assert count_items(Signal.METRICS, metrics("a", [metric_x3])) == 3 * points


def test_metric_without_data_counts_zero() -> None:
    assert count_items(Signal.METRICS, metrics("a", [metrics_pb2.Metric(name="empty")])) == 0


def test_decode_and_invalid_bytes() -> None:
    sent = traces("a")
    assert decode(Signal.TRACES, sent.SerializeToString()) == sent
    with pytest.raises(InvalidDataError, match="malformed traces request"):
        decode(Signal.TRACES, b"\xff\xff\xff")


def test_payload_decodes_lazily_and_releases() -> None:
    sent = logs("a")
    payload = Payload(Signal.LOGS, sent.SerializeToString(), 3)
    assert len(payload.data) == sent.ByteSize()
    assert payload.message == sent
    payload.release()
    assert payload.message == sent  # decoded again on demand
    assert repr(payload) == f"Payload(logs, 3 items, {sent.ByteSize()} bytes)"
    from_message = Payload.from_message(Signal.LOGS, sent)
    assert (from_message.data, from_message.items) == (sent.SerializeToString(), 3)


# --------------------------------------------------------------------------- concat


def test_concat_is_a_protobuf_merge() -> None:
    a, b, c = traces("a", [span(0)]), traces("b", [span(1), span(2)]), traces("c", [span(3)])
    merged = concat([Payload.from_message(Signal.TRACES, m) for m in (a, b, c)])
    assert merged.items == 4
    assert merged.signal is Signal.TRACES
    assert [_marker(rs) for rs in merged.message.resource_spans] == ["a", "b", "c"]
    expected = trace_svc.ExportTraceServiceRequest()
    for m in (a, b, c):
        expected.MergeFrom(m)
    assert merged.message == expected
    assert merged.data == a.SerializeToString() + b.SerializeToString() + c.SerializeToString()


def test_concat_of_one_is_the_same_payload() -> None:
    p = Payload.from_message(Signal.LOGS, logs("a"))
    assert concat([p]) is p


def test_concat_metrics_keeps_every_point() -> None:
    parts = [Payload.from_message(Signal.METRICS, metrics(str(i))) for i in range(3)]
    merged = concat(parts)
    assert merged.items == 18
    assert count_items(Signal.METRICS, merged.message) == 18


# --------------------------------------------------------------------------- split


def _big_traces() -> trace_svc.ExportTraceServiceRequest:
    """2 resources; the first with 2 scopes. 4 + 3 + 3 = 10 spans."""
    message = traces("r1", [span(i) for i in range(4)])
    scope = message.resource_spans[0].scope_spans.add(
        scope=common_pb2.InstrumentationScope(name="second", version="9"), schema_url="https://scope.example"
    )
    scope.spans.extend([span(i) for i in range(4, 7)])
    message.resource_spans.extend(traces("r2", [span(i) for i in range(7, 10)]).resource_spans)
    return message


def _flatten_spans(message: trace_svc.ExportTraceServiceRequest) -> list[tuple[str, str, str, str, str]]:
    return [
        (_marker(rs), rs.schema_url, ss.scope.name, ss.schema_url, s.name)
        for rs in message.resource_spans
        for ss in rs.scope_spans
        for s in ss.spans
    ]


@pytest.mark.parametrize("max_items", [1, 2, 3, 4, 6, 9])
def test_split_traces_keeps_every_span_with_its_resource_and_scope(max_items: int) -> None:
    message = _big_traces()
    payload = Payload.from_message(Signal.TRACES, message)
    pieces = split(payload, max_items)
    assert len(pieces) == -(-10 // max_items)
    for piece in pieces:
        assert piece.signal is Signal.TRACES
        assert 0 < piece.items <= max_items
        assert piece.items == count_items(Signal.TRACES, decode(Signal.TRACES, piece.data))
    assert sum(p.items for p in pieces) == 10
    got = [row for p in pieces for row in _flatten_spans(decode(Signal.TRACES, p.data))]
    assert got == _flatten_spans(message)  # same spans, same order, same resource/scope
    first_resource = decode(Signal.TRACES, pieces[0].data).resource_spans[0].resource
    assert first_resource == message.resource_spans[0].resource


def test_split_is_a_no_op_when_small_enough_or_unlimited() -> None:
    payload = Payload.from_message(Signal.TRACES, _big_traces())
    assert split(payload, 10) == [payload]
    assert split(payload, 100) == [payload]
    assert split(payload, 0) == [payload]


def test_split_then_concat_restores_the_items() -> None:
    message = _big_traces()
    pieces = split(Payload.from_message(Signal.TRACES, message), 3)
    again = concat(pieces)
    assert again.items == 10
    assert _flatten_spans(again.message) == _flatten_spans(message)


def test_split_logs() -> None:
    message = logs("a", [log_record(i) for i in range(5)])
    message.resource_logs.extend(logs("b", [log_record(i) for i in range(5, 8)]).resource_logs)
    pieces = split(Payload.from_message(Signal.LOGS, message), 3)
    assert [p.items for p in pieces] == [3, 3, 2]
    rows = [
        (_marker(rl), r.body.string_value)
        for p in pieces
        for rl in decode(Signal.LOGS, p.data).resource_logs
        for sl in rl.scope_logs
        for r in sl.log_records
    ]
    assert rows == [("a", f"line {i}") for i in range(5)] + [("b", f"line {i}") for i in range(5, 8)]


def _metric_rows(message: metrics_svc.ExportMetricsServiceRequest) -> list[tuple[str, str, str, int]]:
    rows = []
    for rm in message.resource_metrics:
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                kind = m.WhichOneof("data")
                rows.append(
                    (_marker(rm), sm.scope.name, m.name, len(getattr(m, kind).data_points) if kind else 0)
                )
    return rows


@pytest.mark.parametrize("max_items", [1, 2, 3, 5])
def test_split_metrics_of_every_type_keeps_resource_scope_and_point_counts(max_items: int) -> None:
    message = metrics("m1")
    message.resource_metrics.extend(metrics("m2").resource_metrics)  # 12 points, 10 metrics
    pieces = split(Payload.from_message(Signal.METRICS, message), max_items)
    assert sum(p.items for p in pieces) == 12
    decoded = [decode(Signal.METRICS, p.data) for p in pieces]
    for piece, d in zip(pieces, decoded, strict=True):
        assert piece.items == count_items(Signal.METRICS, d)
        # a metric is never cut: a piece is over the limit only when one metric alone is
        rows = _metric_rows(d)
        assert piece.items <= max_items or len(rows) == 1
    assert [row for d in decoded for row in _metric_rows(d)] == _metric_rows(message)
    # every metric arrives whole and unchanged, with its own resource
    got = {
        (_marker(rm), m.name): m
        for d in decoded
        for rm in d.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
    }
    want = {
        (_marker(rm), m.name): m
        for rm in message.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
    }
    assert got == want


def test_split_metrics_one_big_metric_is_not_cut() -> None:
    gauge = metrics_pb2.Metric(
        name="big",
        gauge=metrics_pb2.Gauge(data_points=[metrics_pb2.NumberDataPoint(as_int=i) for i in range(10)]),
    )
    small = metrics_pb2.Metric(
        name="small", sum=metrics_pb2.Sum(data_points=[metrics_pb2.NumberDataPoint(as_int=1)])
    )
    pieces = split(Payload.from_message(Signal.METRICS, metrics("a", [small, gauge, small])), 4)
    assert [p.items for p in pieces] == [1, 10, 1]
    assert [
        m.name
        for p in pieces
        for m in decode(Signal.METRICS, p.data).resource_metrics[0].scope_metrics[0].metrics
    ] == ["small", "big", "small"]
