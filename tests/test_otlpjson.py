"""OTLP/JSON: protobuf JSON with hex ids and integer enums (opentelemetry-proto, "JSON Protobuf Encoding")."""

from __future__ import annotations

import json
from typing import Any

import pytest
from google.protobuf import json_format
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2 as logs_svc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2 as metrics_svc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as trace_svc
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.logs.v1 import logs_pb2
from opentelemetry.proto.metrics.v1 import metrics_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from otlpd import otlpjson
from otlpd.errors import InvalidDataError
from otlpd.pdata import Signal
from tests.receivers.otlp.helpers import request

TRACE_ID = bytes.fromhex("5b8efff798038103d269b633813fc60c")
SPAN_ID = bytes.fromhex("eee19b7ec3c1b174")


def _spans(tree: dict[str, Any]) -> list[dict[str, Any]]:
    return list(tree["resourceSpans"][0]["scopeSpans"][0]["spans"])


def _parse_traces(tree: dict[str, Any] | str | bytes) -> trace_svc.ExportTraceServiceRequest:
    message = trace_svc.ExportTraceServiceRequest()
    otlpjson.parse(json.dumps(tree) if isinstance(tree, dict) else tree, message)
    return message


def _one_span(**fields: Any) -> dict[str, Any]:
    return {"resourceSpans": [{"scopeSpans": [{"spans": [fields]}]}]}


# --------------------------------------------------------------------------- output


@pytest.mark.parametrize("signal", list(Signal), ids=lambda s: s.value)
def test_round_trip_for_every_signal(signal: Signal) -> None:
    sent = request(signal, "round-trip")
    back = signal.request_type()
    otlpjson.parse(otlpjson.dumps(sent), back)
    assert back == sent


def test_ids_are_lower_case_hex_not_base64() -> None:
    message = trace_svc.ExportTraceServiceRequest()
    span = (
        message.resource_spans.add()
        .scope_spans.add()
        .spans.add(trace_id=TRACE_ID, span_id=SPAN_ID, parent_span_id=b"\xab" * 8, name="s")
    )
    span.links.add(trace_id=b"\x01" * 16, span_id=b"\x02" * 8)
    out = _spans(otlpjson.to_dict(message))[0]
    assert out["traceId"] == "5b8efff798038103d269b633813fc60c"
    assert out["spanId"] == "eee19b7ec3c1b174"
    assert out["parentSpanId"] == "ab" * 8
    assert out["links"] == [{"traceId": "01" * 16, "spanId": "02" * 8}]


def test_enums_are_integers_and_keys_lower_camel_case_and_int64_strings() -> None:
    message = trace_svc.ExportTraceServiceRequest()
    message.resource_spans.add().scope_spans.add().spans.add(
        trace_id=TRACE_ID,
        span_id=SPAN_ID,
        kind=trace_pb2.Span.SPAN_KIND_CONSUMER,
        start_time_unix_nano=1544712660000000000,
        status=trace_pb2.Status(code=trace_pb2.Status.STATUS_CODE_OK),
    )
    out = _spans(otlpjson.to_dict(message))[0]
    assert out["kind"] == 5
    assert out["status"] == {"code": 1}
    assert out["startTimeUnixNano"] == "1544712660000000000"
    assert "start_time_unix_nano" not in out


def test_log_and_exemplar_ids_are_hex() -> None:
    logs = logs_svc.ExportLogsServiceRequest()
    logs.resource_logs.add().scope_logs.add().log_records.add(
        trace_id=TRACE_ID, span_id=SPAN_ID, severity_number=logs_pb2.SEVERITY_NUMBER_WARN
    )
    record = otlpjson.to_dict(logs)["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]
    assert (record["traceId"], record["spanId"], record["severityNumber"]) == (
        TRACE_ID.hex(),
        SPAN_ID.hex(),
        13,
    )

    metrics = metrics_svc.ExportMetricsServiceRequest()
    point = (
        metrics.resource_metrics.add()
        .scope_metrics.add()
        .metrics.add(name="m")
        .gauge.data_points.add(as_int=1)
    )
    point.exemplars.add(trace_id=TRACE_ID, span_id=SPAN_ID, as_double=0.5)
    tree = otlpjson.to_dict(metrics)
    exemplar = tree["resourceMetrics"][0]["scopeMetrics"][0]["metrics"][0]["gauge"]["dataPoints"][0][
        "exemplars"
    ][0]
    assert (exemplar["traceId"], exemplar["spanId"]) == (TRACE_ID.hex(), SPAN_ID.hex())
    back = metrics_svc.ExportMetricsServiceRequest()
    otlpjson.parse(otlpjson.dumps(metrics), back)
    assert back == metrics


def test_bytes_attribute_values_stay_base64() -> None:
    """Only ids are hex; an AnyValue bytesValue is ordinary protobuf JSON (base64)."""
    message = trace_svc.ExportTraceServiceRequest()
    message.resource_spans.add().resource.attributes.add(
        key="traceId", value=common_pb2.AnyValue(bytes_value=b"\x00\xff")
    )
    tree = otlpjson.to_dict(message)
    assert tree["resourceSpans"][0]["resource"]["attributes"][0]["value"] == {"bytesValue": "AP8="}
    assert _parse_traces(tree) == message


def test_dumps_is_compact_json() -> None:
    data = otlpjson.dumps(trace_svc.ExportTraceServiceResponse())
    assert data == b"{}"
    response = trace_svc.ExportTraceServiceResponse()
    response.partial_success.rejected_spans = 2
    response.partial_success.error_message = "bad ids"
    assert json.loads(otlpjson.dumps(response)) == {
        "partialSuccess": {"rejectedSpans": "2", "errorMessage": "bad ids"}
    }


def test_google_rpc_status_with_retry_info() -> None:
    status = status_pb2.Status(code=14, message="later")
    status.details.add().Pack(error_details_pb2.RetryInfo(retry_delay={"seconds": 1, "nanos": 500_000_000}))
    tree = json.loads(otlpjson.dumps(status))
    assert tree["code"] == 14
    assert tree["details"][0]["retryDelay"] == "1.500s"
    assert json_format.ParseDict(tree, status_pb2.Status()) == status


# --------------------------------------------------------------------------- input


@pytest.mark.parametrize(
    ("trace_id", "span_id"),
    [
        ("5B8EFFF798038103D269B633813FC60C", "EEE19B7EC3C1B174"),
        ("5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174"),
        ("5b8EFFF798038103d269b633813fC60c", "eEe19B7ec3c1b174"),
    ],
)
def test_hex_ids_are_case_insensitive(trace_id: str, span_id: str) -> None:
    span = (
        _parse_traces(_one_span(traceId=trace_id, spanId=span_id)).resource_spans[0].scope_spans[0].spans[0]
    )
    assert (span.trace_id, span.span_id) == (TRACE_ID, SPAN_ID)


def test_proto_field_names_are_accepted_too() -> None:
    tree = {
        "resource_spans": [
            {"scope_spans": [{"spans": [{"trace_id": TRACE_ID.hex(), "span_id": SPAN_ID.hex()}]}]}
        ]
    }
    span = _parse_traces(tree).resource_spans[0].scope_spans[0].spans[0]
    assert (span.trace_id, span.span_id) == (TRACE_ID, SPAN_ID)


def test_enums_as_integers_or_names() -> None:
    by_int = _parse_traces(_one_span(kind=3, status={"code": 2}))
    by_name = _parse_traces(_one_span(kind="SPAN_KIND_CLIENT", status={"code": "STATUS_CODE_ERROR"}))
    assert by_int == by_name
    span = by_int.resource_spans[0].scope_spans[0].spans[0]
    assert span.kind == trace_pb2.Span.SPAN_KIND_CLIENT
    assert span.status.code == trace_pb2.Status.STATUS_CODE_ERROR


def test_int64_as_string_or_number_keeps_full_precision() -> None:
    big = 2**63 - 1
    by_str = _parse_traces(_one_span(startTimeUnixNano=str(big), endTimeUnixNano="1")).resource_spans[0]
    by_num = _parse_traces(_one_span(startTimeUnixNano=big, endTimeUnixNano=1)).resource_spans[0]
    assert by_str == by_num
    assert by_str.scope_spans[0].spans[0].start_time_unix_nano == big


def test_unknown_fields_are_ignored_at_every_level() -> None:
    tree = {
        "resourceSpans": [
            {
                "resource": {"attributes": [], "newField": 1},
                "scopeSpans": [{"spans": [{"name": "x", "futureThing": {"a": [1, {"b": 2}]}}], "zzz": None}],
                "extra": "yes",
            }
        ],
        "topLevelUnknown": [1, 2, 3],
    }
    message = _parse_traces(tree)
    assert message.resource_spans[0].scope_spans[0].spans[0].name == "x"


def test_empty_object_is_an_empty_request() -> None:
    assert _parse_traces("{}") == trace_svc.ExportTraceServiceRequest()


def test_empty_id_strings_are_empty_bytes() -> None:
    span = _parse_traces(_one_span(traceId="", spanId="")).resource_spans[0].scope_spans[0].spans[0]
    assert (span.trace_id, span.span_id) == (b"", b"")


def test_metric_points_of_every_type_parse() -> None:
    tree = {
        "resourceMetrics": [
            {
                "scopeMetrics": [
                    {
                        "metrics": [
                            {"name": "g", "gauge": {"dataPoints": [{"asDouble": "NaN"}, {"asInt": "-3"}]}},
                            {
                                "name": "h",
                                "histogram": {
                                    "aggregationTemporality": 2,
                                    "dataPoints": [
                                        {"count": "3", "bucketCounts": ["1", "2"], "explicitBounds": [1.0]}
                                    ],
                                },
                            },
                            {
                                "name": "e",
                                "exponentialHistogram": {
                                    "dataPoints": [
                                        {"scale": -1, "positive": {"offset": 2, "bucketCounts": ["4"]}}
                                    ]
                                },
                            },
                            {
                                "name": "s",
                                "summary": {"dataPoints": [{"quantileValues": [{"quantile": 0.9}]}]},
                            },
                        ]
                    }
                ]
            }
        ]
    }
    message = metrics_svc.ExportMetricsServiceRequest()
    otlpjson.parse(json.dumps(tree), message)
    metrics = message.resource_metrics[0].scope_metrics[0].metrics
    assert metrics[0].gauge.data_points[1].as_int == -3
    assert metrics[0].gauge.data_points[0].as_double != metrics[0].gauge.data_points[0].as_double  # NaN
    assert list(metrics[1].histogram.data_points[0].bucket_counts) == [1, 2]
    assert metrics[1].histogram.aggregation_temporality == metrics_pb2.AGGREGATION_TEMPORALITY_CUMULATIVE
    assert metrics[2].exponential_histogram.data_points[0].positive.offset == 2
    assert metrics[3].summary.data_points[0].quantile_values[0].quantile == 0.9


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{",
        b"null",
        b"[]",
        b'"string"',
        b"\xff\xfe\x00",
        b'{"resourceSpans": 5}',
        b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"name": 5}]}]}]}',
        b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"startTimeUnixNano": "soon"}]}]}]}',
        b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "not hex"}]}]}]}',
        b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"spanId": "abc"}]}]}]}',  # odd length
        b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": 12345}]}]}]}',
        b'{"a":' * 100_000 + b"1" + b"}" * 100_000,  # nested too deeply for the JSON parser
        b"[" * 100_000 + b"]" * 100_000,
    ],
    ids=lambda b: b[:40].decode(errors="replace"),
)
def test_bad_input_is_invalid_data(body: bytes) -> None:
    with pytest.raises(InvalidDataError) as err:
        otlpjson.parse(body, trace_svc.ExportTraceServiceRequest())
    assert err.value.message


def test_unknown_enum_name_is_ignored_like_an_unknown_field() -> None:
    message = _parse_traces(_one_span(kind="SPAN_KIND_FUTURE", name="x"))
    span = message.resource_spans[0].scope_spans[0].spans[0]
    assert (span.name, span.kind) == ("x", trace_pb2.Span.SPAN_KIND_UNSPECIFIED)
