"""A pipeline that would refuse any request (a full batch processor) is asked before a request is decoded."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2 as metrics_svc
from opentelemetry.proto.metrics.v1 import metrics_pb2

from otlpd import skeleton
from otlpd.errors import RetryableError
from otlpd.pdata import Signal, count_items
from otlpd.receivers.otlp import core
from otlpd.service.fanout import Fanout
from tests.receivers.otlp.helpers import PROTOBUF, grpc_export, http_request, logs, marker, traces
from tests.receivers.otlp.inprocess import InProcess, ScriptedConsumer

FULL = RetryableError("batch processor is full: the exporters are not keeping up", retry_after=1.0)


@pytest.fixture
def inproc(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[InProcess, list[Signal]]]:
    decoded: list[Signal] = []
    decode = core.decode

    def counting_decode(signal: Signal, body: bytes) -> Any:
        decoded.append(signal)
        return decode(signal, body)

    monkeypatch.setattr(core, "decode", counting_decode)
    config = {"protocols": {"grpc": {"endpoint": "127.0.0.1:0"}, "http": {"endpoint": "127.0.0.1:0"}}}
    with InProcess(config) as receiver:
        yield receiver, decoded


def refused(inproc: InProcess, transport: str, signal: str = "traces") -> float:
    return inproc.sample(
        "otlpd_receiver_refused_items_total", signal=signal, transport=transport, reason="unavailable"
    )


def test_refused_over_http_without_decoding(inproc: tuple[InProcess, list[Signal]]) -> None:
    receiver, decoded = inproc
    receiver.consumer.refusal = FULL
    resp = http_request(
        receiver.http_port, "/v1/traces", traces(marker()).SerializeToString(), {"Content-Type": PROTOBUF}
    )
    assert resp.status == 503
    assert resp.headers.get("Retry-After") == "1"
    assert decoded == []
    assert receiver.consumer.got == []
    assert refused(receiver, "http") == 3  # the spans, counted without decoding them
    # once the pipeline takes requests again, they are decoded and delivered
    receiver.consumer.refusal = None
    resp = http_request(
        receiver.http_port, "/v1/traces", traces(marker()).SerializeToString(), {"Content-Type": PROTOBUF}
    )
    assert resp.status == 200
    assert decoded == [Signal.TRACES]
    assert len(receiver.consumer.got) == 1


def test_refused_over_grpc_without_decoding(inproc: tuple[InProcess, list[Signal]]) -> None:
    receiver, decoded = inproc
    receiver.consumer.refusal = FULL
    result = grpc_export(receiver.grpc_endpoint, Signal.LOGS, logs(marker()).SerializeToString())
    assert result.code is grpc.StatusCode.UNAVAILABLE
    assert "batch processor is full" in result.details
    assert decoded == []
    assert refused(receiver, "grpc", "logs") == 3


def test_a_malformed_or_empty_request_is_answered_as_usual(inproc: tuple[InProcess, list[Signal]]) -> None:
    """Refusing a request that could never be accepted would have its client retry it forever."""
    receiver, _ = inproc
    receiver.consumer.refusal = FULL
    malformed = http_request(receiver.http_port, "/v1/traces", b"\x0a\xff\xff", {"Content-Type": PROTOBUF})
    assert malformed.status == 400
    empty = http_request(receiver.http_port, "/v1/traces", b"", {"Content-Type": PROTOBUF})
    assert empty.status == 200
    assert refused(receiver, "http") == 0


def test_a_fanout_refuses_when_any_pipeline_would() -> None:
    a, b = ScriptedConsumer(), ScriptedConsumer()
    fanout = Fanout([a, b])
    assert fanout.refusal is None
    b.refusal = FULL
    assert fanout.refusal is FULL


def test_items_are_counted_as_a_full_decode_counts_them() -> None:
    request = traces(marker())
    assert skeleton.count_items("traces", request.SerializeToString()) == 3
    records = logs(marker())
    assert skeleton.count_items("logs", records.SerializeToString()) == 3 == count_items(Signal.LOGS, records)
    points = metrics_svc.ExportMetricsServiceRequest(
        resource_metrics=[
            metrics_pb2.ResourceMetrics(
                scope_metrics=[
                    metrics_pb2.ScopeMetrics(
                        metrics=[
                            metrics_pb2.Metric(
                                name="g",
                                gauge=metrics_pb2.Gauge(data_points=[metrics_pb2.NumberDataPoint()] * 2),
                            ),
                            metrics_pb2.Metric(
                                name="h",
                                histogram=metrics_pb2.Histogram(
                                    data_points=[metrics_pb2.HistogramDataPoint()] * 3
                                ),
                            ),
                        ]
                    )
                ]
            )
        ]
    )
    assert (
        skeleton.count_items("metrics", points.SerializeToString())
        == 5
        == count_items(Signal.METRICS, points)
    )
