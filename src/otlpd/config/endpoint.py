"""``host:port`` endpoints as the Collector writes them (``:4317``, ``[::1]:4317``)."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator


def split_endpoint(endpoint: str) -> tuple[str, int]:
    host, sep, port = endpoint.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"endpoint {endpoint!r} must be host:port")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port)


def _check(value: str) -> str:
    split_endpoint(value)
    return value


Endpoint = Annotated[str, AfterValidator(_check)]
"""A ``host:port`` setting, checked when the config is loaded rather than at bind time."""
