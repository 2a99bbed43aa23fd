"""Queue → retry → timeout → send, driven in-process with real exporters against a real Sink."""

from __future__ import annotations

import asyncio
import logging

import grpc
import pytest

from otlpd import skeleton
from otlpd.component import ComponentID
from otlpd.errors import PermanentError, RetryableError
from otlpd.exporters.helper.config import QueueConfig, RetryConfig
from otlpd.exporters.helper.sender import QueuedRetrySender
from otlpd.pdata import Payload, Signal
from otlpd.telemetry.metrics import Metrics
from tests.exporters.helpers import (
    FAST_RETRY,
    metric,
    payload,
    running,
    span_names,
    traces,
    upstream,
    wait_for,
)
from tests.support.sink import Failure, Sink

KINDS = ["otlp", "otlphttp"]
PERMANENT = Failure(grpc.StatusCode.INVALID_ARGUMENT, 400)

SENT = "otlpd_exporter_sent_items_total"
FAILED = "otlpd_exporter_send_failed_requests_total"
DROPPED = "otlpd_exporter_dropped_items_total"
ENQUEUE_FAILED = "otlpd_exporter_enqueue_failed_items_total"


@pytest.mark.parametrize("kind", KINDS)
async def test_retries_until_delivered_exactly_once(sink: Sink, kind: str) -> None:
    sink.fail_next(3)
    async with running(kind, upstream(kind, sink)) as r:
        await r.consumer.consume(payload(Signal.TRACES, traces(5)))
        assert await wait_for(lambda: sink.state.items(Signal.TRACES) >= 5)
        await r.shutdown(5.0)
    assert sink.state.attempts == 4
    assert len(sink.state.received) == 1
    assert sink.state.items(Signal.TRACES) == 5
    assert r.m(FAILED, error="retryable") == 3
    assert r.m(SENT) == 5
    assert r.m(DROPPED) == 0


@pytest.mark.parametrize("kind", KINDS)
async def test_max_elapsed_time_exhausted_drops_as_retries_exhausted(sink: Sink, kind: str) -> None:
    sink.fail_next(10_000)
    cfg = upstream(kind, sink, retry_on_failure={"max_elapsed_time": "500ms"})
    async with running(kind, cfg) as r:
        await r.consumer.consume(payload(Signal.TRACES, traces(4)))
        assert await wait_for(lambda: r.m(DROPPED) > 0)
        assert r.m(DROPPED, reason="retries_exhausted") == 4
        attempts = sink.state.attempts
        assert attempts > 1
        assert r.m(FAILED) == attempts
        await asyncio.sleep(0.2)  # it has given up: no further attempts
        assert sink.state.attempts == attempts
    assert sink.state.received == []
    assert r.m(SENT) == 0


@pytest.mark.parametrize("kind", KINDS)
async def test_retry_disabled_means_one_attempt(sink: Sink, kind: str) -> None:
    sink.fail_next(5)
    async with running(kind, upstream(kind, sink, retry_on_failure={"enabled": False})) as r:
        await r.consumer.consume(payload(Signal.TRACES, traces(3)))
        assert await wait_for(lambda: r.m(DROPPED) > 0)
        await asyncio.sleep(0.2)
    assert sink.state.attempts == 1
    assert r.m(DROPPED, reason="retries_exhausted") == 3
    assert r.m(FAILED, error="retryable") == 1


async def test_without_a_queue_the_caller_gets_the_outcome(sink: Sink) -> None:
    cfg = upstream("otlp", sink, sending_queue={"enabled": False})
    async with running("otlp", cfg) as r:
        sink.fail_next(2)
        await r.consumer.consume(payload(Signal.TRACES, traces(2, "a")))
        # returned only once delivered, after the retries
        assert sink.state.attempts == 3
        assert sink.state.items(Signal.TRACES) == 2

        sink.fail_next(1, PERMANENT)
        with pytest.raises(PermanentError):
            await r.consumer.consume(payload(Signal.TRACES, traces(2, "b")))
        assert sink.state.attempts == 4
    assert r.m(SENT) == 2
    assert r.m("otlpd_exporter_queue_capacity") == 0

    cfg = upstream("otlp", sink, sending_queue={"enabled": False}, retry_on_failure={"enabled": False})
    async with running("otlp", cfg) as r:
        sink.fail_next(1)
        with pytest.raises(RetryableError):
            await r.consumer.consume(payload(Signal.TRACES, traces(2, "c")))
    assert sink.state.attempts == 5


async def test_full_queue_refuses_and_counts_when_not_blocking(sink: Sink) -> None:
    sink.state.delay = 0.5
    cfg = upstream("otlp", sink, sending_queue={"queue_size": 2, "num_consumers": 1})
    async with running("otlp", cfg) as r:
        assert r.m("otlpd_exporter_queue_capacity") == 2
        assert r.m("otlpd_exporter_queue_size") == 0
        await r.consumer.consume(payload(Signal.TRACES, traces(1, "p1")))
        assert await wait_for(lambda: sink.state.attempts == 1)  # the only worker is busy
        await r.consumer.consume(payload(Signal.TRACES, traces(2, "p2")))
        assert r.m("otlpd_exporter_queue_size") == 1
        assert not r.component.refusing
        await r.consumer.consume(payload(Signal.TRACES, traces(3, "p3")))
        assert r.m("otlpd_exporter_queue_size") == 2
        assert r.component.refusing
        with pytest.raises(RetryableError) as refused:
            await r.consumer.consume(payload(Signal.TRACES, traces(4, "p4")))
        assert refused.value.retry_after is not None
        assert r.m(ENQUEUE_FAILED) == 4
        sink.state.delay = 0
        assert await wait_for(lambda: sink.state.items(Signal.TRACES) >= 6)
        await r.shutdown(5.0)
    assert sorted(span_names(sink.state.messages(Signal.TRACES))) == sorted(
        ["p1-0", "p2-0", "p2-1", "p3-0", "p3-1", "p3-2"]
    )
    assert r.m("otlpd_exporter_queue_size") == 0
    assert r.m(SENT) == 6
    assert r.m(DROPPED) == 0


async def test_full_queue_makes_the_caller_wait_when_blocking(sink: Sink) -> None:
    sink.state.delay = 0.4
    cfg = upstream("otlp", sink, sending_queue={"queue_size": 1, "num_consumers": 1, "blocking": True})
    async with running("otlp", cfg) as r:
        await r.consumer.consume(payload(Signal.TRACES, traces(1, "p1")))
        assert await wait_for(lambda: sink.state.attempts == 1)
        await r.consumer.consume(payload(Signal.TRACES, traces(1, "p2")))  # fills the queue
        blocked = asyncio.create_task(r.consumer.consume(payload(Signal.TRACES, traces(1, "p3"))))
        await asyncio.sleep(0.05)
        assert not blocked.done()
        await blocked  # returns once the worker, done with p1, has taken p2 off the queue
        assert sink.state.received, "p1 was delivered before p3 got a place"
        sink.state.delay = 0
        assert await wait_for(lambda: sink.state.items(Signal.TRACES) >= 3)
    assert span_names(sink.state.messages(Signal.TRACES)) == ["p1-0", "p2-0", "p3-0"]
    assert r.m(ENQUEUE_FAILED) == 0
    assert r.m(DROPPED) == 0


async def test_blocked_caller_is_released_by_shutdown(sink: Sink) -> None:
    sink.state.delay = 2.0
    cfg = upstream(
        "otlp", sink, timeout="5s", sending_queue={"queue_size": 1, "num_consumers": 1, "blocking": True}
    )
    async with running("otlp", cfg) as r:
        await r.consumer.consume(payload(Signal.TRACES, traces(1, "p1")))
        assert await wait_for(lambda: sink.state.attempts == 1)
        await r.consumer.consume(payload(Signal.TRACES, traces(1, "p2")))
        blocked = asyncio.create_task(r.consumer.consume(payload(Signal.TRACES, traces(1, "p3"))))
        await asyncio.sleep(0.05)
        await r.shutdown(0.2)
        with pytest.raises(RetryableError):
            await blocked
    # p1 was in flight, p2 queued: both counted as lost at the deadline; p3 was refused
    assert r.m(DROPPED, reason="shutdown") == 2


async def test_consumers_send_in_parallel(sink: Sink) -> None:
    sink.state.delay = 0.6
    cfg = upstream("otlp", sink, sending_queue={"num_consumers": 3})
    async with running("otlp", cfg) as r:
        for i in range(3):
            await r.consumer.consume(payload(Signal.TRACES, traces(1, f"p{i}")))
        assert await wait_for(lambda: sink.state.attempts == 3)
        assert sink.state.received == []  # three requests in flight at once
        assert await wait_for(lambda: len(sink.state.received) == 3)


@pytest.mark.parametrize("kind", KINDS)
async def test_a_slow_upstream_times_out_and_is_retried(sink: Sink, kind: str) -> None:
    sink.state.delay = 1.0
    async with running(kind, upstream(kind, sink, timeout="100ms")) as r:
        await r.consumer.consume(payload(Signal.TRACES, traces(3)))
        assert await wait_for(lambda: r.m(FAILED) >= 2)
        assert sink.state.attempts >= 2
        sink.state.delay = 0
        assert await wait_for(lambda: r.m(SENT) == 3)
        assert r.m(FAILED, error="retryable") >= 2
        assert r.m(DROPPED) == 0
    # at least once: a peer that finishes a request the client gave up on may have kept it too
    assert sink.state.items(Signal.TRACES) >= 3
    assert set(span_names(sink.state.messages(Signal.TRACES))) == {"t-0", "t-1", "t-2"}


async def test_shutdown_drains_the_queue_first(sink: Sink) -> None:
    sink.fail_next(3)
    cfg = upstream("otlp", sink, sending_queue={"num_consumers": 1})
    async with running("otlp", cfg) as r:
        for i in range(5):
            await r.consumer.consume(payload(Signal.TRACES, traces(2, f"p{i}")))
        await r.shutdown(10.0)
        assert sink.state.items(Signal.TRACES) == 10  # all delivered when shutdown returns
        with pytest.raises(RetryableError):
            await r.consumer.consume(payload(Signal.TRACES, traces(1, "late")))
    assert span_names(sink.state.messages(Signal.TRACES)) == [f"p{i}-{j}" for i in range(5) for j in range(2)]
    assert r.m(DROPPED) == 0


async def test_shutdown_deadline_counts_what_was_not_delivered(sink: Sink) -> None:
    sink.fail_next(10_000)
    cfg = upstream("otlp", sink, sending_queue={"num_consumers": 1})
    async with running("otlp", cfg) as r:
        for i in range(3):
            await r.consumer.consume(payload(Signal.TRACES, traces(2, f"p{i}")))
        assert await wait_for(lambda: sink.state.attempts >= 2)
        await r.shutdown(0.3)
    assert sink.state.received == []
    assert r.m(DROPPED, reason="shutdown") == 6
    assert r.m(DROPPED) == 6


async def test_shutdown_counts_a_send_still_in_flight_at_the_deadline(sink: Sink) -> None:
    sink.state.delay = 5.0
    async with running("otlp", upstream("otlp", sink, timeout="10s")) as r:
        await r.consumer.consume(payload(Signal.TRACES, traces(4)))
        assert await wait_for(lambda: sink.state.attempts == 1)
        await r.shutdown(0.2)
    assert r.m(SENT) == 0
    assert r.m(DROPPED, reason="shutdown") == 4


async def test_each_exporter_has_its_own_queue_and_retries(sink: Sink, other_sink: Sink) -> None:
    sink.fail_next(10_000)  # the otlp upstream is down; the otlphttp one is fine
    async with (
        running("otlp", upstream("otlp", sink), name="down") as down,
        running("otlphttp", upstream("otlphttp", other_sink), name="up") as up,
    ):
        for i in range(3):
            p = payload(Signal.TRACES, traces(2, f"p{i}"))
            await down.consumer.consume(p)
            await up.consumer.consume(p)
        assert await wait_for(lambda: other_sink.state.items(Signal.TRACES) == 6)
        assert sink.state.received == []
        assert await wait_for(lambda: sink.state.attempts >= 3)  # under load, retries lag the healthy path
        # the sink has the items before the exporter has read its answer and counted them
        assert await wait_for(lambda: up.m(SENT) == 6)
        sink.state.failures.clear()
        assert await wait_for(lambda: sink.state.items(Signal.TRACES) == 6)
    assert sorted(span_names(sink.state.messages(Signal.TRACES))) == sorted(
        span_names(other_sink.state.messages(Signal.TRACES))
    )
    assert up.m(FAILED) == 0
    assert down.m(FAILED) >= 3
    assert down.m(DROPPED) == up.m(DROPPED) == 0


def _direct_sender(
    send: object,
    m: Metrics,
    name: str = "",
    keep_decoded: bool = False,
    keep_span_skeleton: bool = False,
    **queue: object,
) -> QueuedRetrySender:
    return QueuedRetrySender(
        ComponentID("fake", name),
        Signal.TRACES,
        send,  # type: ignore[arg-type]
        queue=QueueConfig.model_validate(queue),
        retry=RetryConfig.model_validate(FAST_RETRY),
        timeout=1.0,
        metrics=m,
        log=logging.getLogger("otlpd.test"),
        keep_decoded=keep_decoded,
        keep_span_skeleton=keep_span_skeleton,
    )


@pytest.mark.parametrize("keep", [False, True])
async def test_the_queue_keeps_the_span_skeleton_only_for_exporters_that_read_it(keep: bool) -> None:
    """The store reads the receiver's span skeleton; other queues need not hold ~80 bytes a span."""
    seen: list[bytes | None] = []

    async def send(p: Payload) -> int:
        seen.append(p.span_skeleton)
        return 0

    sender = _direct_sender(send, Metrics(), keep_span_skeleton=keep, num_consumers=1)
    await sender.start()
    data = traces(3, "kept").SerializeToString()
    await sender.consume(Payload(Signal.TRACES, data, 3, span_skeleton=skeleton.canonical_spans(data)))
    assert await wait_for(lambda: len(seen) == 1)
    await sender.shutdown(asyncio.get_running_loop().time() + 2)
    assert seen == [skeleton.canonical_spans(data) if keep else None]


@pytest.mark.parametrize("keep", [False, True])
async def test_the_queue_keeps_the_decoded_message_only_for_exporters_that_read_it(keep: bool) -> None:
    """The store reads the receiver's decoding; other queues hold only the bytes."""
    seen: list[object] = []

    async def send(p: Payload) -> int:
        seen.append(p._message)
        return 0

    sender = _direct_sender(send, Metrics(), keep_decoded=keep, num_consumers=1)
    await sender.start()
    request = traces(3, "kept")
    await sender.consume(payload(Signal.TRACES, request))
    assert await wait_for(lambda: len(seen) == 1)
    await sender.shutdown(asyncio.get_running_loop().time() + 2)
    assert (seen[0] is not None) is keep


async def test_an_exporter_bug_drops_one_request_but_not_the_worker() -> None:
    got: list[Payload] = []

    async def send(p: Payload) -> int:
        if not got and p.items == 1:
            got.append(p)
            raise ValueError("boom")
        got.append(p)
        return 0

    m = Metrics()
    sender = _direct_sender(send, m, num_consumers=1)
    await sender.start()
    await sender.consume(payload(Signal.TRACES, traces(1, "bad")))
    await sender.consume(payload(Signal.TRACES, traces(2, "good")))
    assert await wait_for(lambda: len(got) == 2)
    await sender.shutdown(asyncio.get_running_loop().time() + 2)
    assert len(got) == 2  # the bug was not retried
    assert metric(m, DROPPED, exporter="fake", reason="permanent") == 1
    assert metric(m, SENT, exporter="fake") == 2
    assert metric(m, FAILED, exporter="fake", error="permanent") == 1


async def test_a_retryable_error_from_the_send_function_is_retried_with_its_hint() -> None:
    calls: list[float] = []

    async def send(p: Payload) -> int:
        calls.append(asyncio.get_running_loop().time())
        if len(calls) == 1:
            raise RetryableError("later", retry_after=0.3)
        return 0

    m = Metrics()
    sender = _direct_sender(send, m)
    await sender.start()
    await sender.consume(payload(Signal.TRACES, traces(1)))
    assert await wait_for(lambda: len(calls) == 2)
    await sender.shutdown(asyncio.get_running_loop().time() + 2)
    assert calls[1] - calls[0] >= 0.3 * 0.95  # waited at least the hint, not the 10 ms backoff


async def test_shutdown_at_the_deadline_always_stops_and_accounts_for_every_item() -> None:
    """Cancelled mid-send at many different points, a sender still stops, and sent + lost = queued.

    (On Python 3.11 a cancellation racing a completing ``asyncio.wait_for`` is swallowed;
    a sender that cancels its workers only once can then wait for them forever.)
    """
    loop = asyncio.get_running_loop()
    m = Metrics()
    for i in range(30):

        async def send(p: Payload, hops: int = i % 4) -> int:
            for _ in range(hops):
                await asyncio.sleep(0)
            return 0

        sender = _direct_sender(send, m, name=str(i), num_consumers=1 + i % 2, queue_size=10_000)
        await sender.start()
        for _ in range(300):
            await sender.consume(payload(Signal.TRACES, traces(1)))
        for _ in range(i % 7):
            await asyncio.sleep(0)
        await asyncio.wait_for(sender.shutdown(loop.time()), 5)
        sent = metric(m, SENT, exporter=f"fake/{i}")
        lost = metric(m, DROPPED, exporter=f"fake/{i}", reason="shutdown")
        assert sent + lost == 300, (i, sent, lost)


async def test_the_same_payload_queued_twice_is_tracked_twice() -> None:
    """A batch processor retries the very same Payload after a fan-out partner refused it.

    Both copies can be in flight at once; the first finishing must not make the
    sender think it is idle, or shutdown would cut the second one off uncounted.
    """
    release = [asyncio.Event(), asyncio.Event()]
    started: list[int] = []

    async def send(p: Payload) -> int:
        n = len(started)
        started.append(n)
        await release[n].wait()
        return 0

    m = Metrics()
    sender = _direct_sender(send, m, num_consumers=2)
    await sender.start()
    same = payload(Signal.TRACES, traces(3))
    await sender.consume(same)
    await sender.consume(same)
    assert await wait_for(lambda: len(started) == 2)
    release[0].set()
    assert await wait_for(lambda: metric(m, SENT, exporter="fake") == 3)
    loop = asyncio.get_running_loop()
    loop.call_later(0.2, release[1].set)
    await sender.shutdown(loop.time() + 5)  # waits for the second copy
    assert metric(m, SENT, exporter="fake") == 6
    assert metric(m, DROPPED, exporter="fake") == 0
