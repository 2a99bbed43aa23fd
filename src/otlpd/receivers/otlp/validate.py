"""Drop items whose ids a peer would reject, so one bad span cannot sink a batch.

Batching concatenates requests from many clients; an upstream that refuses
a batch for one malformed id would lose everyone's data. So ids are checked
at the edge and bad items are removed and reported as OTLP partial success.
Checks are length-only: upb has already validated the wire format.
"""

from __future__ import annotations

from opentelemetry.proto.collector.logs.v1 import logs_service_pb2 as logs_svc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as trace_svc

from otlpd.pdata import ExportRequest


def reject_invalid(message: ExportRequest) -> tuple[int, str]:
    """Remove invalid items in place; return (how many, why)."""
    if isinstance(message, trace_svc.ExportTraceServiceRequest):
        return _spans(message)
    if isinstance(message, logs_svc.ExportLogsServiceRequest):
        return _logs(message)
    return 0, ""


def _bad_span(span: object) -> bool:
    tid = span.trace_id  # type: ignore[attr-defined]
    sid = span.span_id  # type: ignore[attr-defined]
    pid = span.parent_span_id  # type: ignore[attr-defined]
    return (
        len(tid) != 16
        or len(sid) != 8
        or (len(pid) != 0 and len(pid) != 8)
        or tid == b"\0" * 16
        or sid == b"\0" * 8
    )


def _spans(message: trace_svc.ExportTraceServiceRequest) -> tuple[int, str]:
    rejected = 0
    for rs in message.resource_spans:
        for ss in rs.scope_spans:
            spans = ss.spans
            bad = [i for i, span in enumerate(spans) if _bad_span(span)]
            for i in reversed(bad):
                del spans[i]
            rejected += len(bad)
    why = "spans must have a 16-byte non-zero trace_id and an 8-byte non-zero span_id"
    return rejected, why if rejected else ""


def _logs(message: logs_svc.ExportLogsServiceRequest) -> tuple[int, str]:
    # Log records may have no trace context at all; only wrong lengths are invalid.
    rejected = 0
    for rl in message.resource_logs:
        for sl in rl.scope_logs:
            records = sl.log_records
            bad = [
                i
                for i, r in enumerate(records)
                if len(r.trace_id) not in (0, 16) or len(r.span_id) not in (0, 8)
            ]
            for i in reversed(bad):
                del records[i]
            rejected += len(bad)
    why = "log records' trace_id must be empty or 16 bytes and span_id empty or 8 bytes"
    return rejected, why if rejected else ""
