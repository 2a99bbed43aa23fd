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
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

import numpy as np
import pyarrow as pa
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


def values(column: list[Any] | pa.Array) -> list[Any]:
    """A column as a list, whichever way it was read: for an engine that takes lists."""
    return column.to_pylist() if isinstance(column, pa.Array) else column


@dataclass
class SpanColumns:
    """One list per column; columns read in C (``_span_columns_at_once``) may be Arrow arrays."""

    dims: Dimensions = field(default_factory=Dimensions)
    trace_key: list[int] | pa.Array = field(default_factory=list)
    trace_id: list[bytes] | pa.Array = field(default_factory=list)
    span_id: list[bytes] | pa.Array = field(default_factory=list)
    parent_span_id: list[bytes] | pa.Array = field(default_factory=list)
    service_name: list[str] = field(default_factory=list)
    name: list[str] | pa.Array = field(default_factory=list)
    kind: list[int] | pa.Array = field(default_factory=list)
    start_ns: list[int] | pa.Array = field(default_factory=list)
    end_ns: list[int] | pa.Array = field(default_factory=list)
    status_code: list[int] | pa.Array = field(default_factory=list)
    resource_key: list[int] = field(default_factory=list)
    scope_key: list[int] = field(default_factory=list)
    data: list[bytes] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.data)


# Span columns are read for all spans at once, from the request's span skeleton
# (``skeleton.canonical_spans``): each span's columns once each, in field order. As
# bytes (tags in hex), at these offsets when the ids are 16 and 8 bytes long:
#   @0 0a 10 <trace id>  @18 12 08 <span id>  @28 [22 08 <parent>]
#   then 2a <name size> <name>, 30 <kind>, 39 <start>, 41 <end>, [7a <status>]
# Read from the name's size on, where every field lies is known, so ``_cut`` cuts every
# column out of every span by offset at once, and checks every tag where it must be.
_TRACE_ID_AT, _SPAN_ID_AT, _PARENT_AT = 2, 20, 30  # where each id's bytes start
_SHORTEST = 28  # the ids alone


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


def spans(
    data: bytes,
    request: trace_svc.ExportTraceServiceRequest | None = None,
    canonical: bytes | None = None,
) -> SpanColumns:
    """The columns of the spans in ``data`` (``request``: its parse; ``canonical``: its span
    skeleton, :func:`skeleton.canonical_spans`; each if made already).

    Without a Python loop over spans when every span is laid out as ``_cut``
    reads it (every span from an SDK is); otherwise span by span from the full
    parse. Both give the same columns.
    """
    c = SpanColumns()
    _scope_columns(c, _dims(c, "traces", data))
    if len(c) and not _span_columns_at_once(c, data, canonical):
        _span_columns_one_by_one(c, request or trace_svc.ExportTraceServiceRequest.FromString(data))
    return c


def _span_columns_at_once(c: SpanColumns, data: bytes, canonical: bytes | None = None) -> bool:
    """False, with ``c`` untouched, when a span is not laid out as ``_cut`` reads it.

    ``canonical``: ``data``'s span skeleton, if made already.
    """
    if canonical is None:
        canonical = skeleton.canonical_spans(data)
    split = skeleton.SPLIT["traces"].FromString(canonical)
    pieces = chain.from_iterable(items for _, _, items in skeleton.scopes("traces", split))
    spans = pa.array(list(pieces), pa.binary())
    if len(spans) != len(c):
        return False
    cut = _cut(spans)
    if cut is None:
        return False
    for name, column in cut.items():
        setattr(c, name, column)
    return True


def _cut(spans: pa.Array) -> dict[str, pa.Array] | None:
    """Every span column but the ones per scope (service, resource, scope) and ``data``.

    ``spans``: each span's canonical bytes. After the ids, each field is at the
    next byte or absent (a span without a name, a kind of 0, a time of 0), the
    tags telling which; every byte is accounted for, so a span laid out
    otherwise (an id of another length, a parent not of 8 bytes, a name over
    16 KiB, a kind over 127, a status code over 127) is found: None then.
    """
    n = len(spans)
    if n == 0:
        return None
    offsets = np.frombuffer(spans.buffers()[1], np.int32, n + 1, spans.offset * 4).astype(np.int64)
    first, end = offsets[:-1], offsets[1:]
    raw = np.frombuffer(spans.buffers()[2], np.uint8)
    if int((end - first).min()) < _SHORTEST:
        return None
    # Every 2 and every 8 bytes of ``raw`` as a little-endian integer, wherever they start:
    # a tag with its size is read at once, an id or a time is a copy of its bytes.
    pairs = np.ndarray(shape=(len(raw) - 1,), dtype="<u2", buffer=raw, strides=(1,))
    words = np.ndarray(shape=(len(raw) - 7,), dtype="<u8", buffer=raw, strides=(1,))
    if not ((pairs[first] == 0x100A) & (pairs[first + 18] == 0x0812)).all():
        return None  # an id of another length: nothing is where it is read below
    has_parent = (first + 38 <= end) & (_peek(pairs, first + 28) == 0x0822)
    at = first + 28 + 10 * has_parent  # each field's tag in turn, if the span has the field
    has_name = (at < end) & (_peek(raw, at) == 0x2A)
    # the name's size: a varint of one byte, or of two (a name of 128 bytes to 16 KiB)
    low, high = _peek(raw, at + 1).astype(np.int64), _peek(raw, at + 2).astype(np.int64)
    long_name = has_name & (low >= 0x80)
    name_size = np.where(has_name, np.where(long_name, (low & 0x7F) | (high << 7), low), 0)
    name_start = at + 2 + long_name
    at = np.where(has_name, name_start + name_size, at)
    has_kind = (at < end) & (_peek(raw, at) == 0x30)
    kinds = np.where(has_kind, _peek(raw, at + 1), 0)  # a kind of one byte: 1 to 127
    at += 2 * has_kind
    has_start = (at < end) & (_peek(raw, at) == 0x39)
    start_ns = np.where(has_start, _peek(words, at + 1), 0)
    at += 9 * has_start
    has_end = (at < end) & (_peek(raw, at) == 0x41)
    end_ns = np.where(has_end, _peek(words, at + 1), 0)
    at += 9 * has_end
    status_size = end - at  # what is left: the status, if any
    if (status_size < 0).any() or (long_name & (high >= 0x80)).any() or (kinds >= 0x80).any():
        return None
    empty = (status_size == 2) & (pairs[end - 2] == 0x007A)
    coded = (status_size == 4) & (pairs[end - 4] == 0x027A) & (raw[end - 2] == 0x18)
    if not ((status_size == 0) | empty | coded).all():
        return None  # a parent of another length than 8, a status code over 127, ...
    names = _strings(raw, name_start, name_size)
    if names is None:
        return None
    trace_ids = np.empty((n, 2), "<u8")
    trace_ids[:, 0], trace_ids[:, 1] = words[first + _TRACE_ID_AT], words[first + _TRACE_ID_AT + 8]
    parent_sizes = np.zeros(n + 1, np.int32)
    np.cumsum(8 * has_parent, out=parent_sizes[1:])
    parent_ids = words[first[has_parent] + _PARENT_AT]
    parent = pa.Array.from_buffers(
        pa.binary(), n, [None, pa.py_buffer(parent_sizes), pa.py_buffer(parent_ids)]
    )
    return {
        # as trace_key(): the trace id's first 8 bytes, big-endian, shifted to fit a signed column
        "trace_key": pa.array((trace_ids[:, 0].byteswap() >> 1).astype(np.int64)),
        "trace_id": _binary(trace_ids, 16),
        "span_id": _binary(words[first + _SPAN_ID_AT], 8),
        "parent_span_id": parent,
        "name": names,
        "kind": pa.array(kinds.astype(np.int32)),
        "start_ns": pa.array(start_ns.astype(np.uint64)),  # native order: Arrow takes no other
        "end_ns": pa.array(end_ns.astype(np.uint64)),
        "status_code": pa.array(np.where(coded, raw[end - 1], 0).astype(np.int32)),
    }


def _peek(view: Any, positions: Any) -> Any:
    """``view[positions]``, a position past its end read as its last element: for a field
    a span may lack, whose value is then not used."""
    return view[np.minimum(positions, len(view) - 1)]


def _strings(raw: Any, starts: Any, sizes: Any) -> pa.Array | None:
    """The ``sizes[i]`` bytes at ``starts[i]`` of ``raw`` as a string column; None if not UTF-8."""
    offsets = np.zeros(len(sizes) + 1, np.int64)
    np.cumsum(sizes, out=offsets[1:])
    if offsets[-1] >= 2**31:
        return None
    index = np.repeat(starts - offsets[:-1], sizes) + np.arange(offsets[-1])
    strings = pa.Array.from_buffers(
        pa.string(), len(sizes), [None, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(raw[index])]
    )
    try:
        strings.validate(full=True)  # the receiver's parse checked it: this is cheap insurance
    except pa.ArrowInvalid:
        return None
    return strings


def _binary(words: Any, size: int) -> pa.Array:
    """Values of ``size`` bytes each, as ``words`` hold them, as a binary column."""
    fixed = pa.FixedSizeBinaryArray.from_buffers(pa.binary(size), len(words), [None, pa.py_buffer(words)])
    return fixed.cast(pa.binary())


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
