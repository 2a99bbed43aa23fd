"""Configs for a TLS chain: SDK → A (plain OTLP in) → exporter over TLS → B (OTLP over TLS) → Sink."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from otlpd.pdata import Signal
from tests.e2e import sdk
from tests.support.process import Otlpd
from tests.support.sink import Sink
from tests.tls.conftest import Certs, Pair

# A short, bounded retry for tests where sending is expected to fail.
FAST_RETRY = {"initial_interval": "50ms", "max_interval": "200ms", "max_elapsed_time": "2s"}


def pipelines(exporter: str) -> dict[str, Any]:
    return {s.value: {"receivers": ["otlp"], "exporters": [exporter]} for s in Signal}


def server_tls(pair: Pair, **extra: Any) -> dict[str, Any]:
    return {"cert_file": str(pair.cert), "key_file": str(pair.key), **extra}


def b_config(sink: Sink, tls: dict[str, Any]) -> dict[str, Any]:
    """B: OTLP receiver with TLS on gRPC and HTTP, plain OTLP/gRPC on to the Sink."""
    return {
        "receivers": {"otlp": {"protocols": {"grpc": {"tls": tls}, "http": {"tls": tls}}}},
        "exporters": {"otlp": {"endpoint": sink.grpc_endpoint, "tls": {"insecure": True}}},
        "service": {"pipelines": pipelines("otlp")},
    }


def a_config(exporter: str, b: Otlpd, tls: dict[str, Any], *, fail_fast: bool = False) -> dict[str, Any]:
    """A: plain OTLP receiver, ``exporter`` (otlp | otlphttp) over TLS to B."""
    endpoint = b.grpc_endpoint if exporter == "otlp" else f"https://127.0.0.1:{b.http_port}"
    config: dict[str, Any] = {"endpoint": endpoint, "tls": tls}
    if fail_fast:
        config["timeout"] = "2s"
        config["retry_on_failure"] = FAST_RETRY
    return {
        "receivers": {"otlp": {"protocols": {"grpc": None}}},
        "exporters": {exporter: config},
        "service": {"pipelines": pipelines(exporter)},
    }


def ca(certs: Certs) -> dict[str, Any]:
    return {"ca_file": str(certs.ca)}


def send(signal: Signal, endpoint: str, run: str) -> set[Any]:
    """Send a known set of items with the OpenTelemetry SDK over plain OTLP/gRPC."""
    return sdk.SENDERS[signal](sdk.exporter(signal, "grpc", endpoint), run)  # type: ignore[no-any-return]


def received(sink: Sink, signal: Signal) -> set[Any]:
    return sdk.RECEIVED[signal](sink.state.messages(signal))  # type: ignore[no-any-return]


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def failed_sends(a: Otlpd, exporter: str) -> float:
    return a.metric("otlpd_exporter_send_failed_requests_total", exporter=exporter)


def assert_delivered(a: Otlpd, sink: Sink, run: str) -> None:
    """Spans sent to A arrive at the Sink unchanged."""
    sent = send(Signal.TRACES, a.grpc_endpoint, run)
    assert sink.wait_for_items(Signal.TRACES, len(sent)) == len(sent), a.logs()
    assert received(sink, Signal.TRACES) == sent


def assert_not_delivered(a: Otlpd, b: Otlpd, sink: Sink, exporter: str, run: str) -> None:
    """Spans sent to A do not get through to B: A counts failed sends and keeps running."""
    send(Signal.TRACES, a.grpc_endpoint, run)
    assert wait_for(lambda: failed_sends(a, exporter) >= 2), f"no failed sends counted:\n{a.logs()}"
    assert sink.state.received == []
    assert b.metric("otlpd_receiver_accepted_items_total") == 0
    assert a.proc is not None and a.proc.poll() is None, a.logs()
    assert a.health()[0] == 200
