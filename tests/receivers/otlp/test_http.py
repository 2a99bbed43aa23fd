"""OTLP/HTTP against a running otlpd: status codes, encodings, limits, CORS, metrics."""

from __future__ import annotations

import gzip
import json
import zlib

import pytest
import zstandard
from google.protobuf.message import Message
from google.rpc import code_pb2
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2 as logs_svc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as trace_svc

from otlpd import otlpjson
from otlpd.pdata import Signal
from tests.receivers.otlp.helpers import (
    ITEMS,
    JSON,
    LIMIT,
    PROTOBUF,
    arrived,
    decode_status,
    gzip_bomb,
    http_request,
    log_record,
    logs,
    marker,
    nothing_arrived,
    peak_rss_mb,
    post,
    request,
    span,
    traces,
    zstd_bomb,
)
from tests.support.process import Otlpd
from tests.support.sink import Sink

SIGNALS = list(Signal)


def _requests(otlpd: Otlpd, signal: Signal, status: str) -> float:
    return otlpd.metric("otlp_requests_total", signal=signal.value, transport="http", status=status)


# --------------------------------------------------------------------------- success


@pytest.mark.parametrize("signal", SIGNALS, ids=lambda s: s.value)
def test_protobuf_success_is_empty_response_and_data_arrives(
    otlpd: Otlpd, package_sink: Sink, signal: Signal
) -> None:
    mark = marker()
    sent = request(signal, mark)
    ok_before = _requests(otlpd, signal, "200")
    accepted_before = otlpd.metric(
        "otlpd_receiver_accepted_items_total", signal=signal.value, transport="http"
    )

    resp = post(otlpd.http_port, signal, sent.SerializeToString())

    assert resp.status == 200
    assert resp.content_type == PROTOBUF
    reply = signal.response_type()
    reply.ParseFromString(resp.body)
    assert reply == signal.response_type()  # empty: no partial_success
    assert not reply.HasField("partial_success")
    assert arrived(package_sink, signal, mark) == sent
    assert _requests(otlpd, signal, "200") == ok_before + 1
    accepted = otlpd.metric("otlpd_receiver_accepted_items_total", signal=signal.value, transport="http")
    assert accepted == accepted_before + ITEMS[signal]


@pytest.mark.parametrize("signal", SIGNALS, ids=lambda s: s.value)
def test_json_success_is_empty_json_response_and_data_arrives(
    otlpd: Otlpd, package_sink: Sink, signal: Signal
) -> None:
    mark = marker()
    sent = request(signal, mark)

    resp = post(otlpd.http_port, signal, otlpjson.dumps(sent), JSON)

    assert resp.status == 200
    assert resp.content_type == JSON
    assert json.loads(resp.body) == {}
    assert arrived(package_sink, signal, mark) == sent


def test_content_type_parameters_are_ignored(otlpd: Otlpd, package_sink: Sink) -> None:
    mark = marker()
    sent = traces(mark)
    resp = post(otlpd.http_port, Signal.TRACES, sent.SerializeToString(), "application/x-protobuf; proto=x")
    assert resp.status == 200
    resp = post(otlpd.http_port, Signal.LOGS, b"{}", "application/json; charset=utf-8")
    assert resp.status == 200
    assert resp.content_type == JSON
    assert arrived(package_sink, Signal.TRACES, mark) == sent


def test_empty_request_is_success(otlpd: Otlpd) -> None:
    for signal in SIGNALS:
        resp = post(otlpd.http_port, signal, b"")
        assert resp.status == 200, signal
        assert resp.body == b""
        resp = post(otlpd.http_port, signal, b"{}", JSON)
        assert (resp.status, json.loads(resp.body)) == (200, {})


# --------------------------------------------------------------------------- OTLP/JSON


def _json_traces(mark: str) -> dict[str, object]:
    """Hand-written OTLP/JSON exercising every rule the spec lists."""
    return {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [
                        {"key": "test.marker", "value": {"stringValue": mark}},
                        {"key": "big", "value": {"intValue": "9007199254740993"}},  # > 2^53, as a string
                        {"key": "small", "value": {"intValue": 7}},  # int64 as a JSON number is fine too
                    ],
                    "unknownResourceField": {"nested": [1, 2, 3]},
                },
                "scopeSpans": [
                    {
                        "scope": {"name": "json-test", "version": "2"},
                        "spans": [
                            {
                                "traceId": "5B8EFFF798038103D269B633813FC60C",  # upper-case hex
                                "spanId": "EEE19B7EC3C1B174",
                                "parentSpanId": "eee19b7ec3c1b173",  # lower-case hex
                                "name": "upper",
                                "kind": 2,  # SPAN_KIND_SERVER, as an integer
                                "startTimeUnixNano": "1544712660000000000",
                                "endTimeUnixNano": "1544712661000000000",
                                "status": {"code": 2, "message": "boom"},
                                "links": [
                                    {
                                        "traceId": "0102030405060708090a0b0c0d0e0f10",
                                        "spanId": "0102030405060708",
                                    }
                                ],
                                "someFutureField": True,
                            },
                            {
                                "traceId": "5b8efff798038103d269b633813fc60c",
                                "spanId": "eee19b7ec3c1b175",
                                "name": "lower",
                                "kind": 3,
                                "startTimeUnixNano": 1544712660000000000,
                                "endTimeUnixNano": "1544712661000000000",
                                "droppedAttributesCount": 4,
                            },
                        ],
                    }
                ],
            }
        ],
        "futureTopLevel": "ignored",
    }


def _expected_traces(mark: str) -> trace_svc.ExportTraceServiceRequest:
    from opentelemetry.proto.common.v1 import common_pb2
    from opentelemetry.proto.trace.v1 import trace_pb2

    tid = bytes.fromhex("5b8efff798038103d269b633813fc60c")
    msg = trace_svc.ExportTraceServiceRequest()
    rs = msg.resource_spans.add()
    for key, value in (("test.marker", {"string_value": mark}), ("big", {"int_value": 9007199254740993})):
        rs.resource.attributes.add(key=key, value=common_pb2.AnyValue(**value))
    rs.resource.attributes.add(key="small", value=common_pb2.AnyValue(int_value=7))
    ss = rs.scope_spans.add(scope=common_pb2.InstrumentationScope(name="json-test", version="2"))
    ss.spans.add(
        trace_id=tid,
        span_id=bytes.fromhex("eee19b7ec3c1b174"),
        parent_span_id=bytes.fromhex("eee19b7ec3c1b173"),
        name="upper",
        kind=trace_pb2.Span.SPAN_KIND_SERVER,
        start_time_unix_nano=1544712660000000000,
        end_time_unix_nano=1544712661000000000,
        status=trace_pb2.Status(code=trace_pb2.Status.STATUS_CODE_ERROR, message="boom"),
        links=[
            trace_pb2.Span.Link(
                trace_id=bytes(range(1, 17)),
                span_id=bytes(range(1, 9)),
            )
        ],
    )
    ss.spans.add(
        trace_id=tid,
        span_id=bytes.fromhex("eee19b7ec3c1b175"),
        name="lower",
        kind=trace_pb2.Span.SPAN_KIND_CLIENT,
        start_time_unix_nano=1544712660000000000,
        end_time_unix_nano=1544712661000000000,
        dropped_attributes_count=4,
    )
    return msg


def test_json_rules_hex_ids_int_enums_camel_case_int64_strings_unknown_fields(
    otlpd: Otlpd, package_sink: Sink
) -> None:
    mark = marker()
    resp = post(otlpd.http_port, Signal.TRACES, json.dumps(_json_traces(mark)).encode(), JSON)
    assert resp.status == 200, resp.body
    assert json.loads(resp.body) == {}
    assert arrived(package_sink, Signal.TRACES, mark) == _expected_traces(mark)


def test_json_logs_and_metrics_enums_as_integers(otlpd: Otlpd, package_sink: Sink) -> None:
    mark = marker()
    body = {
        "resourceLogs": [
            {
                "resource": {"attributes": [{"key": "test.marker", "value": {"stringValue": mark}}]},
                "scopeLogs": [
                    {
                        "logRecords": [
                            {
                                "timeUnixNano": "1700000000000000001",
                                "severityNumber": 17,
                                "severityText": "ERROR",
                                "body": {"stringValue": "disk full"},
                                "traceId": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                                "spanId": "bbbbbbbbbbbbbbbb",
                                "flags": 1,
                            }
                        ]
                    }
                ],
            }
        ]
    }
    resp = post(otlpd.http_port, Signal.LOGS, json.dumps(body).encode(), JSON)
    assert resp.status == 200, resp.body
    got = arrived(package_sink, Signal.LOGS, mark)
    record = got.resource_logs[0].scope_logs[0].log_records[0]
    assert record.severity_number == 17
    assert record.time_unix_nano == 1700000000000000001
    assert record.trace_id == b"\xaa" * 16
    assert record.span_id == b"\xbb" * 8
    assert record.body.string_value == "disk full"
    assert record.flags == 1

    mark = marker()
    body = {
        "resourceMetrics": [
            {
                "resource": {"attributes": [{"key": "test.marker", "value": {"stringValue": mark}}]},
                "scopeMetrics": [
                    {
                        "metrics": [
                            {
                                "name": "requests",
                                "sum": {
                                    "aggregationTemporality": 1,
                                    "isMonotonic": True,
                                    "dataPoints": [
                                        {"asInt": "18446744", "timeUnixNano": "1700000000000000000"},
                                        {"asDouble": 2.5, "timeUnixNano": "1700000000000000000"},
                                    ],
                                },
                            }
                        ]
                    }
                ],
            }
        ]
    }
    resp = post(otlpd.http_port, Signal.METRICS, json.dumps(body).encode(), JSON)
    assert resp.status == 200, resp.body
    metric = arrived(package_sink, Signal.METRICS, mark).resource_metrics[0].scope_metrics[0].metrics[0]
    assert metric.sum.aggregation_temporality == 1  # DELTA
    assert metric.sum.is_monotonic
    assert [p.WhichOneof("value") for p in metric.sum.data_points] == ["as_int", "as_double"]
    assert metric.sum.data_points[0].as_int == 18446744
    assert metric.sum.data_points[1].as_double == 2.5


# --------------------------------------------------------------------------- compression


def _deflate_raw(data: bytes) -> bytes:
    c = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    return c.compress(data) + c.flush()


COMPRESSORS = {
    "gzip": ("gzip", gzip.compress),
    "gzip-multi-member": ("gzip", None),  # built in the test: two gzip members back to back
    "zstd": ("zstd", lambda d: zstandard.ZstdCompressor().compress(d)),
    "deflate-zlib": ("deflate", zlib.compress),
    "deflate-raw": ("deflate", _deflate_raw),
    "zlib": ("zlib", zlib.compress),
    "identity": ("identity", lambda d: d),
    "GZIP-upper": ("GZIP", gzip.compress),
}


@pytest.mark.parametrize("name", list(COMPRESSORS))
def test_content_encodings_are_accepted(otlpd: Otlpd, package_sink: Sink, name: str) -> None:
    encoding, compress = COMPRESSORS[name]
    mark = marker()
    sent = traces(mark)
    raw = sent.SerializeToString()
    if compress is None:  # concatenated requests are a protobuf merge
        a, b = traces(mark, [span(0)]), traces(mark, [span(1), span(2)])
        body = gzip.compress(a.SerializeToString()) + gzip.compress(b.SerializeToString())
        sent = trace_svc.ExportTraceServiceRequest()
        sent.MergeFrom(a)
        sent.MergeFrom(b)
    else:
        body = compress(raw)
    resp = post(otlpd.http_port, Signal.TRACES, body, PROTOBUF, Content_Encoding=encoding)
    assert resp.status == 200, resp.body
    assert arrived(package_sink, Signal.TRACES, mark) == sent


def test_json_body_can_be_compressed(otlpd: Otlpd, package_sink: Sink) -> None:
    mark = marker()
    sent = logs(mark)
    resp = post(
        otlpd.http_port, Signal.LOGS, gzip.compress(otlpjson.dumps(sent)), JSON, Content_Encoding="gzip"
    )
    assert resp.status == 200
    assert json.loads(resp.body) == {}
    assert arrived(package_sink, Signal.LOGS, mark) == sent


@pytest.mark.parametrize("encoding", ["br", "compress", "snappy"])
def test_unknown_content_encoding_is_415(otlpd: Otlpd, package_sink: Sink, encoding: str) -> None:
    before = _requests(otlpd, Signal.TRACES, "415")
    mark = marker()
    resp = post(otlpd.http_port, Signal.TRACES, traces(mark).SerializeToString(), Content_Encoding=encoding)
    assert resp.status == 415
    assert encoding in resp.body.decode()
    assert _requests(otlpd, Signal.TRACES, "415") == before + 1
    assert nothing_arrived(package_sink, Signal.TRACES, mark, settle=0.1)


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/octet-stream", "application/protobuf", "application/xml", None],
)
def test_unsupported_content_type_is_415(otlpd: Otlpd, content_type: str | None) -> None:
    headers = {} if content_type is None else {"Content-Type": content_type}
    before = _requests(otlpd, Signal.TRACES, "415")
    resp = http_request(otlpd.http_port, "/v1/traces", b"\x0a\x00", headers)
    assert resp.status == 415
    assert _requests(otlpd, Signal.TRACES, "415") == before + 1
    assert "application/x-protobuf" in resp.body.decode()
    assert "application/json" in resp.body.decode()


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
@pytest.mark.parametrize("path", ["/v1/traces", "/v1/metrics", "/v1/logs"])
def test_wrong_method_is_405_with_allow_header(otlpd: Otlpd, method: str, path: str) -> None:
    resp = http_request(otlpd.http_port, path, b"", {"Content-Type": PROTOBUF}, method=method)
    assert resp.status == 405
    assert resp.headers["Allow"] == "POST"


@pytest.mark.parametrize("path", ["/", "/v1/trace", "/v1/traces/", "/v2/traces", "/v1/spans", "/metrics"])
def test_unknown_path_is_404(otlpd: Otlpd, path: str) -> None:
    resp = http_request(otlpd.http_port, path, b"", {"Content-Type": PROTOBUF})
    assert resp.status == 404


# --------------------------------------------------------------------------- bad data


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        (PROTOBUF, b"\xff\xff\xff\xff"),  # invalid tag
        (PROTOBUF, b"\x0a\x05\x0a"),  # length runs past the end
        (JSON, b"{not json"),
        (JSON, b"[]"),  # not an object
        (JSON, b'{"resourceSpans": {"oops": 1}}'),  # wrong type
        (JSON, b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz"}]}]}]}'),  # not hex
        (JSON, b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"kind": "notakind", "name": 5}]}]}]}'),
        (JSON, b"\xff\xfe\xfa"),  # not UTF-8
        (JSON, b'{"a":' * 50_000 + b"1" + b"}" * 50_000),  # too deep for the parser: still the client's fault
    ],
    ids=[
        "pb-tag",
        "pb-truncated",
        "json-syntax",
        "json-array",
        "json-type",
        "json-hex",
        "json-scalar",
        "utf8",
        "json-deep",
    ],
)
def test_malformed_body_is_400_with_status_in_request_encoding(
    otlpd: Otlpd, content_type: str, body: bytes
) -> None:
    before = _requests(otlpd, Signal.TRACES, "400")
    refused_before = otlpd.metric("otlpd_receiver_refused_items_total", signal="traces", transport="http")
    resp = post(otlpd.http_port, Signal.TRACES, body, content_type)
    assert resp.status == 400
    assert resp.content_type == content_type
    status = decode_status(resp.body, content_type)
    assert status.code == code_pb2.INVALID_ARGUMENT == 3
    assert status.message
    assert _requests(otlpd, Signal.TRACES, "400") == before + 1
    # nothing was decoded, so no items are counted as refused
    assert (
        otlpd.metric("otlpd_receiver_refused_items_total", signal="traces", transport="http")
        == refused_before
    )


def test_invalid_compressed_body_is_400(otlpd: Otlpd) -> None:
    good = gzip.compress(traces(marker()).SerializeToString())
    for encoding, body in (
        ("gzip", good[: len(good) // 2]),  # truncated
        ("gzip", b"definitely not gzip"),
        ("deflate", b"\x00\x01\x02 not deflate"),
        ("zstd", b"not zstd at all"),
    ):
        resp = post(otlpd.http_port, Signal.TRACES, body, Content_Encoding=encoding)
        assert resp.status == 400, (encoding, body)
        status = decode_status(resp.body, PROTOBUF)
        assert status.code == 3
        assert status.message


def test_truncated_zstd_body_is_400_not_silently_accepted(otlpd: Otlpd, package_sink: Sink) -> None:
    mark = marker()
    body = zstandard.ZstdCompressor().compress(traces(mark).SerializeToString())
    resp = post(otlpd.http_port, Signal.TRACES, body[: len(body) // 2], Content_Encoding="zstd")
    assert resp.status == 400
    assert decode_status(resp.body, PROTOBUF).code == 3
    assert nothing_arrived(package_sink, Signal.TRACES, mark, settle=0.1)


# --------------------------------------------------------------------------- size limits


def test_body_over_limit_is_413(otlpd: Otlpd) -> None:
    before = _requests(otlpd, Signal.TRACES, "413")
    for content_type in (PROTOBUF, JSON):
        resp = post(otlpd.http_port, Signal.TRACES, b"\x00" * (LIMIT + 1), content_type)
        assert resp.status == 413
        assert resp.content_type == content_type
        status = decode_status(resp.body, content_type)
        assert status.code == 8  # RESOURCE_EXHAUSTED
        assert str(LIMIT) in status.message
    assert _requests(otlpd, Signal.TRACES, "413") == before + 2


def test_chunked_body_over_limit_is_413(otlpd: Otlpd) -> None:
    """No Content-Length: the limit is enforced while reading."""
    resp = http_request(
        otlpd.http_port, "/v1/logs", b"\x00" * (LIMIT + 100_000), {"Content-Type": PROTOBUF}, chunked=True
    )
    assert resp.status == 413


def test_chunked_body_under_limit_is_accepted(otlpd: Otlpd, package_sink: Sink) -> None:
    mark = marker()
    sent = logs(mark, [log_record(i) for i in range(2000)])
    assert 64 * 1024 < sent.ByteSize() < LIMIT
    resp = http_request(
        otlpd.http_port, "/v1/logs", sent.SerializeToString(), {"Content-Type": PROTOBUF}, chunked=True
    )
    assert resp.status == 200
    assert arrived(package_sink, Signal.LOGS, mark) == sent


def test_gzip_bomb_is_413_and_memory_stays_bounded(otlpd: Otlpd) -> None:
    bomb = gzip_bomb(1 << 30)  # 1 GiB of zeros in ~1 MB
    assert len(bomb) < LIMIT  # only the inflated size is over the limit
    resp = post(otlpd.http_port, Signal.TRACES, bomb, Content_Encoding="gzip")
    assert resp.status == 413
    status = decode_status(resp.body, PROTOBUF)
    assert status.code == 8
    assert "after decompression" in status.message
    assert otlpd.proc is not None
    assert peak_rss_mb(otlpd.proc.pid) < 300


def test_zstd_and_deflate_bombs_are_413(otlpd: Otlpd) -> None:
    bomb = zstd_bomb(256 << 20)
    assert len(bomb) < LIMIT
    resp = post(otlpd.http_port, Signal.METRICS, bomb, JSON, Content_Encoding="zstd")
    assert resp.status == 413
    assert decode_status(resp.body, JSON).code == 8
    deflated = zlib.compress(bytes(64 << 20), 9)
    assert len(deflated) < LIMIT
    resp = post(otlpd.http_port, Signal.LOGS, deflated, Content_Encoding="deflate")
    assert resp.status == 413
    assert otlpd.proc is not None
    assert peak_rss_mb(otlpd.proc.pid) < 300


def test_decompressed_exactly_at_limit_is_not_413(otlpd: Otlpd) -> None:
    # LIMIT zero bytes are not a valid request, but they are within the limit: 400, not 413
    resp = post(otlpd.http_port, Signal.TRACES, gzip.compress(bytes(LIMIT)), Content_Encoding="gzip")
    assert resp.status == 400


# --------------------------------------------------------------------------- partial success


def _bad_spans() -> list[Message]:
    return [
        span(10, trace_id=b"\x01" * 15),  # short trace id
        span(11, trace_id=bytes(16)),  # all-zero trace id
        span(12, span_id=b"\x02" * 9),  # long span id
        span(13, span_id=bytes(8)),  # all-zero span id
        span(14, parent_span_id=b"\x03" * 4),  # bad parent id
    ]


@pytest.mark.parametrize("content_type", [PROTOBUF, JSON])
def test_spans_with_invalid_ids_are_rejected_as_partial_success(
    otlpd: Otlpd, package_sink: Sink, content_type: str
) -> None:
    mark = marker()
    good = [span(0), span(1, parent_span_id=b"\x09" * 8)]
    sent = traces(mark, [good[0], *_bad_spans(), good[1]])
    body = sent.SerializeToString() if content_type == PROTOBUF else otlpjson.dumps(sent)
    invalid_before = otlpd.metric(
        "otlpd_receiver_refused_items_total", signal="traces", transport="http", reason="invalid"
    )

    resp = post(otlpd.http_port, Signal.TRACES, body, content_type)

    assert resp.status == 200
    assert resp.content_type == content_type
    reply = trace_svc.ExportTraceServiceResponse()
    if content_type == JSON:
        tree = json.loads(resp.body)
        assert int(tree["partialSuccess"]["rejectedSpans"]) == 5
        assert tree["partialSuccess"]["errorMessage"]
        otlpjson.parse(resp.body, reply)
    else:
        reply.ParseFromString(resp.body)
    assert reply.partial_success.rejected_spans == 5
    assert "trace_id" in reply.partial_success.error_message
    assert arrived(package_sink, Signal.TRACES, mark) == traces(mark, good)
    refused = otlpd.metric(
        "otlpd_receiver_refused_items_total", signal="traces", transport="http", reason="invalid"
    )
    assert refused == invalid_before + 5


@pytest.mark.parametrize("content_type", [PROTOBUF, JSON])
def test_log_records_with_wrong_length_ids_are_rejected_as_partial_success(
    otlpd: Otlpd, package_sink: Sink, content_type: str
) -> None:
    mark = marker()
    good = [
        log_record(0),  # no trace context at all: valid
        log_record(1, trace_id=b"\x01" * 16, span_id=b"\x02" * 8),
    ]
    bad = [
        log_record(2, trace_id=b"\x01" * 8),
        log_record(3, span_id=b"\x02" * 16),
        log_record(4, trace_id=b"\x01" * 17, span_id=b"\x02" * 8),
    ]
    sent = logs(mark, [bad[0], good[0], bad[1], good[1], bad[2]])
    body = sent.SerializeToString() if content_type == PROTOBUF else otlpjson.dumps(sent)

    resp = post(otlpd.http_port, Signal.LOGS, body, content_type)

    assert resp.status == 200
    reply = logs_svc.ExportLogsServiceResponse()
    if content_type == JSON:
        otlpjson.parse(resp.body, reply)
    else:
        reply.ParseFromString(resp.body)
    assert reply.partial_success.rejected_log_records == 3
    assert reply.partial_success.error_message
    assert arrived(package_sink, Signal.LOGS, mark) == logs(mark, good)


def test_all_items_invalid_is_partial_success_and_nothing_is_sent(otlpd: Otlpd, package_sink: Sink) -> None:
    mark = marker()
    resp = post(otlpd.http_port, Signal.TRACES, traces(mark, _bad_spans()[:2]).SerializeToString())
    assert resp.status == 200
    reply = trace_svc.ExportTraceServiceResponse.FromString(resp.body)
    assert reply.partial_success.rejected_spans == 2
    assert nothing_arrived(package_sink, Signal.TRACES, mark)


# --------------------------------------------------------------------------- CORS


def _options(otlpd: Otlpd, origin: str, request_headers: str = "content-type") -> tuple[int, dict[str, str]]:
    resp = http_request(
        otlpd.http_port,
        "/v1/traces",
        None,
        {
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": request_headers,
        },
        method="OPTIONS",
    )
    return resp.status, {k.lower(): v for k, v in resp.headers.items()}


@pytest.mark.parametrize("origin", ["https://app.example.com", "https://eu.trusted.example"])
def test_cors_preflight_from_allowed_origin(otlpd: Otlpd, origin: str) -> None:
    status, headers = _options(otlpd, origin, "Content-Type, Content-Encoding")
    assert status in (200, 204)
    assert headers["access-control-allow-origin"] == origin
    assert "POST" in headers["access-control-allow-methods"]
    assert "content-type" in headers["access-control-allow-headers"].lower()
    assert headers["access-control-max-age"] == "600"


@pytest.mark.parametrize(
    "origin", ["https://evil.example.com", "http://app.example.com", "https://trusted.example"]
)
def test_cors_preflight_from_other_origin_gets_no_allow_origin(otlpd: Otlpd, origin: str) -> None:
    status, headers = _options(otlpd, origin)
    assert status < 500
    assert "access-control-allow-origin" not in headers
    assert "access-control-allow-methods" not in headers


def test_cors_preflight_with_unlisted_request_header_is_not_allowed(otlpd: Otlpd) -> None:
    _, headers = _options(otlpd, "https://app.example.com", "content-type, x-secret-token")
    assert "access-control-allow-methods" not in headers


def test_cors_actual_post_carries_allow_origin(otlpd: Otlpd, package_sink: Sink) -> None:
    mark = marker()
    sent = traces(mark)
    resp = post(otlpd.http_port, Signal.TRACES, sent.SerializeToString(), Origin="https://app.example.com")
    assert resp.status == 200
    assert resp.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert arrived(package_sink, Signal.TRACES, mark) == sent
    # errors carry it too, so a browser can read them
    resp = post(otlpd.http_port, Signal.TRACES, b"\xff", Origin="https://app.example.com")
    assert resp.status == 400
    assert resp.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    resp = post(otlpd.http_port, Signal.TRACES, sent.SerializeToString(), Origin="https://evil.example.com")
    assert resp.status == 200
    assert resp.headers["Access-Control-Allow-Origin"] is None


# --------------------------------------------------------------------------- SDK client


def test_sdk_http_exporters_with_gzip(otlpd: Otlpd, package_sink: Sink) -> None:
    """The OpenTelemetry SDK's OTLP/HTTP log exporter, gzip-compressed, through otlpd."""
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
    from opentelemetry.sdk.resources import Resource

    mark = marker()
    provider = LoggerProvider(resource=Resource.create({"test.marker": mark}))
    provider.add_log_record_processor(
        SimpleLogRecordProcessor(
            OTLPLogExporter(endpoint=f"{otlpd.http_endpoint}/v1/logs", compression=Compression.Gzip)
        )
    )
    logger = provider.get_logger("sdk-test")
    for i in range(3):
        logger.emit(body=f"hello {i}")
    provider.shutdown()
    got = arrived(package_sink, Signal.LOGS, mark, items=3)
    bodies = sorted(
        r.body.string_value for rl in got.resource_logs for sl in rl.scope_logs for r in sl.log_records
    )
    assert bodies == ["hello 0", "hello 1", "hello 2"]
