"""The path every exporter's data takes: sending queue → retry → timeout → send.

One :class:`QueuedRetrySender` per (exporter, signal), so several exporters in
one pipeline, or one exporter in several signals, each get their own queue
and retries. An exporter implements only start / send / shutdown.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

from otlpd.component import ComponentID
from otlpd.errors import OtlpdError, PermanentError, RetryableError, ThrottledError
from otlpd.exporters.helper.backoff import Backoff
from otlpd.exporters.helper.config import QueueConfig, RetryConfig
from otlpd.pdata import Payload, Signal
from otlpd.telemetry.metrics import Metrics

SendFn = Callable[[Payload], Awaitable[int]]
"""Sends one payload; returns how many items the peer rejected (partial success)."""

# How long a refused client is told to wait when the queue is full: long
# enough for a few sends to complete, short enough not to idle a healthy peer.
QUEUE_FULL_RETRY_AFTER = 1.0


class Exporter(Protocol):
    async def start(self) -> None: ...

    def sender(self, signal: Signal) -> SendFn: ...

    async def shutdown(self) -> None: ...


class QueuedRetrySender:
    def __init__(
        self,
        exporter: ComponentID,
        signal: Signal,
        send: SendFn,
        *,
        queue: QueueConfig,
        retry: RetryConfig,
        timeout: float,
        metrics: Metrics,
        log: logging.Logger,
        keep_decoded: bool = False,
        keep_span_skeleton: bool = False,
    ) -> None:
        self._send = send
        self._keep_decoded = keep_decoded
        self._keep_span_skeleton = keep_span_skeleton
        self._queue_cfg = queue
        self._retry_cfg = retry
        self._timeout = timeout
        self._log = log
        self._labels = {"exporter": str(exporter), "signal": signal.value}
        self._queue: collections.deque[Payload] = collections.deque()
        self._not_empty = asyncio.Condition()
        self._not_full = asyncio.Condition()
        # Keyed by send, not by payload: the same Payload object can be queued twice
        # (a batch retried after a fan-out partner refused it) and be in flight twice.
        self._inflight: dict[int, Payload] = {}
        self._sends = itertools.count()
        self._workers: list[asyncio.Task[None]] = []
        self._closing = asyncio.Event()
        self._idle = asyncio.Event()  # set when nothing is queued or in flight
        self._idle.set()
        self._deadline: float | None = None
        labels = self._labels
        self._sent = metrics.exporter_sent.labels(**labels)
        self._enqueue_failed = metrics.exporter_enqueue_failed.labels(**labels)
        self._dropped = {
            reason: metrics.exporter_dropped.labels(**labels, reason=reason)
            for reason in ("permanent", "retries_exhausted", "rejected", "shutdown")
        }
        self._failed_attempts = metrics.exporter_failed_attempts
        if queue.enabled:
            metrics.queue_size.labels(**labels).set_function(lambda: len(self._queue))
            metrics.queue_capacity.labels(**labels).set(queue.queue_size)

    @property
    def full(self) -> bool:
        return self._queue_cfg.enabled and len(self._queue) >= self._queue_cfg.queue_size

    async def start(self) -> None:
        if self._queue_cfg.enabled:
            self._workers = [
                asyncio.create_task(self._work(), name=f"{self._labels['exporter']}-{i}")
                for i in range(self._queue_cfg.num_consumers)
            ]

    @property
    def reads_span_skeleton(self) -> bool:
        """See ``component.reads_span_skeleton``: the exporter reads it, so its queue keeps it."""
        return self._keep_span_skeleton

    async def consume(self, payload: Payload) -> None:
        if self._closing.is_set():
            raise RetryableError("exporter is shutting down", retry_after=QUEUE_FULL_RETRY_AFTER)
        if not self._queue_cfg.enabled:
            error = await self._deliver(payload)
            if error is not None:
                raise error
            return
        if not self._keep_decoded:
            payload.release()
        if not self._keep_span_skeleton:
            payload.span_skeleton = None  # ~80 bytes a span that only the store reads
        if self.full:
            if not self._queue_cfg.blocking:
                self._enqueue_failed.inc(payload.items)
                raise RetryableError(
                    f"sending queue of exporter {self._labels['exporter']} is full",
                    retry_after=QUEUE_FULL_RETRY_AFTER,
                )
            async with self._not_full:
                await self._not_full.wait_for(lambda: not self.full or self._closing.is_set())
            if self._closing.is_set():
                raise RetryableError("exporter is shutting down", retry_after=QUEUE_FULL_RETRY_AFTER)
        self._queue.append(payload)
        self._idle.clear()
        async with self._not_empty:
            self._not_empty.notify()

    async def _work(self) -> None:
        while True:
            async with self._not_empty:
                await self._not_empty.wait_for(lambda: bool(self._queue))
                payload = self._queue.popleft()
                key = next(self._sends)
                self._inflight[key] = payload
            async with self._not_full:
                self._not_full.notify()
            # Only cancellation escapes _deliver; the payload then stays in _inflight
            # so that shutdown counts it as lost.
            try:
                error = await self._deliver(payload)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a bug here must not silently stop this worker for good
                self._log.exception("exporter worker failed", extra=self._labels)
                error = PermanentError(f"unexpected {type(exc).__name__}: {exc}")
            del self._inflight[key]
            if not self._queue and not self._inflight:
                self._idle.set()
            if error is not None:
                reason = "permanent" if isinstance(error, PermanentError) else "retries_exhausted"
                if self._closing.is_set() and not isinstance(error, PermanentError):
                    reason = "shutdown"
                self._drop(payload.items, reason, error.message)

    async def _deliver(self, payload: Payload) -> OtlpdError | None:
        """Send with retries; return the final error, or None once delivered."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        backoff = Backoff(self._retry_cfg)
        while True:
            try:
                rejected = await asyncio.wait_for(self._send(payload), self._timeout or None)
            except OtlpdError as exc:
                error: OtlpdError = exc
            except TimeoutError:
                error = RetryableError(f"send timed out after {self._timeout:g}s")
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a bug in an exporter must not kill its worker
                self._log.exception("exporter failed unexpectedly", extra=self._labels)
                error = PermanentError(f"unexpected {type(exc).__name__}: {exc}")
            else:
                self._sent.inc(payload.items - rejected)
                if rejected:
                    self._drop(rejected, "rejected", "the peer rejected part of the request")
                return None
            self._failed_attempts.labels(**self._labels, error=_error_kind(error)).inc()
            if isinstance(error, PermanentError) or not self._retry_cfg.enabled:
                return error
            assert isinstance(error, RetryableError)
            delay = backoff.next()
            if error.retry_after is not None:
                delay = max(delay, error.retry_after)
            now = loop.time()
            max_elapsed = self._retry_cfg.max_elapsed_time
            if max_elapsed and now + delay - started > max_elapsed:
                return error
            if self._deadline is not None and now + delay > self._deadline:
                return error
            self._log.debug(
                "send failed, will retry",
                extra={**self._labels, "error": error.message, "delay_s": round(delay, 3)},
            )
            await self._sleep(delay)

    async def _sleep(self, delay: float) -> None:
        """Sleep, but wake at once when shutdown starts: one last try before the deadline."""
        if self._closing.is_set():
            await asyncio.sleep(delay)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closing.wait(), delay)

    def _drop(self, items: int, reason: str, why: str) -> None:
        self._dropped[reason].inc(items)
        self._log.error(
            "dropping data", extra={**self._labels, "items": items, "reason": reason, "error": why}
        )

    async def shutdown(self, deadline: float) -> None:
        """Refuse new data, deliver what is queued until ``deadline``, count the rest."""
        self._deadline = deadline
        self._closing.set()
        async with self._not_full:
            self._not_full.notify_all()
        remaining = max(0.0, deadline - asyncio.get_running_loop().time())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), remaining)
        await _cancel_all(self._workers)
        lost = sum(p.items for p in self._queue) + sum(p.items for p in self._inflight.values())
        self._queue.clear()
        self._inflight.clear()
        if lost:
            self._drop(lost, "shutdown", "shutdown deadline reached before delivery")


async def _cancel_all(tasks: list[asyncio.Task[None]]) -> None:
    """Cancel ``tasks`` and wait until every one has stopped.

    On Python 3.11 ``asyncio.wait_for`` swallows a cancellation that arrives just
    as its inner future completes, so a single ``cancel()`` can leave a worker
    running (and shutdown waiting for it forever): cancel until they are done.
    """
    while pending := [t for t in tasks if not t.done()]:
        for task in pending:
            task.cancel()
        await asyncio.wait(pending, timeout=0.05)
    await asyncio.gather(*tasks, return_exceptions=True)


def _error_kind(error: OtlpdError) -> str:
    if isinstance(error, ThrottledError):
        return "throttled"
    if isinstance(error, RetryableError):
        return "retryable"
    return "permanent"
