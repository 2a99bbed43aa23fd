"""The fast id check must decide exactly as the per-item loop does."""

from __future__ import annotations

import random

import pytest
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2 as logs_svc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as trace_svc

from otlpd.receivers.otlp.idcheck import all_ids_valid
from otlpd.receivers.otlp.validate import reject_invalid

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
        fast = all_ids_valid(message, data)
        exact_copy = type(message).FromString(data)
        rejected, _ = reject_invalid(exact_copy)
        assert fast == (rejected == 0), (seed, type(message).__name__)
        # and the public entry point removes exactly what the loop removes
        checked = type(message).FromString(data)
        assert reject_invalid(checked, data)[0] == rejected
        assert checked == exact_copy


# --- raw encodings no SDK writes: repeated, missing or mistyped id fields -----------------------


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _len_field(number: int, value: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(value)) + value


def _raw_item(rng: random.Random, ids: dict[int, int], text_field: int) -> bytes:
    """Fields in random order; each id field 0-2 times, sometimes as a varint (the wrong wire type)."""
    fields = [_len_field(text_field, b"op")]  # an ordinary string field: name, severity_text
    for number, length in ids.items():
        for _ in range(rng.choice([0, 1, 1, 1, 2])):
            if rng.random() < 0.1:
                fields.append(_varint(number << 3) + _varint(rng.randint(0, 300)))
            else:
                fields.append(_len_field(number, _id(rng, rng.choice([length, length, *LENGTHS]))))
    rng.shuffle(fields)
    return b"".join(fields)


def _raw_request(rng: random.Random, ids: dict[int, int], text_field: int) -> bytes:
    scopes = [
        b"".join(_len_field(2, _raw_item(rng, ids, text_field)) for _ in range(rng.randint(0, 6)))
        for _ in range(rng.randint(1, 3))
    ]
    return _len_field(1, b"".join(_len_field(2, scope) for scope in scopes))


@pytest.mark.parametrize("seed", range(300))
def test_fast_check_agrees_on_repeated_missing_and_mistyped_id_fields(seed: int) -> None:
    rng = random.Random(seed)
    for cls, ids, text_field in (
        (trace_svc.ExportTraceServiceRequest, {1: 16, 2: 8, 4: 8}, 5),
        (logs_svc.ExportLogsServiceRequest, {9: 16, 10: 8}, 3),
    ):
        data = _raw_request(rng, ids, text_field)
        message = cls.FromString(data)
        exact_copy = cls.FromString(data)
        rejected, _ = reject_invalid(exact_copy)
        assert all_ids_valid(message, data) == (rejected == 0), (seed, cls.__name__, data.hex())


TID, TID2, SID = b"\x01" * 16, b"\x02" * 16, b"\x03" * 8


@pytest.mark.parametrize(
    ("spans", "valid"),
    [
        # one span with two trace ids, the next with none: as many trace ids as spans, yet one is missing
        ([[(1, TID), (1, TID2), (2, SID)], [(2, SID)]], False),
        ([[(1, TID), (1, TID2), (2, SID)], [(1, TID), (2, SID)]], True),  # the last occurrence wins
        ([[(1, b"\x01" * 5), (1, TID), (2, SID)]], True),
        ([[(1, TID), (1, b"\x01" * 5), (2, SID)]], False),
        ([[(1, TID), (2, SID), (2, bytes(8))]], False),  # the span id that counts is zero
        ([[(2, SID), (1, TID), (4, SID), (4, b"")]], True),  # an empty parent is no parent
        ([[(1, TID), (2, SID)], [(1, TID), (2, SID), (4, b"\x05" * 16)]], False),
    ],
)
def test_fast_check_follows_the_last_occurrence_of_an_id_field(
    spans: list[list[tuple[int, bytes]]], valid: bool
) -> None:
    scope = b"".join(_len_field(2, b"".join(_len_field(n, v) for n, v in span)) for span in spans)
    data = _len_field(1, _len_field(2, scope))
    message = trace_svc.ExportTraceServiceRequest.FromString(data)
    assert reject_invalid(trace_svc.ExportTraceServiceRequest.FromString(data))[0] == (0 if valid else 1)
    assert all_ids_valid(message, data) == valid
