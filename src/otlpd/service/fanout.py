"""One payload to several consumers (pipelines, or exporters of one pipeline)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from otlpd.component import Consumer
from otlpd.errors import OtlpdError, PermanentError, RetryableError
from otlpd.pdata import Payload


class Fanout:
    """Delivers to every consumer concurrently; fails if any fails.

    A retryable failure wins over a permanent one: the sender retries, and the
    consumers that did accept see the data again (at-least-once, as in the
    Collector).
    """

    def __init__(self, consumers: Sequence[Consumer]) -> None:
        self._consumers = list(consumers)

    async def consume(self, payload: Payload) -> None:
        results = await asyncio.gather(*(c.consume(payload) for c in self._consumers), return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        if not errors:
            return
        for err in errors:
            if isinstance(err, RetryableError):
                raise err
        for err in errors:
            if isinstance(err, PermanentError):
                raise err
        err = errors[0]
        if isinstance(err, OtlpdError):
            raise err
        raise err


def fan(consumers: Sequence[Consumer]) -> Consumer:
    return consumers[0] if len(consumers) == 1 else Fanout(consumers)
