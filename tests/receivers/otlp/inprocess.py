"""An OTLP receiver in this process, on real loopback sockets, in front of a scripted consumer.

The receiver runs on its own event loop in a thread, so tests drive it with
ordinary blocking clients while choosing exactly what the pipeline does.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from otlpd.component import ComponentID, Settings
from otlpd.errors import OtlpdError
from otlpd.pdata import Payload, Signal
from otlpd.receivers.otlp.config import OtlpReceiverConfig
from otlpd.receivers.otlp.receiver import OtlpReceiver
from otlpd.telemetry.metrics import Metrics


class ScriptedConsumer:
    """Records payloads; raises the queued errors first, one per call."""

    def __init__(self) -> None:
        self.errors: list[BaseException] = []
        self.got: list[Payload] = []
        self.delay = 0.0  # seconds each call takes
        self.refusal: OtlpdError | None = None  # what it would refuse any payload with (a full batch)
        self.reads_span_skeleton = False  # as a pipeline that leads to a store

    async def consume(self, payload: Payload) -> None:
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.errors:
            raise self.errors.pop(0)
        self.got.append(payload)


class InProcess:
    def __init__(self, config: dict[str, Any]) -> None:
        self.metrics = Metrics()
        self.consumer = ScriptedConsumer()
        settings = Settings(
            ComponentID("otlp", "inproc"), OtlpReceiverConfig.model_validate(config), self.metrics
        )
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.receiver: OtlpReceiver | None = None
        self._settings = settings

    def _run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    async def _build(self) -> OtlpReceiver:
        return OtlpReceiver(self._settings, {Signal.TRACES: self.consumer, Signal.LOGS: self.consumer})

    def __enter__(self) -> InProcess:
        self.thread.start()
        self.receiver = self._run(self._build())
        self._run(self.receiver.start())
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.receiver is not None
        self._run(self.receiver.shutdown(self.loop.time() + 1))
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)

    @property
    def http_port(self) -> int:
        assert self.receiver is not None
        assert self.receiver.http is not None
        return self.receiver.http.port

    @property
    def grpc_endpoint(self) -> str:
        assert self.receiver is not None
        assert self.receiver.grpc is not None
        return f"127.0.0.1:{self.receiver.grpc.port}"

    def sample(self, name: str, **labels: str) -> float:
        value = self.metrics.registry.get_sample_value(name, {"receiver": "otlp/inproc", **labels})
        return value or 0.0
