"""Query-string parsing shared by the APIs: one clear 400 message per bad parameter."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from multidict import MultiMapping

from otlpd.config.units import parse_duration

MAX_LIMIT = 1000
MAX_NS = 2**63 - 1  # times and durations are signed 64-bit nanoseconds, as stored
_HEX = re.compile(r"^[0-9a-fA-F]+$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_FRACTION = re.compile(r"\.(\d+)")
_SPACES = " \t\r\n"


class BadRequest(Exception):
    """A parameter the client got wrong; the message is sent back as is."""


def text(query: MultiMapping[str], name: str) -> str | None:
    """A parameter's value without surrounding spaces; empty is the same as not given."""
    value = query.get(name)
    if value is None:
        return None
    value = value.strip(_SPACES)  # not str.strip(): it also drops control characters such as \x1f
    return value or None


def integer(query: MultiMapping[str], name: str, default: int, low: int, high: int) -> int:
    raw = text(query, name)
    if raw is None:
        return default
    try:
        value = _int(raw)
    except ValueError:
        raise BadRequest(f"{name} must be an integer, got {raw!r}") from None
    if not low <= value <= high:
        raise BadRequest(f"{name} must be from {low} to {high}, got {value}")
    return value


def limit(query: MultiMapping[str], default: int, high: int = MAX_LIMIT) -> int:
    return integer(query, "limit", default, 1, high)


def timestamp_ns(query: MultiMapping[str], name: str, unit_ns: int = 1) -> int | None:
    """An integer in the API's unit (nanoseconds by default) or an RFC 3339 time."""
    raw = text(query, name)
    if raw is None:
        return None
    try:
        value = _int(raw) * unit_ns
    except ValueError:
        value = _rfc3339_ns(name, raw)
    if not -MAX_NS <= value <= MAX_NS:
        raise BadRequest(f"{name} is out of range (before 1678 or after 2262), got {raw!r}")
    return value


def _int(raw: str) -> int:
    """An integer in ASCII digits only (``int()`` also takes ``1_000`` and other scripts' digits)."""
    if not raw.isascii() or "_" in raw:
        raise ValueError(raw)
    return int(raw)


def _rfc3339_ns(name: str, raw: str) -> int:
    # The fraction is read here: datetime keeps microseconds only, RFC 3339 times may have nanoseconds.
    fraction = _FRACTION.search(raw)
    digits = fraction.group(1) if fraction else ""
    plain = raw[: fraction.start()] + raw[fraction.end() :] if fraction else raw
    try:
        if not raw.isascii():
            raise ValueError(raw)
        moment = datetime.fromisoformat(plain.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise BadRequest(
            f"{name} must be an integer timestamp or an RFC 3339 time such as 2026-01-02T15:04:05Z,"
            f" got {raw!r}"
        ) from None
    if moment.tzinfo is None:
        raise BadRequest(f"{name} needs a time zone (e.g. a trailing Z), got {raw!r}")
    seconds = (moment - _EPOCH) // timedelta(seconds=1)
    return seconds * 1_000_000_000 + int(digits[:9].ljust(9, "0"))


def duration_ns(query: MultiMapping[str], name: str) -> int | None:
    """A Go duration (``1.5s``, ``250ms``) or an integer number of nanoseconds."""
    raw = text(query, name)
    if raw is None:
        return None
    try:
        value = _int(raw)
    except ValueError:
        try:
            seconds = parse_duration(raw)
        except ValueError as exc:
            raise BadRequest(f"{name}: {exc}") from None
        if not seconds * 1e9 <= MAX_NS:
            raise BadRequest(f"{name} is too long (at most about 292 years), got {raw!r}")
        return round(seconds * 1e9)
    if value < 0:
        raise BadRequest(f"{name} must not be negative")
    if value > MAX_NS:
        raise BadRequest(f"{name} is too long (at most about 292 years), got {raw!r}")
    return value


def time_range(start: int | None, end: int | None) -> None:
    if start is not None and end is not None and start > end:
        raise BadRequest("start must not be after end")


def is_hex(value: str) -> bool:
    return _HEX.match(value) is not None


def hex_id(raw: str, size: int, what: str) -> bytes:
    """A trace (16 bytes) or span (8 bytes) id in hex; all zeros is not a valid id."""
    value = raw.strip()
    if len(value) != size * 2 or not is_hex(value):
        raise BadRequest(f"{what} must be {size * 2} hex digits, got {raw!r}")
    data = bytes.fromhex(value)
    if not any(data):
        raise BadRequest(f"{what} must not be all zeros")
    return data


def attribute_filters(query: MultiMapping[str]) -> tuple[tuple[str, str], ...]:
    """``attr.<key>=<value>`` parameters, in order; every one must match."""
    filters: list[tuple[str, str]] = []
    for name, value in query.items():
        if name.startswith("attr."):
            key = name[len("attr.") :]
            if not key:
                raise BadRequest("attr. needs an attribute key, e.g. attr.http.route=/cart")
            filters.append((key, value))
    return tuple(filters)
