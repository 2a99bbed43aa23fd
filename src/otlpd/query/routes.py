"""Mounts every query API on otlpd's HTTP server."""

from __future__ import annotations

from aiohttp import web

from otlpd.query.api import QueryApi, StoreFn
from otlpd.query.jaeger import JaegerApi
from otlpd.query.openapi import document
from otlpd.telemetry.metrics import Metrics


def add_routes(app: web.Application, store: StoreFn, metrics: Metrics) -> None:
    api = QueryApi(store, metrics)
    api.add_routes(app)
    JaegerApi(api).add_routes(app)
    spec = document()

    async def openapi(request: web.Request) -> web.Response:
        return web.json_response(spec)

    app.router.add_get("/api/openapi.json", openapi)
