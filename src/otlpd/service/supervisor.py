"""``serve --workers N``: N worker processes share the receiver ports.

The GIL holds one Python process to one core, so on a multi-core node otlpd
scales by processes. Each worker is a whole ``otlpd serve`` (a fresh
interpreter, not a fork: gRPC and fork do not mix) whose receivers bind the
same ports with SO_REUSEPORT; the kernel spreads connections across them.

The supervisor owns the public side: ``service.http.endpoint`` with readiness
(ready only when every worker is) and ``/metrics`` merged across workers, and
the extensions. It restarts a worker that dies, with backoff, and on SIGTERM
forwards one SIGTERM to each worker so they all drain, then exits 0 if they
all exited 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from typing import Any

import aiohttp
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

from otlpd.component import Kind, Settings
from otlpd.config.load import Config
from otlpd.service.signals import on_stop_signals
from otlpd.telemetry import logging as otlpd_logging
from otlpd.telemetry.aggregate import merge
from otlpd.telemetry.metrics import Metrics
from otlpd.telemetry.server import TelemetryServer

log = otlpd_logging.get("supervisor")

_HEALTH_POLL = 0.5  # seconds between readiness checks of the workers
_MAX_BACKOFF = 30.0
_STABLE = 60.0  # a worker that lived this long restarts without accumulated backoff


class Supervisor:
    def __init__(self, config: Config, workers: int, config_path: str | None) -> None:
        self.config = config
        self.workers = workers
        self._argv = [sys.executable, "-m", "otlpd", "serve"]
        if config_path is not None:
            self._argv += ["--config", config_path]
        self._procs: dict[int, asyncio.subprocess.Process] = {}
        self._ports: dict[int, int] = {}  # worker -> its private admin port
        self._ready: dict[int, bool] = {}
        self._started_at: dict[int, float] = {}
        self._came_up_once: set[int] = set()
        self._stopping = False
        self._stop = asyncio.Event()
        self._fatal: str | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._session: aiohttp.ClientSession | None = None
        registry = CollectorRegistry(auto_describe=True)
        self._registry = registry
        Gauge("otlpd_workers", "Worker processes configured.", registry=registry).set(workers)
        ready = Gauge("otlpd_workers_ready", "Worker processes that report ready.", registry=registry)
        ready.set_function(lambda: sum(self._ready.values()))
        self._restarts = Counter(
            "otlpd_worker_restarts", "Worker processes restarted after they exited.", registry=registry
        )
        self._extensions: list[tuple[str, Any]] = []
        for xid in config.extensions:
            spec = config.component(Kind.EXTENSION, xid)
            self._extensions.append(
                (str(xid), spec.factory.create(Settings(xid, spec.config, Metrics()), self))
            )
        self.server = TelemetryServer(config.service.http.endpoint, self._exposition, self.health)

    # --- the public side ------------------------------------------------------------------

    def health(self) -> tuple[bool, dict[str, Any]]:
        ready = not self._stopping and len(self._ready) == self.workers and all(self._ready.values())
        body = {
            "status": "ready" if ready else "not_ready",
            "state": "stopping" if self._stopping else "running",
            "components": {
                f"worker:{i}": {
                    "kind": "worker",
                    "id": str(i),
                    "pid": self._procs[i].pid if i in self._procs else None,
                    "status": "ready" if self._ready.get(i) else "not_ready",
                }
                for i in range(self.workers)
            },
        }
        return ready, body

    async def _exposition(self) -> bytes:
        texts = await asyncio.gather(*(self._fetch(port, "/metrics") for port in self._ports.values()))
        own = generate_latest(self._registry).decode()
        return merge([own, *(t for t in texts if t is not None)])

    async def _fetch(self, port: int, path: str) -> str | None:
        assert self._session is not None
        try:
            async with self._session.get(f"http://127.0.0.1:{port}{path}") as resp:
                return await resp.text() if resp.status == 200 else None
        except (aiohttp.ClientError, OSError, TimeoutError):
            return None

    # --- workers ------------------------------------------------------------------------

    async def _spawn(self, index: int) -> None:
        read_end, write_end = os.pipe()
        env = {**os.environ, "OTLPD_WORKER_INDEX": str(index), "OTLPD_WORKER_PIPE": str(write_end)}
        env.pop("OTLPD_WORKERS", None)
        # Own session: a terminal's Ctrl-C reaches only the supervisor, which forwards
        # exactly one SIGTERM (a second signal would make a worker skip its drain).
        proc = await asyncio.create_subprocess_exec(
            *self._argv, env=env, pass_fds=(write_end,), start_new_session=True
        )
        os.close(write_end)
        self._procs[index] = proc
        if self._stopping:  # a restart that raced with SIGTERM: this worker missed the signal
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        self._ready[index] = False
        self._started_at[index] = time.monotonic()
        port = await self._await_ready(index, proc, read_end)
        if port is not None:
            self._ports[index] = port
            self._came_up_once.add(index)
            log.info("worker started", extra={"worker": index, "pid": proc.pid})

    async def _await_ready(self, index: int, proc: asyncio.subprocess.Process, fd: int) -> int | None:
        """The admin port the worker reports once ready; None if it exited, hung, or we stop first.

        A worker whose start hangs (a file exporter path on a dead NFS mount, a
        FIFO, a stuck DNS lookup) neither reports nor exits. Waiting for it
        without a bound would hold the supervisor's start (and its answer to
        SIGTERM) forever, so the report races the worker's exit, our own stop,
        and ``service.worker_start_timeout``. Past the deadline the worker is
        killed (SIGKILL: a worker still starting ignores SIGTERM until it has
        started, and has accepted no data to drain). On its first start that
        stops otlpd with exit 1, as a worker that exits while starting does;
        a worker that was up before is restarted with backoff by ``_watch``.
        """
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(fd, "rb", buffering=0)
        )
        report = asyncio.ensure_future(reader.readline())
        exited = asyncio.ensure_future(proc.wait())
        stopping = asyncio.ensure_future(self._stop.wait())
        timeout = self.config.service.worker_start_timeout or None
        try:
            await asyncio.wait(
                (report, exited, stopping), timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for task in (report, exited, stopping):
                task.cancel()
            transport.close()
        if report.done() and not report.cancelled():
            with contextlib.suppress(ValueError):  # b"" (EOF): it exited before it was ready
                return int(report.result())
            return None
        if exited.done() or stopping.done():
            return None
        why = f"worker {index} did not start within {timeout:g}s (service.worker_start_timeout); killed it"
        log.error(why, extra={"worker": index, "pid": proc.pid})
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        if index not in self._came_up_once and self._fatal is None:
            self._fatal = why  # restarting would most likely hang the same way
            self._stop.set()
        return None

    async def _watch(self, index: int) -> None:
        backoff = 1.0
        while True:
            code = await self._procs[index].wait()
            came_up = self._ports.pop(index, None) is not None
            self._ready[index] = False
            if self._stopping:
                return
            if not came_up and index not in self._came_up_once:
                # Never came up at all: a config or port problem that restarting cannot fix.
                self._fatal = self._fatal or f"worker {index} exited with {code} while starting"
                self._stop.set()
                return
            if time.monotonic() - self._started_at[index] > _STABLE:
                backoff = 1.0
            self._restarts.inc()
            log.error("worker exited; restarting", extra={"worker": index, "code": code, "in_s": backoff})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), backoff)
            if self._stopping or self._stop.is_set():
                return
            backoff = min(backoff * 2, _MAX_BACKOFF)
            try:
                await self._spawn(index)
            except OSError as exc:  # out of file descriptors, say: try again after the backoff
                log.error("cannot start worker", extra={"worker": index, "error": str(exc)})

    async def _poll_health(self) -> None:
        while not self._stopping:
            for index, port in list(self._ports.items()):
                text = await self._fetch(port, "/health/ready")
                self._ready[index] = text is not None
            await asyncio.sleep(_HEALTH_POLL)

    # --- lifecycle ------------------------------------------------------------------------

    async def run(self) -> int:
        on_stop_signals(self._stop.set, abandon=self._kill_all)
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2.0))
        try:
            return await self._run()
        finally:
            await self._session.close()

    async def _run(self) -> int:
        try:
            await self.server.start()
            for _, extension in self._extensions:
                await extension.start()
        except OSError as exc:
            log.error("http server failed to start", extra={"error": str(exc)})
            await self.server.stop()
            return 1
        await asyncio.gather(*(self._spawn(i) for i in range(self.workers)))
        self._tasks = [asyncio.create_task(self._watch(i)) for i in range(self.workers)]
        self._tasks.append(asyncio.create_task(self._poll_health()))
        log.info("supervising workers", extra={"workers": self.workers, "http": self.server.port})
        await self._stop.wait()
        codes = await self._shutdown()
        if self._fatal is not None:
            log.error(self._fatal)
            return 1
        return 0 if all(code == 0 for code in codes) else 1

    def _kill_all(self) -> None:
        for proc in self._procs.values():
            with contextlib.suppress(ProcessLookupError):
                proc.kill()

    async def _shutdown(self) -> list[int]:
        self._stopping = True
        for proc in self._procs.values():
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.service.shutdown_timeout + 5.0  # workers bound their drain
        forced = False
        # Loop, not one gather: a restart racing with the signal may add a process meanwhile.
        while pending := [p for p in self._procs.values() if p.returncode is None]:
            try:
                await asyncio.wait_for(
                    asyncio.gather(*(p.wait() for p in pending)), max(0.0, deadline - loop.time())
                )
            except TimeoutError:
                if forced:  # killed and still not reaped: give up waiting
                    break
                log.error("workers did not stop in time; killing them")
                self._kill_all()
                forced = True
                deadline = loop.time() + 5.0  # time for the kernel to reap them
        codes = [p.returncode if p.returncode is not None else 1 for p in self._procs.values()]
        if forced:
            codes.append(1)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        deadline = asyncio.get_running_loop().time() + 1.0
        for _, extension in self._extensions:
            await extension.shutdown(deadline)
        await self.server.stop()
        log.info("stopped", extra={"exit_codes": list(codes)})
        return list(codes)
