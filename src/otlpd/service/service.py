"""Run a graph: start downstream-first, serve health, stop gracefully.

Shutdown order (SIGTERM): not ready → receivers stop accepting and finish
in-flight requests → processors flush → exporters drain their queues → exit.
All of it within ``service.shutdown_timeout``; whatever could not be delivered
by then is counted (``otlpd_*_dropped_items_total``) and logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import enum
import os
import signal
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from otlpd import __version__
from otlpd.component import Kind
from otlpd.config.load import Config
from otlpd.exporters.store.exporter import StoreExporterComponent
from otlpd.query.routes import add_routes
from otlpd.service.graph import Graph, Node
from otlpd.service.signals import on_stop_signals
from otlpd.store.store import Store
from otlpd.telemetry import logging as otlpd_logging
from otlpd.telemetry.metrics import Metrics
from otlpd.telemetry.server import TelemetryServer

log = otlpd_logging.get("service")


class State(enum.Enum):
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"


class Service:
    def __init__(self, config: Config, metrics: Metrics | None = None, worker: Worker | None = None) -> None:
        self.config = config
        self.metrics = metrics or Metrics()
        self.metrics.build_info.labels(__version__).set(1)
        self.worker = worker
        self.graph = Graph(config, self.metrics, self, worker.index if worker else None)
        self.state = State.STARTING
        self.status: dict[str, str] = {n.key: "starting" for n in self.graph.nodes}
        # A worker's own server is private: the supervisor serves the public endpoint.
        endpoint = "127.0.0.1:0" if worker else config.service.http.endpoint
        self.server = TelemetryServer(
            endpoint,
            self._exposition,
            self.health,
            lambda app: add_routes(app, self._query_store, self.metrics),
        )
        self._stop = asyncio.Event()
        self.metrics.ready.set_function(lambda: 1.0 if self.health()[0] else 0.0)

    def _query_store(self) -> Store | None:
        """The store the query API reads: the first ``store`` exporter in the config."""
        stores = sorted(
            (n for n in self.graph.nodes if isinstance(n.component, StoreExporterComponent)),
            key=lambda n: n.id,
        )
        return stores[0].component.store if stores else None

    async def _exposition(self) -> bytes:
        return self.metrics.exposition()

    def health(self) -> tuple[bool, dict[str, Any]]:
        """Ready when running, every component started, and the pipeline takes data."""
        refusing = [n.name for n in self.graph.nodes if getattr(n.component, "refusing", False)]
        ready = (
            self.state is State.RUNNING and not refusing and all(s == "started" for s in self.status.values())
        )
        body: dict[str, Any] = {
            "status": "ready" if ready else "not_ready",
            "state": self.state.value,
            "components": {
                n.key: {
                    "kind": n.kind.value,
                    "id": str(n.id),
                    "pipeline": n.pipeline,
                    "status": self.status[n.key],
                }
                for n in self.graph.nodes
            },
        }
        if refusing:
            body["refusing"] = refusing
        return ready, body

    async def start(self) -> None:
        try:
            await self.server.start()
        except (OSError, ValueError) as exc:  # port in use, bad endpoint: a log line, not a traceback
            endpoint = self.config.service.http.endpoint
            log.error("http server failed to start", extra={"endpoint": endpoint, "error": str(exc)})
            await self.server.stop()
            self.state = State.STOPPED
            raise StartError(f"http server on {endpoint} failed to start: {exc}") from exc
        for node in self.graph.nodes:
            try:
                await node.component.start()
            except Exception as exc:
                self.status[node.key] = "failed"
                log.error("component failed to start", extra={"component": node.name, "error": str(exc)})
                await self.shutdown()
                raise StartError(f"{node.name} failed to start: {exc}") from exc
            self.status[node.key] = "started"
            self.metrics.component_up.labels(node.kind.value, node.key).set(1)
        self.state = State.RUNNING
        if self.worker is not None:
            self.worker.report(self.server.port)
        log.info("otlpd is ready", extra={"config": self.config.source, "http": self.server.port})

    async def shutdown(self) -> None:
        if self.state in (State.STOPPING, State.STOPPED):
            return
        self.state = State.STOPPING
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.service.shutdown_timeout
        log.info("shutting down", extra={"timeout_s": self.config.service.shutdown_timeout})
        for kind in (Kind.RECEIVER, Kind.PROCESSOR, Kind.EXPORTER, Kind.EXTENSION):
            nodes = [n for n in reversed(self.graph.nodes) if n.kind is kind]
            await self._stop_nodes(nodes, deadline, sequential=kind is Kind.PROCESSOR)
        await self.server.stop()
        self.state = State.STOPPED
        log.info("stopped")

    async def _stop_nodes(self, nodes: list[Node], deadline: float, *, sequential: bool) -> None:
        async def stop(node: Node) -> None:
            if self.status[node.key] != "started":
                return
            self.status[node.key] = "stopping"
            try:
                await node.component.shutdown(deadline)
            except Exception:
                log.exception("component failed to stop", extra={"component": node.name})
            self.status[node.key] = "stopped"
            self.metrics.component_up.labels(node.kind.value, node.key).set(0)

        if sequential:  # a processor flushes into the next one, which must still be running
            for node in nodes:
                await stop(node)
        else:
            await asyncio.gather(*(stop(n) for n in nodes))

    def request_stop(self) -> None:
        self._stop.set()

    async def run(self) -> int:
        """Serve until SIGTERM/SIGINT; a second signal exits at once."""
        on_stop_signals(self._stop.set)
        try:
            await self.start()
        except StartError:
            return 1
        await self._stop.wait()
        await self.shutdown()
        return 0


class StartError(Exception):
    pass


@dataclass
class Worker:
    """This process is worker ``index`` of a supervisor (``serve --workers N``)."""

    index: int
    pipe: int  # file descriptor on which to tell the supervisor our admin port

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Worker | None:
        if "OTLPD_WORKER_INDEX" not in env:
            return None
        return cls(int(env["OTLPD_WORKER_INDEX"]), int(env["OTLPD_WORKER_PIPE"]))

    def report(self, port: int) -> None:
        with contextlib.suppress(OSError):
            os.write(self.pipe, f"{port}\n".encode())
            os.close(self.pipe)

    @staticmethod
    def die_with_parent() -> None:
        """Ask Linux to SIGTERM us if the supervisor dies, so no worker outlives it holding ports."""
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
