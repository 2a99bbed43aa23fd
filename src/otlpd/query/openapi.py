"""The OpenAPI 3.0 description of the query APIs, served at ``/api/openapi.json``.

Written by hand next to the handlers, and checked against them by property
tests (schemathesis) that call every operation with generated parameters and
validate status codes and response bodies against this document.
"""

from __future__ import annotations

from typing import Any

from otlpd import __version__


def _param(
    name: str,
    description: str,
    schema: dict[str, Any] | None = None,
    where: str = "query",
    required: bool = False,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": name,
        "in": where,
        "description": description,
        "schema": schema or {"type": "string"},
    }
    if where == "path" or required:
        out["required"] = True
    elif where == "query":
        # An empty value means "not given" (``?minDuration=&limit=20``, as the Jaeger UI sends).
        out["allowEmptyValue"] = True
    return out


def _ok(schema: str, description: str = "OK") -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
    }


_ERROR = {
    "description": "error",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
}
_JAEGER_ERROR = {
    "description": "error",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/JaegerError"}}},
}
_TIME = "Unix time in nanoseconds, or an RFC 3339 time such as 2026-01-02T15:04:05Z."
_DURATION = "A duration such as 250ms or 1.5s, or an integer number of nanoseconds."
# Attribute filters are query parameters named ``attr.<key>``: OpenAPI 3.0 cannot declare a family
# of names by prefix (a form-exploded object parameter would mean bare ``<key>=<value>`` pairs), so
# they are described in the operations' text, not listed as a parameter.
_ATTR = (
    " Attribute filters: any number of `attr.<key>=<value>` query parameters"
    " (e.g. `attr.http.route=/cart`); every one must match."
)
_TRACE_IDS = _param(
    "traceID", "Fetch these traces instead of searching.", {"type": "array", "items": {"type": "string"}}
)
del _TRACE_IDS["allowEmptyValue"]  # an empty id is a bad id, as in Jaeger


def _responses(ok: dict[str, Any], *codes: int, error: dict[str, Any] = _ERROR) -> dict[str, Any]:
    out: dict[str, Any] = {"200": ok}
    for code in (*codes, 503):
        out[str(code)] = error
    return out


_ANY_MAP = {"type": "object", "additionalProperties": True}
_NANOS = {"type": "string", "pattern": "^-?[0-9]+$", "description": "nanoseconds since the Unix epoch"}
_SCHEMAS: dict[str, Any] = {
    "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
    "Services": {
        "type": "object",
        "required": ["services"],
        "properties": {"services": {"type": "array", "items": {"type": "string"}}},
    },
    "Operations": {
        "type": "object",
        "required": ["operations"],
        "properties": {
            "operations": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["name", "spanKind"],
                    "properties": {"name": {"type": "string"}, "spanKind": {"type": "string"}},
                },
            }
        },
    },
    "TraceSummary": {
        "type": "object",
        "required": [
            "traceId",
            "rootService",
            "rootName",
            "startTimeUnixNano",
            "durationNs",
            "spanCount",
            "errorCount",
            "services",
        ],
        "properties": {
            "traceId": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
            "rootService": {"type": "string"},
            "rootName": {"type": "string"},
            "startTimeUnixNano": _NANOS,
            "durationNs": {"type": "integer", "minimum": 0},
            "spanCount": {"type": "integer", "minimum": 1},
            "errorCount": {"type": "integer", "minimum": 0},
            "services": {"type": "array", "items": {"type": "string"}},
        },
    },
    "Traces": {
        "type": "object",
        "required": ["traces"],
        "properties": {"traces": {"type": "array", "items": {"$ref": "#/components/schemas/TraceSummary"}}},
    },
    "Resource": {
        "type": "object",
        "required": ["attributes"],
        "properties": {"attributes": _ANY_MAP, "schemaUrl": {"type": "string"}},
    },
    "Scope": {
        "type": "object",
        "required": ["name", "version"],
        "properties": {
            "name": {"type": "string"},
            "version": {"type": "string"},
            "attributes": _ANY_MAP,
            "schemaUrl": {"type": "string"},
        },
    },
    "Span": {
        "type": "object",
        "required": [
            "traceId",
            "spanId",
            "parentSpanId",
            "name",
            "kind",
            "serviceName",
            "startTimeUnixNano",
            "endTimeUnixNano",
            "durationNs",
            "attributes",
            "resource",
            "scope",
            "events",
            "links",
            "status",
        ],
        "properties": {
            "traceId": {"type": "string"},
            "spanId": {"type": "string"},
            "parentSpanId": {"type": "string"},
            "traceState": {"type": "string"},
            "name": {"type": "string"},
            "kind": {"type": "string"},
            "serviceName": {"type": "string"},
            "startTimeUnixNano": _NANOS,
            "endTimeUnixNano": _NANOS,
            "durationNs": {"type": "integer", "minimum": 0},
            "attributes": _ANY_MAP,
            "resource": {"$ref": "#/components/schemas/Resource"},
            "scope": {"$ref": "#/components/schemas/Scope"},
            "events": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["timeUnixNano", "name", "attributes"],
                    "properties": {
                        "timeUnixNano": _NANOS,
                        "name": {"type": "string"},
                        "attributes": _ANY_MAP,
                    },
                },
            },
            "links": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["traceId", "spanId", "traceState", "attributes"],
                    "properties": {
                        "traceId": {"type": "string"},
                        "spanId": {"type": "string"},
                        "traceState": {"type": "string"},
                        "attributes": _ANY_MAP,
                    },
                },
            },
            "status": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
    "Trace": {
        "type": "object",
        "required": ["traceId", "spans"],
        "properties": {
            "traceId": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
            "spans": {"type": "array", "items": {"$ref": "#/components/schemas/Span"}},
        },
    },
    "LogRecord": {
        "type": "object",
        "required": [
            "timeUnixNano",
            "observedTimeUnixNano",
            "serviceName",
            "severityNumber",
            "severityText",
            "body",
            "attributes",
            "traceId",
            "spanId",
            "eventName",
            "resource",
            "scope",
        ],
        "properties": {
            "timeUnixNano": _NANOS,
            "observedTimeUnixNano": _NANOS,
            "serviceName": {"type": "string"},
            "severityNumber": {"type": "integer"},
            "severityText": {"type": "string"},
            "body": {"nullable": True},
            "attributes": _ANY_MAP,
            "traceId": {"type": "string"},
            "spanId": {"type": "string"},
            "eventName": {"type": "string"},
            "resource": {"$ref": "#/components/schemas/Resource"},
            "scope": {"$ref": "#/components/schemas/Scope"},
        },
    },
    "Logs": {
        "type": "object",
        "required": ["logs"],
        "properties": {"logs": {"type": "array", "items": {"$ref": "#/components/schemas/LogRecord"}}},
    },
    "Metrics": {
        "type": "object",
        "required": ["metrics"],
        "properties": {
            "metrics": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["name", "type", "unit", "description"],
                    "properties": {
                        "name": {"type": "string"},
                        "type": {
                            "type": "string",
                            "enum": ["gauge", "sum", "histogram", "exponential_histogram", "summary"],
                        },
                        "unit": {"type": "string"},
                        "description": {"type": "string"},
                    },
                },
            }
        },
    },
    "Series": {
        "type": "object",
        "required": ["name", "type", "unit", "description", "start", "end", "stepNs", "series"],
        "properties": {
            "name": {"type": "string"},
            "type": {"type": "string"},
            "unit": {"type": "string"},
            "description": {"type": "string"},
            "start": _NANOS,
            "end": _NANOS,
            "stepNs": {"type": "integer", "minimum": 1},
            "series": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["serviceName", "attributes", "points"],
                    "properties": {
                        "serviceName": {"type": "string"},
                        "attributes": _ANY_MAP,
                        "points": {
                            "type": "array",
                            "description": "value (gauge, sum); count, sum, p50, p90, p95, p99 (histograms);"
                            " count, sum, quantiles (summary)",
                            "items": {
                                "type": "object",
                                "required": ["timeUnixNano"],
                                "properties": {"timeUnixNano": _NANOS},
                                "additionalProperties": True,
                            },
                        },
                    },
                },
            },
        },
    },
    "JaegerError": {
        "type": "object",
        "required": ["data", "errors"],
        "properties": {
            "data": {"nullable": True},
            "errors": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["code", "msg"],
                    "properties": {"code": {"type": "integer"}, "msg": {"type": "string"}},
                },
            },
        },
    },
    "JaegerList": {
        "type": "object",
        "required": ["data", "total"],
        "properties": {"data": {"type": "array"}, "total": {"type": "integer"}, "errors": {"nullable": True}},
    },
}


def _limit(what: str, default: int, most: int) -> dict[str, Any]:
    schema = {"type": "integer", "minimum": 1, "maximum": most}
    return _param("limit", f"At most this many {what} (default {default}).", schema)


_SERVICE = _param("service", "Service name (resource attribute service.name).", where="path")


def document() -> dict[str, Any]:
    paths: dict[str, Any] = {
        "/api/v1/services": {
            "get": {
                "operationId": "listServices",
                "summary": "Services that sent spans",
                "responses": _responses(_ok("Services")),
            }
        },
        "/api/v1/services/{service}/operations": {
            "get": {
                "operationId": "listOperations",
                "summary": "Span names (and kinds) of a service",
                "parameters": [_SERVICE],
                "responses": _responses(_ok("Operations")),
            }
        },
        "/api/v1/traces": {
            "get": {
                "operationId": "findTraces",
                "summary": "Traces with a span matching every condition, most recent first",
                "description": "A trace is found when one of its spans meets every condition given." + _ATTR
                + " A filter matches span, event and link attributes and the resource's;"
                " the value matches a string, int, double or bool attribute it can be read as.",
                "parameters": [
                    _param("service", "Service name."),
                    _param("operation", "Span name."),
                    _param("minDuration", _DURATION),
                    _param("maxDuration", _DURATION),
                    _param("status", "Only spans with status error.", {"type": "string", "enum": ["error"]}),
                    _param("start", _TIME),
                    _param("end", _TIME),
                    _limit("traces", 20, 1000),
                ],
                "responses": _responses(_ok("Traces"), 400),
            }
        },
        "/api/v1/traces/{traceId}": {
            "get": {
                "operationId": "getTrace",
                "summary": "Every span of a trace",
                "parameters": [_param("traceId", "32 hex digits.", where="path")],
                "responses": _responses(_ok("Trace"), 400, 404),
            }
        },
        "/api/v1/logs": {
            "get": {
                "operationId": "findLogs",
                "summary": "Log records, most recent first",
                "parameters": [
                    _param("service", "Service name."),
                    _param("severity", "Minimum severity: TRACE, DEBUG, INFO, WARN, ERROR, FATAL or 1-24."),
                    _param("q", "Text the body contains (case-insensitive)."),
                    _param("traceId", "Only records of this trace (32 hex digits)."),
                    _param("start", _TIME),
                    _param("end", _TIME),
                    _limit("records", 100, 1000),
                ],
                "responses": _responses(_ok("Logs"), 400),
            }
        },
        "/api/v1/metrics": {
            "get": {
                "operationId": "listMetrics",
                "summary": "Metric names, types and units",
                "responses": _responses(_ok("Metrics")),
            }
        },
        "/api/v1/metrics/{name}/series": {
            "get": {
                "operationId": "metricSeries",
                "summary": "Time series of a metric, one value per step",
                "description": "Points are grouped into series by resource and attributes." + _ATTR
                + " `attr.service.name` filters by the resource's service name.",
                "parameters": [
                    _param("name", "Metric name.", where="path"),
                    _param("start", _TIME + " Default: an hour before end."),
                    _param("end", _TIME + " Default: now."),
                    _param("step", _DURATION + " Default: (end - start) / 120, at least 1s."),
                ],
                "responses": _responses(_ok("Series"), 400, 404),
            }
        },
        "/api/services": {
            "get": {
                "operationId": "jaegerServices",
                "tags": ["jaeger"],
                "summary": "Jaeger: service names",
                "responses": _responses(_ok("JaegerList"), error=_JAEGER_ERROR),
            }
        },
        "/api/services/{service}/operations": {
            "get": {
                "operationId": "jaegerServiceOperations",
                "tags": ["jaeger"],
                "summary": "Jaeger: operation names of a service",
                "parameters": [_SERVICE],
                "responses": _responses(_ok("JaegerList"), error=_JAEGER_ERROR),
            }
        },
        "/api/operations": {
            "get": {
                "operationId": "jaegerOperations",
                "tags": ["jaeger"],
                "summary": "Jaeger: operations with span kinds",
                "parameters": [
                    _param("service", "Service name.", required=True),
                    _param("spanKind", "server, client, producer, consumer or internal."),
                ],
                "responses": _responses(_ok("JaegerList"), 400, error=_JAEGER_ERROR),
            }
        },
        "/api/traces": {
            "get": {
                "operationId": "jaegerFindTraces",
                "tags": ["jaeger"],
                "summary": "Jaeger: search traces (full traces, as jaeger-query returns them)",
                "parameters": [
                    _param("service", "Service name (required unless traceID is given)."),
                    _param("operation", "Operation name."),
                    _param("tags", 'JSON object of tags, e.g. {"http.status_code":"500"}.'),
                    _param("minDuration", "Go duration, e.g. 1.2s, 100ms."),
                    _param("maxDuration", "Go duration."),
                    _param("start", "Unix time in microseconds."),
                    _param("end", "Unix time in microseconds."),
                    _param("lookback", "How far back from end when start is not given, e.g. 1h."),
                    _limit("traces", 20, 1500),
                    _TRACE_IDS,
                ],
                "responses": _responses(_ok("JaegerList"), 400, error=_JAEGER_ERROR),
            }
        },
        "/api/traces/{traceId}": {
            "get": {
                "operationId": "jaegerGetTrace",
                "tags": ["jaeger"],
                "summary": "Jaeger: one trace",
                "parameters": [_param("traceId", "Hex trace id (leading zeros optional).", where="path")],
                "responses": _responses(_ok("JaegerList"), 400, 404, error=_JAEGER_ERROR),
            }
        },
    }  # fmt: skip
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "otlpd query API",
            "version": __version__,
            "description": "Traces, logs and metrics kept by otlpd's store exporter (docs/query.md).",
        },
        "paths": paths,
        "components": {"schemas": _SCHEMAS},
    }
