"""The two ways ``columns.spans`` reads span columns give the same columns, exactly.

``_span_columns_at_once`` reads every span's columns in C, through skeleton
protobuf types and a re-serialization it then cuts by byte offsets; it must
refuse (return False, columns untouched) whatever it cannot read exactly, so
that ``_span_columns_one_by_one``, a plain loop over the full parse, reads it
instead. A wrong guess in the fast path would not fail loudly: it would store
wrong columns. So random requests, and requests whose wire encoding no SDK
writes (a field sent twice, fields out of order, requests joined by batching),
go through both paths here and must agree column for column, element type
included; and ordinary SDK-like requests must take the fast path, so that
this test cannot pass by always falling back.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as trace_svc
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.resource.v1 import resource_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from otlpd import skeleton
from otlpd.store import columns

LISTS = [f.name for f in dataclasses.fields(columns.SpanColumns) if f.name != "dims"]
TID = bytes.fromhex("4bf92f3577b34da6a3ce929d0e0e4736")
SID = bytes.fromhex("00f067aa0ba902b7")
MAX64 = 2**64 - 1

# -- the two paths -----------------------------------------------------------


def _prepared(data: bytes) -> columns.SpanColumns:
    """What ``columns.spans`` fills before it reads span columns: items' data and per-scope columns."""
    c = columns.SpanColumns()
    columns._scope_columns(c, columns._dims(c, "traces", data))
    return c


def _one_by_one(data: bytes) -> columns.SpanColumns:
    """The reference: the slow path only."""
    c = _prepared(data)
    columns._span_columns_one_by_one(c, trace_svc.ExportTraceServiceRequest.FromString(data))
    return c


def _typed(values: Any) -> list[tuple[type, Any]]:
    return [(type(v), v) for v in columns.values(values)]


def _assert_same(got: columns.SpanColumns, want: columns.SpanColumns) -> None:
    for name in LISTS:
        assert _typed(getattr(got, name)) == _typed(getattr(want, name)), name
    assert got.dims == want.dims


def _at_once(data: bytes) -> tuple[bool, columns.SpanColumns]:
    c = _prepared(data)
    return columns._span_columns_at_once(c, data), c


def _check(data: bytes) -> bool:
    """``spans(data)`` is the slow path's columns; True when the fast path accepts ``data``."""
    want = _one_by_one(data)
    _assert_same(columns.spans(data), want)
    _assert_same(columns.spans(data, trace_svc.ExportTraceServiceRequest.FromString(data)), want)
    _assert_same(columns.spans(data, canonical=skeleton.canonical_spans(data)), want)  # as a receiver made it
    if not len(want):
        return False
    fast, c = _at_once(data)
    _assert_same(c, want if fast else _prepared(data))  # refused: untouched
    return fast


# -- wire encoding by hand -----------------------------------------------------


def _varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field: tag, length, payload."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _span_bytes(**fields: Any) -> bytes:
    return trace_pb2.Span(**fields).SerializeToString()


def _request(*scopes: list[bytes]) -> bytes:
    """One resource of ``scopes``, each a list of spans' bytes, as a request's bytes."""
    return _field(1, b"".join(_field(2, b"".join(_field(2, s) for s in spans)) for spans in scopes))


def _sdk_span(**fields: Any) -> bytes:
    """A span with every field the fast path reads, ``fields`` overriding."""
    base: dict[str, Any] = dict(
        trace_id=TID, span_id=SID, name="op", kind=2, start_time_unix_nano=10, end_time_unix_nano=20
    )
    return _span_bytes(**{**base, **fields})


def _status(code: int = 0, message: str = "") -> trace_pb2.Status:
    return trace_pb2.Status(code=code, message=message)  # type: ignore[arg-type]


# -- random requests -------------------------------------------------------------

# Values an SDK sends, and values the fast path must either read exactly or refuse.
# sizes around the varint's: 127 and 128 bytes, 16 KiB - 1 and 16 KiB, 300 bytes of UTF-8
NAMES = ["GET /cart", "é✓", "x", "名前" * 50, "a" * 127, "b" * 128]
ODD_NAMES = ["", "c" * 16_383, "d" * 16_384]
KINDS = [1, 2, 3, 4, 5]
ODD_KINDS = [0, 7, 127, 128, 300, -1, 2**31 - 1, -(2**31)]
TIMES = [1, 1_700_000_000_123_456_789, 2**63, MAX64]
ODD_TIMES = [0]
# 15 + 17 and 7 + 25: odd ids whose lengths add up to 16 bytes a span, as if each were 16
ODD_ID_LENGTHS = [0, 7, 9, 15, 17, 25]
STATUSES: list[trace_pb2.Status | None] = [
    None,
    _status(),
    _status(1),
    _status(2),
    _status(2, "boom"),
    _status(message="only a message"),
]
ODD_STATUSES = [_status(5), _status(-1), _status(3, "m")]


def _pick(rng: random.Random, odd: float, usual: list[Any], unusual: list[Any]) -> Any:
    return rng.choice(unusual if rng.random() < odd else usual)


def _random_span(rng: random.Random, odd: float) -> trace_pb2.Span:
    """A span; each field unusual (empty, odd length, unknown value) with probability ``odd``."""

    def some_id(size: int) -> bytes:
        return rng.randbytes(_pick(rng, odd, [size], ODD_ID_LENGTHS))

    s = trace_pb2.Span(
        trace_id=some_id(16),
        span_id=some_id(8),
        name=_pick(rng, odd, NAMES, ODD_NAMES),
        kind=_pick(rng, odd, KINDS, ODD_KINDS),
        start_time_unix_nano=_pick(rng, odd, [*TIMES, rng.randint(1, MAX64)], ODD_TIMES),
        end_time_unix_nano=_pick(rng, odd, [*TIMES, rng.randint(1, MAX64)], ODD_TIMES),
    )
    if rng.random() < 0.5:
        s.parent_span_id = rng.randbytes(_pick(rng, odd, [8], [7, 9, 16]))
    status = _pick(rng, odd, STATUSES, ODD_STATUSES)
    if status is not None:
        s.status.CopyFrom(status)
    if rng.random() < 0.3:
        s.attributes.add(key="k", value=common_pb2.AnyValue(string_value="v"))
    if rng.random() < 0.2:
        s.events.add(name="e", time_unix_nano=rng.randint(0, MAX64))
    if rng.random() < 0.1:
        s.links.add(trace_id=rng.randbytes(16), span_id=rng.randbytes(8))
    if rng.random() < 0.1:
        s.trace_state, s.flags = "k=v", 0x301
    return s


def _random_request(rng: random.Random, odd: float) -> trace_svc.ExportTraceServiceRequest:
    """Several resources and scopes, some of them empty or without a resource / scope message."""
    request = trace_svc.ExportTraceServiceRequest()
    for r in range(rng.randint(0, 3)):
        rs = request.resource_spans.add()
        if rng.random() < 0.8:
            rs.resource.CopyFrom(_resource(rng.choice([f"svc{r}", "", None])))
        if rng.random() < 0.3:
            rs.schema_url = "https://opentelemetry.io/schemas/1.24.0"
        for i in range(rng.randint(0, 3)):
            ss = rs.scope_spans.add()
            if rng.random() < 0.8:
                ss.scope.name, ss.scope.version = f"lib{i}", "1.0"
            ss.spans.extend(_random_span(rng, odd) for _ in range(rng.randint(0, 4)))
    return request


def _resource(service: str | None) -> resource_pb2.Resource:
    resource = resource_pb2.Resource()
    resource.attributes.add(key="host.name", value=common_pb2.AnyValue(string_value="h"))
    if service is not None:
        resource.attributes.add(key="service.name", value=common_pb2.AnyValue(string_value=service))
    return resource


def _fragments(span: trace_pb2.Span) -> list[bytes]:
    """A span's fields, each serialized on its own (a repeated field: one fragment per element)."""
    out = []
    for fd, value in span.ListFields():
        for v in value if fd.is_repeated else [value]:
            part = trace_pb2.Span()
            if fd.is_repeated:
                getattr(part, fd.name).append(v)
            elif fd.message_type is not None:
                getattr(part, fd.name).CopyFrom(v)
            else:
                setattr(part, fd.name, v)
            out.append(part.SerializeToString())
    return out


# Fields sent with their default value: proto3 never writes these, but a parser must take them
# (the last value sent wins, even a default one).
EXPLICIT_DEFAULTS = [
    b"\x0a\x00",  # trace_id ""
    b"\x12\x00",  # span_id ""
    b"\x22\x00",  # parent_span_id ""
    b"\x2a\x00",  # name ""
    b"\x30\x00",  # kind 0
    b"\x39" + bytes(8),  # start 0
    b"\x41" + bytes(8),  # end 0
    b"\x7a\x00",  # status, empty
    b"\x7a\x02\x18\x00",  # status code 0
]


def _wire_span(rng: random.Random, odd: float) -> bytes:
    """A span as no SDK writes it: fields shuffled, some sent twice, some sent with their default."""
    parts = _fragments(_random_span(rng, odd))
    for _ in range(rng.choice([0, 0, 1, 2, 4])):
        parts.append(rng.choice(_fragments(_random_span(rng, odd)) or [b""]))
    if rng.random() < odd:
        parts.append(rng.choice(EXPLICIT_DEFAULTS))
    rng.shuffle(parts)
    return b"".join(parts)


def _wire_request(rng: random.Random, odd: float) -> bytes:
    """A request encoded by hand, each level's fields shuffled, scopes sometimes sent in two pieces."""
    resources = []
    for r in range(rng.randint(1, 3)):
        fields = [_field(3, b"https://schema/1")] if rng.random() < 0.3 else []
        if rng.random() < 0.8:
            fields.append(_field(1, _resource(f"svc{r}").SerializeToString()))
        for i in range(rng.randint(0, 3)):
            scope = [_field(2, _wire_span(rng, odd)) for _ in range(rng.randint(0, 4))]
            if rng.random() < 0.7:
                message = common_pb2.InstrumentationScope(name=f"lib{i}").SerializeToString()
                if rng.random() < 0.2:  # the scope message sent in two pieces: the full parse merges them
                    scope.insert(rng.randint(0, len(scope)), _field(1, b"\x12\x03v.1"))
                scope.insert(rng.randint(0, len(scope)), _field(1, message))
            fields.append(_field(2, b"".join(scope)))
        rng.shuffle(fields)
        resources.append(_field(1, b"".join(fields)))
    return b"".join(resources)


def _run(cases: int, seed: int, make: Callable[[random.Random, float], bytes]) -> tuple[int, int]:
    """(accepted by the fast path, refused) over ``cases`` random requests, all checked."""
    rng = random.Random(seed)
    fast = slow = 0
    for case in range(cases):
        data = make(rng, rng.choice([0.0, 0.0, 0.02, 0.1, 0.4]))
        try:
            taken = _check(data)
        except AssertionError as e:
            raise AssertionError(f"seed {seed}, case {case}: {data.hex()}") from e
        fast, slow = fast + taken, slow + (not taken)
    return fast, slow


# -- the tests ---------------------------------------------------------------------


def test_random_requests_read_alike() -> None:
    fast, slow = _run(1000, 1, lambda rng, odd: _random_request(rng, odd).SerializeToString())
    # both paths exercised, so the agreement means something
    assert fast > 250, (fast, slow)
    assert slow > 250, (fast, slow)


def test_hand_encoded_requests_read_alike() -> None:
    fast, slow = _run(1000, 2, _wire_request)
    assert fast > 250, (fast, slow)
    assert slow > 250, (fast, slow)


def test_batched_requests_read_alike() -> None:
    """Batching joins serialized requests: their concatenation is one request."""

    def joined(rng: random.Random, odd: float) -> bytes:
        parts = [
            _random_request(rng, odd).SerializeToString() if rng.random() < 0.5 else _wire_request(rng, odd)
            for _ in range(rng.randint(2, 4))
        ]
        return b"".join(parts)

    fast, slow = _run(400, 3, joined)
    assert fast > 100, (fast, slow)
    assert slow > 100, (fast, slow)


def test_sdk_like_requests_take_the_fast_path() -> None:
    rng = random.Random(4)
    for case in range(200):
        request = _random_request(rng, 0.0)
        data = request.SerializeToString()
        want = _one_by_one(data)
        if len(want):
            fast, c = _at_once(data)
            assert fast, f"case {case}: fast path refused {data.hex()}"
            _assert_same(c, want)
            _assert_same(columns.spans(data), want)


def test_many_spans_at_once() -> None:
    rng = random.Random(5)
    request = trace_svc.ExportTraceServiceRequest()
    for _ in range(3):
        spans = request.resource_spans.add(resource=_resource("big")).scope_spans.add().spans
        spans.extend(_random_span(rng, 0.0) for _ in range(2000))
    data = request.SerializeToString()
    assert _check(data)
    assert len(columns.spans(data)) == 6000


# (data, whether the fast path must take it (None: either way), expected columns of the request's spans)
NON_CANONICAL: dict[str, tuple[bytes, bool | None, dict[str, list[Any]]]] = {
    "name sent twice: the last wins": (
        _request([_sdk_span(name="a") + _span_bytes(name="b")]),
        True,
        {"name": ["b"]},
    ),
    "name sent twice, the last one empty": (
        _request([_sdk_span(name="a") + b"\x2a\x00"]),
        True,  # read at once: a span may lack a name or a kind
        {"name": [""]},
    ),
    "kind sent twice, the last one 0": (
        _request([_sdk_span(kind=3) + b"\x30\x00"]),
        True,  # read at once: a span may lack a name or a kind
        {"kind": [0]},
    ),
    "kind 0 then 4": (
        _request([b"\x30\x00" + _sdk_span(kind=4)]),
        True,
        {"kind": [4]},
    ),
    "status sent twice: messages merge, the code kept": (
        _request([_sdk_span(status=_status(2)) + _span_bytes(status=_status(message="m"))]),
        True,
        {"status_code": [2]},
    ),
    "status sent twice: the last code wins": (
        _request([_sdk_span(status=_status(1)) + _span_bytes(status=_status(2))]),
        True,
        {"status_code": [2]},
    ),
    "status code 2 then an explicit 0": (
        _request([_sdk_span(status=_status(2)) + b"\x7a\x02\x18\x00"]),
        True,
        {"status_code": [0]},
    ),
    "unknown status code replaced by a known one": (
        _request([_sdk_span(status=_status(5)) + _span_bytes(status=_status(1))]),
        None,
        {"status_code": [1]},
    ),
    "known status code replaced by an unknown one": (
        _request([_sdk_span(status=_status(1)) + _span_bytes(status=_status(5))]),
        None,
        {"status_code": [5]},
    ),
    "span id sent twice, 7 then 8 bytes": (
        _request([_sdk_span(span_id=b"\x01" * 7) + _span_bytes(span_id=b"\x02" * 8)]),
        None,
        {"span_id": [b"\x02" * 8]},
    ),
    "span id sent twice, 8 then 7 bytes": (
        _request([_sdk_span(span_id=b"\x01" * 8) + _span_bytes(span_id=b"\x02" * 7)]),
        None,
        {"span_id": [b"\x02" * 7]},
    ),
    "parent id sent twice, 16 then 8 bytes": (
        _request([_sdk_span(parent_span_id=b"\x03" * 16) + _span_bytes(parent_span_id=b"\x04" * 8)]),
        None,
        {"parent_span_id": [b"\x04" * 8]},
    ),
    "parent id sent twice, 8 bytes then empty": (
        _request([_sdk_span(parent_span_id=b"\x03" * 8) + b"\x22\x00"]),
        True,
        {"parent_span_id": [b""]},
    ),
    "fields in reverse field order": (
        _request(
            [
                b"".join(
                    reversed(
                        _fragments(
                            trace_pb2.Span.FromString(
                                _sdk_span(parent_span_id=b"\x05" * 8, status=_status(2, "m"), name="é✓")
                            )
                        )
                    )
                )
            ]
        ),
        True,
        {"name": ["é✓"], "parent_span_id": [b"\x05" * 8], "status_code": [2]},
    ),
    "a span in three pieces, each with some of its fields": (
        _request(
            [
                _span_bytes(end_time_unix_nano=MAX64, status=_status(1))
                + _span_bytes(trace_id=TID, name="n", kind=7)
                + _span_bytes(span_id=SID, start_time_unix_nano=MAX64)
            ]
        ),
        True,
        {"kind": [7], "start_ns": [MAX64], "end_ns": [MAX64], "status_code": [1]},
    ),
    "two requests joined": (
        _request([_sdk_span(name="a")], [], [_sdk_span(name="b", status=_status(2))])
        + _request([])
        + _request([_sdk_span(name="c", parent_span_id=SID)]),
        True,
        {"name": ["a", "b", "c"], "status_code": [0, 2, 0], "parent_span_id": [b"", b"", SID]},
    ),
    "two requests joined, one span of the second lacking a name": (
        _request([_sdk_span(name="a")]) + _request([_sdk_span(name="")]),
        None,
        {"name": ["a", ""]},
    ),
}


@pytest.mark.parametrize(("data", "fast", "expected"), NON_CANONICAL.values(), ids=NON_CANONICAL.keys())
def test_non_canonical_encodings(data: bytes, fast: bool | None, expected: dict[str, list[Any]]) -> None:
    taken = _check(data)
    assert fast is None or taken is fast
    got = columns.spans(data)
    for name, values in expected.items():
        assert columns.values(getattr(got, name)) == values, name


# A span lacking a field read for all spans at once: which row lacks it, the fast path cannot tell.
MUST_REFUSE = {
    "no trace id": _sdk_span(trace_id=b""),
    "no span id": _sdk_span(span_id=b""),
}
# Fields a span may lack (absent from its canonical bytes): read at once all the same, so
# that one such span does not send a whole batch span by span.
MAY_LACK = {
    "kind 0": _sdk_span(kind=0),
    "no name": _sdk_span(name=""),
    "no start": _sdk_span(start_time_unix_nano=0),
    "no end": _sdk_span(end_time_unix_nano=0),
    "no name, kind, start or end": _span_bytes(trace_id=TID, span_id=SID),
    "only ids and a status": _span_bytes(trace_id=TID, span_id=SID) + bytes.fromhex("7a021802"),
    "only ids, a parent and a status": _span_bytes(trace_id=TID, span_id=SID, parent_span_id=SID)
    + bytes.fromhex("7a00"),
}
# Odd spans the fast path may read or refuse (today's code refuses some): either way, the same columns.
MAY_REFUSE = {
    "7-byte span id": _sdk_span(span_id=b"\x01" * 7),
    "9-byte span id": _sdk_span(span_id=b"\x01" * 9),
    "9-byte parent id": _sdk_span(parent_span_id=b"\x01" * 9),
    "16-byte parent id": _sdk_span(parent_span_id=b"\x01" * 16),
    "status code 5": _sdk_span(status=_status(5)),
    "status code -1": _sdk_span(status=_status(-1)),
    "status code 3 with a message": _sdk_span(status=_status(3, "m")),
}


def _among_good_spans(bad: bytes) -> bytes:
    return _request([_sdk_span(name="a"), bad], [_sdk_span(name="b", parent_span_id=SID)])


@pytest.mark.parametrize("bad", MUST_REFUSE.values(), ids=MUST_REFUSE.keys())
def test_fast_path_refuses_and_leaves_columns_untouched(bad: bytes) -> None:
    """One span the fast path cannot read, among good ones: the whole request goes span by span."""
    data = _among_good_spans(bad)
    c = _prepared(data)
    lists = {name: getattr(c, name) for name in LISTS}
    before = {name: list(values) for name, values in lists.items()}
    assert columns._span_columns_at_once(c, data) is False
    for name in LISTS:
        assert getattr(c, name) is lists[name], name
        assert getattr(c, name) == before[name], name
    assert c.trace_id == c.name == c.status_code == []
    assert len(c.service_name) == len(c) == 3
    assert _check(data) is False


@pytest.mark.parametrize("lacking", MAY_LACK.values(), ids=MAY_LACK.keys())
def test_spans_lacking_a_field_are_read_at_once(lacking: bytes) -> None:
    for data in (_among_good_spans(lacking), _request([lacking]), _request([_sdk_span(), lacking])):
        assert _check(data) is True


@pytest.mark.parametrize("odd", MAY_REFUSE.values(), ids=MAY_REFUSE.keys())
def test_odd_spans_read_alike(odd: bytes) -> None:
    _check(_among_good_spans(odd))


def test_odd_values_read_alike() -> None:
    """Not what an SDK sends, but values both paths can read exactly (the fast path takes them today)."""
    data = _request(
        [
            _sdk_span(trace_id=b"\x09" * 7, kind=7, name="é✓"),
            _sdk_span(trace_id=b"\x09" * 17, kind=-1, start_time_unix_nano=MAX64),
            _sdk_span(kind=2**31 - 1, status=_status(message="only a message"), end_time_unix_nano=MAX64),
        ]
    )
    _check(data)
    got = columns.spans(data)
    assert got.trace_id == [b"\x09" * 7, b"\x09" * 17, TID]
    assert columns.values(got.kind) == [7, -1, 2**31 - 1]
    assert columns.values(got.status_code) == [0, 0, 0]


# -- kind / start / end sent with the packed wire type ------------------------------
#
# A span's kind (field 6), start (7) and end (8) are singular: sent length-delimited (wire
# type 2, as a repeated field is packed), the full parse keeps them as unknown fields and
# reads 0. The fast path once parsed them merged, with repeated fields, which accept the
# packed encoding: such an unknown field reached that parse (at commit 68c9ff4, where
# ``_SPAN_FIXED`` serialized its unknown fields again), and its value was counted among the
# span columns: read for a span lacking the field, or moved onto the next span's row; a
# payload malformed for the type made ``columns.spans`` raise DecodeError on a request the
# full parse accepts. The comment on each case: what that code did.
PACKED_KIND_5 = bytes.fromhex("320105")  # field 6, wire type 2: [5]
PACKED_START = bytes.fromhex("3a08") + (12345).to_bytes(8, "little")  # field 7, wire type 2: [12345]
NO_KIND = dict(trace_id=TID, span_id=SID, name="a", start_time_unix_nano=10, end_time_unix_nano=20)
NO_START = dict(trace_id=TID, span_id=SID, name="a", kind=1, end_time_unix_nano=20)
PACKED = {
    # slow: kind [0]; the fast path accepted and gave [5]
    "packed kind, span without a kind": _request([_span_bytes(**NO_KIND) + PACKED_KIND_5]),
    # slow: kind [0, 3]; the fast path accepted and gave [5, 3]
    "packed kind, among ordinary spans": _request(
        [_span_bytes(**NO_KIND) + PACKED_KIND_5, _sdk_span(kind=3)]
    ),
    # slow: kind [2, 0]; the fast path gave [2, 5]: the first span's packed value on the second's row
    "packed kind moves to the next span": _request(
        [_sdk_span(kind=2) + PACKED_KIND_5, _span_bytes(**NO_KIND)]
    ),
    # slow: start_ns [0, 10]; the fast path accepted and gave [12345, 10]
    "packed start, span without a start": _request([_span_bytes(**NO_START) + PACKED_START, _sdk_span()]),
    # slow: reads the span; columns.spans raised DecodeError (a fixed64 payload of 3 bytes)
    "malformed packed start": _request([_sdk_span() + bytes.fromhex("3a03010203")]),
    # slow: reads the span; columns.spans raised DecodeError (a truncated varint)
    "malformed packed kind": _request([_sdk_span() + bytes.fromhex("320180")]),
}


@pytest.mark.parametrize("data", PACKED.values(), ids=PACKED.keys())
def test_packed_kind_start_end_are_unknown_fields(data: bytes) -> None:
    assert len(trace_svc.ExportTraceServiceRequest.FromString(data).resource_spans) == 1  # a valid request
    _check(data)


# -- Trace keys of odd-length trace ids -----------------------------------------------------
#
# ``columns.trace_keys`` (since gone) took its array path when the ids' lengths ADDED UP to 16 bytes
# an id, not when each id is 16 bytes: ids of 15 and 17 bytes (or 7 and 25) were then cut as
# if each were 16, and every key from the first odd id on was read from the wrong bytes.
TRACE_KEYS_OF_ODD_IDS = {
    # the slow path's trace_key: [36311929895191428, 3617150485379986741]
    "15 + 17 bytes": _request(
        [_sdk_span(trace_id=bytes(range(1, 16))), _sdk_span(trace_id=bytes(range(100, 117)))]
    ),
    "7 + 25 bytes, among 16": _request(
        [_sdk_span(), _sdk_span(trace_id=b"\x07" * 7), _sdk_span(trace_id=bytes(range(25))), _sdk_span()]
    ),
}


def _paired_odd_trace_ids(rng: random.Random, odd: float) -> bytes:
    """SDK-like requests but for two trace ids whose lengths add up to 32 bytes."""
    request = _random_request(rng, 0.0)
    spans = [s for r in request.resource_spans for sc in r.scope_spans for s in sc.spans]
    while len(spans) < 2:
        spans.append(request.resource_spans.add().scope_spans.add().spans.add())
        spans[-1].CopyFrom(_random_span(rng, 0.0))
    a, b = rng.sample(spans, 2)
    size = rng.choice([1, 7, 8, 9, 15, 17])
    a.trace_id, b.trace_id = rng.randbytes(size), rng.randbytes(32 - size)
    return request.SerializeToString()


@pytest.mark.parametrize("data", TRACE_KEYS_OF_ODD_IDS.values(), ids=TRACE_KEYS_OF_ODD_IDS.keys())
def test_trace_keys_of_odd_trace_ids(data: bytes) -> None:
    _check(data)


def test_trace_keys_of_random_odd_trace_ids() -> None:
    _run(200, 6, _paired_odd_trace_ids)
