"""OTLP/gRPC against a running otlpd: status codes, compression, limits, partial success, metrics."""

from __future__ import annotations

import gzip

import grpc
import pytest
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2 as logs_svc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as trace_svc

from otlpd.pdata import Signal
from tests.receivers.otlp import h2c
from tests.receivers.otlp.helpers import (
    GRPC_METHOD,
    ITEMS,
    LIMIT,
    arrived,
    grpc_export,
    gzip_bomb,
    log_record,
    logs,
    marker,
    nothing_arrived,
    peak_rss_mb,
    request,
    span,
    traces,
)
from tests.support.process import Otlpd
from tests.support.sink import Sink

SIGNALS = list(Signal)


def _requests(otlpd: Otlpd, signal: Signal, status: str) -> float:
    return otlpd.metric("otlp_requests_total", signal=signal.value, transport="grpc", status=status)


@pytest.mark.parametrize("signal", SIGNALS, ids=lambda s: s.value)
def test_success_is_ok_with_empty_response_and_data_arrives(
    otlpd: Otlpd, package_sink: Sink, signal: Signal
) -> None:
    mark = marker()
    sent = request(signal, mark)
    ok_before = _requests(otlpd, signal, "OK")
    accepted_before = otlpd.metric(
        "otlpd_receiver_accepted_items_total", signal=signal.value, transport="grpc"
    )

    result = grpc_export(otlpd.grpc_endpoint, signal, sent.SerializeToString())

    assert result.code == grpc.StatusCode.OK
    reply = signal.response_type()
    reply.ParseFromString(result.response)
    assert not reply.HasField("partial_success")
    assert result.response == b""
    assert arrived(package_sink, signal, mark) == sent
    assert _requests(otlpd, signal, "OK") == ok_before + 1
    accepted = otlpd.metric("otlpd_receiver_accepted_items_total", signal=signal.value, transport="grpc")
    assert accepted == accepted_before + ITEMS[signal]


@pytest.mark.parametrize("compression", [grpc.Compression.Gzip, grpc.Compression.Deflate])
def test_grpc_compression_is_accepted(
    otlpd: Otlpd, package_sink: Sink, compression: grpc.Compression
) -> None:
    mark = marker()
    sent = request(Signal.METRICS, mark)
    result = grpc_export(otlpd.grpc_endpoint, Signal.METRICS, sent.SerializeToString(), compression)
    assert result.code == grpc.StatusCode.OK
    assert arrived(package_sink, Signal.METRICS, mark) == sent


def test_sdk_grpc_span_exporter_with_gzip(otlpd: Otlpd, package_sink: Sink) -> None:
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    mark = marker()
    provider = TracerProvider(resource=Resource.create({"test.marker": mark}))
    provider.add_span_processor(
        SimpleSpanProcessor(
            OTLPSpanExporter(endpoint=otlpd.grpc_endpoint, insecure=True, compression=grpc.Compression.Gzip)
        )
    )
    tracer = provider.get_tracer("sdk-test")
    with tracer.start_as_current_span("parent") as parent, tracer.start_as_current_span("child"):
        trace_id = parent.get_span_context().trace_id
    provider.shutdown()
    got = arrived(package_sink, Signal.TRACES, mark, items=2)
    spans = [s for rs in got.resource_spans for ss in rs.scope_spans for s in ss.spans]
    assert sorted(s.name for s in spans) == ["child", "parent"]
    assert {s.trace_id for s in spans} == {trace_id.to_bytes(16, "big")}


@pytest.mark.parametrize("body", [b"\xff\xff\xff\xff", b"\x0a\x05\x0a", b"\x0a\x02\x0a\xff"])
@pytest.mark.parametrize("signal", SIGNALS, ids=lambda s: s.value)
def test_malformed_protobuf_is_invalid_argument_with_status_details(
    otlpd: Otlpd, signal: Signal, body: bytes
) -> None:
    before = _requests(otlpd, signal, "INVALID_ARGUMENT")
    result = grpc_export(otlpd.grpc_endpoint, signal, body)
    assert result.code == grpc.StatusCode.INVALID_ARGUMENT
    assert result.details
    status = result.status()
    assert status.code == 3
    assert status.message == result.details
    assert _requests(otlpd, signal, "INVALID_ARGUMENT") == before + 1


def test_message_over_limit_is_resource_exhausted(otlpd: Otlpd) -> None:
    result = grpc_export(otlpd.grpc_endpoint, Signal.TRACES, b"\x00" * (LIMIT + 1))
    assert result.code == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_compressed_message_over_limit_after_decompression_is_resource_exhausted(otlpd: Otlpd) -> None:
    """grpcio compresses 3 MiB of zeros to a few KB; the limit applies to the inflated size."""
    result = grpc_export(otlpd.grpc_endpoint, Signal.LOGS, bytes(LIMIT + (1 << 20)), grpc.Compression.Gzip)
    assert result.code == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_gzip_bomb_is_resource_exhausted_and_memory_stays_bounded(otlpd: Otlpd) -> None:
    bomb = gzip_bomb(1 << 30)  # 1 GiB of zeros in ~1 MB, sent as one pre-compressed gRPC message
    assert len(bomb) < LIMIT
    response = h2c.grpc_call("127.0.0.1", otlpd.grpc_port, GRPC_METHOD[Signal.TRACES], bomb)
    assert response.grpc_status == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]
    assert otlpd.proc is not None
    assert peak_rss_mb(otlpd.proc.pid) < 300
    # and the server is still serving
    mark = marker()
    assert (
        grpc_export(otlpd.grpc_endpoint, Signal.TRACES, traces(mark).SerializeToString()).code
        == grpc.StatusCode.OK
    )


def test_h2c_client_round_trip(otlpd: Otlpd, package_sink: Sink) -> None:
    """The raw client used for the bomb works for an ordinary gzip message, so that test means something."""
    mark = marker()
    sent = logs(mark)
    response = h2c.grpc_call(
        "127.0.0.1", otlpd.grpc_port, GRPC_METHOD[Signal.LOGS], gzip.compress(sent.SerializeToString())
    )
    assert response.grpc_status == 0
    assert response.headers[":status"] == "200"
    assert arrived(package_sink, Signal.LOGS, mark) == sent


def test_partial_success_for_spans_with_invalid_ids(otlpd: Otlpd, package_sink: Sink) -> None:
    mark = marker()
    good = [span(0), span(1)]
    bad = [
        span(5, trace_id=b"\x07" * 8),
        span(6, trace_id=bytes(16)),
        span(7, span_id=b"\x07" * 7),
        span(8, span_id=b""),
    ]
    sent = traces(mark, [bad[0], good[0], bad[1], bad[2], good[1], bad[3]])
    refused_before = otlpd.metric(
        "otlpd_receiver_refused_items_total", signal="traces", transport="grpc", reason="invalid"
    )
    accepted_before = otlpd.metric("otlpd_receiver_accepted_items_total", signal="traces", transport="grpc")

    result = grpc_export(otlpd.grpc_endpoint, Signal.TRACES, sent.SerializeToString())

    assert result.code == grpc.StatusCode.OK
    reply = trace_svc.ExportTraceServiceResponse.FromString(result.response)
    assert reply.partial_success.rejected_spans == 4
    assert "span_id" in reply.partial_success.error_message
    assert arrived(package_sink, Signal.TRACES, mark) == traces(mark, good)
    refused = otlpd.metric(
        "otlpd_receiver_refused_items_total", signal="traces", transport="grpc", reason="invalid"
    )
    assert refused == refused_before + 4
    accepted = otlpd.metric("otlpd_receiver_accepted_items_total", signal="traces", transport="grpc")
    assert accepted == accepted_before + 2


def test_partial_success_for_log_records_with_wrong_length_ids(otlpd: Otlpd, package_sink: Sink) -> None:
    mark = marker()
    good = [log_record(0), log_record(1, trace_id=b"\x01" * 16), log_record(2, span_id=b"\x01" * 8)]
    bad = [log_record(3, trace_id=b"\x01" * 15), log_record(4, span_id=b"\x01")]
    sent = logs(mark, [*good, *bad])

    result = grpc_export(otlpd.grpc_endpoint, Signal.LOGS, sent.SerializeToString())

    assert result.code == grpc.StatusCode.OK
    reply = logs_svc.ExportLogsServiceResponse.FromString(result.response)
    assert reply.partial_success.rejected_log_records == 2
    assert reply.partial_success.error_message
    assert arrived(package_sink, Signal.LOGS, mark) == logs(mark, good)


def test_only_invalid_spans_sends_nothing(otlpd: Otlpd, package_sink: Sink) -> None:
    mark = marker()
    result = grpc_export(
        otlpd.grpc_endpoint, Signal.TRACES, traces(mark, [span(0, trace_id=b"")]).SerializeToString()
    )
    assert result.code == grpc.StatusCode.OK
    assert (
        trace_svc.ExportTraceServiceResponse.FromString(result.response).partial_success.rejected_spans == 1
    )
    assert nothing_arrived(package_sink, Signal.TRACES, mark)


def test_unknown_method_is_unimplemented(otlpd: Otlpd) -> None:
    with grpc.insecure_channel(otlpd.grpc_endpoint) as channel:
        call = channel.unary_unary(
            "/opentelemetry.proto.collector.profiles.v1development.ProfilesService/Export"
        )
        with pytest.raises(grpc.RpcError) as err:
            call(b"", timeout=10)
    assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED  # type: ignore[attr-defined]
