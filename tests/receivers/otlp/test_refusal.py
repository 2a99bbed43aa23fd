"""When the pipeline refuses data (a full sending queue) clients are told to retry later."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest

from otlpd import otlpjson
from otlpd.pdata import Signal
from tests.receivers.otlp.helpers import (
    JSON,
    PROTOBUF,
    GrpcResult,
    HttpResult,
    decode_status,
    grpc_export,
    http_request,
    marker,
    post,
    retry_delay,
    traces,
)
from tests.support.process import Otlpd
from tests.support.sink import Sink


@pytest.fixture(scope="module")
def slow_sink() -> Iterator[Sink]:
    with Sink() as sink:
        sink.state.delay = 20.0  # every export hangs: the one-slot queue stays full
        yield sink


@pytest.fixture(scope="module")
def refusing(slow_sink: Sink) -> Iterator[Otlpd]:
    config = {
        "receivers": {"otlp": {"protocols": {"grpc": None, "http": None}}},
        "exporters": {
            "otlp": {
                "endpoint": slow_sink.grpc_endpoint,
                "tls": {"insecure": True},
                "timeout": "60s",
                "sending_queue": {"queue_size": 1, "num_consumers": 1},
                "retry_on_failure": {"enabled": False},
            }
        },
        "service": {"pipelines": {"traces": {"receivers": ["otlp"], "exporters": ["otlp"]}}},
    }
    with Otlpd(config) as process:
        yield process


def _refused(otlpd: Otlpd, transport: str) -> float:
    return otlpd.metric(
        "otlpd_receiver_refused_items_total", signal="traces", transport=transport, reason="unavailable"
    )


def _http_until_refused(otlpd: Otlpd, content_type: str) -> tuple[list[int], HttpResult]:
    """Post 3-span requests until one is refused; return the statuses seen and the refusal."""
    statuses = []
    for _ in range(10):
        sent = traces(marker())
        body = sent.SerializeToString() if content_type == PROTOBUF else otlpjson.dumps(sent)
        resp = post(otlpd.http_port, Signal.TRACES, body, content_type)
        statuses.append(resp.status)
        if resp.status != 200:
            return statuses, resp
    raise AssertionError(f"never refused: {statuses}")


@pytest.mark.parametrize("content_type", [PROTOBUF, JSON])
def test_http_full_queue_is_503_with_retry_after(refusing: Otlpd, slow_sink: Sink, content_type: str) -> None:
    before = _refused(refusing, "http")
    statuses, resp = _http_until_refused(refusing, content_type)

    assert resp.status == 503
    assert len(statuses) <= 3  # one request in flight, one queued, then refused
    assert resp.headers["Retry-After"] == "1"
    assert resp.content_type == content_type
    status = decode_status(resp.body, content_type)
    assert status.code == grpc.StatusCode.UNAVAILABLE.value[0] == 14
    assert "queue" in status.message
    assert retry_delay(status) == 1.0
    assert _refused(refusing, "http") == before + 3
    assert refusing.metric("otlp_requests_total", signal="traces", transport="http", status="503") >= 1
    assert refusing.metric("otlpd_exporter_enqueue_failed_items_total", signal="traces") >= 3


def test_grpc_full_queue_is_unavailable_with_retry_info(refusing: Otlpd) -> None:
    before = _refused(refusing, "grpc")
    codes = []
    result: GrpcResult | None = None
    for _ in range(10):
        result = grpc_export(refusing.grpc_endpoint, Signal.TRACES, traces(marker()).SerializeToString())
        codes.append(result.code)
        if result.code != grpc.StatusCode.OK:
            break
    assert result is not None
    assert result.code == grpc.StatusCode.UNAVAILABLE, codes
    status = result.status()
    assert status.code == 14
    assert status.message == result.details
    assert retry_delay(status) == 1.0
    assert _refused(refusing, "grpc") == before + 3
    assert (
        refusing.metric("otlp_requests_total", signal="traces", transport="grpc", status="UNAVAILABLE") >= 1
    )


def test_not_ready_while_refusing(refusing: Otlpd) -> None:
    _http_until_refused(refusing, PROTOBUF)
    code, body = refusing.health()
    assert code == 503
    assert body["status"] == "not_ready"
    assert body.get("refusing")


def test_signal_without_pipeline_is_404_over_http_and_unimplemented_over_grpc(refusing: Otlpd) -> None:
    resp = http_request(refusing.http_port, "/v1/metrics", b"", {"Content-Type": PROTOBUF})
    assert resp.status == 404
    resp = http_request(refusing.http_port, "/v1/logs", b"{}", {"Content-Type": JSON})
    assert resp.status == 404
    result = grpc_export(refusing.grpc_endpoint, Signal.METRICS, b"")
    assert result.code == grpc.StatusCode.UNIMPLEMENTED
