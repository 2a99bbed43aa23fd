"""otlpd's query API (``/api/v1``): services, traces, logs and metrics as JSON.

Every handler parses its parameters first (a bad one is a 400 naming it),
then runs its query on a store reader thread, so a slow query never stalls
ingest or the probes.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from otlpd.query import params, render
from otlpd.query.params import BadRequest
from otlpd.query.series import MAX_STEPS, series
from otlpd.store.engine import Engine, LogQuery, SeriesQuery, TraceQuery
from otlpd.store.store import Store, StoreUnavailable
from otlpd.telemetry.metrics import Metrics

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
StoreFn = Callable[[], Store | None]

SEVERITY_NUMBERS = {"TRACE": 1, "DEBUG": 5, "INFO": 9, "WARN": 13, "WARNING": 13, "ERROR": 17, "FATAL": 21}
DEFAULT_WINDOW_NS = 3600 * 10**9


class NotFound(Exception):
    pass


def any_segment(path: str) -> str:
    """A route whose ``{name}`` parts match any one path segment.

    aiohttp's default ``{name}`` does not match ``{`` or ``}``, which are valid in a
    service name (sent percent-encoded): such a request would get a plain-text 404.
    """
    return re.sub(r"\{(\w+)\}", r"{\1:[^/]+}", path)


def error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


class QueryApi:
    def __init__(self, store: StoreFn, metrics: Metrics) -> None:
        self._store = store
        self._metrics = metrics

    def add_routes(self, app: web.Application) -> None:
        routes = {
            "/api/v1/services": self.services,
            "/api/v1/services/{service}/operations": self.operations,
            "/api/v1/traces": self.traces,
            "/api/v1/traces/{trace_id}": self.trace,
            "/api/v1/logs": self.logs,
            "/api/v1/metrics": self.metrics,
            "/api/v1/metrics/{name}/series": self.series,
        }
        for path, handler in routes.items():
            app.router.add_get(any_segment(path), self.wrap(path, handler, error))

    def wrap(self, path: str, handler: Handler, fail: Callable[[int, str], web.Response]) -> Handler:
        """Errors → status codes in the API's own shape; time every request."""
        timer = self._metrics.store_query_duration.labels(path)

        async def run(request: web.Request) -> web.StreamResponse:
            began = time.perf_counter()
            try:
                return await handler(request)
            except BadRequest as exc:
                return fail(400, str(exc))
            except NotFound as exc:
                return fail(404, str(exc))
            except StoreUnavailable as exc:
                return fail(503, str(exc))
            finally:
                timer.observe(time.perf_counter() - began)

        return run

    async def query(self, fn: Callable[[Engine], Any]) -> Any:
        store = self._store()
        if store is None:
            raise NotFound("no store exporter is configured: add `store` to a pipeline to query data")
        return await store.read(fn)

    # -- services ------------------------------------------------------------

    async def services(self, request: web.Request) -> web.Response:
        names = await self.query(lambda e: e.services())
        return web.json_response({"services": names})

    async def operations(self, request: web.Request) -> web.Response:
        service = request.match_info["service"]
        ops = await self.query(lambda e: e.operations(service))
        return web.json_response(
            {"operations": [{"name": name, "spanKind": render.span_kind(kind)} for name, kind in ops]}
        )

    # -- traces --------------------------------------------------------------

    async def traces(self, request: web.Request) -> web.Response:
        q = request.query
        status = params.text(q, "status")
        if status not in (None, "error"):
            raise BadRequest(f"status can only be 'error', got {status!r}")
        query = TraceQuery(
            service=params.text(q, "service"),
            operation=params.text(q, "operation"),
            attributes=params.attribute_filters(q),
            min_duration_ns=params.duration_ns(q, "minDuration"),
            max_duration_ns=params.duration_ns(q, "maxDuration"),
            errors_only=status == "error",
            start_ns=params.timestamp_ns(q, "start"),
            end_ns=params.timestamp_ns(q, "end"),
            limit=params.limit(q, 20),
        )
        params.time_range(query.start_ns, query.end_ns)
        if (
            query.min_duration_ns is not None
            and query.max_duration_ns is not None
            and query.min_duration_ns > query.max_duration_ns
        ):
            raise BadRequest("minDuration must not be greater than maxDuration")
        found = await self.query(lambda e: e.find_traces(query))
        return web.json_response({"traces": [render.trace_summary(t) for t in found]})

    async def trace(self, request: web.Request) -> web.Response:
        trace_id = params.hex_id(request.match_info["trace_id"], 16, "trace id")
        rows = await self.query(lambda e: e.trace(trace_id))
        if not rows:
            raise NotFound(f"trace {trace_id.hex()} not found")
        return web.json_response({"traceId": trace_id.hex(), "spans": [render.span(r) for r in rows]})

    # -- logs ----------------------------------------------------------------

    async def logs(self, request: web.Request) -> web.Response:
        q = request.query
        trace_id = params.text(q, "traceId")
        query = LogQuery(
            service=params.text(q, "service"),
            min_severity=_severity(params.text(q, "severity")),
            text=params.text(q, "q"),
            trace_id=params.hex_id(trace_id, 16, "traceId") if trace_id else None,
            start_ns=params.timestamp_ns(q, "start"),
            end_ns=params.timestamp_ns(q, "end"),
            limit=params.limit(q, 100),
        )
        params.time_range(query.start_ns, query.end_ns)
        rows = await self.query(lambda e: e.find_logs(query))
        return web.json_response({"logs": [render.log(r) for r in rows]})

    # -- metrics -------------------------------------------------------------

    async def metrics(self, request: web.Request) -> web.Response:
        infos = await self.query(lambda e: e.metrics())
        return web.json_response(
            {
                "metrics": [
                    {"name": m.name, "type": m.type, "unit": m.unit, "description": m.description}
                    for m in infos
                ]
            }
        )

    async def series(self, request: web.Request) -> web.Response:
        q = request.query
        name = request.match_info["name"]
        end = params.timestamp_ns(q, "end")
        end = time.time_ns() if end is None else end
        start = params.timestamp_ns(q, "start")
        start = max(0, end - DEFAULT_WINDOW_NS) if start is None else start
        params.time_range(start, end)
        if start == end:
            raise BadRequest("start and end must differ")
        step = params.duration_ns(q, "step")
        step = max(1_000_000_000, (end - start) // 120) if step is None else step
        if step <= 0:
            raise BadRequest("step must be positive")
        if (end - start) // step > MAX_STEPS:
            raise BadRequest(f"start..end / step gives more than {MAX_STEPS} steps; use a larger step")
        query = SeriesQuery(name, start - step, end, params.attribute_filters(q))
        info, rows = await self.query(lambda e: e.points(query))
        if info is None:
            raise NotFound(f"metric {name!r} not found")
        return web.json_response(
            {
                "name": info.name,
                "type": info.type,
                "unit": info.unit,
                "description": info.description,
                "start": str(start),
                "end": str(end),
                "stepNs": step,
                "series": series(info, rows, start, end, step),
            }
        )


def _severity(raw: str | None) -> int | None:
    """A severity name (the minimum to show) or number."""
    if raw is None:
        return None
    if raw.isascii() and raw.isdigit():
        number = int(raw)
        if not 1 <= number <= 24:
            raise BadRequest(f"severity number must be from 1 to 24, got {number}")
        return number
    named = SEVERITY_NUMBERS.get(raw.upper())
    if named is None:
        names = ", ".join(n for n in SEVERITY_NUMBERS if n != "WARNING")
        raise BadRequest(f"severity must be one of {names} or a number 1-24, got {raw!r}")
    return named
