"""Interop with rotel, an independent OTLP collector written in Rust.

Both directions, every signal, both of rotel's exporter protocols:
  SDK → otlpd → rotel → Sink   (otlpd's exporters speak to a foreign receiver)
  SDK → rotel → otlpd → Sink   (otlpd's receiver takes a foreign exporter's requests)
The data that reaches the Sink must be what the SDK sent.
"""

from __future__ import annotations

from typing import Any

import pytest

from otlpd.pdata import Signal
from tests.e2e import sdk
from tests.support.process import Otlpd
from tests.support.rotel import Rotel, rotel_agent
from tests.support.sink import Sink

ITEMS = {Signal.TRACES: 5, Signal.METRICS: 4, Signal.LOGS: 4}


@pytest.fixture(autouse=True)
def _need_rotel() -> None:
    rotel_agent()  # skips with the reason when the binary is missing


def pipelines(exporter: str) -> dict[str, Any]:
    return {
        s.value: {"receivers": ["otlp"], "processors": ["batch"], "exporters": [exporter]} for s in Signal
    }


def send_all(grpc_endpoint: str, http_endpoint: str, tag: str) -> dict[Signal, set[Any]]:
    """Every signal, half over gRPC and half over HTTP, from the SDK."""
    sent: dict[Signal, set[Any]] = {}
    for signal in Signal:
        sent[signal] = set()
        for transport, endpoint in (("grpc", grpc_endpoint), ("http", http_endpoint)):
            exp = sdk.exporter(signal, transport, endpoint)
            sent[signal] |= sdk.SENDERS[signal](exp, f"{tag}-{signal.value}-{transport}")
    return sent


def check_arrived(sink: Sink, sent: dict[Signal, set[Any]]) -> None:
    for signal in Signal:
        want = 2 * ITEMS[signal]
        got_items = sink.wait_for_items(signal, want, timeout=15)
        assert got_items >= want, f"{signal.value}: {got_items} of {want} items arrived"
        got = sdk.RECEIVED[signal](sink.state.messages(signal))
        assert got == sent[signal], signal


@pytest.mark.timeout(60)
@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_sdk_to_otlpd_to_rotel(sink: Sink, protocol: str) -> None:
    """otlpd's otlp (gRPC) / otlphttp exporter → rotel's receiver; rotel exports with ``protocol``."""
    upstream = sink.grpc_endpoint if protocol == "grpc" else sink.http_endpoint.removeprefix("http://")
    with Rotel(f"http://{upstream}", protocol=protocol) as rotel:
        if protocol == "grpc":
            exporter = "otlp"
            exporter_config: dict[str, Any] = {"endpoint": rotel.grpc_endpoint, "tls": {"insecure": True}}
        else:
            exporter = "otlphttp"
            exporter_config = {"endpoint": rotel.http_endpoint}
        config = {
            "receivers": {"otlp": {"protocols": {"grpc": None, "http": None}}},
            "processors": {"batch": {"timeout": "100ms"}},
            "exporters": {exporter: exporter_config},
            "service": {"pipelines": pipelines(exporter)},
        }
        with Otlpd(config) as otlpd:
            sent = send_all(otlpd.grpc_endpoint, otlpd.http_endpoint, f"to-rotel-{protocol}")
            check_arrived(sink, sent)
            for signal in Signal:
                assert (
                    otlpd.metric("otlpd_exporter_sent_items_total", exporter=exporter, signal=signal.value)
                    == 2 * ITEMS[signal]
                )
            assert otlpd.terminate() == 0
        assert {r.transport for r in sink.state.received} == {protocol}, rotel.logs()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_sdk_to_rotel_to_otlpd(sink: Sink, protocol: str) -> None:
    """rotel's exporter (``protocol``) → otlpd's receiver → otlp exporter → Sink."""
    config = {
        "receivers": {"otlp": {"protocols": {"grpc": None, "http": None}}},
        "processors": {"batch": {"timeout": "100ms"}},
        "exporters": {"otlp": {"endpoint": sink.grpc_endpoint, "tls": {"insecure": True}}},
        "service": {"pipelines": pipelines("otlp")},
    }
    with Otlpd(config) as otlpd:
        upstream = f"http://{otlpd.grpc_endpoint}" if protocol == "grpc" else otlpd.http_endpoint
        with Rotel(upstream, protocol=protocol) as rotel:
            sent = send_all(rotel.grpc_endpoint, rotel.http_endpoint, f"from-rotel-{protocol}")
            check_arrived(sink, sent)
            # rotel really spoke to otlpd over the protocol it was told to use
            for signal in Signal:
                accepted = otlpd.metric(
                    "otlpd_receiver_accepted_items_total", signal=signal.value, transport=protocol
                )
                assert accepted >= 2 * ITEMS[signal], (signal, rotel.logs())
        assert otlpd.terminate() == 0
    assert {r.transport for r in sink.state.received} == {"grpc"}
