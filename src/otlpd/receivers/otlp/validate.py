"""Drop items whose ids a peer would reject, so one bad span cannot sink a batch.

Batching concatenates requests from many clients; an upstream that refuses
a batch for one malformed id would lose everyone's data. So ids are checked
at the edge and bad items are removed and reported as OTLP partial success.
This is input validation, the part of decoding that upb leaves out (the
Collector's decoder rejects such ids too), not optional per-span processing.

The common case (every id valid) is decided without a Python loop over items:
the request bytes are parsed a second time into a *skeleton* message that
knows only the id fields, unknown fields are discarded, and each scope's
re-serialized ids must fully match one anchored regular expression. That
serialization is canonical (fixed field order and lengths), so the match is
exact, not a heuristic. Only when it fails does the per-item loop find and
remove the bad items. Both steps are in docs/architecture.md with their cost.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2 as logs_svc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as trace_svc

from otlpd.pdata import ExportRequest

_ZERO_TRACE = bytes(16)
_ZERO_SPAN = bytes(8)
_SPAN_WHY = "spans must have a 16-byte non-zero trace_id and an 8-byte non-zero span_id"
_LOG_WHY = "log records' trace_id must be empty or 16 bytes and span_id empty or 8 bytes"


def reject_invalid(message: ExportRequest, data: bytes | None = None) -> tuple[int, str]:
    """Remove invalid items in place; return (how many, why).

    ``data``, the serialized ``message`` when the caller has it, enables the
    fast check; without it (OTLP/JSON) the per-item loop runs.
    """
    if data is not None and _all_ids_valid(message, data):
        return 0, ""
    if isinstance(message, trace_svc.ExportTraceServiceRequest):
        scopes: Any = (ss.spans for rs in message.resource_spans for ss in rs.scope_spans)
        find: Callable[[Any], list[int]] = _bad_spans
        why = _SPAN_WHY
    elif isinstance(message, logs_svc.ExportLogsServiceRequest):
        scopes = (sl.log_records for rl in message.resource_logs for sl in rl.scope_logs)
        find, why = _bad_logs, _LOG_WHY
    else:
        return 0, ""
    rejected = 0
    for items in scopes:
        bad = find(items)
        for i in reversed(bad):
            del items[i]
        rejected += len(bad)
    return rejected, why if rejected else ""


def _bad_spans(spans: Any) -> list[int]:
    # One pass, inlined: each upb field read allocates, so read each id once.
    bad = []
    for i, span in enumerate(spans):
        tid = span.trace_id
        sid = span.span_id
        if len(tid) != 16 or len(sid) != 8 or tid == _ZERO_TRACE or sid == _ZERO_SPAN:
            bad.append(i)
            continue
        pid = span.parent_span_id
        if pid and len(pid) != 8:
            bad.append(i)
    return bad


def _bad_logs(records: Any) -> list[int]:
    # Log records may have no trace context at all; only wrong lengths are invalid.
    return [
        i for i, r in enumerate(records) if len(r.trace_id) not in (0, 16) or len(r.span_id) not in (0, 8)
    ]


# --- the fast check ------------------------------------------------------------------------

_F = descriptor_pb2.FieldDescriptorProto


def _skeletons() -> tuple[Any, Any]:
    """Request classes that know only the id fields of spans and log records."""
    fd = descriptor_pb2.FileDescriptorProto(
        name="otlpd/skeleton.proto", package="otlpd.skeleton", syntax="proto3"
    )

    def message(name: str, *fields: tuple[str, int, str | None]) -> None:
        m = fd.message_type.add(name=name)
        for field, number, nested in fields:
            if nested is None:
                m.field.add(name=field, number=number, type=_F.TYPE_BYTES, label=_F.LABEL_OPTIONAL)
            else:
                m.field.add(
                    name=field,
                    number=number,
                    type=_F.TYPE_MESSAGE,
                    label=_F.LABEL_REPEATED,
                    type_name=f".otlpd.skeleton.{nested}",
                )

    # Field numbers are those of opentelemetry-proto's trace.proto and logs.proto.
    message("Span", ("trace_id", 1, None), ("span_id", 2, None), ("parent_span_id", 4, None))
    message("ScopeSpans", ("spans", 2, "Span"))
    message("ResourceSpans", ("scope_spans", 2, "ScopeSpans"))
    message("Traces", ("resource_spans", 1, "ResourceSpans"))
    message("LogRecord", ("trace_id", 9, None), ("span_id", 10, None))
    message("ScopeLogs", ("log_records", 2, "LogRecord"))
    message("ResourceLogs", ("scope_logs", 2, "ScopeLogs"))
    message("Logs", ("resource_logs", 1, "ResourceLogs"))
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fd)
    return (
        message_factory.GetMessageClass(pool.FindMessageTypeByName("otlpd.skeleton.Traces")),
        message_factory.GetMessageClass(pool.FindMessageTypeByName("otlpd.skeleton.Logs")),
    )


_TRACES, _LOGS = _skeletons()

# One scope's items, re-serialized: each item is tag 0x12, its length, then its
# id fields in field order. A valid span has trace_id (0x0a, 16 non-zero bytes),
# span_id (0x12, 8 non-zero bytes) and maybe parent_span_id (0x22, 8 bytes).
# A log record has each id either absent or of its exact length.
_ID16 = rb"(?!\x00{16}).{16}"
_ID8 = rb"(?!\x00{8}).{8}"
_VALID_SPANS = re.compile(
    rb"(?:\x12\x1c\x0a\x10" + _ID16 + rb"\x12\x08" + _ID8
    + rb"|\x12\x26\x0a\x10" + _ID16 + rb"\x12\x08" + _ID8 + rb"\x22\x08.{8})*",
    re.DOTALL,
)  # fmt: skip
_VALID_LOGS = re.compile(
    rb"(?:\x12\x00|\x12\x12\x4a\x10.{16}|\x12\x0a\x52\x08.{8}|\x12\x1c\x4a\x10.{16}\x52\x08.{8})*",
    re.DOTALL,
)


def _all_ids_valid(message: ExportRequest, data: bytes) -> bool:
    try:
        if isinstance(message, trace_svc.ExportTraceServiceRequest):
            traces = _TRACES.FromString(data)
            traces.DiscardUnknownFields()
            scopes = [ss for rs in traces.resource_spans for ss in rs.scope_spans]
            pattern = _VALID_SPANS
        elif isinstance(message, logs_svc.ExportLogsServiceRequest):
            logs = _LOGS.FromString(data)
            logs.DiscardUnknownFields()
            scopes = [sl for rl in logs.resource_logs for sl in rl.scope_logs]
            pattern = _VALID_LOGS
        else:
            return True  # metrics carry no ids that a peer would reject
    except DecodeError:
        return False  # let the exact path decide
    return all(pattern.fullmatch(scope.SerializeToString()) is not None for scope in scopes)
