"""Durations and sizes as the OpenTelemetry Collector writes them.

Durations use Go's syntax (``200ms``, ``5s``, ``1m30s``); a bare number other
than 0 is refused because the Collector would silently read it as nanoseconds.
Sizes take a plain integer (bytes) or a number with a unit (``4MiB``, ``512KB``).
Both print back in the same syntax, so ``print-config`` output is valid input.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer

_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]i?b?|b)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {
    "": 1, "b": 1,
    "k": 1000, "kb": 1000, "ki": 1024, "kib": 1024,
    "m": 1000**2, "mb": 1000**2, "mi": 1024**2, "mib": 1024**2,
    "g": 1000**3, "gb": 1000**3, "gi": 1024**3, "gib": 1024**3,
    "t": 1000**4, "tb": 1000**4, "ti": 1024**4, "tib": 1024**4,
}  # fmt: skip


def parse_duration(value: Any) -> float:
    """Seconds from a Go duration string."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 200ms or 5s")
    if isinstance(value, (int, float)):
        if value == 0:
            return 0.0
        raise ValueError(f"duration {value!r} has no unit; write e.g. {value}s or {value}ms")
    if not isinstance(value, str):
        raise ValueError("expected a duration such as 200ms or 5s")
    text = value.strip()
    sign = -1.0 if text.startswith("-") else 1.0
    body = text.lstrip("+-")
    if body == "0":
        return 0.0
    total, pos = 0.0, 0
    for match in _DURATION_PART.finditer(body):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        pos = match.end()
    if pos != len(body) or not body:
        raise ValueError(f"invalid duration {value!r}; expected e.g. 200ms, 5s, 1m30s")
    if sign < 0 and total:
        raise ValueError(f"duration {value!r} must not be negative")
    return total


def format_duration(seconds: float) -> str:
    if seconds == 0:
        return "0s"
    for unit, scale in (("h", 3600.0), ("m", 60.0), ("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        count = seconds / scale
        if abs(count - round(count)) < 1e-9 and abs(count) >= 1:
            return f"{round(count)}{unit}"
    return f"{round(seconds * 1e9)}ns"


def parse_size(value: Any) -> int:
    """Bytes from an integer or a string with a unit (KB = 1000, KiB = 1024)."""
    if isinstance(value, bool):
        raise ValueError("expected a size such as 4194304 or 4MiB")
    if isinstance(value, int):
        if value < 0:
            raise ValueError("a size cannot be negative")
        return value
    if isinstance(value, str):
        match = _SIZE.match(value)
        if match:
            return int(float(match.group(1)) * _SIZE_UNITS[(match.group(2) or "").lower()])
    raise ValueError(f"invalid size {value!r}; expected bytes or e.g. 512KiB, 4MiB")


Duration = Annotated[
    float, BeforeValidator(parse_duration), PlainSerializer(format_duration, return_type=str)
]
"""A duration in seconds, written in Go syntax in YAML."""

Size = Annotated[int, BeforeValidator(parse_size)]
"""A size in bytes."""


def _redact(value: str) -> str:
    return "[REDACTED]" if value else ""


Secret = Annotated[str, PlainSerializer(_redact, return_type=str)]
"""A string that is never printed (header values, passwords)."""
