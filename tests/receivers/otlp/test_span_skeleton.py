"""The span skeleton the id check makes travels with the request, for the store; only while it is true.

The store reads span columns from it instead of making it again
(``columns.spans(..., canonical=)``), so a payload must never carry a skeleton
of other bytes than its own: not after invalid spans were taken out, not for
OTLP/JSON (re-serialized), and across batching only joined with its peers'.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest

from otlpd import otlpjson, skeleton
from otlpd.pdata import Payload, Signal, concat, split
from tests.receivers.otlp.helpers import JSON, PROTOBUF, logs, marker, post, span, traces
from tests.receivers.otlp.inprocess import InProcess
from tests.store.test_span_columns_equivalence import _random_request


@pytest.fixture
def inproc() -> Iterator[InProcess]:
    with InProcess({"protocols": {"http": {"endpoint": "127.0.0.1:0"}}}) as receiver:
        yield receiver


def test_a_valid_protobuf_request_carries_its_span_skeleton(inproc: InProcess) -> None:
    body = traces(marker(), [span(0), span(1, parent_span_id=b"\x09" * 8)]).SerializeToString()
    assert post(inproc.http_port, Signal.TRACES, body).status == 200
    (got,) = inproc.consumer.got
    assert got.data == body
    assert got.span_skeleton == skeleton.canonical_spans(body)


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
