"""Fan-out retries reach only the consumers that refused: a healthy neighbour sees a batch once."""

from __future__ import annotations

import asyncio

import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as trace_svc

from otlpd.errors import PermanentError, RetryableError
from otlpd.pdata import Payload, Signal
from otlpd.service.fanout import Fanout


class Recorder:
    def __init__(self, refusals: int = 0, error: Exception | None = None) -> None:
        self.got: list[Payload] = []
        self.refusals = refusals
        self.error = error or RetryableError("full")

    async def consume(self, payload: Payload) -> None:
        if self.refusals:
            self.refusals -= 1
            raise self.error
        self.got.append(payload)


def test_a_retried_payload_skips_consumers_that_took_it() -> None:
    healthy, flaky = Recorder(), Recorder(refusals=3)
    fanout = Fanout([healthy, flaky])
    batch = Payload(Signal.TRACES, b"x", 1)

    async def run() -> None:
        for _ in range(3):
            with pytest.raises(RetryableError):
                await fanout.consume(batch)
        await fanout.consume(batch)

    asyncio.run(run())
    assert [p.data for p in healthy.got] == [b"x"]  # once, not four times
    assert [p.data for p in flaky.got] == [b"x"]


def test_a_new_payload_goes_to_everyone_and_retryable_wins() -> None:
    a, b = Recorder(refusals=1, error=PermanentError("bad")), Recorder(refusals=1)
    fanout = Fanout([a, b])

    async def run() -> None:
        with pytest.raises(RetryableError):  # the sender should retry, not drop
            await fanout.consume(Payload(Signal.LOGS, b"1", 1))
        await fanout.consume(Payload(Signal.LOGS, b"2", 1))

    asyncio.run(run())
    assert [p.data for p in a.got] == [b"2"]
    assert [p.data for p in b.got] == [b"2"]


def test_a_consumer_that_releases_the_decoded_message_does_not_take_it_from_another() -> None:
    message = trace_svc.ExportTraceServiceRequest()
    message.resource_spans.add().scope_spans.add().spans.add(name="s")
    payload = Payload.from_message(Signal.TRACES, message)
    seen: list[object] = []

    class Releasing:
        async def consume(self, p: Payload) -> None:
            p.release()  # as the batch processor and sending queues do

    class Reading:
        async def consume(self, p: Payload) -> None:
            await asyncio.sleep(0)  # after the other one released its view
            seen.append(p._message)

    asyncio.run(Fanout([Releasing(), Reading()]).consume(payload))
    assert seen == [message]  # the same decoded object: not parsed again
