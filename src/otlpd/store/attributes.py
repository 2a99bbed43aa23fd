"""Attribute search without storing attributes twice.

Spans, log records and resources are stored as their serialized protobuf. A
``KeyValue`` serializes the same way wherever it is nested (every OTLP SDK
writes fields in field-number order with minimal lengths), so "has attribute
k = v" is "contains these bytes". A query value is text; it matches every
type it can be read as: a string, an int, a double, a bool — as Jaeger's tag
search does. The match covers span, event and link attributes (Jaeger
searches span tags and log fields alike).
"""

from __future__ import annotations

import math

from opentelemetry.proto.common.v1 import common_pb2


def patterns(key: str, value: str) -> list[str]:
    """The serialized ``KeyValue`` messages that mean ``key = value``, as latin-1 text."""
    candidates = [common_pb2.AnyValue(string_value=value)]
    lowered = value.strip().lower()
    if lowered in ("true", "false"):
        candidates.append(common_pb2.AnyValue(bool_value=lowered == "true"))
    try:
        number = int(value, 10)
    except ValueError:
        number = None
    if number is not None and -(2**63) <= number < 2**63:
        candidates.append(common_pb2.AnyValue(int_value=number))
    try:
        real = float(value)
    except ValueError:
        real = None
    if real is not None and math.isfinite(real):
        candidates.append(common_pb2.AnyValue(double_value=real))
    out: list[str] = []
    for v in candidates:
        data = common_pb2.KeyValue(key=key, value=v).SerializeToString().decode("latin-1")
        if data not in out:
            out.append(data)
    return out
