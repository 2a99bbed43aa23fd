"""Drop items whose ids a peer would reject, so one bad span cannot sink a batch.

Batching concatenates requests from many clients; an upstream that refuses
a batch for one malformed id would lose everyone's data. So ids are checked
at the edge and bad items are removed and reported as OTLP partial success.
This is input validation, the part of decoding that upb leaves out (the
Collector's decoder rejects such ids too), not optional per-span processing;
it costs ~0.3 µs per span, measured in docs/architecture.md.
"""

from __future__ import annotations

from typing import Any

from opentelemetry.proto.collector.logs.v1 import logs_service_pb2 as logs_svc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as trace_svc

from otlpd.pdata import ExportRequest

_ZERO_TRACE = bytes(16)
_ZERO_SPAN = bytes(8)
_SPAN_WHY = "spans must have a 16-byte non-zero trace_id and an 8-byte non-zero span_id"
_LOG_WHY = "log records' trace_id must be empty or 16 bytes and span_id empty or 8 bytes"


def reject_invalid(message: ExportRequest) -> tuple[int, str]:
    """Remove invalid items in place; return (how many, why)."""
    if isinstance(message, trace_svc.ExportTraceServiceRequest):
        rejected = 0
        for rs in message.resource_spans:
            for ss in rs.scope_spans:
                bad = _bad_spans(ss.spans)
                if bad:
                    _delete(ss.spans, bad)
                    rejected += len(bad)
        return rejected, _SPAN_WHY if rejected else ""
    if isinstance(message, logs_svc.ExportLogsServiceRequest):
        rejected = 0
        for rl in message.resource_logs:
            for sl in rl.scope_logs:
                bad = _bad_logs(sl.log_records)
                if bad:
                    _delete(sl.log_records, bad)
                    rejected += len(bad)
        return rejected, _LOG_WHY if rejected else ""
    return 0, ""


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


def _delete(items: Any, indexes: list[int]) -> None:
    for i in reversed(indexes):
        del items[i]
