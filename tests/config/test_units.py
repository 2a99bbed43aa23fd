"""Durations (Go syntax) and sizes, as the Collector writes them; printed back the same way."""

from __future__ import annotations

import pytest

from otlpd.config.endpoint import split_endpoint
from otlpd.config.units import format_duration, parse_duration, parse_size


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("200ms", 0.2),
        ("5s", 5.0),
        ("1m30s", 90.0),
        ("1h", 3600.0),
        ("1.5s", 1.5),
        ("2h45m", 9900.0),
        ("250us", 0.00025),
        ("250µs", 0.00025),
        ("100ns", 1e-7),
        ("0", 0.0),
        (0, 0.0),
        (" 5s ", 5.0),
    ],
)
def test_parse_duration(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("bad", ["5", 5, 1.5, "5x", "s", "", "1m 30s", "5 s", "1d", "-2s", True, None, [1]])
def test_bad_durations_are_refused(bad: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(bad)


@pytest.mark.parametrize(
    "text", ["200ms", "5s", "1m30s", "1h", "90s", "1.5s", "250us", "100ns", "0s", "2h45m"]
)
def test_durations_print_back_to_what_parses_to_the_same_value(text: str) -> None:
    seconds = parse_duration(text)
    assert parse_duration(format_duration(seconds)) == pytest.approx(seconds)


def test_format_duration_picks_a_readable_unit() -> None:
    assert format_duration(0.2) == "200ms"
    assert format_duration(90.0) == "90s"
    assert format_duration(300.0) == "5m"
    assert format_duration(0.0) == "0s"


@pytest.mark.parametrize(
    ("value", "size"),
    [
        (1024, 1024),
        ("1024", 1024),
        ("4MiB", 4 * 1024 * 1024),
        ("4mib", 4 * 1024 * 1024),
        ("512KB", 512_000),
        ("512KiB", 512 * 1024),
        ("1GiB", 1024**3),
        ("1.5MiB", int(1.5 * 1024 * 1024)),
        ("10 MB", 10_000_000),
        ("7b", 7),
    ],
)
def test_parse_size(value: str | int, size: int) -> None:
    assert parse_size(value) == size


@pytest.mark.parametrize("bad", ["4 lots", "MiB", "-1", -1, True, 1.5, "4XiB", None])
def test_bad_sizes_are_refused(bad: object) -> None:
    with pytest.raises(ValueError):
        parse_size(bad)


@pytest.mark.parametrize(
    ("endpoint", "parsed"),
    [
        ("127.0.0.1:4317", ("127.0.0.1", 4317)),
        (":4318", ("0.0.0.0", 4318)),
        ("[::1]:4317", ("::1", 4317)),
        ("localhost:0", ("localhost", 0)),
    ],
)
def test_split_endpoint(endpoint: str, parsed: tuple[str, int]) -> None:
    assert split_endpoint(endpoint) == parsed


@pytest.mark.parametrize("bad", ["localhost", "host:", "host:http", "host:70000", ""])
def test_bad_endpoints(bad: str) -> None:
    with pytest.raises(ValueError):
        split_endpoint(bad)
