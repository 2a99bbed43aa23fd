"""OpenTelemetry SDK data in, read back through every query endpoint with exact values.

One otlpd (otlp receiver → batch → store) for the module, loaded once with the
known data set of :mod:`tests.store.dataset` (traces and logs from the SDK
over gRPC and HTTP, metrics built by hand with exact bucket counts plus one
SDK export). Every test below only reads.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.store import dataset
from tests.store.dataset import BACKEND_RESOURCE, FRONTEND_RESOURCE, SCHEMA_URL, Dataset
from tests.store.support import MS, SECOND, get, ok, store_config
from tests.support.process import Otlpd


@pytest.fixture(scope="module")
def live() -> Iterator[tuple[Otlpd, Dataset]]:
    with Otlpd(store_config("db/otlpd.duckdb")) as otlpd:
        data = dataset.load(otlpd)
        yield otlpd, data
        assert otlpd.terminate() == 0
        errors = [e for e in otlpd.log_events() if e.get("level") == "error"]
        assert not errors, errors


@pytest.fixture(scope="module")
def admin(live: tuple[Otlpd, Dataset]) -> str:
    return live[0].admin


@pytest.fixture(scope="module")
def data(live: tuple[Otlpd, Dataset]) -> Dataset:
    return live[1]


def rfc3339(ns: int) -> str:
    """Nanoseconds as an RFC 3339 time with all nine fraction digits."""
    seconds, fraction = divmod(ns, SECOND)
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{fraction:09d}Z"


def trace_ids(admin: str, **params: Any) -> list[str]:
    return [t["traceId"] for t in ok(admin, "/api/v1/traces", params)["traces"]]


def bad_request(admin: str, path: str, params: Any, *words: str) -> str:
    """A 400 in otlpd's error shape whose message names ``words`` (the parameter)."""
    status, body = get(admin, path, params)
    assert status == 400, (path, params, status, body)
    assert set(body) == {"error"}, body
    for word in words:
        assert word in body["error"], (word, body)
    return str(body["error"])


# -- services and operations ----------------------------------------------------


def test_services(admin: str) -> None:
    assert ok(admin, "/api/v1/services") == {"services": ["backend", "frontend"]}


def test_operations_with_kinds(admin: str) -> None:
    assert ok(admin, "/api/v1/services/frontend/operations") == {
        "operations": [
            {"name": "GET /cart", "spanKind": "server"},
            {"name": "GET /health", "spanKind": "server"},
            {"name": "call backend", "spanKind": "client"},
        ]
    }
    assert ok(admin, "/api/v1/services/backend/operations") == {
        "operations": [
            {"name": "compute total", "spanKind": "internal"},
            {"name": "load cart", "spanKind": "server"},
            {"name": "process queue", "spanKind": "consumer"},
            {"name": "publish", "spanKind": "producer"},
        ]
    }
    assert ok(admin, "/api/v1/services/nobody/operations") == {"operations": []}
    # names with characters that need escaping are path segments like any other
    assert ok(admin, "/api/v1/services/{odd} name%/operations") == {"operations": []}


# -- trace search -----------------------------------------------------------------


def test_trace_summaries(admin: str, data: Dataset) -> None:
    t0, ids = data.t0, data.traces
    assert ok(admin, "/api/v1/traces") == {
        "traces": [
            {
                "traceId": ids["C"],
                "rootService": "frontend",
                "rootName": "GET /health",
                "startTimeUnixNano": str(t0 + 2 * SECOND),
                "durationNs": 1 * MS,
                "spanCount": 1,
                "errorCount": 0,
                "services": ["frontend"],
            },
            {
                "traceId": ids["B"],
                "rootService": "backend",
                "rootName": "process queue",
                "startTimeUnixNano": str(t0 + SECOND),
                "durationNs": 5 * MS,
                "spanCount": 2,
                "errorCount": 0,
                "services": ["backend"],
            },
            {
                "traceId": ids["A"],
                "rootService": "frontend",
                "rootName": "GET /cart",
                "startTimeUnixNano": str(t0),
                "durationNs": 120 * MS,
                "spanCount": 4,
                "errorCount": 1,
                "services": ["backend", "frontend"],
            },
        ]
    }


def test_trace_search_by_service_and_operation(admin: str, data: Dataset) -> None:
    a, b, c = data.traces["A"], data.traces["B"], data.traces["C"]
    assert trace_ids(admin, service="backend") == [b, a]
    assert trace_ids(admin, service="frontend") == [c, a]
    assert trace_ids(admin, service="nobody") == []
    assert trace_ids(admin, operation="GET /health") == [c]
    assert trace_ids(admin, service="backend", operation="load cart") == [a]
    # every condition must hold for the same span
    assert trace_ids(admin, service="frontend", operation="load cart") == []


def test_trace_search_by_attributes_of_every_type(admin: str, data: Dataset) -> None:
    a, b, c = data.traces["A"], data.traces["B"], data.traces["C"]
    assert trace_ids(admin, **{"attr.http.route": "/cart"}) == [a]
    assert trace_ids(admin, **{"attr.http.response.status_code": "204"}) == [c]  # int
    assert trace_ids(admin, **{"attr.http.response.status_code": "200"}) == [a]
    assert trace_ids(admin, **{"attr.cache.hit": "true"}) == [a]  # bool
    assert trace_ids(admin, **{"attr.cache.hit": "false"}) == []
    assert trace_ids(admin, **{"attr.sample.ratio": "0.25"}) == [a]  # double
    assert trace_ids(admin, **{"attr.messaging.batch.size": "7"}) == [b]
    assert trace_ids(admin, **{"attr.cache.key": "user:42"}) == [a]  # an event's attribute
    assert trace_ids(admin, **{"attr.link.kind": "batch"}) == [a]  # a link's attribute
    # resource attributes: every span of the service matches
    assert trace_ids(admin, **{"attr.deployment.environment": "staging"}) == [b, a]
    assert trace_ids(admin, **{"attr.host.cpus": "8"}) == [c, a]
    # all filters must match (the same span)
    assert trace_ids(admin, **{"attr.http.route": "/cart", "attr.http.response.status_code": "200"}) == [a]
    assert trace_ids(admin, **{"attr.http.route": "/cart", "attr.http.response.status_code": "204"}) == []
    assert trace_ids(admin, **{"attr.http.route": "/car"}) == []  # whole values, not prefixes
    assert trace_ids(admin, **{"attr.http.rout": "/cart"}) == []  # whole keys


def test_trace_search_by_duration_status_time_and_limit(admin: str, data: Dataset) -> None:
    t0 = data.t0
    a, b, c = data.traces["A"], data.traces["B"], data.traces["C"]
    assert trace_ids(admin, minDuration="50ms") == [a]
    assert trace_ids(admin, minDuration=str(100 * MS)) == [a]  # integer nanoseconds
    assert trace_ids(admin, minDuration="121ms") == []
    assert trace_ids(admin, maxDuration="2ms") == [c, b]
    assert trace_ids(admin, minDuration="1ms", maxDuration="1ms") == [c, b]
    assert trace_ids(admin, minDuration="5ms", maxDuration="10ms") == [b, a]
    assert trace_ids(admin, status="error") == [a]
    assert trace_ids(admin, status="error", service="frontend") == []
    assert trace_ids(admin, start=t0 + 500 * MS) == [c, b]
    assert trace_ids(admin, end=t0 + 1500 * MS) == [b, a]
    assert trace_ids(admin, start=t0 + 500 * MS, end=t0 + 1500 * MS) == [b]
    assert trace_ids(admin, start=rfc3339(t0 + 500 * MS), end=rfc3339(t0 + 1500 * MS)) == [b]
    # bounds are inclusive, to the nanosecond
    assert trace_ids(admin, start=rfc3339(t0 + 2 * SECOND)) == [c]
    assert trace_ids(admin, start=rfc3339(t0 + 2 * SECOND + 1)) == []
    assert trace_ids(admin, limit=1) == [c]
    assert trace_ids(admin, limit=2) == [c, b]
    assert trace_ids(admin, limit=1000) == [c, b, a]
    assert trace_ids(admin, limit=1, service="backend") == [b]
    # empty parameters are not given (as the Jaeger UI sends them)
    assert trace_ids(admin, service="", minDuration="", limit="", status="") == [c, b, a]


@pytest.mark.parametrize(
    ("params", "word"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "1001"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"limit": "1_0"}, "limit"),
        ({"minDuration": "fast"}, "minDuration"),
        ({"maxDuration": "-5ms"}, "maxDuration"),
        ({"maxDuration": "-5"}, "maxDuration"),
        ({"minDuration": "1" * 30}, "minDuration"),
        ({"minDuration": "2s", "maxDuration": "1s"}, "minDuration"),
        ({"status": "ok"}, "status"),
        ({"status": "\x1f"}, "status"),
        ({"start": "yesterday"}, "start"),
        ({"end": "2026-01-02T15:04:05"}, "end"),  # no time zone
        ({"start": "9" * 40}, "start"),
        ({"end": "-" + "9" * 40}, "end"),
        ({"start": "2", "end": "1"}, "start"),
        ({"attr.": "x"}, "attr."),
    ],
)
def test_trace_search_rejects_bad_parameters(admin: str, params: dict[str, str], word: str) -> None:
    bad_request(admin, "/api/v1/traces", params, word)


# -- one trace ------------------------------------------------------------------


def test_trace_by_id_has_every_field(admin: str, data: Dataset) -> None:
    t0, a, s = data.t0, data.traces["A"], data.spans
    body = ok(admin, f"/api/v1/traces/{a}")
    assert body["traceId"] == a
    spans = body["spans"]
    assert [x["spanId"] for x in spans] == [s["a1"], s["a2"], s["a3"], s["a4"]]  # by start time
    frontend = {"attributes": FRONTEND_RESOURCE, "schemaUrl": SCHEMA_URL}
    backend = {"attributes": BACKEND_RESOURCE}
    assert spans[0] == {
        "traceId": a,
        "spanId": s["a1"],
        "parentSpanId": "",
        "name": "GET /cart",
        "kind": "server",
        "serviceName": "frontend",
        "startTimeUnixNano": str(t0),
        "endTimeUnixNano": str(t0 + 120 * MS),
        "durationNs": 120 * MS,
        "attributes": {
            "http.route": "/cart",
            "http.response.status_code": 200,
            "cache.hit": True,
            "sample.ratio": 0.25,
            "tags": ["a", "b"],
        },
        "resource": frontend,
        "scope": {
            "name": "shop.cart",
            "version": "1.2.3",
            "attributes": {"scope.tier": "web"},
            "schemaUrl": SCHEMA_URL,
        },
        "events": [
            {
                "timeUnixNano": str(t0 + 5 * MS),
                "name": "cache.miss",
                "attributes": {"cache.key": "user:42", "attempt": 2},
            }
        ],
        "links": [],
        "status": {"code": "ok", "message": ""},
    }
    assert spans[1]["parentSpanId"] == s["a1"]
    assert (spans[1]["kind"], spans[1]["serviceName"], spans[1]["status"]) == (
        "client",
        "frontend",
        {"code": "unset", "message": ""},
    )
    assert spans[2] == {
        "traceId": a,
        "spanId": s["a3"],
        "parentSpanId": s["a2"],
        "name": "load cart",
        "kind": "server",
        "serviceName": "backend",
        "startTimeUnixNano": str(t0 + 20 * MS),
        "endTimeUnixNano": str(t0 + 100 * MS),
        "durationNs": 80 * MS,
        "attributes": {"retry": 3},
        "resource": backend,
        "scope": {"name": "shop.backend", "version": ""},
        "events": [],
        "links": [
            {
                "traceId": data.traces["B"],
                "spanId": s["b1"],
                "traceState": "",
                "attributes": {"link.kind": "batch"},
            }
        ],
        "status": {"code": "error", "message": "db timeout"},
    }
    assert (spans[3]["name"], spans[3]["kind"], spans[3]["parentSpanId"]) == (
        "compute total",
        "internal",
        s["a3"],
    )
    # ids are case-insensitive
    assert ok(admin, f"/api/v1/traces/{a.upper()}") == body


def test_trace_by_id_errors(admin: str) -> None:
    status, body = get(admin, "/api/v1/traces/0123456789abcdef0123456789abcdef")
    assert (status, body) == (404, {"error": "trace 0123456789abcdef0123456789abcdef not found"})
    for bad in ("xyz", "0123456789abcdef", "0123456789abcdef0123456789abcdeg", "0" * 32, "0" * 33):
        status, body = get(admin, f"/api/v1/traces/{bad}")
        assert status == 400, bad
        assert "trace id" in body["error"], body


# -- logs -------------------------------------------------------------------------


def bodies(admin: str, **params: Any) -> list[Any]:
    return [r["body"] for r in ok(admin, "/api/v1/logs", params)["logs"]]


L1, L2, L3 = "cache lookup for user:42", "Cart Loaded", "DB timeout after 3 retries"
L4 = {"event": "queue.lag", "lag": 12, "ok": False}
L5, L6 = "out of memory", "payment processed"


def test_logs_newest_first_with_every_field(admin: str, data: Dataset) -> None:
    t0, a, s = data.t0, data.traces["A"], data.spans
    logs = ok(admin, "/api/v1/logs")["logs"]
    assert [r["body"] for r in logs] == [L6, L5, L4, L3, L2, L1]
    assert logs[3] == {
        "timeUnixNano": str(t0 + 25 * MS),
        "observedTimeUnixNano": str(t0 + 26 * MS),
        "serviceName": "backend",
        "severityNumber": 17,
        "severityText": "ERROR",
        "body": L3,
        "attributes": {"db.system": "postgresql", "db.attempts": 3},
        "traceId": a,
        "spanId": s["a3"],
        "eventName": "",
        "resource": {"attributes": BACKEND_RESOURCE},
        "scope": {"name": "shop.backend", "version": ""},
    }
    assert logs[2]["body"] == L4  # a structured body comes back as JSON, not text
    assert (logs[2]["traceId"], logs[2]["spanId"]) == ("", "")
    assert logs[0]["eventName"] == "payment.done"
    # severity text: as sent, else the short name of the number
    assert [(r["severityNumber"], r["severityText"]) for r in logs] == [
        (10, "INFO"),
        (21, "CRITICAL"),
        (13, "WARN"),
        (17, "ERROR"),
        (9, "INFO"),
        (5, "DEBUG"),
    ]
    assert logs[4]["scope"] == {"name": "shop.logs", "version": "0.1"}
    assert logs[4]["resource"] == {"attributes": FRONTEND_RESOURCE, "schemaUrl": SCHEMA_URL}


def test_log_filters(admin: str, data: Dataset) -> None:
    t0 = data.t0
    assert bodies(admin, service="backend") == [L6, L4, L3]
    assert bodies(admin, service="frontend") == [L5, L2, L1]
    assert bodies(admin, severity="WARN") == [L5, L4, L3]
    assert bodies(admin, severity="warning") == [L5, L4, L3]
    assert bodies(admin, severity="error") == [L5, L3]
    assert bodies(admin, severity="17") == [L5, L3]
    assert bodies(admin, severity="10") == [L6, L5, L4, L3]
    assert bodies(admin, severity="FATAL") == [L5]
    assert bodies(admin, q="TIMEOUT") == [L3]  # case-insensitive
    assert bodies(admin, q="cart") == [L2]
    assert bodies(admin, q="queue.lag") == [L4]  # structured bodies are searched as JSON text
    assert bodies(admin, q='"lag":12') == [L4]
    assert bodies(admin, q="nothing like this") == []
    assert bodies(admin, traceId=data.traces["A"]) == [L3, L2, L1]
    assert bodies(admin, traceId=data.traces["A"].upper(), service="frontend") == [L2, L1]
    assert bodies(admin, traceId=data.traces["C"]) == []
    assert bodies(admin, start=t0 + SECOND) == [L6, L5, L4]
    assert bodies(admin, end=t0 + 25 * MS) == [L3, L2, L1]
    assert bodies(admin, start=rfc3339(t0 + 2 * MS), end=rfc3339(t0 + SECOND)) == [L4, L3, L2]
    assert bodies(admin, limit=2) == [L6, L5]
    assert bodies(admin, limit=2, service="frontend", severity="DEBUG") == [L5, L2]


@pytest.mark.parametrize(
    ("params", "word"),
    [
        ({"severity": "LOUD"}, "severity"),
        ({"severity": "0"}, "severity"),
        ({"severity": "25"}, "severity"),
        ({"severity": "²"}, "severity"),
        ({"traceId": "xyz"}, "traceId"),
        ({"traceId": "0" * 32}, "traceId"),
        ({"limit": "0"}, "limit"),
        ({"limit": "1001"}, "limit"),
        ({"start": "soon"}, "start"),
        ({"end": "9" * 40}, "end"),
        ({"start": "2026-01-02T00:00:00Z", "end": "2026-01-01T00:00:00Z"}, "start"),
    ],
)
def test_logs_reject_bad_parameters(admin: str, params: dict[str, str], word: str) -> None:
    bad_request(admin, "/api/v1/logs", params, word)


# -- metrics ----------------------------------------------------------------------


def test_metric_catalog(admin: str) -> None:
    metrics = ok(admin, "/api/v1/metrics")["metrics"]
    assert [m["name"] for m in metrics] == dataset.METRIC_NAMES
    by_name = {m["name"]: m for m in metrics}
    assert by_name["http.latency"] == {
        "name": "http.latency",
        "type": "histogram",
        "unit": "ms",
        "description": "",
    }
    assert by_name["rpc.duration"] == {
        "name": "rpc.duration",
        "type": "summary",
        "unit": "ms",
        "description": "RPC latency",
    }
    types = {m["name"]: m["type"] for m in metrics}
    assert types == {
        "http.latency": "histogram",
        "http.requests": "sum",
        "jobs.done": "sum",
        "payload.size": "exponential_histogram",
        "room.temperature": "gauge",
        "rpc.duration": "summary",
        "sdk.latency": "histogram",
        "sdk.requests": "sum",
        "sdk.temperature": "gauge",
    }


def series(admin: str, data: Dataset, name: str, **params: Any) -> dict[str, Any]:
    query = {"start": data.t0, "end": data.t0 + 40 * SECOND, "step": "10s", **params}
    body: dict[str, Any] = ok(admin, f"/api/v1/metrics/{name}/series", query)
    return body


def points(admin: str, data: Dataset, name: str, **params: Any) -> dict[str, list[dict[str, Any]]]:
    """Series by their attributes (as sorted JSON) → points with times as offsets (s) from t0."""
    out = {}
    for s in series(admin, data, name, **params)["series"]:
        assert s["serviceName"] == "shop"
        out[json.dumps(s["attributes"], sort_keys=True)] = [
            {**p, "timeUnixNano": (int(p["timeUnixNano"]) - data.t0) // SECOND} for p in s["points"]
        ]
    return out


def test_gauge_series_last_value_per_step(admin: str, data: Dataset) -> None:
    body = series(admin, data, "room.temperature")
    assert {k: body[k] for k in ("name", "type", "unit", "description", "start", "end", "stepNs")} == {
        "name": "room.temperature",
        "type": "gauge",
        "unit": "Cel",
        "description": "",
        "start": str(data.t0),
        "end": str(data.t0 + 40 * SECOND),
        "stepNs": 10 * SECOND,
    }
    assert points(admin, data, "room.temperature") == {
        '{"room": "lab"}': [
            {"timeUnixNano": 10, "value": 20.5},
            {"timeUnixNano": 20, "value": 21.5},  # 21.0 at +12s and 21.5 at +20s: the last
            {"timeUnixNano": 40, "value": 22.0},  # nothing in (20s, 30s]: no point
        ],
        '{"room": "office"}': [{"timeUnixNano": 30, "value": 18.0}],
    }
    assert points(admin, data, "room.temperature", **{"attr.room": "office"}) == {
        '{"room": "office"}': [{"timeUnixNano": 30, "value": 18.0}]
    }
    assert points(admin, data, "room.temperature", **{"attr.room": "attic"}) == {}
    assert len(points(admin, data, "room.temperature", **{"attr.service.name": "shop"})) == 2
    assert points(admin, data, "room.temperature", **{"attr.service.name": "other"}) == {}
    # a 20s step: (0, 20] and (20, 40]
    assert points(admin, data, "room.temperature", step="20s", **{"attr.room": "lab"}) == {
        '{"room": "lab"}': [{"timeUnixNano": 20, "value": 21.5}, {"timeUnixNano": 40, "value": 22.0}]
    }


def test_sum_series_cumulative_and_delta(admin: str, data: Dataset) -> None:
    assert points(admin, data, "http.requests") == {
        '{"code": 200, "route": "/cart"}': [
            {"timeUnixNano": 10, "value": 10.0},
            {"timeUnixNano": 20, "value": 25.0},
            {"timeUnixNano": 30, "value": 40.0},
        ],
        '{"code": 500, "route": "/cart"}': [{"timeUnixNano": 30, "value": 2.0}],
    }
    # an int attribute filters by its text
    assert list(points(admin, data, "http.requests", **{"attr.code": "500"})) == [
        '{"code": 500, "route": "/cart"}'
    ]
    # deltas within a step are added up: 3 + 4 in (0, 10], 5 in (10, 20]
    assert points(admin, data, "jobs.done") == {
        "{}": [{"timeUnixNano": 10, "value": 7.0}, {"timeUnixNano": 20, "value": 5.0}]
    }
    assert points(admin, data, "jobs.done", step="20s") == {"{}": [{"timeUnixNano": 20, "value": 12.0}]}


def dist(offset: int, count: int, total: float, *quantiles: float | None) -> dict[str, Any]:
    """A histogram point as the API renders it (quantiles to float precision)."""
    out: dict[str, Any] = {"timeUnixNano": offset, "count": count, "sum": total}
    for name, value in zip(("p50", "p90", "p95", "p99"), quantiles, strict=True):
        out[name] = None if value is None else pytest.approx(value)
    return out


def test_histogram_series_differences_cumulative_points(admin: str, data: Dataset) -> None:
    """Bounds 10, 50, 100, 500; exports at +10s, +20s, +30s (unchanged) and +40s (after a reset)."""
    (got,) = points(admin, data, "http.latency").values()
    assert got == [
        # [2, 4, 3, 1, 0]: everything since the start
        dist(10, 10, 600.0, 40.0, 100.0, 300.0, 460.0),
        # [4, 8, 6, 1, 1] - [2, 4, 3, 1, 0] = [2, 4, 3, 0, 1]: p95 and p99 fall in +Inf → the last bound
        dist(20, 10, 900.0, 40.0, 100.0, 500.0, 500.0),
        # nothing new
        dist(30, 0, 0.0, None, None, None, None),
        # the count went down: a reset, so the point is all new
        dist(40, 2, 30.0, 10.0, 42.0, 46.0, 49.2),
    ]
    # a window starting at +10s: the +10s point is the baseline, not a step of its own
    (later,) = points(admin, data, "http.latency", start=data.t0 + 10 * SECOND).values()
    assert later[0] == dist(20, 10, 900.0, 40.0, 100.0, 500.0, 500.0)


def test_exponential_histogram_and_summary_series(admin: str, data: Dataset) -> None:
    # zero bucket 1, (1,2]: 1, (2,4]: 0, (4,8]: 2, (8,16]: 1
    assert points(admin, data, "payload.size") == {"{}": [dist(10, 5, 30.0, 5.0, 12.0, 14.0, 15.6)]}
    assert points(admin, data, "rpc.duration") == {
        "{}": [
            {"timeUnixNano": 10, "count": 100, "sum": 1500.0, "quantiles": {"0.5": 12.0, "0.99": 80.0}},
            {"timeUnixNano": 20, "count": 150, "sum": 2100.0, "quantiles": {"0.5": 11.0, "0.99": 95.0}},
        ]
    }


def test_sdk_metrics_series(admin: str, data: Dataset) -> None:
    """The SDK's export: cumulative points, read in one step that holds the whole run."""
    expected = {(name, attrs): value for _, name, attrs, value in data.sdk_metrics}
    start, end = data.sdk_metrics_sent_ns - 1, time.time_ns()
    got: dict[Any, Any] = {}
    for name in ("sdk.requests", "sdk.latency", "sdk.temperature"):
        body = ok(admin, f"/api/v1/metrics/{name}/series", {"start": start, "end": end, "step": end - start})
        for s in body["series"]:
            assert s["serviceName"] == "otlpd-e2e"
            (point,) = s["points"]
            key = (name, tuple(sorted(s["attributes"].items())))
            got[key] = (point["count"], point["sum"]) if name == "sdk.latency" else point["value"]
    assert got == expected


def test_series_default_window(admin: str, data: Dataset) -> None:
    """No start, end or step: the last hour in 120 steps of 30 s; the SDK's points are in it."""
    body = ok(admin, "/api/v1/metrics/sdk.requests/series", {"attr.route": "/b"})
    assert body["stepNs"] == 30 * SECOND
    assert int(body["end"]) - int(body["start"]) == 3600 * SECOND
    assert time.time_ns() - int(body["end"]) < 60 * SECOND
    (series,) = body["series"]
    assert [p["value"] for p in series["points"]] == [4.0]


@pytest.mark.parametrize(
    ("params", "word"),
    [
        ({"step": "0"}, "step"),
        ({"step": "0s"}, "step"),
        ({"step": "soon"}, "step"),
        ({"step": "1ns"}, "steps"),
        ({"start": "x"}, "start"),
        ({"end": "x"}, "end"),
        ({"start": "2", "end": "1"}, "start"),
        ({"start": "1", "end": "1"}, "start"),
        ({"end": "-" + "9" * 40}, "end"),
    ],
)
def test_series_rejects_bad_parameters(admin: str, data: Dataset, params: dict[str, str], word: str) -> None:
    query = {"start": str(data.t0), "end": str(data.t0 + 40 * SECOND), **params}
    bad_request(admin, "/api/v1/metrics/room.temperature/series", query, word)


def test_series_of_unknown_metric_is_404(admin: str) -> None:
    status, body = get(admin, "/api/v1/metrics/no.such.metric/series")
    assert (status, body) == (404, {"error": "metric 'no.such.metric' not found"})


# -- Jaeger ---------------------------------------------------------------------


def envelope(data: Any) -> dict[str, Any]:
    return {"data": data, "total": len(data), "limit": 0, "offset": 0, "errors": None}


def jaeger_error(admin: str, path: str, params: Any, status: int, *words: str) -> None:
    got, body = get(admin, path, params)
    assert got == status, (path, params, got, body)
    assert body["data"] is None, body
    assert body["total"] == 0, body
    (error,) = body["errors"]
    assert error["code"] == status
    for word in words:
        assert word in error["msg"], (word, error)


def test_jaeger_services_and_operations(admin: str) -> None:
    assert ok(admin, "/api/services") == envelope(["backend", "frontend"])
    assert ok(admin, "/api/services/frontend/operations") == envelope(
        ["GET /cart", "GET /health", "call backend"]
    )
    assert ok(admin, "/api/services/nobody/operations") == envelope([])
    assert ok(admin, "/api/services/{odd} name%/operations") == envelope([])
    assert ok(admin, "/api/operations", {"service": "backend"}) == envelope(
        [
            {"name": "compute total", "spanKind": "internal"},
            {"name": "load cart", "spanKind": "server"},
            {"name": "process queue", "spanKind": "consumer"},
            {"name": "publish", "spanKind": "producer"},
        ]
    )
    assert ok(admin, "/api/operations", {"service": "backend", "spanKind": "server"}) == envelope(
        [{"name": "load cart", "spanKind": "server"}]
    )
    assert ok(admin, "/api/operations", {"service": "frontend", "spanKind": "consumer"}) == envelope([])
    jaeger_error(admin, "/api/operations", {}, 400, "service")


def jaeger_ids(admin: str, **params: Any) -> list[str]:
    body = ok(admin, "/api/traces", params)
    assert body["total"] == len(body["data"])
    return [t["traceID"] for t in body["data"]]


def test_jaeger_trace_search(admin: str, data: Dataset) -> None:
    t0 = data.t0
    a, b, c = data.traces["A"], data.traces["B"], data.traces["C"]
    assert jaeger_ids(admin, service="frontend") == [c, a]
    assert jaeger_ids(admin, service="backend", operation="load cart") == [a]
    assert jaeger_ids(admin, service="frontend", tags=json.dumps({"http.response.status_code": 204})) == [c]
    assert jaeger_ids(admin, service="frontend", tags=json.dumps({"http.response.status_code": "200"})) == [a]
    assert jaeger_ids(admin, service="frontend", tags=json.dumps({"cache.hit": True})) == [a]
    assert (
        jaeger_ids(admin, service="frontend", tags=json.dumps({"http.route": "/cart", "cache.hit": False}))
        == []
    )
    assert jaeger_ids(admin, service="frontend", tag="http.route:/health") == [c]
    assert jaeger_ids(admin, service="frontend", minDuration="50ms") == [a]
    assert jaeger_ids(admin, service="backend", maxDuration="2ms") == [b]
    assert jaeger_ids(admin, service="frontend", limit=1) == [c]
    # start and end in microseconds
    assert jaeger_ids(admin, service="frontend", start=(t0 + 500 * MS) // 1000) == [c]
    assert jaeger_ids(admin, service="frontend", end=(t0 + 500 * MS) // 1000) == [a]
    assert jaeger_ids(admin, service="frontend", lookback="1h") == [c, a]
    assert jaeger_ids(admin, service="frontend", lookback="1m") == []  # the data is 20 minutes old
    # as the Jaeger UI sends it: empty durations, lookback=custom with explicit start/end
    ui = {"service": "frontend", "minDuration": "", "maxDuration": "", "limit": "20", "lookback": "custom"}
    assert jaeger_ids(admin, **ui, start=t0 // 1000, end=(t0 + 3 * SECOND) // 1000) == [c, a]
    # by id: in the order asked, the unknown one left out
    assert jaeger_ids(admin, traceID=[a, "0123456789abcdef0123456789abcdef", c]) == [a, c]
    # the other parameters are still checked, as jaeger-query checks them (schemathesis found it)
    status, body = get(admin, "/api/traces", {"traceID": a, "limit": "1637464906304"})
    assert status == 400, body
    assert "limit" in body["errors"][0]["msg"]


def test_jaeger_trace_shape(admin: str, data: Dataset) -> None:
    t0, a, s = data.t0, data.traces["A"], data.spans
    body = ok(admin, f"/api/traces/{a}")
    assert (body["total"], body["errors"]) == (1, None)
    (trace,) = body["data"]
    assert trace["traceID"] == a
    assert trace["processes"] == {
        "p1": {
            "serviceName": "frontend",
            "tags": [
                {"key": "deployment.environment", "type": "string", "value": "prod"},
                {"key": "host.cpus", "type": "int64", "value": 8},
            ],
        },
        "p2": {
            "serviceName": "backend",
            "tags": [{"key": "deployment.environment", "type": "string", "value": "staging"}],
        },
    }
    spans = {x["spanID"]: x for x in trace["spans"]}
    assert list(spans) == [s["a1"], s["a2"], s["a3"], s["a4"]]
    scope = [
        {"key": "otel.scope.name", "type": "string", "value": "shop.cart"},
        {"key": "otel.scope.version", "type": "string", "value": "1.2.3"},
    ]
    assert spans[s["a1"]] == {
        "traceID": a,
        "spanID": s["a1"],
        "operationName": "GET /cart",
        "references": [],
        "flags": 1,
        "startTime": t0 // 1000,
        "duration": 120_000,
        "tags": [
            {"key": "http.route", "type": "string", "value": "/cart"},
            {"key": "http.response.status_code", "type": "int64", "value": 200},
            {"key": "cache.hit", "type": "bool", "value": True},
            {"key": "sample.ratio", "type": "float64", "value": 0.25},
            {"key": "tags", "type": "string", "value": '["a","b"]'},
            {"key": "span.kind", "type": "string", "value": "server"},
            {"key": "otel.status_code", "type": "string", "value": "OK"},
            *scope,
        ],
        "logs": [
            {
                "timestamp": (t0 + 5 * MS) // 1000,
                "fields": [
                    {"key": "event", "type": "string", "value": "cache.miss"},
                    {"key": "cache.key", "type": "string", "value": "user:42"},
                    {"key": "attempt", "type": "int64", "value": 2},
                ],
            }
        ],
        "processID": "p1",
        "warnings": None,
    }
    assert spans[s["a2"]]["references"] == [{"refType": "CHILD_OF", "traceID": a, "spanID": s["a1"]}]
    assert spans[s["a2"]]["tags"] == [{"key": "span.kind", "type": "string", "value": "client"}, *scope]
    a3 = spans[s["a3"]]
    assert a3["references"] == [
        {"refType": "CHILD_OF", "traceID": a, "spanID": s["a2"]},
        {"refType": "FOLLOWS_FROM", "traceID": data.traces["B"], "spanID": s["b1"]},
    ]
    assert (a3["startTime"], a3["duration"], a3["processID"]) == ((t0 + 20 * MS) // 1000, 80_000, "p2")
    assert a3["tags"] == [
        {"key": "retry", "type": "int64", "value": 3},
        {"key": "span.kind", "type": "string", "value": "server"},
        {"key": "otel.status_code", "type": "string", "value": "ERROR"},
        {"key": "error", "type": "bool", "value": True},
        {"key": "otel.status_description", "type": "string", "value": "db timeout"},
        {"key": "otel.scope.name", "type": "string", "value": "shop.backend"},
    ]
    # an internal span has no span.kind tag
    assert spans[s["a4"]]["tags"] == [{"key": "otel.scope.name", "type": "string", "value": "shop.backend"}]
    # the same trace by search and by id
    (searched,) = ok(admin, "/api/traces", {"traceID": a})["data"]
    assert searched == trace


def test_jaeger_ids_may_drop_leading_zeros(admin: str, data: Dataset) -> None:
    """Jaeger clients may send ids without leading zeros; a 64-bit id is the low half of a 128-bit one."""
    c = data.traces["C"]
    assert c == f"{dataset.C_TRACE_ID:032x}"
    for spelling in ("abcdef", "0abcdef", f"{dataset.C_TRACE_ID:016x}", c, c.upper()):
        (trace,) = ok(admin, f"/api/traces/{spelling}")["data"]
        assert trace["traceID"] == c
        assert [x["spanID"] for x in trace["spans"]] == [f"{dataset.C_SPAN_ID:016x}"]
        assert jaeger_ids(admin, traceID=spelling) == [c]
    # the v1 API takes exactly 32 digits
    assert get(admin, "/api/v1/traces/abcdef")[0] == 400


def test_jaeger_errors_use_the_jaeger_envelope(admin: str) -> None:
    jaeger_error(admin, "/api/traces", {}, 400, "service")
    jaeger_error(admin, "/api/traces", {"service": "frontend", "tags": "not json"}, 400, "tags")
    jaeger_error(admin, "/api/traces", {"service": "frontend", "tags": "[1]"}, 400, "tags")
    jaeger_error(admin, "/api/traces", {"service": "frontend", "tag": "novalue"}, 400, "tag")
    jaeger_error(admin, "/api/traces", {"service": "frontend", "minDuration": "abc"}, 400, "minDuration")
    jaeger_error(
        admin, "/api/traces", {"service": "frontend", "maxDuration": "1" + "0" * 60 + "h"}, 400, "maxDuration"
    )
    jaeger_error(admin, "/api/traces", {"service": "frontend", "lookback": "ages"}, 400, "lookback")
    jaeger_error(admin, "/api/traces", {"service": "frontend", "limit": "0"}, 400, "limit")
    jaeger_error(admin, "/api/traces", {"service": "frontend", "start": "x"}, 400, "start")
    jaeger_error(admin, "/api/traces", {"service": "frontend", "start": "2", "end": "1"}, 400, "start")
    jaeger_error(admin, "/api/traces", {"traceID": "xyz"}, 400, "traceID")
    jaeger_error(admin, "/api/traces/xyz", {}, 400, "trace id")
    jaeger_error(admin, "/api/traces/0123456789abcdef0123456789abcdef", {}, 404, "not found")


# -- the document ----------------------------------------------------------------


def test_openapi_document_is_valid_openapi_3(admin: str) -> None:
    import schemathesis

    doc = ok(admin, "/api/openapi.json")
    assert doc["openapi"].startswith("3.0.")
    schemathesis.openapi.from_dict(doc).validate()  # against the OpenAPI 3.0 meta-schema
    assert {path for path in doc["paths"]} == {
        "/api/v1/services",
        "/api/v1/services/{service}/operations",
        "/api/v1/traces",
        "/api/v1/traces/{traceId}",
        "/api/v1/logs",
        "/api/v1/metrics",
        "/api/v1/metrics/{name}/series",
        "/api/services",
        "/api/services/{service}/operations",
        "/api/operations",
        "/api/traces",
        "/api/traces/{traceId}",
    }
    for path, item in doc["paths"].items():
        assert set(item) == {"get"}, path
        assert "200" in item["get"]["responses"], path


def test_query_timings_are_on_metrics(live: tuple[Otlpd, Dataset]) -> None:
    otlpd, _ = live
    ok(otlpd.admin, "/api/v1/services")
    assert otlpd.metric("otlpd_query_duration_seconds_count", endpoint="/api/v1/services") >= 1
    assert otlpd.metric("otlpd_query_duration_seconds_count", endpoint="/api/v1/traces/{trace_id}") >= 1
