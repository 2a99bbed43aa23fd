"""Per-signal payloads that travel through pipelines.

The unit of data is one serialized ``Export*ServiceRequest``. Receivers keep
the bytes they were sent and decode once (to validate and count); the message
is dropped again as soon as nobody needs it, so queues hold compact bytes.
Concatenating serialized requests is a valid protobuf merge of their
``resource_*`` lists, which is how batching works without re-encoding.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from typing import Any

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2 as logs_svc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2 as metrics_svc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as trace_svc
from opentelemetry.proto.metrics.v1 import metrics_pb2

from otlpd.errors import InvalidDataError

ExportRequest = (
    trace_svc.ExportTraceServiceRequest
    | metrics_svc.ExportMetricsServiceRequest
    | logs_svc.ExportLogsServiceRequest
)
ExportResponse = (
    trace_svc.ExportTraceServiceResponse
    | metrics_svc.ExportMetricsServiceResponse
    | logs_svc.ExportLogsServiceResponse
)


class Signal(enum.Enum):
    TRACES = "traces"
    METRICS = "metrics"
    LOGS = "logs"

    @property
    def request_type(self) -> type[ExportRequest]:
        return _REQUEST[self]

    @property
    def response_type(self) -> type[ExportResponse]:
        return _RESPONSE[self]

    @property
    def grpc_service(self) -> str:
        return _GRPC_SERVICE[self]

    @property
    def item_name(self) -> str:
        """What the OTLP spec counts in partial success: spans, data points, log records."""
        return _ITEM_NAME[self]


_REQUEST: dict[Signal, type[ExportRequest]] = {
    Signal.TRACES: trace_svc.ExportTraceServiceRequest,
    Signal.METRICS: metrics_svc.ExportMetricsServiceRequest,
    Signal.LOGS: logs_svc.ExportLogsServiceRequest,
}
_RESPONSE: dict[Signal, type[ExportResponse]] = {
    Signal.TRACES: trace_svc.ExportTraceServiceResponse,
    Signal.METRICS: metrics_svc.ExportMetricsServiceResponse,
    Signal.LOGS: logs_svc.ExportLogsServiceResponse,
}
_GRPC_SERVICE = {
    Signal.TRACES: "opentelemetry.proto.collector.trace.v1.TraceService",
    Signal.METRICS: "opentelemetry.proto.collector.metrics.v1.MetricsService",
    Signal.LOGS: "opentelemetry.proto.collector.logs.v1.LogsService",
}
_ITEM_NAME = {Signal.TRACES: "spans", Signal.METRICS: "data_points", Signal.LOGS: "log_records"}


class Payload:
    """One export request: serialized bytes, item count, and a lazily decoded message.

    ``span_skeleton``: for traces, the request's span skeleton (``skeleton.canonical_spans``)
    when the receiver made it to check the ids, so that the store need not make it
    again; None when it was not made, or when ``data`` is not what it was made from.
    The store trusts it: whoever makes a payload of changed bytes must not pass it on.
    Exporter queues drop it unless their exporter reads it (``keep_span_skeleton``).
    """

    __slots__ = ("__weakref__", "_message", "data", "items", "signal", "span_skeleton")

    def __init__(
        self,
        signal: Signal,
        data: bytes,
        items: int,
        message: ExportRequest | None = None,
        span_skeleton: bytes | None = None,
    ) -> None:
        self.signal = signal
        self.data = data
        self.items = items
        self._message = message
        self.span_skeleton = span_skeleton

    def view(self) -> Payload:
        """The same request for another consumer: its :meth:`release` does not drop ours."""
        return Payload(self.signal, self.data, self.items, self._message, self.span_skeleton)

    @classmethod
    def from_message(cls, signal: Signal, message: ExportRequest) -> Payload:
        return cls(signal, message.SerializeToString(), count_items(signal, message), message)

    @property
    def message(self) -> ExportRequest:
        """The decoded request; decoded on first use and kept until :meth:`release`."""
        if self._message is None:
            self._message = decode(self.signal, self.data)
        return self._message

    @property
    def decoded(self) -> ExportRequest | None:
        """The decoded request if it has been decoded already; for who can do without."""
        return self._message

    def release(self) -> None:
        """Drop the decoded message so only the compact bytes are retained."""
        self._message = None

    def __repr__(self) -> str:
        return f"Payload({self.signal.value}, {self.items} items, {len(self.data)} bytes)"


def decode(signal: Signal, data: bytes) -> ExportRequest:
    message = signal.request_type()
    try:
        message.ParseFromString(data)
    except DecodeError as exc:
        raise InvalidDataError(f"malformed {signal.value} request: {exc}") from None
    return message


def count_items(signal: Signal, message: ExportRequest) -> int:
    """Items as the OTLP spec counts them: spans, metric data points, log records."""
    if isinstance(message, trace_svc.ExportTraceServiceRequest):
        return sum(len(ss.spans) for rs in message.resource_spans for ss in rs.scope_spans)
    if isinstance(message, logs_svc.ExportLogsServiceRequest):
        return sum(len(sl.log_records) for rl in message.resource_logs for sl in rl.scope_logs)
    assert isinstance(message, metrics_svc.ExportMetricsServiceRequest)
    return sum(_weight(m) for rm in message.resource_metrics for sm in rm.scope_metrics for m in sm.metrics)


def concat(payloads: Sequence[Payload]) -> Payload:
    """Merge requests of one signal by concatenating their bytes (a protobuf merge)."""
    if len(payloads) == 1:
        return payloads[0]
    skeletons = [p.span_skeleton for p in payloads if p.span_skeleton is not None]
    return Payload(
        payloads[0].signal,
        b"".join(p.data for p in payloads),
        sum(p.items for p in payloads),
        # joined, skeletons are the skeleton of the joined data: a merge, span order kept
        span_skeleton=b"".join(skeletons) if len(skeletons) == len(payloads) else None,
    )


def split(payload: Payload, max_items: int) -> list[Payload]:
    """Cut a request into requests of at most ``max_items`` items.

    Decodes and re-encodes, so it is only used when a batch exceeds
    ``send_batch_max_size``. Resource and scope are repeated in every piece. A
    metric is never cut, so a piece holds more points than asked only when one
    metric alone has more.
    """
    if max_items <= 0 or payload.items <= max_items:
        return [payload]
    signal = payload.signal
    pieces: list[Payload] = []
    current = signal.request_type()
    used = 0
    for resource, res_field, scope, scope_field, items_field in _scopes(payload.message):
        target = None
        for item in getattr(scope, items_field):
            weight = _weight(item)
            if used and used + weight > max_items:
                pieces.append(Payload.from_message(signal, current))
                current, used, target = signal.request_type(), 0, None
            if target is None:
                r = getattr(current, res_field).add()
                r.resource.CopyFrom(resource.resource)
                r.schema_url = resource.schema_url
                target = getattr(r, scope_field).add()
                target.scope.CopyFrom(scope.scope)
                target.schema_url = scope.schema_url
            getattr(target, items_field).add().CopyFrom(item)
            used += weight
    if used:
        pieces.append(Payload.from_message(signal, current))
    for piece in pieces:
        piece.release()
    return pieces


def _scopes(message: ExportRequest) -> Iterable[tuple[Any, str, Any, str, str]]:
    """Yield (resource, field, scope, field, items field) for every scope in a request."""
    if isinstance(message, trace_svc.ExportTraceServiceRequest):
        for rs in message.resource_spans:
            for ss in rs.scope_spans:
                yield rs, "resource_spans", ss, "scope_spans", "spans"
    elif isinstance(message, logs_svc.ExportLogsServiceRequest):
        for rl in message.resource_logs:
            for sl in rl.scope_logs:
                yield rl, "resource_logs", sl, "scope_logs", "log_records"
    else:
        for rm in message.resource_metrics:
            for sm in rm.scope_metrics:
                yield rm, "resource_metrics", sm, "scope_metrics", "metrics"


def _weight(item: Any) -> int:
    if isinstance(item, metrics_pb2.Metric):
        kind = item.WhichOneof("data")
        return len(getattr(item, kind).data_points) if kind else 0
    return 1
