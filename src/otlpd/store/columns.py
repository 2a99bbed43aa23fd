"""OTLP requests → column lists, ready for a columnar bulk insert.

This is the only per-item Python the store does, so it touches as few fields
as it can: what queries filter or sort on becomes a column; everything else
stays in the item's own serialized protobuf (``data``), which the query API
decodes only for the handful of items it returns. Resources and scopes are
stored once each, keyed by a digest of their bytes.

Items, resources and scopes are not serialized again: their bytes are cut
out of the request as received (``skeleton.split``), and the engine keeps them as it
needs to (DuckDB: as latin-1 text, see :mod:`otlpd.store.duckdb.engine`).
Span columns are read for all spans of a request at once, in C
(``_span_columns_at_once``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import sys
from array import array
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import descriptor_pb2
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2 as logs_svc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2 as metrics_svc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as trace_svc
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.resource.v1 import resource_pb2

from otlpd import skeleton

SERVICE_NAME = "service.name"
UNKNOWN_SERVICE = "unknown_service"


def digest(data: bytes) -> int:
    """A stable 63-bit key (fits BIGINT in every engine) for a resource or scope."""
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big") >> 1


def trace_key(trace_id: bytes) -> int:
    """The first 8 bytes of a trace id as an integer: equality on it is a cheap scan."""
    return int.from_bytes(trace_id[:8], "big") >> 1


def service_name(resource: resource_pb2.Resource) -> str:
    for kv in resource.attributes:
        if kv.key == SERVICE_NAME:
            return kv.value.string_value or UNKNOWN_SERVICE
    return UNKNOWN_SERVICE


@dataclass
class Dimensions:
    """Resources and scopes met in one request, by key; their data as received."""

    resources: dict[int, tuple[str, bytes, str]] = field(default_factory=dict)  # key → service, data, schema
    scopes: dict[int, tuple[str, str, bytes, str]] = field(
        default_factory=dict
    )  # key → name, version, data, schema

    def resource(self, data: bytes, schema_url: bytes) -> tuple[int, str]:
        key = digest(data + b"\x00" + schema_url)
        known = self.resources.get(key)
        if known is not None:
            return key, known[0]
        service = service_name(resource_pb2.Resource.FromString(data))
        self.resources[key] = (service, data, _utf8(schema_url))
        return key, service

    def scope(self, data: bytes, schema_url: bytes) -> int:
        key = digest(data + b"\x00" + schema_url)
        if key not in self.scopes:
            scope = common_pb2.InstrumentationScope.FromString(data)
            self.scopes[key] = (scope.name, scope.version, data, _utf8(schema_url))
        return key


def _utf8(text: bytes) -> str:
    return text.decode("utf-8", "replace")  # a string field otlpd received: valid already


@dataclass
class SpanColumns:
    dims: Dimensions = field(default_factory=Dimensions)
    trace_key: list[int] = field(default_factory=list)
    trace_id: list[bytes] = field(default_factory=list)
    span_id: list[bytes] = field(default_factory=list)
    parent_span_id: list[bytes] = field(default_factory=list)
    service_name: list[str] = field(default_factory=list)
    name: list[str] = field(default_factory=list)
    kind: list[int] = field(default_factory=list)
    start_ns: list[int] = field(default_factory=list)
    end_ns: list[int] = field(default_factory=list)
    status_code: list[int] = field(default_factory=list)
    resource_key: list[int] = field(default_factory=list)
    scope_key: list[int] = field(default_factory=list)
    data: list[bytes] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.data)


_B, _S, _I32, _F64 = (
    descriptor_pb2.FieldDescriptorProto.TYPE_BYTES,
    descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
    descriptor_pb2.FieldDescriptorProto.TYPE_INT32,
    descriptor_pb2.FieldDescriptorProto.TYPE_FIXED64,
)


def _span_skeleton(
    package: str, fields: list[tuple[str, int, int | str]], merged: bool, **extra: list[skeleton.Field]
) -> Any:
    spans: list[skeleton.Field] = [(name, number, kind, merged) for name, number, kind in fields]
    return skeleton.request_class(package, "traces", "Span", merged=merged, messages={"Span": spans, **extra})


# The span columns every span has (a span from an SDK does): read for all spans at once.
# ``_SPAN_FIXED`` applies protobuf's rules span by span (a field sent twice: the last one
# wins; one sent with the wrong wire type: not that field) and serializes each span's
# fields once, in field order. Parsing that with ``_SPAN_MERGED``, whose levels are
# singular and whose fields are repeated, merges all spans into one message whose fields
# list every span's value, in order.
_FIXED_FIELDS: list[tuple[str, int, int | str]] = [
    ("trace_id", 1, _B), ("span_id", 2, _B), ("name", 5, _S),
    ("kind", 6, _I32), ("start", 7, _F64), ("end", 8, _F64),
]  # fmt: skip
_SPAN_FIXED = _span_skeleton("otlpd.spans.fixed", _FIXED_FIELDS, False)
_SPAN_MERGED = _span_skeleton("otlpd.spans.merged", _FIXED_FIELDS, True)
# The columns a span may lack: its serialization through this type, unknown fields
# discarded, is [``22 08 <parent>``] [``7a`` status].
_SPAN_OPTIONAL = _span_skeleton(
    "otlpd.spans.optional",
    [("parent_span_id", 4, _B), ("status", 15, "Status")],
    False,
    Status=[("code", 3, _I32, False)],
)
_STATUS = {b"": 0, b"\x7a\x00": 0, b"\x7a\x02\x18\x01": 1, b"\x7a\x02\x18\x02": 2}
_PARENT = b"\x22\x08"


def _dims(c: SpanColumns | LogColumns, signal: str, data: bytes) -> list[tuple[str, int, int, int]]:
    """Resources, scopes and items' data; per scope (service, resource, scope, item count)."""
    runs = []
    for r, s, pieces in skeleton.scopes(signal, skeleton.SPLIT[signal].FromString(data)):
        rkey, service = c.dims.resource(b"".join(r.resource), r.schema_url)
        c.data.extend(pieces)
        runs.append((service, rkey, c.dims.scope(b"".join(s.scope), s.schema_url), len(pieces)))
    return runs


def _scope_columns(c: SpanColumns | LogColumns, runs: list[tuple[str, int, int, int]]) -> None:
    """What is the same for a whole scope, extended once rather than appended per item."""
    for service, rkey, skey, count in runs:
        c.service_name.extend([service] * count)
        c.resource_key.extend([rkey] * count)
        c.scope_key.extend([skey] * count)


def spans(data: bytes, request: trace_svc.ExportTraceServiceRequest | None = None) -> SpanColumns:
    """The columns of the spans in ``data`` (``request``: its parse, if made already).

    Without a Python loop over spans when every span has a name, a kind, a
    start and an end time (as spans from SDKs do); otherwise span by span
    from the full parse. Both give the same columns.
    """
    c = SpanColumns()
    _scope_columns(c, _dims(c, "traces", data))
    if len(c) and not _span_columns_at_once(c, data):
        _span_columns_one_by_one(c, request or trace_svc.ExportTraceServiceRequest.FromString(data))
    return c


def _span_columns_at_once(c: SpanColumns, data: bytes) -> bool:
    """False, with ``c`` untouched, when not every span has every field read here."""
    n = len(c)
    fixed = _SPAN_FIXED.FromString(data)
    # Unknown fields go: among them a field sent with another wire type than its own (a
    # packed kind, say), which the full parse ignores but a repeated field would read.
    fixed.DiscardUnknownFields()
    s = _SPAN_MERGED.FromString(fixed.SerializeToString()).resource_spans.scope_spans.spans
    if any(len(f) != n for f in (s.trace_id, s.span_id, s.name, s.kind, s.start, s.end)):
        return False
    optional = _SPAN_OPTIONAL.FromString(data)
    optional.DiscardUnknownFields()
    split = skeleton.SPLIT["traces"].FromString(optional.SerializeToString())
    pieces = [p for _, _, items in skeleton.scopes("traces", split) for p in items]
    parents = [p[2:10] if p[:2] == _PARENT else b"" for p in pieces]
    status = list(map(_STATUS.get, [p[10:] if p[:2] == _PARENT else p for p in pieces]))
    # a parent of another length than 8 leaves ``"`` in front of the status: not found either
    if len(pieces) != n or None in status:
        return False
    trace_ids = list(s.trace_id)
    c.trace_key = trace_keys(trace_ids)
    c.trace_id, c.span_id, c.parent_span_id = trace_ids, list(s.span_id), parents
    c.name, c.kind, c.start_ns, c.end_ns = list(s.name), list(s.kind), list(s.start), list(s.end)
    c.status_code = status  # type: ignore[assignment]
    return True


def trace_keys(trace_ids: list[bytes]) -> list[int]:
    """:func:`trace_key` of each id, the byte work done in C (ids of 16 bytes; others one by one)."""
    if set(map(len, trace_ids)) != {16}:
        return [trace_key(t) for t in trace_ids]
    words = array("Q", b"".join(trace_ids))  # two per id: its first 8 bytes, then its last 8
    if sys.byteorder == "little":
        words.byteswap()
    return [w >> 1 for w in words[::2]]


def _span_columns_one_by_one(c: SpanColumns, request: trace_svc.ExportTraceServiceRequest) -> None:
    # Bound methods looked up once: this loop runs for every span.
    trace_key_, trace_id, span_id, parent = (
        c.trace_key.append,
        c.trace_id.append,
        c.span_id.append,
        c.parent_span_id.append,
    )
    name, kind, start, end, status = (
        c.name.append,
        c.kind.append,
        c.start_ns.append,
        c.end_ns.append,
        c.status_code.append,
    )
    from_bytes = int.from_bytes
    for rs in request.resource_spans:
        for ss in rs.scope_spans:
            for s in ss.spans:
                tid = s.trace_id
                trace_key_(from_bytes(tid[:8], "big") >> 1)
                trace_id(tid)
                span_id(s.span_id)
                parent(s.parent_span_id)
                name(s.name)
                kind(s.kind)
                start(s.start_time_unix_nano)
                end(s.end_time_unix_nano)
                status(s.status.code)


@dataclass
class LogColumns:
    dims: Dimensions = field(default_factory=Dimensions)
    time_ns: list[int] = field(default_factory=list)
    observed_ns: list[int] = field(default_factory=list)
    service_name: list[str] = field(default_factory=list)
    severity_number: list[int] = field(default_factory=list)
    severity_text: list[str] = field(default_factory=list)
    body: list[str] = field(default_factory=list)
    trace_id: list[bytes] = field(default_factory=list)
    span_id: list[bytes] = field(default_factory=list)
    resource_key: list[int] = field(default_factory=list)
    scope_key: list[int] = field(default_factory=list)
    data: list[bytes] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.data)


def logs(data: bytes, request: logs_svc.ExportLogsServiceRequest | None = None) -> LogColumns:
    """The columns of the log records in ``data`` (``request``: its parse, if made already)."""
    c = LogColumns()
    _scope_columns(c, _dims(c, "logs", data))
    for rl in (request or logs_svc.ExportLogsServiceRequest.FromString(data)).resource_logs:
        for sl in rl.scope_logs:
            for r in sl.log_records:
                # A record without a timestamp is placed at when it was observed (the spec's advice).
                c.time_ns.append(r.time_unix_nano or r.observed_time_unix_nano)
                c.observed_ns.append(r.observed_time_unix_nano)
                c.severity_number.append(r.severity_number)
                c.severity_text.append(r.severity_text)
                c.body.append(text(r.body))
                c.trace_id.append(r.trace_id)
                c.span_id.append(r.span_id)
    return c


def text(value: common_pb2.AnyValue) -> str:
    """A log body as searchable text: strings as they are, anything else as JSON."""
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value
    if kind is None:
        return ""
    return json.dumps(plain(value), separators=(",", ":"), ensure_ascii=False, default=str)


def plain(value: common_pb2.AnyValue) -> Any:
    """An AnyValue as a plain Python value (bytes as base64, as OTLP/JSON writes them)."""
    kind = value.WhichOneof("value")
    if kind == "kvlist_value":
        return {kv.key: plain(kv.value) for kv in value.kvlist_value.values}
    if kind == "array_value":
        return [plain(v) for v in value.array_value.values]
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    if kind is None:
        return None
    return getattr(value, kind)


def attributes(kvs: Any) -> dict[str, Any]:
    return {kv.key: plain(kv.value) for kv in kvs}


METRIC_TYPES = ("gauge", "sum", "histogram", "exponential_histogram", "summary")


@dataclass
class MetricColumns:
    dims: Dimensions = field(default_factory=Dimensions)
    name: list[str] = field(default_factory=list)
    type: list[str] = field(default_factory=list)
    unit: list[str] = field(default_factory=list)
    description: list[str] = field(default_factory=list)
    temporality: list[int] = field(default_factory=list)
    monotonic: list[bool] = field(default_factory=list)
    service_name: list[str] = field(default_factory=list)
    time_ns: list[int] = field(default_factory=list)
    start_ns: list[int] = field(default_factory=list)
    value: list[float | None] = field(default_factory=list)
    count: list[int | None] = field(default_factory=list)
    sum: list[float | None] = field(default_factory=list)
    attributes: list[str] = field(default_factory=list)
    series_key: list[int] = field(default_factory=list)
    resource_key: list[int] = field(default_factory=list)
    scope_key: list[int] = field(default_factory=list)
    data: list[bytes] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.data)


def metrics(data: bytes, request: metrics_svc.ExportMetricsServiceRequest | None = None) -> MetricColumns:
    """The columns of the metric points in ``data`` (``request``: its parse, if made already)."""
    request = request or metrics_svc.ExportMetricsServiceRequest.FromString(data)
    split = skeleton.SPLIT["metrics"].FromString(data)
    c = MetricColumns()
    for rm, rsplit in zip(request.resource_metrics, split.resource_metrics, strict=True):
        rkey, service = c.dims.resource(b"".join(rsplit.resource), rsplit.schema_url)
        for sm, ssplit in zip(rm.scope_metrics, rsplit.scope_metrics, strict=True):
            skey = c.dims.scope(b"".join(ssplit.scope), ssplit.schema_url)
            for m, msplit in zip(sm.metrics, ssplit.metrics, strict=True):
                kind = m.WhichOneof("data")
                if kind is None:
                    continue
                body = getattr(m, kind)
                # the points of the data field the full parse kept (a oneof: the last one sent)
                c.data.extend(getattr(msplit, kind).data_points)
                temporality = getattr(body, "aggregation_temporality", 0)
                monotonic = bool(getattr(body, "is_monotonic", False))
                for p in body.data_points:
                    attrs = json.dumps(attributes(p.attributes), sort_keys=True, default=str)
                    c.name.append(m.name)
                    c.type.append(kind)
                    c.unit.append(m.unit)
                    c.description.append(m.description)
                    c.temporality.append(temporality)
                    c.monotonic.append(monotonic)
                    c.service_name.append(service)
                    c.time_ns.append(p.time_unix_nano)
                    c.start_ns.append(p.start_time_unix_nano)
                    if kind in ("gauge", "sum"):
                        number = p.WhichOneof("value")
                        c.value.append(float(getattr(p, number)) if number else None)
                        c.count.append(None)
                        c.sum.append(None)
                    else:
                        c.value.append(None)
                        c.count.append(p.count)
                        c.sum.append(p.sum if kind == "summary" or p.HasField("sum") else None)
                    c.attributes.append(attrs)
                    c.series_key.append(digest(f"{rkey}\x00{m.name}\x00{attrs}".encode()))
                    c.resource_key.append(rkey)
                    c.scope_key.append(skey)
    return c
