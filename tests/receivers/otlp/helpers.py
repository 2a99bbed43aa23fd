"""Clients, payload builders and sink look-ups for the OTLP receiver tests."""

from __future__ import annotations

import http.client
import struct
import time
import uuid
import zlib
from dataclasses import dataclass, field
from email.message import Message as HeaderMessage
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import json_format
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2 as logs_svc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2 as metrics_svc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as trace_svc
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.logs.v1 import logs_pb2
from opentelemetry.proto.metrics.v1 import metrics_pb2
from opentelemetry.proto.resource.v1 import resource_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from otlpd.pdata import ExportRequest, Signal, count_items
from tests.support.sink import Sink

MARKER_KEY = "test.marker"
PROTOBUF = "application/x-protobuf"
JSON = "application/json"
HTTP_PATH = {Signal.TRACES: "/v1/traces", Signal.METRICS: "/v1/metrics", Signal.LOGS: "/v1/logs"}
GRPC_METHOD = {s: f"/{s.grpc_service}/Export" for s in Signal}

LIMIT = 2 * 1024 * 1024  # the receiver's size limit in these tests (HTTP bytes, gRPC MiB)
ALLOWED_ORIGINS = ["https://app.example.com", "https://*.trusted.example"]


T0 = 1_700_000_000_000_000_000  # a nanosecond timestamp that needs 64 bits


def marker() -> str:
    return uuid.uuid4().hex


def gateway_config(sink: Sink, **exporter: Any) -> dict[str, Any]:
    """OTLP (gRPC + HTTP) in, no processors, an ``otlp`` exporter to ``sink`` for all signals."""
    return {
        "receivers": {
            "otlp": {
                "protocols": {
                    "grpc": {"max_recv_msg_size_mib": LIMIT // (1024 * 1024)},
                    "http": {
                        "max_request_body_size": LIMIT,
                        "cors": {"allowed_origins": ALLOWED_ORIGINS, "max_age": 600},
                    },
                }
            }
        },
        "exporters": {
            "otlp": {
                "endpoint": sink.grpc_endpoint,
                "tls": {"insecure": True},
                "retry_on_failure": {"enabled": False},
                **exporter,
            }
        },
        "service": {
            "pipelines": {
                signal: {"receivers": ["otlp"], "exporters": ["otlp"]}
                for signal in ("traces", "metrics", "logs")
            }
        },
    }


# --------------------------------------------------------------------------- clients


@dataclass
class HttpResult:
    status: int
    headers: HeaderMessage
    body: bytes

    @property
    def content_type(self) -> str:
        return (self.headers.get("Content-Type") or "").split(";")[0].strip()


def http_request(
    port: int,
    path: str,
    body: bytes | None = b"",
    headers: dict[str, str] | None = None,
    method: str = "POST",
    chunked: bool = False,
) -> HttpResult:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        if chunked:
            conn.putrequest(method, path)
            for k, v in (headers or {}).items():
                conn.putheader(k, v)
            conn.putheader("Transfer-Encoding", "chunked")
            conn.endheaders()
            assert body is not None
            step = 64 * 1024
            try:
                for i in range(0, len(body), step):
                    piece = body[i : i + step]
                    conn.send(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                conn.send(b"0\r\n\r\n")
            except (BrokenPipeError, ConnectionResetError):
                pass  # the server may answer (and close) before the whole body is sent
        else:
            conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return HttpResult(resp.status, resp.msg, resp.read())
    finally:
        conn.close()


def post(port: int, signal: Signal, body: bytes, content_type: str = PROTOBUF, **headers: str) -> HttpResult:
    hdrs = {"Content-Type": content_type, **{k.replace("_", "-"): v for k, v in headers.items()}}
    return http_request(port, HTTP_PATH[signal], body, hdrs)


@dataclass
class GrpcResult:
    code: grpc.StatusCode
    details: str
    trailers: dict[str, str | bytes] = field(default_factory=dict)
    response: bytes = b""

    def status(self) -> status_pb2.Status:
        raw = self.trailers.get("grpc-status-details-bin")
        assert isinstance(raw, bytes), f"no grpc-status-details-bin in {self.trailers}"
        return status_pb2.Status.FromString(raw)


def grpc_export(
    endpoint: str,
    signal: Signal,
    body: bytes,
    compression: grpc.Compression | None = None,
) -> GrpcResult:
    with grpc.insecure_channel(endpoint, options=[("grpc.max_send_message_length", -1)]) as channel:
        call = channel.unary_unary(GRPC_METHOD[signal])  # bytes in, bytes out
        try:
            response, state = call.with_call(body, timeout=30, compression=compression)
        except grpc.RpcError as err:
            trailers = dict(err.trailing_metadata() or ())  # type: ignore[attr-defined]
            return GrpcResult(err.code(), err.details() or "", trailers)  # type: ignore[attr-defined]
        return GrpcResult(
            state.code(), state.details() or "", dict(state.trailing_metadata() or ()), response
        )


def decode_status(body: bytes, content_type: str) -> status_pb2.Status:
    """A google.rpc.Status body, as protobuf or as (OTLP/)JSON."""
    status = status_pb2.Status()
    if content_type == JSON:
        json_format.Parse(body, status)
    else:
        status.ParseFromString(body)
    return status


def retry_delay(status: status_pb2.Status) -> float | None:
    for detail in status.details:
        info = error_details_pb2.RetryInfo()
        if detail.Unpack(info):
            return info.retry_delay.seconds + info.retry_delay.nanos / 1e9
    return None


# --------------------------------------------------------------------------- payloads


def _resource(mark: str) -> resource_pb2.Resource:
    return resource_pb2.Resource(
        attributes=[
            common_pb2.KeyValue(key=MARKER_KEY, value=common_pb2.AnyValue(string_value=mark)),
            common_pb2.KeyValue(key="service.name", value=common_pb2.AnyValue(string_value="receiver-test")),
        ]
    )


def span(i: int, trace_id: bytes | None = None, span_id: bytes | None = None, **kw: Any) -> trace_pb2.Span:
    return trace_pb2.Span(
        trace_id=trace_id if trace_id is not None else bytes([i + 1]) * 16,
        span_id=span_id if span_id is not None else bytes([i + 1]) * 8,
        name=f"op-{i}",
        kind=trace_pb2.Span.SPAN_KIND_SERVER,
        start_time_unix_nano=T0 + i,
        end_time_unix_nano=T0 + i + 1000,
        attributes=[common_pb2.KeyValue(key="i", value=common_pb2.AnyValue(int_value=i))],
        **kw,
    )


def traces(mark: str, spans: list[trace_pb2.Span] | None = None) -> trace_svc.ExportTraceServiceRequest:
    return trace_svc.ExportTraceServiceRequest(
        resource_spans=[
            trace_pb2.ResourceSpans(
                resource=_resource(mark),
                scope_spans=[
                    trace_pb2.ScopeSpans(
                        scope=common_pb2.InstrumentationScope(name="receiver-tests", version="1.0"),
                        spans=spans if spans is not None else [span(i) for i in range(3)],
                    )
                ],
                schema_url="https://opentelemetry.io/schemas/1.21.0",
            )
        ]
    )


def log_record(i: int, trace_id: bytes = b"", span_id: bytes = b"") -> logs_pb2.LogRecord:
    return logs_pb2.LogRecord(
        time_unix_nano=T0 + i,
        observed_time_unix_nano=T0 + i + 1,
        severity_number=logs_pb2.SEVERITY_NUMBER_INFO,
        severity_text="INFO",
        body=common_pb2.AnyValue(string_value=f"line {i}"),
        trace_id=trace_id,
        span_id=span_id,
    )


def logs(mark: str, records: list[logs_pb2.LogRecord] | None = None) -> logs_svc.ExportLogsServiceRequest:
    return logs_svc.ExportLogsServiceRequest(
        resource_logs=[
            logs_pb2.ResourceLogs(
                resource=_resource(mark),
                scope_logs=[
                    logs_pb2.ScopeLogs(
                        scope=common_pb2.InstrumentationScope(name="receiver-tests"),
                        log_records=records if records is not None else [log_record(i) for i in range(3)],
                    )
                ],
            )
        ]
    )


def all_metric_types() -> list[metrics_pb2.Metric]:
    """One metric of every kind; 2+1+1+1+1 = 6 data points."""
    attrs = [common_pb2.KeyValue(key="host", value=common_pb2.AnyValue(string_value="a"))]
    return [
        metrics_pb2.Metric(
            name="g",
            unit="1",
            gauge=metrics_pb2.Gauge(
                data_points=[
                    metrics_pb2.NumberDataPoint(time_unix_nano=T0, as_double=1.5, attributes=attrs),
                    metrics_pb2.NumberDataPoint(time_unix_nano=T0, as_int=-7),
                ]
            ),
        ),
        metrics_pb2.Metric(
            name="s",
            sum=metrics_pb2.Sum(
                aggregation_temporality=metrics_pb2.AGGREGATION_TEMPORALITY_CUMULATIVE,
                is_monotonic=True,
                data_points=[
                    metrics_pb2.NumberDataPoint(start_time_unix_nano=T0, time_unix_nano=T0 + 1, as_int=42)
                ],
            ),
        ),
        metrics_pb2.Metric(
            name="h",
            histogram=metrics_pb2.Histogram(
                aggregation_temporality=metrics_pb2.AGGREGATION_TEMPORALITY_DELTA,
                data_points=[
                    metrics_pb2.HistogramDataPoint(
                        time_unix_nano=T0,
                        count=3,
                        sum=6.0,
                        bucket_counts=[1, 2, 0],
                        explicit_bounds=[1.0, 5.0],
                        min=1.0,
                        max=3.0,
                    )
                ],
            ),
        ),
        metrics_pb2.Metric(
            name="eh",
            exponential_histogram=metrics_pb2.ExponentialHistogram(
                aggregation_temporality=metrics_pb2.AGGREGATION_TEMPORALITY_DELTA,
                data_points=[
                    metrics_pb2.ExponentialHistogramDataPoint(
                        time_unix_nano=T0,
                        count=4,
                        sum=10.0,
                        scale=2,
                        zero_count=1,
                        positive=metrics_pb2.ExponentialHistogramDataPoint.Buckets(
                            offset=-1, bucket_counts=[1, 2]
                        ),
                    )
                ],
            ),
        ),
        metrics_pb2.Metric(
            name="sm",
            summary=metrics_pb2.Summary(
                data_points=[
                    metrics_pb2.SummaryDataPoint(
                        time_unix_nano=T0,
                        count=2,
                        sum=3.0,
                        quantile_values=[
                            metrics_pb2.SummaryDataPoint.ValueAtQuantile(quantile=0.5, value=1.0),
                            metrics_pb2.SummaryDataPoint.ValueAtQuantile(quantile=1.0, value=2.0),
                        ],
                    )
                ]
            ),
        ),
    ]


def metrics(
    mark: str, items: list[metrics_pb2.Metric] | None = None
) -> metrics_svc.ExportMetricsServiceRequest:
    return metrics_svc.ExportMetricsServiceRequest(
        resource_metrics=[
            metrics_pb2.ResourceMetrics(
                resource=_resource(mark),
                scope_metrics=[
                    metrics_pb2.ScopeMetrics(
                        scope=common_pb2.InstrumentationScope(name="receiver-tests"),
                        metrics=items if items is not None else all_metric_types(),
                    )
                ],
            )
        ]
    )


def request(signal: Signal, mark: str) -> ExportRequest:
    if signal is Signal.TRACES:
        return traces(mark)
    if signal is Signal.METRICS:
        return metrics(mark)
    return logs(mark)


ITEMS = {Signal.TRACES: 3, Signal.METRICS: 6, Signal.LOGS: 3}  # items in request(signal, ...)


# --------------------------------------------------------------------------- sink look-ups


def _resources(signal: Signal, message: Any) -> Any:
    return {
        Signal.TRACES: lambda m: m.resource_spans,
        Signal.METRICS: lambda m: m.resource_metrics,
        Signal.LOGS: lambda m: m.resource_logs,
    }[signal](message)


def _has_marker(resource_x: Any, mark: str) -> bool:
    return any(
        kv.key == MARKER_KEY and kv.value.string_value == mark for kv in resource_x.resource.attributes
    )


def arrived(sink: Sink, signal: Signal, mark: str, items: int = 1, timeout: float = 10.0) -> ExportRequest:
    """Everything the sink got for ``mark``, as one request (waits for ``items`` items)."""
    deadline = time.monotonic() + timeout
    while True:
        out = signal.request_type()
        for message in sink.state.messages(signal):
            for rx in _resources(signal, message):
                if _has_marker(rx, mark):
                    _resources(signal, out).add().CopyFrom(rx)
        if count_items(signal, out) >= items or time.monotonic() > deadline:
            return out
        time.sleep(0.02)


def nothing_arrived(sink: Sink, signal: Signal, mark: str, settle: float = 0.3) -> bool:
    time.sleep(settle)  # the exporter is asynchronous: give a stray request time to arrive
    return len(_resources(signal, arrived(sink, signal, mark, timeout=0))) == 0


# --------------------------------------------------------------------------- bombs and memory


def gzip_bomb(size: int, chunk: int = 1 << 20) -> bytes:
    """A valid gzip member inflating to ``size`` zero bytes, built without holding them.

    Each 1 MiB of zeros is deflated after a full flush, so every chunk after
    the first compresses to the same bytes: compress two, repeat the second.
    """
    assert size % chunk == 0
    assert size >= 2 * chunk
    zeros = bytes(chunk)
    deflater = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    first = deflater.compress(zeros) + deflater.flush(zlib.Z_FULL_FLUSH)
    again = deflater.compress(zeros) + deflater.flush(zlib.Z_FULL_FLUSH)
    crc = 0
    for _ in range(size // chunk):
        crc = zlib.crc32(zeros, crc)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    trailer = struct.pack("<II", crc, size & 0xFFFFFFFF)
    return header + first + again * (size // chunk - 1) + deflater.flush() + trailer


def zstd_bomb(size: int, chunk: int = 1 << 20) -> bytes:
    import zstandard

    zeros = bytes(chunk)
    compressor = zstandard.ZstdCompressor().compressobj()
    out = bytearray()
    for _ in range(size // chunk):
        out += compressor.compress(zeros)
    return bytes(out + compressor.flush())


def peak_rss_mb(pid: int) -> float:
    """The process's high-water resident set size (VmHWM), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import psutil

    return float(psutil.Process(pid).memory_info().rss) / (1024 * 1024)
