"""One payload to several consumers (pipelines, or exporters of one pipeline)."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Sequence

from otlpd.component import Consumer, reads_span_skeleton, refusal
from otlpd.errors import OtlpdError, RetryableError
from otlpd.pdata import Payload


class Fanout:
    """Delivers to every consumer concurrently; fails if any fails.

    A retryable failure wins over a permanent one, so the sender retries. When
    it retries with the *same* payload object (the batch processor does), the
    consumers that already took it are skipped: a healthy exporter never sees a
    batch twice because its neighbour is down. A new request from a client is a
    new object and goes to everyone (at-least-once, as in the Collector).
    """

    def __init__(self, consumers: Sequence[Consumer]) -> None:
        self._consumers = list(consumers)
        self._delivered: weakref.WeakKeyDictionary[Payload, set[int]] = weakref.WeakKeyDictionary()

    @property
    def refusal(self) -> OtlpdError | None:
        """Refused by any consumer: refused as a whole (see ``component.refusal``)."""
        return next(filter(None, map(refusal, self._consumers)), None)

    @property
    def reads_span_skeleton(self) -> bool:
        """Read by any consumer (see ``component.reads_span_skeleton``)."""
        return any(map(reads_span_skeleton, self._consumers))

    async def consume(self, payload: Payload) -> None:
        done = self._delivered.get(payload, set())
        targets = [i for i in range(len(self._consumers)) if i not in done]
        # Each consumer gets its own view: one that releases the decoded message (a batch
        # processor, a queue) must not take it from another that uses it (the store).
        results = await asyncio.gather(
            *(self._consumers[i].consume(payload.view()) for i in targets), return_exceptions=True
        )
        errors = []
        for i, result in zip(targets, results, strict=True):
            if isinstance(result, BaseException):
                errors.append(result)
            else:
                done.add(i)
        if not errors:
            self._delivered.pop(payload, None)
            return
        self._delivered[payload] = done
        raise next((e for e in errors if isinstance(e, RetryableError)), errors[0])


def fan(consumers: Sequence[Consumer]) -> Consumer:
    return consumers[0] if len(consumers) == 1 else Fanout(consumers)
