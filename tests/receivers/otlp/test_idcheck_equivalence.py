"""The fast id check must decide exactly as the per-item loop does."""

from __future__ import annotations

import random

import pytest
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2 as logs_svc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as trace_svc

from otlpd.receivers.otlp.validate import _all_ids_valid, reject_invalid

LENGTHS = [0, 1, 7, 8, 9, 15, 16, 17, 32]


def _id(rng: random.Random, length: int) -> bytes:
    roll = rng.random()
    if roll < 0.1:
        return bytes(length)  # all zero
    if roll < 0.15 and length:
        return bytes([0x12]) * length  # bytes that look like protobuf tags
    return rng.randbytes(length)


def _traces(rng: random.Random, bad_rate: float) -> trace_svc.ExportTraceServiceRequest:
    req = trace_svc.ExportTraceServiceRequest()
    for _ in range(rng.randint(1, 3)):
        rs = req.resource_spans.add()
        rs.resource.attributes.add(key="service.name").value.string_value = "svc"
        for _ in range(rng.randint(0, 3)):
            ss = rs.scope_spans.add()
            ss.scope.name = "lib"
            for _ in range(rng.randint(0, 20)):
                s = ss.spans.add(name="op", kind=2, start_time_unix_nano=1)
                bad = rng.random() < bad_rate
                s.trace_id = _id(rng, rng.choice(LENGTHS) if bad else 16)
                s.span_id = _id(rng, rng.choice(LENGTHS) if bad else 8)
                if rng.random() < 0.5:
                    s.parent_span_id = _id(rng, rng.choice(LENGTHS) if bad else 8)
                s.attributes.add(key="k").value.int_value = rng.randint(0, 9)
    return req


def _logs(rng: random.Random, bad_rate: float) -> logs_svc.ExportLogsServiceRequest:
    req = logs_svc.ExportLogsServiceRequest()
    for _ in range(rng.randint(1, 3)):
        rl = req.resource_logs.add()
        for _ in range(rng.randint(0, 3)):
            sl = rl.scope_logs.add()
            for _ in range(rng.randint(0, 20)):
                r = sl.log_records.add(severity_number=9)
                r.body.string_value = "hello"
                bad = rng.random() < bad_rate
                if rng.random() < 0.7:
                    r.trace_id = _id(rng, rng.choice(LENGTHS) if bad else 16)
                if rng.random() < 0.7:
                    r.span_id = _id(rng, rng.choice(LENGTHS) if bad else 8)
    return req


@pytest.mark.parametrize("seed", range(300))
def test_fast_check_agrees_with_the_exact_loop(seed: int) -> None:
    rng = random.Random(seed)
    bad_rate = rng.choice([0.0, 0.0, 0.02, 0.2])
    for message in (_traces(rng, bad_rate), _logs(rng, bad_rate)):
        data = message.SerializeToString()
        fast = _all_ids_valid(message, data)
        exact_copy = type(message).FromString(data)
        rejected, _ = reject_invalid(exact_copy)
        assert fast == (rejected == 0), (seed, type(message).__name__)
        # and the public entry point removes exactly what the loop removes
        checked = type(message).FromString(data)
        assert reject_invalid(checked, data)[0] == rejected
        assert checked == exact_copy
