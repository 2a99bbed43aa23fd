"""The batch processor, driven in-process: triggers, limits, concatenation, back-pressure, shutdown."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest

from otlpd.component import ComponentID, Kind, Settings
from otlpd.errors import PermanentError, RetryableError
from otlpd.pdata import Payload, Signal, count_items
from otlpd.processors.batch.processor import BatchProcessor
from otlpd.service import registry
from otlpd.telemetry.metrics import Metrics
from tests.exporters.helpers import (
    build_exporter,
    logs,
    metric,
    metrics,
    payload,
    span_names,
    traces,
    upstream,
    wait_for,
)
from tests.support.sink import Sink

DROPPED = "otlpd_processor_dropped_items_total"
SENDS = "otlpd_processor_batch_sends_total"


class Recorder:
    """The next consumer: records batches; can be told to fail."""

    def __init__(self) -> None:
        self.batches: list[Payload] = []
        self.failures: list[Exception] = []
        self.always: Exception | None = None
        self.calls = 0

    async def consume(self, p: Payload) -> None:
        self.calls += 1
        if self.always is not None:
            raise self.always
        if self.failures:
            raise self.failures.pop(0)
        self.batches.append(p)

    @property
    def sizes(self) -> list[int]:
        return [b.items for b in self.batches]

    def items(self) -> int:
        return sum(self.sizes)

    def messages(self) -> list[Any]:
        return [b.message for b in self.batches]


def make(cfg: dict[str, Any], next: Any, signal: Signal = Signal.TRACES) -> tuple[BatchProcessor, Metrics]:
    factory = registry.lookup(Kind.PROCESSOR, "batch")
    assert factory is not None
    m = Metrics()
    settings = Settings(ComponentID("batch"), factory.config.model_validate(cfg), m)
    processor: BatchProcessor = factory.create(settings, signal, next)
    return processor, m


async def stop(p: BatchProcessor, within: float = 5.0) -> None:
    await p.shutdown(asyncio.get_running_loop().time() + within)


def sends(m: Metrics, trigger: str) -> float:
    return metric(m, SENDS, trigger=trigger)


async def test_send_batch_size_triggers_a_send() -> None:
    rec = Recorder()
    p, m = make({"send_batch_size": 10, "timeout": "30s"}, rec)
    await p.start()
    await p.consume(payload(Signal.TRACES, traces(4, "a")))
    await p.consume(payload(Signal.TRACES, traces(4, "b")))
    await asyncio.sleep(0.1)
    assert rec.batches == []  # 8 < 10 and the timeout is far away
    await p.consume(payload(Signal.TRACES, traces(4, "c")))
    assert await wait_for(lambda: len(rec.batches) == 1, timeout=5)  # long before the 30 s timeout
    assert rec.sizes == [12]
    assert sends(m, "size") == 1
    assert sends(m, "timeout") == 0
    await stop(p)


async def test_timeout_triggers_a_send() -> None:
    rec = Recorder()
    p, m = make({"send_batch_size": 1000, "timeout": "300ms"}, rec)
    await p.start()
    for tag in "abc":
        await p.consume(payload(Signal.TRACES, traces(2, tag)))
        await asyncio.sleep(0.02)
    assert await wait_for(lambda: len(rec.batches) == 1)
    assert rec.sizes == [6]  # the three requests waited for each other
    assert sends(m, "timeout") == 1
    await p.consume(payload(Signal.TRACES, traces(1, "d")))  # the timer starts again
    assert await wait_for(lambda: len(rec.batches) == 2)
    assert rec.sizes == [6, 1]
    assert sends(m, "timeout") == 2
    assert sends(m, "size") == 0
    await stop(p)


async def test_timeout_zero_sends_at_once() -> None:
    rec = Recorder()
    p, _ = make({"send_batch_size": 1000, "timeout": "0s"}, rec)
    await p.start()
    for i in range(3):
        await p.consume(payload(Signal.TRACES, traces(1, f"p{i}")))
        assert await wait_for(lambda i=i: len(rec.batches) == i + 1)  # type: ignore[misc]
    assert rec.sizes == [1, 1, 1]
    await stop(p)


async def test_send_batch_max_size_splits_and_no_batch_is_bigger() -> None:
    rec = Recorder()
    p, _ = make({"send_batch_size": 5, "send_batch_max_size": 5, "timeout": "50ms"}, rec)
    await p.start()
    sent = [traces(3, "a"), traces(3, "b"), traces(3, "c"), traces(3, "d"), traces(12, "big")]
    for message in sent:
        await p.consume(payload(Signal.TRACES, message))
    assert await wait_for(lambda: rec.items() == 24)
    await stop(p)
    assert max(rec.sizes) <= 5
    assert sorted(span_names(rec.messages())) == sorted(span_names(sent))
    for b in rec.batches:
        assert b.items == count_items(Signal.TRACES, b.message)
        for rs in b.message.resource_spans:  # a piece keeps its resource and scope
            assert rs.resource.attributes[0].value.string_value.startswith("svc-")
            assert rs.scope_spans[0].scope.name == "tests"


@pytest.mark.timeout(15)
async def test_a_metric_bigger_than_max_size_is_sent_alone_not_looped_on() -> None:
    """A metric is never cut: one with more points than send_batch_max_size goes as it is."""
    rec = Recorder()
    p, _ = make({"send_batch_size": 4, "send_batch_max_size": 4, "timeout": "50ms"}, rec, Signal.METRICS)
    await p.start()
    await p.consume(payload(Signal.METRICS, metrics([10, 1, 1], "x")))
    await p.consume(payload(Signal.METRICS, metrics([2, 2, 2], "y")))
    assert await wait_for(lambda: rec.items() == 18, timeout=5)
    await stop(p)
    names = [m.name for b in rec.messages() for rm in b.resource_metrics for sm in rm.scope_metrics
             for m in sm.metrics]  # fmt: skip
    assert sorted(names) == ["x-0", "x-1", "x-2", "y-0", "y-1", "y-2"]
    for b in rec.batches:
        assert b.items <= 4 or b.items == 10
    assert 10 in rec.sizes


async def test_a_batch_is_the_concatenation_of_the_requests() -> None:
    rec = Recorder()
    p, _ = make({"send_batch_size": 100, "timeout": "100ms"}, rec)
    await p.start()
    sent = [payload(Signal.TRACES, traces(2, f"p{i}")) for i in range(5)]
    expected = b"".join(s.data for s in sent)
    for s in sent:
        await p.consume(s)
    assert await wait_for(lambda: len(rec.batches) == 1)
    await stop(p)
    [batch] = rec.batches
    assert batch.data == expected
    assert batch.items == 10
    assert len(batch.message.resource_spans) == 5


async def test_fewer_larger_requests_reach_a_real_upstream(sink: Sink) -> None:
    m = Metrics()
    exporter = build_exporter("otlp", upstream("otlp", sink), m)
    p, pm = make({"send_batch_size": 1000, "timeout": "200ms"}, exporter.consumer(Signal.TRACES))
    await exporter.start()
    await p.start()
    sent = [traces(3, f"p{i}") for i in range(10)]
    for message in sent:
        await p.consume(payload(Signal.TRACES, message))
    assert await wait_for(lambda: sink.state.items(Signal.TRACES) == 30)
    await stop(p)
    await exporter.shutdown(asyncio.get_running_loop().time() + 5)
    assert len(sink.state.received) < len(sent)
    assert sink.state.received[0].body == b"".join(s.SerializeToString() for s in sent)
    assert sorted(span_names(sink.state.messages(Signal.TRACES))) == sorted(span_names(sent))
    assert metric(pm, "otlpd_processor_batch_send_size_sum") == 30


@pytest.mark.parametrize(("signal", "message"), [(Signal.LOGS, logs(3)), (Signal.METRICS, metrics([2, 1]))])
async def test_other_signals_batch_too(signal: Signal, message: Any) -> None:
    rec = Recorder()
    p, _ = make({"send_batch_size": 6, "timeout": "10s"}, rec, signal)
    await p.start()
    await p.consume(payload(signal, message))
    await p.consume(payload(signal, message))
    assert await wait_for(lambda: len(rec.batches) == 1)
    await stop(p)
    assert rec.sizes == [6]
    assert count_items(signal, rec.batches[0].message) == 6


async def test_a_retryable_refusal_keeps_the_batch_and_retries_it() -> None:
    rec = Recorder()
    rec.failures = [RetryableError("busy"), RetryableError("busy"), RetryableError("busy", retry_after=0.1)]
    p, m = make({"send_batch_size": 4, "timeout": "50ms"}, rec)
    await p.start()
    await p.consume(payload(Signal.TRACES, traces(4, "a")))
    assert await wait_for(lambda: rec.calls == 2)
    await p.consume(payload(Signal.TRACES, traces(2, "b")))  # arrives while "a" is being retried
    assert await wait_for(lambda: rec.items() == 6)
    await stop(p)
    assert rec.calls == 5
    assert [span_names([b.message]) for b in rec.batches] == [
        ["a-0", "a-1", "a-2", "a-3"],
        ["b-0", "b-1"],
    ]
    assert metric(m, DROPPED) == 0


async def test_a_full_exporter_queue_is_retried_soon_not_after_its_hint_to_clients() -> None:
    """A queue's "come back in a second" is for clients; it has room again after one send.

    Honouring it left the store's queue empty and its writer idle a third of the time
    under sustained load.
    """
    rec = Recorder()
    rec.failures = [RetryableError("sending queue of exporter store is full", retry_after=1.0)]
    p, _ = make({"send_batch_size": 4, "timeout": "50ms"}, rec)
    await p.start()
    await p.consume(payload(Signal.TRACES, traces(4, "a")))
    started = asyncio.get_running_loop().time()
    assert await wait_for(lambda: rec.items() == 4)
    assert asyncio.get_running_loop().time() - started < 0.5
    await stop(p)


async def test_pending_limit_refuses_new_data_until_the_consumer_recovers() -> None:
    rec = Recorder()
    rec.always = RetryableError("upstream is down")
    p, m = make({"send_batch_size": 1024, "timeout": "10ms"}, rec)
    assert p._cfg.pending_limit == 8192
    await p.start()
    await p.consume(payload(Signal.TRACES, traces(4096, "a")))
    assert await wait_for(lambda: rec.calls >= 1)  # "a" is now being retried
    await p.consume(payload(Signal.TRACES, traces(4096, "b")))
    assert not p.refusing
    await p.consume(payload(Signal.TRACES, traces(4096, "c")))
    assert p.refusing
    assert metric(m, "otlpd_processor_batch_pending_items") == 8192
    with pytest.raises(RetryableError) as refused:
        await p.consume(payload(Signal.TRACES, traces(1, "d")))
    assert refused.value.retry_after is not None
    rec.always = None
    assert await wait_for(lambda: rec.items() == 3 * 4096)
    assert not p.refusing
    await p.consume(payload(Signal.TRACES, traces(1, "e")))  # accepted again
    await stop(p)
    names = Counter(name.split("-")[0] for name in span_names(rec.messages()))
    assert names == {"a": 4096, "b": 4096, "c": 4096, "e": 1}
    assert metric(m, DROPPED) == 0


@pytest.mark.parametrize("error", [PermanentError("never"), ValueError("a bug downstream")])
async def test_a_permanent_refusal_drops_the_batch_and_counts_it(error: Exception) -> None:
    rec = Recorder()
    rec.failures = [error]
    p, m = make({"send_batch_size": 3, "timeout": "50ms"}, rec)
    await p.start()
    await p.consume(payload(Signal.TRACES, traces(3, "lost")))
    assert await wait_for(lambda: metric(m, DROPPED) == 3)
    await p.consume(payload(Signal.TRACES, traces(3, "kept")))  # the processor keeps going
    assert await wait_for(lambda: rec.items() == 3)
    await stop(p)
    assert rec.calls == 2  # not retried
    assert span_names(rec.messages()) == ["kept-0", "kept-1", "kept-2"]
    assert metric(m, DROPPED, processor="batch", signal="traces") == 3


async def test_shutdown_flushes_everything() -> None:
    rec = Recorder()
    p, m = make({"send_batch_size": 1000, "send_batch_max_size": 1000, "timeout": "30s"}, rec)
    await p.start()
    for i in range(5):
        await p.consume(payload(Signal.TRACES, traces(3, f"p{i}")))
    await asyncio.sleep(0.05)
    assert rec.batches == []
    await stop(p)
    assert rec.items() == 15  # flushed by the time shutdown returns
    assert sends(m, "shutdown") == 1
    with pytest.raises(RetryableError):
        await p.consume(payload(Signal.TRACES, traces(1, "late")))
    assert metric(m, DROPPED) == 0


async def test_shutdown_retries_until_the_deadline_then_counts_the_loss() -> None:
    rec = Recorder()
    rec.failures = [RetryableError("busy")] * 2
    p, m = make({"send_batch_size": 1000, "timeout": "30s"}, rec)
    await p.start()
    await p.consume(payload(Signal.TRACES, traces(3, "a")))
    await stop(p, 5.0)
    assert rec.items() == 3  # retried during shutdown and delivered
    assert metric(m, DROPPED) == 0

    rec = Recorder()
    rec.always = RetryableError("down for good")
    p, m = make({"send_batch_size": 4, "timeout": "10ms"}, rec)
    await p.start()
    await p.consume(payload(Signal.TRACES, traces(4, "a")))
    assert await wait_for(lambda: rec.calls >= 1)
    await p.consume(payload(Signal.TRACES, traces(3, "b")))
    await asyncio.wait_for(stop(p, 0.3), 5)
    assert rec.batches == []
    assert metric(m, DROPPED) == 7  # the batch being retried and the one still buffered
    assert metric(m, "otlpd_processor_batch_pending_items") == 0


async def test_batch_config_validation() -> None:
    factory = registry.lookup(Kind.PROCESSOR, "batch")
    assert factory is not None
    with pytest.raises(ValueError, match="send_batch_max_size"):
        factory.config.model_validate({"send_batch_size": 10, "send_batch_max_size": 5})
    cfg: Any = factory.config.model_validate({})
    assert (cfg.send_batch_size, cfg.send_batch_max_size, cfg.timeout) == (8192, 0, 0.2)


async def test_two_pipelines_sharing_a_batch_id_keep_separate_metrics() -> None:
    """Processors are per pipeline; so are their metrics (labels include the pipeline)."""
    m = Metrics()
    factory = registry.lookup(Kind.PROCESSOR, "batch")
    assert factory is not None
    config = factory.config.model_validate({"timeout": "10s"})
    built = [
        BatchProcessor(Settings(ComponentID("batch"), config, m, name), Signal.TRACES, Recorder())
        for name in ("traces/a", "traces/b")
    ]
    for p in built:
        await p.start()
    await built[0].consume(payload(Signal.TRACES, traces(5)))
    await built[1].consume(payload(Signal.TRACES, traces(2)))
    pending = "otlpd_processor_batch_pending_items"
    assert metric(m, pending, pipeline="traces/a") == 5
    assert metric(m, pending, pipeline="traces/b") == 2
    for p in built:
        await stop(p)
