"""Typed pipeline errors reach clients as the OTLP spec's wire codes.

The receiver runs in-process on real loopback sockets (its own event loop in
a thread) in front of a consumer that fails as told, so every mapping in
``status.py`` is observed by real HTTP and gRPC clients.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
import zstandard

from otlpd import otlpjson
from otlpd.errors import PermanentError, RetryableError, ThrottledError
from otlpd.pdata import Signal
from tests.receivers.otlp.helpers import (
    JSON,
    PROTOBUF,
    decode_status,
    grpc_export,
    http_request,
    log_record,
    logs,
    marker,
    retry_delay,
    traces,
)
from tests.receivers.otlp.inprocess import InProcess


@pytest.fixture(scope="module")
def inproc() -> Iterator[InProcess]:
    config = {
        "protocols": {
            "grpc": {"endpoint": "127.0.0.1:0"},
            "http": {
                "endpoint": "127.0.0.1:0",
                "response_headers": {"X-Served-By": "otlpd-test"},
                "traces_url_path": "/custom/traces",
                "compression_algorithms": ["", "gzip"],
            },
        }
    }
    with InProcess(config) as receiver:
        yield receiver


def _post(inproc: InProcess, content_type: str = PROTOBUF, **headers: str) -> Any:
    sent = traces(marker())
    body = sent.SerializeToString() if content_type == PROTOBUF else otlpjson.dumps(sent)
    return http_request(inproc.http_port, "/custom/traces", body, {"Content-Type": content_type, **headers})


# (error, HTTP status, gRPC code, retry delay, Retry-After header, metric reason)
CASES = {
    "permanent": (
        PermanentError("bad tenant"),
        400,
        grpc.StatusCode.INVALID_ARGUMENT,
        None,
        None,
        "rejected",
    ),
    "throttled": (
        ThrottledError("slow down", retry_after=2.5),
        429,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        2.5,
        "3",
        "throttled",
    ),
    "throttled-no-hint": (
        ThrottledError("slow down"),
        429,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        1.0,
        "1",
        "throttled",
    ),
    "retryable": (
        RetryableError("upstream down"),
        503,
        grpc.StatusCode.UNAVAILABLE,
        None,
        None,
        "unavailable",
    ),
    "retryable-hint": (
        RetryableError("upstream down", retry_after=0.2),
        503,
        grpc.StatusCode.UNAVAILABLE,
        0.2,
        "1",
        "unavailable",
    ),
    "bug": (RuntimeError("secret internals"), 500, grpc.StatusCode.INTERNAL, None, None, "internal"),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("content_type", [PROTOBUF, JSON])
def test_http_maps_pipeline_errors(inproc: InProcess, case: str, content_type: str) -> None:
    error, http_status, grpc_code, delay, header, reason = CASES[case]
    refused_before = inproc.sample(
        "otlpd_receiver_refused_items_total", signal="traces", transport="http", reason=reason
    )
    inproc.consumer.errors.append(error)

    resp = _post(inproc, content_type)

    assert resp.status == http_status
    assert resp.content_type == content_type
    assert resp.headers.get("Retry-After") == header
    status = decode_status(resp.body, content_type)
    assert status.code == grpc_code.value[0]
    if delay is None:
        assert retry_delay(status) is None
    else:
        assert retry_delay(status) == pytest.approx(delay)
    if case == "bug":
        assert "secret" not in status.message  # internals are not shown to clients
    else:
        assert status.message == str(error)
    refused = inproc.sample(
        "otlpd_receiver_refused_items_total", signal="traces", transport="http", reason=reason
    )
    assert refused == refused_before + 3
    assert (
        inproc.sample("otlp_requests_total", signal="traces", transport="http", status=str(http_status)) >= 1
    )


@pytest.mark.parametrize("case", list(CASES))
def test_grpc_maps_pipeline_errors(inproc: InProcess, case: str) -> None:
    error, _, grpc_code, delay, _, _ = CASES[case]
    inproc.consumer.errors.append(error)

    result = grpc_export(inproc.grpc_endpoint, Signal.TRACES, traces(marker()).SerializeToString())

    assert result.code == grpc_code
    status = result.status()
    assert status.code == grpc_code.value[0]
    if delay is None:
        assert retry_delay(status) is None
    else:
        assert retry_delay(status) == pytest.approx(delay)
    assert inproc.sample("otlp_requests_total", signal="traces", transport="grpc", status=grpc_code.name) >= 1


def test_success_payload_keeps_the_bytes_sent(inproc: InProcess) -> None:
    """Protobuf without invalid items is handed on as the exact bytes received (no re-encoding)."""
    sent = logs(marker(), [log_record(i) for i in range(4)])
    body = sent.SerializeToString()
    inproc.consumer.got.clear()
    resp = http_request(inproc.http_port, "/v1/logs", gzip.compress(body), {
        "Content-Type": PROTOBUF,
        "Content-Encoding": "gzip",
    })  # fmt: skip
    assert resp.status == 200
    assert len(inproc.consumer.got) == 1
    payload = inproc.consumer.got[0]
    assert payload.data == body
    assert payload.items == 4
    assert payload.signal is Signal.LOGS


def test_response_headers_and_custom_path(inproc: InProcess) -> None:
    resp = _post(inproc)
    assert resp.status == 200
    assert resp.headers["X-Served-By"] == "otlpd-test"
    resp = http_request(inproc.http_port, "/v1/traces", b"", {"Content-Type": PROTOBUF})
    assert resp.status == 404  # the default path is replaced, not added
    assert resp.headers["X-Served-By"] == "otlpd-test"


def test_compression_algorithms_restricts_encodings(inproc: InProcess) -> None:
    body = traces(marker()).SerializeToString()
    for encoding, data, expected in (
        ("gzip", gzip.compress(body), 200),
        ("zstd", zstandard.ZstdCompressor().compress(body), 415),
        ("deflate", body, 415),
    ):
        resp = http_request(
            inproc.http_port, "/custom/traces", data, {"Content-Type": PROTOBUF, "Content-Encoding": encoding}
        )
        assert resp.status == expected, encoding


def test_empty_request_does_not_reach_the_pipeline(inproc: InProcess) -> None:
    inproc.consumer.got.clear()
    inproc.consumer.errors.append(RetryableError("would refuse"))
    resp = http_request(inproc.http_port, "/custom/traces", b"", {"Content-Type": PROTOBUF})
    assert resp.status == 200
    assert inproc.consumer.got == []
    inproc.consumer.errors.clear()


def test_shutting_down_receiver_refuses_with_retry(inproc: InProcess) -> None:
    assert inproc.receiver is not None
    inproc.receiver.core.accepting = False
    try:
        resp = _post(inproc)
        assert resp.status == 503
        assert resp.headers["Retry-After"] == "1"
        result = grpc_export(inproc.grpc_endpoint, Signal.TRACES, traces(marker()).SerializeToString())
        assert result.code == grpc.StatusCode.UNAVAILABLE
        assert retry_delay(result.status()) == 1.0
    finally:
        inproc.receiver.core.accepting = True
