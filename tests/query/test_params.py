"""Query-string parsing: each accepted spelling gives the exact value, anything else a 400 naming it."""

from __future__ import annotations

import pytest
from multidict import MultiDict

from otlpd.query import params
from otlpd.query.params import BadRequest

SECOND = 1_000_000_000


def q(*pairs: tuple[str, str], **kw: str) -> MultiDict[str]:
    return MultiDict([*pairs, *kw.items()])


def rejected(fn: object, *args: object) -> str:
    with pytest.raises(BadRequest) as err:
        fn(*args)  # type: ignore[operator]
    return str(err.value)


def test_text_strips_and_treats_empty_as_absent() -> None:
    assert params.text(q(service="  cart "), "service") == "cart"
    assert params.text(q(service=""), "service") is None
    assert params.text(q(service="   "), "service") is None
    assert params.text(q(), "service") is None
    assert params.text(q(service="\tcart\r\n"), "service") == "cart"
    # only spaces go: a control character is a value (that a parameter may well refuse)
    assert params.text(q(status="\x1f"), "status") == "\x1f"
    assert params.text(q(status="\u2003error"), "status") == "\u2003error"


@pytest.mark.parametrize(("raw", "value"), [("1", 1), ("20", 20), ("1000", 1000), (" 7 ", 7), ("+5", 5)])
def test_limit_accepts(raw: str, value: int) -> None:
    assert params.limit(q(limit=raw), 20) == value


def test_limit_default_and_upper_bound() -> None:
    assert params.limit(q(), 20) == 20
    assert params.limit(q(limit=""), 100) == 100
    assert params.limit(q(limit="1500"), 20, high=1500) == 1500


@pytest.mark.parametrize("raw", ["0", "-1", "1001", "ten", "1.5", "1e3", "1_000", "١٢", "²"])
def test_limit_rejects(raw: str) -> None:
    message = rejected(params.limit, q(limit=raw), 20)
    assert message.startswith("limit must be")
    assert repr(raw.strip()) in message or raw.strip() in message


RFC3339 = [
    ("2026-01-02T15:04:05Z", 1767366245 * SECOND),
    ("2026-01-02T15:04:05z", 1767366245 * SECOND),
    ("2026-01-02T15:04:05+00:00", 1767366245 * SECOND),
    ("2026-01-02T16:04:05+01:00", 1767366245 * SECOND),
    ("2026-01-02T10:04:05-05:00", 1767366245 * SECOND),
    ("2026-01-02T15:04:05.5Z", 1767366245 * SECOND + 500_000_000),
    ("2026-01-02T15:04:05.123Z", 1767366245 * SECOND + 123_000_000),
    ("2026-01-02T15:04:05.123456789Z", 1767366245 * SECOND + 123_456_789),  # nanoseconds kept
    ("2026-01-02T15:04:05.000000001+00:00", 1767366245 * SECOND + 1),
    ("1970-01-01T00:00:00Z", 0),
    ("1969-12-31T23:59:59.5Z", -500_000_000),  # before the epoch: still exact
    ("1969-12-31T23:59:59Z", -SECOND),
]


@pytest.mark.parametrize(("raw", "ns"), RFC3339)
def test_timestamps_in_rfc3339(raw: str, ns: int) -> None:
    assert params.timestamp_ns(q(start=raw), "start") == ns


def test_integer_timestamps_are_in_the_apis_unit() -> None:
    assert params.timestamp_ns(q(start="1767366245000000000"), "start") == 1767366245 * SECOND
    assert params.timestamp_ns(q(start="0"), "start") == 0
    assert params.timestamp_ns(q(start="-5"), "start") == -5
    assert (
        params.timestamp_ns(q(start="1767366245000000"), "start", unit_ns=1000) == 1767366245 * SECOND
    )  # Jaeger µs
    assert params.timestamp_ns(q(), "start") is None
    assert params.timestamp_ns(q(start=""), "start") is None
    assert params.timestamp_ns(q(start=str(2**63 - 1)), "start") == 2**63 - 1


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ("yesterday", "RFC 3339"),
        ("2026-01-02T15:04:05", "time zone"),  # naive: which zone?
        ("2026-01-02", "time zone"),
        ("2026-13-02T15:04:05Z", "RFC 3339"),
        ("1.5", "RFC 3339"),
        ("1_000", "RFC 3339"),
        ("١٧٦٧٣٦٦٢٤٥", "RFC 3339"),  # digits of another script
        (str(2**63), "out of range"),
        ("9" * 40, "out of range"),
        ("-" + "9" * 40, "out of range"),
    ],
)
def test_bad_timestamps(raw: str, fragment: str) -> None:
    message = rejected(params.timestamp_ns, q(end=raw), "end")
    assert message.startswith("end ")
    assert fragment in message


def test_microsecond_timestamps_out_of_range_once_in_nanoseconds() -> None:
    assert "out of range" in rejected(params.timestamp_ns, q(start=str(2**63 // 1000 + 1)), "start", 1000)


@pytest.mark.parametrize(
    ("raw", "ns"),
    [
        ("250ms", 250_000_000),
        ("1.5s", 1_500_000_000),
        ("1m30s", 90 * SECOND),
        ("2h", 7200 * SECOND),
        ("100us", 100_000),
        ("100µs", 100_000),
        ("7ns", 7),
        ("100", 100),  # an integer is nanoseconds
        ("0", 0),
        ("0s", 0),
        (str(2**63 - 1), 2**63 - 1),
    ],
)
def test_durations(raw: str, ns: int) -> None:
    assert params.duration_ns(q(minDuration=raw), "minDuration") == ns


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ("fast", "invalid duration"),
        ("5 ms", "invalid duration"),
        ("-5ms", "negative"),
        ("-5", "negative"),
        (str(2**63), "too long"),
        ("1" + "0" * 20 + "h", "too long"),
    ],
)
def test_bad_durations(raw: str, fragment: str) -> None:
    message = rejected(params.duration_ns, q(maxDuration=raw), "maxDuration")
    assert message.startswith("maxDuration")
    assert fragment in message


def test_time_range() -> None:
    params.time_range(None, None)
    params.time_range(1, None)
    params.time_range(None, 1)
    params.time_range(1, 1)
    assert rejected(params.time_range, 2, 1) == "start must not be after end"


def test_hex_ids() -> None:
    tid = "4bf92f3577b34da6a3ce929d0e0e4736"
    assert params.hex_id(tid, 16, "trace id") == bytes.fromhex(tid)
    assert params.hex_id(tid.upper(), 16, "trace id") == bytes.fromhex(tid)
    assert params.hex_id(f" {tid}\n", 16, "trace id") == bytes.fromhex(tid)
    assert params.hex_id("00f067aa0ba902b7", 8, "span id") == bytes.fromhex("00f067aa0ba902b7")


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ("4bf92f3577b34da6a3ce929d0e0e473", "32 hex digits"),
        ("4bf92f3577b34da6a3ce929d0e0e47366", "32 hex digits"),
        ("4bf92f3577b34da6a3ce929d0e0e473g", "32 hex digits"),
        ("0x4bf92f3577b34da6a3ce929d0e0e47", "32 hex digits"),
        ("", "32 hex digits"),
        ("0" * 32, "all zeros"),
    ],
)
def test_bad_hex_ids(raw: str, fragment: str) -> None:
    message = rejected(params.hex_id, raw, 16, "traceId")
    assert message.startswith("traceId must")
    assert fragment in message


def test_attribute_filters_in_order_and_repeatable() -> None:
    query = q(
        ("service", "cart"),
        ("attr.http.route", "/cart"),
        ("attrs.x", "ignored"),
        ("attr.code", "200"),
        ("attr.code", "201"),
        ("attr.empty", ""),
    )
    assert params.attribute_filters(query) == (
        ("http.route", "/cart"),
        ("code", "200"),
        ("code", "201"),  # both must match: no trace will
        ("empty", ""),
    )
    assert params.attribute_filters(q(service="cart")) == ()
    assert "attr." in rejected(params.attribute_filters, q(("attr.", "x")))
