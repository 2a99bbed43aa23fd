"""The ``batch`` processor: gather requests, send them as one by concatenation.

Unlike the Collector's, it never loses data silently: when the next consumer
refuses a batch with a retryable error, the batch is kept and retried, and
once ``pending_limit`` items are waiting new data is refused, so back-pressure
reaches the clients (503/UNAVAILABLE) instead of memory growing or data being
dropped. Only permanent errors drop a batch (counted and logged).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging

from otlpd.component import Consumer, Settings, reads_span_skeleton
from otlpd.errors import OtlpdError, PermanentError, RetryableError
from otlpd.pdata import Payload, Signal, concat, split
from otlpd.processors.batch.config import BatchConfig
from otlpd.telemetry import logging as otlpd_logging

_RETRY_MIN, _RETRY_MAX = 0.05, 1.0


class BatchProcessor:
    def __init__(self, settings: Settings, signal: Signal, next: Consumer) -> None:
        self._cfg: BatchConfig = settings.config
        self._next = next
        self._signal = signal
        self._log: logging.Logger = otlpd_logging.get(f"processor.{settings.id}")
        self._buffer: collections.deque[Payload] = collections.deque()
        self._items = 0
        self._wake = asyncio.Event()
        self._first_at: float | None = None
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self._deadline: float | None = None
        self._sending: Payload | None = None
        labels = {"processor": str(settings.id), "pipeline": settings.pipeline, "signal": signal.value}
        m = settings.metrics
        self._sizes = m.batch_send_size.labels(**labels)
        self._triggers = {
            t: m.batch_trigger.labels(**labels, trigger=t) for t in ("size", "timeout", "shutdown")
        }
        self._dropped = m.processor_dropped.labels(**labels)
        m.pending_items.labels(**labels).set_function(lambda: self._items)

    @property
    def refusing(self) -> bool:
        return self._items >= self._cfg.pending_limit

    @property
    def refusal(self) -> RetryableError | None:
        """What :meth:`consume` raises now whatever the payload (see ``component.refusal``)."""
        if self._closing:
            return RetryableError("otlpd is shutting down", retry_after=1.0)
        if self.refusing:
            return RetryableError(
                "batch processor is full: the exporters are not keeping up", retry_after=1.0
            )
        return None

    @property
    def reads_span_skeleton(self) -> bool:
        """Batches keep their requests' span skeletons for the next consumer, if it reads them."""
        return reads_span_skeleton(self._next)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="batch")

    async def consume(self, payload: Payload) -> None:
        error = self.refusal
        if error is not None:
            raise error
        payload.release()
        if not self._buffer:
            self._first_at = asyncio.get_running_loop().time()
        self._buffer.append(payload)
        self._items += payload.items
        if self._items >= self._cfg.send_batch_size or self._cfg.timeout == 0:
            self._wake.set()
        elif len(self._buffer) == 1:
            self._wake.set()  # arm the timer

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._buffer:
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            full = self._items >= max(self._cfg.send_batch_size, 1)
            if not full and not self._closing:
                assert self._first_at is not None
                remaining = self._first_at + self._cfg.timeout - loop.time()
                if remaining > 0:
                    self._wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), remaining)
                    continue
            trigger = "shutdown" if self._closing else ("size" if full else "timeout")
            await self._send_one(trigger)

    def _take(self) -> list[Payload]:
        """Take up to send_batch_max_size items (whole requests, split only if one is too big)."""
        limit = self._cfg.send_batch_max_size
        taken: list[Payload] = []
        count = 0
        while self._buffer:
            head = self._buffer[0]
            if limit and count + head.items > limit:
                if count:
                    break
                pieces = split(head, limit)
                if len(pieces) > 1:
                    self._buffer.popleft()
                    self._buffer.extendleft(reversed(pieces))
                    continue
                # one metric alone has more points than the limit: it cannot be cut, send it alone
            taken.append(self._buffer.popleft())
            count += head.items
        self._items -= count
        self._first_at = asyncio.get_running_loop().time() if self._buffer else None
        return taken

    async def _send_one(self, trigger: str) -> None:
        taken = self._take()
        batch = self._sending = concat(taken)
        await self._deliver(batch, trigger)
        self._sending = None  # left set if cancelled, so shutdown can count it as lost

    async def _deliver(self, batch: Payload, trigger: str) -> None:
        delay = _RETRY_MIN
        loop = asyncio.get_running_loop()
        while True:
            try:
                await self._next.consume(batch)
            except RetryableError as exc:
                if self._deadline is not None and loop.time() + delay > self._deadline:
                    self._drop(batch, f"shutdown deadline reached: {exc.message}")
                    return
                # Its own backoff, not the hint: a full exporter queue tells clients to come
                # back in a second, but it has room again as soon as one send completes, and
                # waiting the second out left a store idle a third of the time under load.
                await asyncio.sleep(delay)
                delay = min(delay * 2, _RETRY_MAX)
                continue
            except PermanentError as exc:
                self._drop(batch, exc.message)
                return
            except OtlpdError as exc:  # pragma: no cover - every OtlpdError is one of the two
                self._drop(batch, exc.message)
                return
            except Exception as exc:
                self._log.exception("consumer failed")
                self._drop(batch, f"unexpected {type(exc).__name__}")
                return
            self._sizes.observe(batch.items)
            self._triggers[trigger].inc()
            return

    def _drop(self, batch: Payload, why: str) -> None:
        self._dropped.inc(batch.items)
        self._log.error("dropping batch", extra={"items": batch.items, "error": why})

    async def shutdown(self, deadline: float) -> None:
        """Flush everything to the next consumer, retrying until ``deadline``."""
        self._closing = True
        self._deadline = deadline
        self._wake.set()
        if self._task is None:
            return
        remaining = max(0.0, deadline - asyncio.get_running_loop().time())
        try:
            await asyncio.wait_for(asyncio.shield(self._task), remaining)
        except TimeoutError:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            lost = self._items + (self._sending.items if self._sending is not None else 0)
            if lost:
                self._dropped.inc(lost)
                self._log.error("dropping buffered data at shutdown deadline", extra={"items": lost})
            self._buffer.clear()
            self._items = 0
