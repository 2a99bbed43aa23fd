"""The ``health_check`` extension: the Collector's probe endpoint (default :13133).

Kubernetes manifests and Helm charts written for the Collector probe
``:13133/``; serving it lets them point at otlpd unchanged. It answers from
the same readiness as ``/health/ready`` on otlpd's own server.
"""

from __future__ import annotations

import json
import time

from aiohttp import web

from otlpd.component import Host, Settings
from otlpd.config.endpoint import split_endpoint
from otlpd.extensions.health_check.config import HealthCheckConfig


class HealthCheckExtension:
    def __init__(self, settings: Settings, host: Host) -> None:
        self._cfg: HealthCheckConfig = settings.config
        self._host = host
        self._since = time.time()
        app = web.Application()
        app.router.add_get(self._cfg.path, self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        self.port = 0

    async def start(self) -> None:
        host, port = split_endpoint(self._cfg.endpoint)
        await self._runner.setup()
        ssl = self._cfg.tls.server_context() if self._cfg.tls else None
        site = web.TCPSite(self._runner, host, port, ssl_context=ssl)
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    async def shutdown(self, deadline: float) -> None:
        await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        ready, _ = self._host.health()
        custom = self._cfg.response_body
        if custom is not None:
            text = custom.healthy if ready else custom.unhealthy
            return web.Response(status=200 if ready else 503, text=text)
        uptime = time.time() - self._since
        body = {
            "status": "Server available" if ready else "Server not available",
            "upSince": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self._since)),
            "uptime": f"{uptime:.3f}s",
        }
        return web.Response(
            status=200 if ready else 503, text=json.dumps(body), content_type="application/json"
        )
