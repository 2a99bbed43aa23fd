"""Attribute search patterns: the serialized KeyValues a query value can mean, and that they are found."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from otlpd.store.attributes import patterns
from tests.store.support import kvs, resource


def kv(key: str, **value: Any) -> str:
    return (
        common_pb2.KeyValue(key=key, value=common_pb2.AnyValue(**value)).SerializeToString().decode("latin-1")
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("/cart", [{"string_value": "/cart"}]),
        ("", [{"string_value": ""}]),
        ("true", [{"string_value": "true"}, {"bool_value": True}]),
        ("FALSE", [{"string_value": "FALSE"}, {"bool_value": False}]),
        (" True ", [{"string_value": " True "}, {"bool_value": True}]),
        ("42", [{"string_value": "42"}, {"int_value": 42}, {"double_value": 42.0}]),
        ("-7", [{"string_value": "-7"}, {"int_value": -7}, {"double_value": -7.0}]),
        ("0", [{"string_value": "0"}, {"int_value": 0}, {"double_value": 0.0}]),
        ("0.25", [{"string_value": "0.25"}, {"double_value": 0.25}]),
        ("1e3", [{"string_value": "1e3"}, {"double_value": 1000.0}]),
        ("9" * 20, [{"string_value": "9" * 20}, {"double_value": float("9" * 20)}]),  # not an int64
        (
            str(-(2**63)),
            [{"string_value": str(-(2**63))}, {"int_value": -(2**63)}, {"double_value": -(2.0**63)}],
        ),
        ("nan", [{"string_value": "nan"}]),
        ("inf", [{"string_value": "inf"}]),
    ],
)
def test_a_value_matches_every_type_it_can_be_read_as(value: str, expected: list[dict[str, Any]]) -> None:
    assert patterns("k", value) == [kv("k", **v) for v in expected]


def test_no_duplicate_patterns() -> None:
    got = patterns("k", "1")
    assert len(got) == len(set(got)) == 3


def serialized(message: Any) -> str:
    return str(message.SerializeToString().decode("latin-1"))


@pytest.mark.parametrize(
    ("key", "value", "query"),
    [
        ("http.route", "/cart", "/cart"),
        ("http.status_code", 503, "503"),
        ("cache.hit", True, "true"),
        ("ratio", 0.25, "0.25"),
        ("count", 3, "3.0"),  # not found: "3.0" reads as a double only, and int 3 is not double 3.0
    ],
)
def test_patterns_are_found_in_spans_events_links_and_resources(key: str, value: Any, query: str) -> None:
    attrs = {"before": "x", key: value, "after": 1}
    where = {
        "span": trace_pb2.Span(name="s", attributes=kvs(attrs)),
        "event": trace_pb2.Span(name="s", events=[trace_pb2.Span.Event(name="e", attributes=kvs(attrs))]),
        "link": trace_pb2.Span(
            name="s", links=[trace_pb2.Span.Link(span_id=b"\x01" * 8, attributes=kvs(attrs))]
        ),
        "resource": resource("svc", **attrs),
    }
    found = {name: any(p in serialized(m) for p in patterns(key, query)) for name, m in where.items()}
    if isinstance(value, int) and not isinstance(value, bool) and "." in query:
        # an int attribute is not found by a decimal spelling: int 3 and double 3.0 serialize differently
        assert found == dict.fromkeys(where, False)
    else:
        assert found == dict.fromkeys(where, True)


def test_no_false_matches_on_prefixes_keys_or_other_types() -> None:
    span = serialized(
        trace_pb2.Span(attributes=kvs({"http.route": "/cart/items", "code": 2000, "flag": "true"}))
    )
    assert not any(p in span for p in patterns("http.route", "/cart"))  # a prefix of the value
    assert not any(p in span for p in patterns("route", "/cart/items"))  # a suffix of the key
    assert not any(p in span for p in patterns("code", "200"))
    assert any(p in span for p in patterns("flag", "true"))  # the string "true"
    assert not any(
        p in serialized(trace_pb2.Span(attributes=kvs({"flag": False}))) for p in patterns("flag", "true")
    )
