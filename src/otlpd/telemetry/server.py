"""otlpd's own HTTP server: health probes, Prometheus metrics, the query API.

It starts before the pipeline and stops after it, so probes answer (not
ready) during start-up and drain.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from otlpd.config.endpoint import split_endpoint

HealthFn = Callable[[], tuple[bool, dict[str, Any]]]
ExpositionFn = Callable[[], Awaitable[bytes]]


class TelemetryServer:
    def __init__(
        self,
        endpoint: str,
        exposition: ExpositionFn,
        health: HealthFn,
        routes: Callable[[web.Application], None] | None = None,
    ) -> None:
        self._endpoint = endpoint
        self._exposition = exposition
        self._health = health
        app = web.Application()
        app.router.add_get("/health/live", self._live)
        app.router.add_get("/health", self._live)
        app.router.add_get("/health/ready", self._ready)
        app.router.add_get("/ready", self._ready)
        app.router.add_get("/metrics", self._metrics_handler)
        if routes is not None:
            routes(app)
        self.app = app
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
        self.port = 0

    async def start(self) -> None:
        host, port = split_endpoint(self._endpoint)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        await self._runner.cleanup()

    async def _live(self, request: web.Request) -> web.Response:
        _, body = self._health()
        # Alive while the process runs, also while draining; components are listed for humans.
        return web.json_response(
            {"status": "alive", "state": body["state"], "components": body["components"]}
        )

    async def _ready(self, request: web.Request) -> web.Response:
        ready, body = self._health()
        return web.Response(
            status=200 if ready else 503, text=json.dumps(body), content_type="application/json"
        )

    async def _metrics_handler(self, request: web.Request) -> web.Response:
        return web.Response(body=await self._exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST})
