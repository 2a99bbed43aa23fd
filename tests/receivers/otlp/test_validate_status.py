"""Unit tests for validate.reject_invalid and status.to_wire."""

from __future__ import annotations

import grpc
import pytest
from google.rpc import error_details_pb2

from otlpd.errors import (
    InvalidDataError,
    OtlpdError,
    PermanentError,
    RetryableError,
    ThrottledError,
    TooLargeError,
)
from otlpd.pdata import Signal, count_items
from otlpd.receivers.otlp.status import to_wire
from otlpd.receivers.otlp.validate import reject_invalid
from tests.receivers.otlp.helpers import log_record, logs, metrics, span, traces


def test_valid_spans_are_untouched() -> None:
    message = traces("m", [span(0), span(1, parent_span_id=b"\x01" * 8)])
    before = message.SerializeToString()
    assert reject_invalid(message) == (0, "")
    assert message.SerializeToString() == before


@pytest.mark.parametrize(
    "bad",
    [
        {"trace_id": b""},
        {"trace_id": b"\x01" * 15},
        {"trace_id": b"\x01" * 17},
        {"trace_id": bytes(16)},
        {"span_id": b""},
        {"span_id": b"\x01" * 7},
        {"span_id": b"\x01" * 9},
        {"span_id": bytes(8)},
        {"parent_span_id": b"\x01" * 4},
    ],
    ids=lambda b: f"{next(iter(b))}-{len(next(iter(b.values())))}",
)
def test_each_kind_of_invalid_span_is_removed(bad: dict[str, bytes]) -> None:
    message = traces("m", [span(0), span(1, **bad), span(2)])  # type: ignore[arg-type]
    rejected, why = reject_invalid(message)
    assert rejected == 1
    assert "16-byte" in why
    assert [s.name for s in message.resource_spans[0].scope_spans[0].spans] == ["op-0", "op-2"]


def test_invalid_spans_across_resources_and_scopes() -> None:
    message = traces("a", [span(0, trace_id=b""), span(1)])
    message.resource_spans.extend(
        traces("b", [span(2, span_id=b""), span(3, span_id=b""), span(4)]).resource_spans
    )
    scope = message.resource_spans[1].scope_spans.add()
    scope.spans.append(span(5, trace_id=bytes(16)))
    assert reject_invalid(message)[0] == 4
    assert count_items(Signal.TRACES, message) == 2
    assert len(message.resource_spans) == 2  # empty containers are kept; they carry no items


def test_log_records_ids_are_optional_but_must_have_the_right_length() -> None:
    message = logs(
        "m",
        [
            log_record(0),
            log_record(1, trace_id=b"\x01" * 16, span_id=b"\x01" * 8),
            log_record(2, trace_id=b"\x01" * 16),
            log_record(3, span_id=b"\x01" * 8),
            log_record(4, trace_id=b"\x01" * 3),
            log_record(5, span_id=b"\x01" * 3),
            log_record(6, trace_id=bytes(16), span_id=bytes(8)),  # zero ids in logs are not rejected
        ],
    )
    rejected, why = reject_invalid(message)
    assert rejected == 2
    assert "log records" in why
    bodies = [r.body.string_value for r in message.resource_logs[0].scope_logs[0].log_records]
    assert bodies == ["line 0", "line 1", "line 2", "line 3", "line 6"]


def test_metrics_are_not_validated() -> None:
    message = metrics("m")
    assert reject_invalid(message) == (0, "")
    assert count_items(Signal.METRICS, message) == 6


@pytest.mark.parametrize(
    ("error", "http", "code", "retry_after", "header", "reason"),
    [
        (TooLargeError("big"), 413, grpc.StatusCode.RESOURCE_EXHAUSTED, None, None, "too_large"),
        (InvalidDataError("bad"), 400, grpc.StatusCode.INVALID_ARGUMENT, None, None, "invalid"),
        (PermanentError("no"), 400, grpc.StatusCode.INVALID_ARGUMENT, None, None, "rejected"),
        (ThrottledError("slow", 0.25), 429, grpc.StatusCode.RESOURCE_EXHAUSTED, 0.25, "1", "throttled"),
        (ThrottledError("slow"), 429, grpc.StatusCode.RESOURCE_EXHAUSTED, 1.0, "1", "throttled"),
        (RetryableError("later", 7.5), 503, grpc.StatusCode.UNAVAILABLE, 7.5, "8", "unavailable"),
        (RetryableError("later"), 503, grpc.StatusCode.UNAVAILABLE, None, None, "unavailable"),
        (OtlpdError("typed but unknown"), 500, grpc.StatusCode.INTERNAL, None, None, "internal"),
        (ValueError("hidden"), 500, grpc.StatusCode.INTERNAL, None, None, "internal"),
    ],
)
def test_to_wire(
    error: BaseException,
    http: int,
    code: grpc.StatusCode,
    retry_after: float | None,
    header: str | None,
    reason: str,
) -> None:
    wire = to_wire(error)
    assert (wire.http_status, wire.grpc_code, wire.reason) == (http, code, reason)
    assert wire.retry_after == retry_after
    assert wire.retry_after_header() == header
    status = wire.status()
    assert status.code == code.value[0]
    if isinstance(error, OtlpdError):
        assert status.message == error.message
    else:
        assert status.message == "internal error"
    if retry_after is None:
        assert len(status.details) == 0
    else:
        info = error_details_pb2.RetryInfo()
        assert status.details[0].Unpack(info)
        assert info.retry_delay.seconds + info.retry_delay.nanos / 1e9 == pytest.approx(retry_after)


def test_resource_exhausted_is_only_retryable_with_retry_info() -> None:
    """OTLP: RESOURCE_EXHAUSTED means 'retry' only with RetryInfo, so a limit must not carry one."""
    assert not to_wire(TooLargeError("x")).status().details
    assert to_wire(ThrottledError("x")).status().details
