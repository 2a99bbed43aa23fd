"""The span skeleton the id check makes travels with the request, for the store; only while it is true.

The store reads span columns from it instead of making it again
(``columns.spans(..., canonical=)``), so a payload must never carry a skeleton
of other bytes than its own: not after invalid spans were taken out, not for
OTLP/JSON (re-serialized), and across batching only joined with its peers'.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from otlpd import otlpjson, skeleton
from otlpd.component import ComponentID, Settings, reads_span_skeleton
from otlpd.pdata import Payload, Signal, concat, split
from otlpd.processors.batch.config import BatchConfig
from otlpd.processors.batch.processor import BatchProcessor
from otlpd.service.fanout import Fanout
from otlpd.telemetry.metrics import Metrics
from tests.exporters.helpers import build_exporter
from tests.receivers.otlp.helpers import JSON, PROTOBUF, logs, marker, post, span, traces
from tests.receivers.otlp.inprocess import InProcess
from tests.store.test_span_columns_equivalence import _random_request


@pytest.fixture
def inproc() -> Iterator[InProcess]:
    with InProcess({"protocols": {"http": {"endpoint": "127.0.0.1:0"}}}) as receiver:
        receiver.consumer.reads_span_skeleton = True  # a pipeline that leads to a store
        yield receiver


def test_a_valid_protobuf_request_carries_its_span_skeleton(inproc: InProcess) -> None:
    body = traces(marker(), [span(0), span(1, parent_span_id=b"\x09" * 8)]).SerializeToString()
    assert post(inproc.http_port, Signal.TRACES, body).status == 200
    (got,) = inproc.consumer.got
    assert got.data == body
    assert got.span_skeleton == skeleton.canonical_spans(body)


def test_no_skeleton_for_a_pipeline_that_does_not_read_it(inproc: InProcess) -> None:
    """Forwarding only: the id check reads a skeleton of the ids alone, cheaper."""
    inproc.consumer.reads_span_skeleton = False
    body = traces(marker(), [span(0)]).SerializeToString()
    assert post(inproc.http_port, Signal.TRACES, body).status == 200
    (got,) = inproc.consumer.got
    assert got.span_skeleton is None


def test_which_pipelines_read_the_skeleton(tmp_path: Path) -> None:
    """A store behind a batch processor or a fanout reads it; an OTLP exporter does not."""
    metrics = Metrics()
    store = build_exporter("store", {"path": str(tmp_path / "db.duckdb")}, metrics).consumer(Signal.TRACES)
    otlp = build_exporter("otlp", {"endpoint": "127.0.0.1:1"}, metrics).consumer(Signal.TRACES)
    settings = Settings(ComponentID("batch"), BatchConfig(), metrics, pipeline="traces")
    assert reads_span_skeleton(store)
    assert not reads_span_skeleton(otlp)
    assert reads_span_skeleton(BatchProcessor(settings, Signal.TRACES, store))
    assert not reads_span_skeleton(BatchProcessor(settings, Signal.TRACES, otlp))
    assert reads_span_skeleton(Fanout([otlp, BatchProcessor(settings, Signal.TRACES, store)]))
    assert not reads_span_skeleton(Fanout([otlp, otlp]))


def test_no_skeleton_once_invalid_spans_are_taken_out(inproc: InProcess) -> None:
    body = traces(marker(), [span(0), span(1, trace_id=b"\x01" * 8)]).SerializeToString()
    assert post(inproc.http_port, Signal.TRACES, body).status == 200
    (got,) = inproc.consumer.got
    assert got.items == 1
    assert got.data != body
    assert got.span_skeleton is None


def test_no_skeleton_for_json_or_logs(inproc: InProcess) -> None:
    sent = traces(marker(), [span(0)])
    assert post(inproc.http_port, Signal.TRACES, otlpjson.dumps(sent), JSON).status == 200
    assert post(inproc.http_port, Signal.LOGS, logs(marker()).SerializeToString(), PROTOBUF).status == 200
    assert [p.span_skeleton for p in inproc.consumer.got] == [None, None]


def test_joined_skeletons_are_the_skeleton_of_the_joined_requests() -> None:
    rng = random.Random(7)
    bodies = [_random_request(rng, 0.2).SerializeToString() for _ in range(40)]
    payloads = [Payload(Signal.TRACES, b, 1, span_skeleton=skeleton.canonical_spans(b)) for b in bodies]
    for i in range(0, 40, 8):
        joined = concat(payloads[i : i + 8])
        assert joined.span_skeleton == skeleton.canonical_spans(joined.data)
    assert concat([*payloads[:3], Payload(Signal.TRACES, bodies[3], 1)]).span_skeleton is None
    assert payloads[0].view().span_skeleton == payloads[0].span_skeleton


def test_a_split_request_has_no_skeleton() -> None:
    body = traces(marker(), [span(i) for i in range(6)]).SerializeToString()
    payload = Payload(Signal.TRACES, body, 6, span_skeleton=skeleton.canonical_spans(body))
    assert [p.span_skeleton for p in split(payload, 2)] == [None, None, None]
