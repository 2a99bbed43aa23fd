"""Stored items → the JSON otlpd's API answers with.

Timestamps in nanoseconds are strings, as in OTLP/JSON (JavaScript numbers
lose precision past 2^53); durations are numbers. Attributes are plain JSON
objects, bytes as base64.
"""

from __future__ import annotations

from typing import Any

from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.logs.v1 import logs_pb2
from opentelemetry.proto.resource.v1 import resource_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from otlpd.store.columns import attributes, plain
from otlpd.store.engine import LogRow, SpanRow, TraceSummary

SPAN_KINDS = ("unspecified", "internal", "server", "client", "producer", "consumer")
STATUS_CODES = ("unset", "ok", "error")


def span_kind(kind: int) -> str:
    return SPAN_KINDS[kind] if 0 <= kind < len(SPAN_KINDS) else str(kind)


def resource_json(data: bytes, schema_url: str = "") -> dict[str, Any]:
    resource = resource_pb2.Resource.FromString(data)
    out: dict[str, Any] = {"attributes": attributes(resource.attributes)}
    if schema_url:
        out["schemaUrl"] = schema_url
    return out


def scope_json(data: bytes, schema_url: str = "") -> dict[str, Any]:
    scope = common_pb2.InstrumentationScope.FromString(data)
    out: dict[str, Any] = {"name": scope.name, "version": scope.version}
    if scope.attributes:
        out["attributes"] = attributes(scope.attributes)
    if schema_url:
        out["schemaUrl"] = schema_url
    return out


def trace_summary(t: TraceSummary) -> dict[str, Any]:
    return {
        "traceId": t.trace_id.hex(),
        "rootService": t.root_service,
        "rootName": t.root_name,
        "startTimeUnixNano": str(t.start_ns),
        "durationNs": t.duration_ns,
        "spanCount": t.span_count,
        "errorCount": t.error_count,
        "services": t.services,
    }


def span(row: SpanRow) -> dict[str, Any]:
    s = trace_pb2.Span.FromString(row.data)
    code = s.status.code
    out: dict[str, Any] = {
        "traceId": s.trace_id.hex(),
        "spanId": s.span_id.hex(),
        "parentSpanId": s.parent_span_id.hex(),
        "name": s.name,
        "kind": span_kind(s.kind),
        "serviceName": row.service_name,
        "startTimeUnixNano": str(s.start_time_unix_nano),
        "endTimeUnixNano": str(s.end_time_unix_nano),
        "durationNs": max(0, s.end_time_unix_nano - s.start_time_unix_nano),
        "attributes": attributes(s.attributes),
        "resource": resource_json(row.resource, row.resource_schema_url),
        "scope": scope_json(row.scope, row.scope_schema_url),
        "events": [
            {
                "timeUnixNano": str(e.time_unix_nano),
                "name": e.name,
                "attributes": attributes(e.attributes),
            }
            for e in s.events
        ],
        "links": [
            {
                "traceId": link.trace_id.hex(),
                "spanId": link.span_id.hex(),
                "traceState": link.trace_state,
                "attributes": attributes(link.attributes),
            }
            for link in s.links
        ],
        "status": {
            "code": STATUS_CODES[code] if 0 <= code < len(STATUS_CODES) else str(code),
            "message": s.status.message,
        },
    }
    if s.trace_state:
        out["traceState"] = s.trace_state
    return out


SEVERITIES = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL")


def severity_name(number: int) -> str:
    """The short name of a severity number (1-4 TRACE ... 21-24 FATAL), as the data model defines."""
    if 1 <= number <= 24:
        return SEVERITIES[(number - 1) // 4]
    return "UNSPECIFIED"


def log(row: LogRow) -> dict[str, Any]:
    r = logs_pb2.LogRecord.FromString(row.data)
    return {
        "timeUnixNano": str(r.time_unix_nano or r.observed_time_unix_nano),
        "observedTimeUnixNano": str(r.observed_time_unix_nano),
        "serviceName": row.service_name,
        "severityNumber": r.severity_number,
        "severityText": r.severity_text or severity_name(r.severity_number),
        "body": plain(r.body) if r.HasField("body") else None,
        "attributes": attributes(r.attributes),
        "traceId": r.trace_id.hex(),
        "spanId": r.span_id.hex(),
        "eventName": r.event_name,
        "resource": resource_json(row.resource, row.resource_schema_url),
        "scope": scope_json(row.scope, row.scope_schema_url),
    }
