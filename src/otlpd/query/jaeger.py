"""A Jaeger-compatible read API (``/api/services``, ``/api/traces`` …).

The shapes are those of Jaeger's HTTP JSON API (``jaeger-query``'s
``/api``), so the Jaeger UI and Grafana's Jaeger data source can read otlpd.
OTLP → Jaeger mapping as in the Collector's translator: resource attributes
are process tags, span kind / status / scope become ``span.kind``,
``otel.status_code``, ``error``, ``otel.scope.*`` tags, events are logs, the
parent is a CHILD_OF reference and links are FOLLOWS_FROM references.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

from aiohttp import web
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.resource.v1 import resource_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from otlpd.config.units import parse_duration
from otlpd.query import params
from otlpd.query.api import NotFound, QueryApi, any_segment
from otlpd.query.params import BadRequest
from otlpd.store.columns import plain
from otlpd.store.engine import SpanRow, TraceQuery

_KINDS = {2: "server", 3: "client", 4: "producer", 5: "consumer", 1: "internal"}
_MAX_LIMIT = 1500


def _envelope(data: Any, total: int | None = None) -> dict[str, Any]:
    return {
        "data": data,
        "total": total if total is not None else (len(data) if isinstance(data, list) else 0),
        "limit": 0,
        "offset": 0,
        "errors": None,
    }


def fail(status: int, message: str) -> web.Response:
    body = {"data": None, "total": 0, "limit": 0, "offset": 0, "errors": [{"code": status, "msg": message}]}
    return web.json_response(body, status=status)


class JaegerApi:
    def __init__(self, api: QueryApi) -> None:
        self._api = api

    def add_routes(self, app: web.Application) -> None:
        routes = {
            "/api/services": self.services,
            "/api/services/{service}/operations": self.service_operations,
            "/api/operations": self.operations,
            "/api/traces": self.traces,
            "/api/traces/{trace_id}": self.trace,
        }
        for path, handler in routes.items():
            app.router.add_get(any_segment(path), self._api.wrap(path, handler, fail))

    async def services(self, request: web.Request) -> web.Response:
        names = await self._api.query(lambda e: e.services())
        return web.json_response(_envelope(names))

    async def service_operations(self, request: web.Request) -> web.Response:
        service = request.match_info["service"]
        ops = await self._api.query(lambda e: e.operations(service))
        names = sorted({name for name, _ in ops})
        return web.json_response(_envelope(names))

    async def operations(self, request: web.Request) -> web.Response:
        service = params.text(request.query, "service")
        if service is None:
            raise BadRequest("parameter 'service' is required")
        kind = params.text(request.query, "spanKind")
        ops = await self._api.query(lambda e: e.operations(service))
        data = [
            {"name": name, "spanKind": _KINDS.get(k, "")}
            for name, k in ops
            if kind is None or _KINDS.get(k, "") == kind
        ]
        return web.json_response(_envelope(data))

    async def trace(self, request: web.Request) -> web.Response:
        trace_id = _trace_id(request.match_info["trace_id"], "trace id")
        rows = await self._api.query(lambda e: e.trace(trace_id))
        if not rows:
            raise NotFound("trace not found")
        return web.json_response(_envelope([jaeger_trace(trace_id, rows)]))

    async def traces(self, request: web.Request) -> web.Response:
        q = request.query
        ids = [_trace_id(v, "traceID") for v in q.getall("traceID", [])]
        # Every parameter is checked, as jaeger-query does, even those trace ids make unused.
        query = _search(q, service_required=not ids)
        if not ids:
            found = await self._api.query(lambda e: e.find_traces(query))
            ids = [t.trace_id for t in found]
        found_rows = await self._api.query(lambda e: [(t, e.trace(t)) for t in ids])
        out = [jaeger_trace(t, rows) for t, rows in found_rows if rows]
        return web.json_response(_envelope(out))


def _trace_id(raw: str, what: str) -> bytes:
    """Jaeger ids may drop leading zeros; 64-bit ids are the low half of a 128-bit one."""
    value = raw.strip()
    if not 1 <= len(value) <= 32 or not params.is_hex(value):  # checked as sent, before padding
        raise BadRequest(f"{what} must be 1 to 32 hex digits, got {raw!r}")
    return params.hex_id(value.rjust(32, "0"), 16, what)


def _duration(q: Any, name: str) -> int | None:
    raw = params.text(q, name)
    if raw is None:
        return None
    try:
        seconds = parse_duration(raw)
    except ValueError as exc:
        raise BadRequest(f"cannot parse {name}: {exc}") from None
    if seconds * 1e9 > params.MAX_NS:
        raise BadRequest(f"{name} is too long, got {raw!r}")
    return round(seconds * 1e9)


def _search(q: Any, service_required: bool = True) -> TraceQuery:
    service = params.text(q, "service")
    if service is None and service_required:
        raise BadRequest("parameter 'service' is required")
    tags: list[tuple[str, str]] = []
    raw_tags = params.text(q, "tags")
    if raw_tags is not None:
        try:
            parsed = json.loads(raw_tags)
        except ValueError:
            raise BadRequest("malformed 'tags' parameter: expected a JSON object") from None
        if not isinstance(parsed, dict):
            raise BadRequest("malformed 'tags' parameter: expected a JSON object")
        tags.extend((str(k), v if isinstance(v, str) else json.dumps(v)) for k, v in parsed.items())
    for tag in q.getall("tag", []):
        key, sep, value = tag.partition(":")
        if not sep or not key:
            raise BadRequest(f"malformed 'tag' parameter {tag!r}: expected key:value")
        tags.append((key, value))
    end = params.timestamp_ns(q, "end", unit_ns=1000)
    start = params.timestamp_ns(q, "start", unit_ns=1000)
    lookback = params.text(q, "lookback")
    if start is None and lookback not in (None, "custom"):
        span = _duration(q, "lookback") or 0
        start = (time.time_ns() if end is None else end) - span
    params.time_range(start, end)
    min_d, max_d = _duration(q, "minDuration"), _duration(q, "maxDuration")
    if min_d is not None and max_d is not None and min_d > max_d:
        raise BadRequest("minDuration must not be greater than maxDuration")
    # bool(json) → "true"/"false", numbers as written: attribute patterns read every type
    return TraceQuery(
        service=service,
        operation=params.text(q, "operation"),
        attributes=tuple((k, v.lower() if v in ("True", "False") else v) for k, v in tags),
        min_duration_ns=min_d,
        max_duration_ns=max_d,
        errors_only=False,
        start_ns=start,
        end_ns=end,
        limit=params.integer(q, "limit", 20, 1, _MAX_LIMIT),
    )


def _tag(key: str, value: common_pb2.AnyValue) -> dict[str, Any]:
    kind = value.WhichOneof("value")
    if kind == "bool_value":
        return {"key": key, "type": "bool", "value": value.bool_value}
    if kind == "int_value":
        return {"key": key, "type": "int64", "value": value.int_value}
    if kind == "double_value":
        return {"key": key, "type": "float64", "value": value.double_value}
    if kind == "bytes_value":
        return {"key": key, "type": "binary", "value": base64.b64encode(value.bytes_value).decode()}
    if kind in ("array_value", "kvlist_value"):
        return {"key": key, "type": "string", "value": json.dumps(plain(value), separators=(",", ":"))}
    return {"key": key, "type": "string", "value": value.string_value}


def _tags(kvs: Any) -> list[dict[str, Any]]:
    return [_tag(kv.key, kv.value) for kv in kvs]


def _string(key: str, value: str) -> dict[str, Any]:
    return {"key": key, "type": "string", "value": value}


def jaeger_trace(trace_id: bytes, rows: list[SpanRow]) -> dict[str, Any]:
    processes: dict[tuple[str, bytes], str] = {}
    process_json: dict[str, Any] = {}
    spans = []
    for row in rows:
        key = (row.service_name, row.resource)
        pid = processes.get(key)
        if pid is None:
            pid = f"p{len(processes) + 1}"
            processes[key] = pid
            resource = resource_pb2.Resource.FromString(row.resource)
            process_json[pid] = {
                "serviceName": row.service_name,
                "tags": [_tag(kv.key, kv.value) for kv in resource.attributes if kv.key != "service.name"],
            }
        spans.append(_span(row, pid))
    return {"traceID": trace_id.hex(), "spans": spans, "processes": process_json, "warnings": None}


def _span(row: SpanRow, pid: str) -> dict[str, Any]:
    s = trace_pb2.Span.FromString(row.data)
    scope = common_pb2.InstrumentationScope.FromString(row.scope)
    tags = _tags(s.attributes)
    if s.kind in _KINDS and s.kind != 1:
        tags.append(_string("span.kind", _KINDS[s.kind]))
    if s.status.code == 1:
        tags.append(_string("otel.status_code", "OK"))
    elif s.status.code == 2:
        tags.append(_string("otel.status_code", "ERROR"))
        tags.append({"key": "error", "type": "bool", "value": True})
    if s.status.message:
        tags.append(_string("otel.status_description", s.status.message))
    if scope.name:
        tags.append(_string("otel.scope.name", scope.name))
    if scope.version:
        tags.append(_string("otel.scope.version", scope.version))
    if s.trace_state:
        tags.append(_string("w3c.tracestate", s.trace_state))
    references = []
    if s.parent_span_id:
        references.append(
            {"refType": "CHILD_OF", "traceID": s.trace_id.hex(), "spanID": s.parent_span_id.hex()}
        )
    references.extend(
        {"refType": "FOLLOWS_FROM", "traceID": link.trace_id.hex(), "spanID": link.span_id.hex()}
        for link in s.links
    )
    return {
        "traceID": s.trace_id.hex(),
        "spanID": s.span_id.hex(),
        "operationName": s.name,
        "references": references,
        "flags": s.flags & 0xFF or 1,
        "startTime": s.start_time_unix_nano // 1000,
        "duration": max(0, s.end_time_unix_nano - s.start_time_unix_nano) // 1000,
        "tags": tags,
        "logs": [
            {
                "timestamp": e.time_unix_nano // 1000,
                # the Collector's translator: an attribute named "event" wins over the event's name
                "fields": [
                    *([] if any(kv.key == "event" for kv in e.attributes) else [_string("event", e.name)]),
                    *_tags(e.attributes),
                ],
            }
            for e in s.events
        ],
        "processID": pid,
        "warnings": None,
    }
