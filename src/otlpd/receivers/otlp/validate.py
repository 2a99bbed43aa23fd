"""Drop items whose ids a peer would reject, so one bad span cannot sink a batch.

Batching concatenates requests from many clients; an upstream that refuses
a batch for one malformed id would lose everyone's data. So ids are checked
at the edge and bad items are removed and reported as OTLP partial success.
This is input validation, the part of decoding that upb leaves out (the
Collector's decoder rejects such ids too), not optional per-span processing.

The common case (every id valid) is decided without a Python loop over items
(idcheck.py). Only when that says "not sure" does the per-item loop here find
and remove the bad items. Both are in docs/architecture.md with their cost.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from opentelemetry.proto.collector.logs.v1 import logs_service_pb2 as logs_svc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as trace_svc

from otlpd.pdata import ExportRequest
from otlpd.receivers.otlp.idcheck import all_ids_valid

_ZERO_TRACE = bytes(16)
_ZERO_SPAN = bytes(8)
_SPAN_WHY = "spans must have a 16-byte non-zero trace_id and an 8-byte non-zero span_id"
_LOG_WHY = "log records' trace_id must be empty or 16 bytes and span_id empty or 8 bytes"


def reject_invalid(
    message: ExportRequest, data: bytes | None = None, count: int | None = None, spans: bytes | None = None
) -> tuple[int, str]:
    """Remove invalid items in place; return (how many, why).

    ``data``, the serialized ``message`` when the caller has it, enables the
    fast check (idcheck.py); without it (OTLP/JSON) the per-item loop runs.
    ``count``: the request's item count, and ``spans``, its span skeleton
    (``skeleton.canonical_spans``), if the caller has them already.
    """
    if data is not None and all_ids_valid(message, data, count, spans):
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
