"""Traces, metrics and logs from the OpenTelemetry SDK, over gRPC and HTTP, through otlpd.

SDK exporter → otlpd (otlp receiver → batch → otlp or otlphttp exporter) → Sink.
What arrives must equal what was sent: ids, names, attributes, point values,
log bodies and severities, and the resource each came with.
"""

from __future__ import annotations

from typing import Any

import pytest

from otlpd.pdata import Signal
from tests.e2e import sdk
from tests.support.process import Otlpd
from tests.support.sink import Sink

# items per run: 5 spans; 4 points (2 counter, 1 histogram, 1 gauge); 4 log records
ITEMS = {Signal.TRACES: 5, Signal.METRICS: 4, Signal.LOGS: 4}


def gateway(exporter: str, exporter_config: dict[str, Any]) -> dict[str, Any]:
    return {
        "receivers": {"otlp": {"protocols": {"grpc": None, "http": None}}},
        "processors": {"batch": {"timeout": "100ms"}},
        "exporters": {exporter: exporter_config},
        "service": {
            "pipelines": {
                signal.value: {"receivers": ["otlp"], "processors": ["batch"], "exporters": [exporter]}
                for signal in Signal
            }
        },
    }


@pytest.mark.timeout(60)
@pytest.mark.parametrize("exporter", ["otlp", "otlphttp"])
def test_every_signal_over_both_transports_arrives_unchanged(sink: Sink, exporter: str) -> None:
    if exporter == "otlp":
        config = gateway("otlp", {"endpoint": sink.grpc_endpoint, "tls": {"insecure": True}})
    else:
        config = gateway("otlphttp", {"endpoint": sink.http_endpoint})
    with Otlpd(config) as otlpd:
        sent: dict[Signal, set[Any]] = {}
        for signal in Signal:
            sent[signal] = set()
            for transport, endpoint in (("grpc", otlpd.grpc_endpoint), ("http", otlpd.http_endpoint)):
                exp = sdk.exporter(signal, transport, endpoint)
                sent[signal] |= sdk.SENDERS[signal](exp, f"{signal.value}-{transport}")
        for signal in Signal:
            want = 2 * ITEMS[signal]
            assert sink.wait_for_items(signal, want, timeout=15) == want, signal
            got = sdk.RECEIVED[signal](sink.state.messages(signal))
            assert got == sent[signal], signal
            for transport in ("grpc", "http"):
                run = f"{signal.value}-{transport}"
                assert sdk.of_run(got, run), f"nothing from {run}"
                accepted = otlpd.metric(
                    "otlpd_receiver_accepted_items_total", signal=signal.value, transport=transport
                )
                assert accepted == ITEMS[signal], (signal, transport)
            assert (
                otlpd.metric("otlpd_exporter_sent_items_total", exporter=exporter, signal=signal.value)
                == want
            )
        # the upstream got it with the transport the exporter speaks
        assert {r.transport for r in sink.state.received} == {"grpc" if exporter == "otlp" else "http"}
        assert otlpd.terminate() == 0


@pytest.mark.timeout(30)
def test_sdk_sees_success_and_nothing_is_duplicated(sink: Sink) -> None:
    """Counts, not just sets: every item exactly once (no duplicate exports, no retries)."""
    config = gateway("otlp", {"endpoint": sink.grpc_endpoint, "tls": {"insecure": True}})
    with Otlpd(config) as otlpd:
        for signal in Signal:
            exp = sdk.exporter(signal, "grpc", otlpd.grpc_endpoint)
            sdk.SENDERS[signal](exp, "once")
        for signal in Signal:
            assert sink.wait_for_items(signal, ITEMS[signal]) == ITEMS[signal]
        assert otlpd.terminate() == 0
        for signal in Signal:
            assert sink.state.items(signal) == ITEMS[signal], signal
        assert otlpd.log_events(), "otlpd wrote no JSON log events"
        assert not [e for e in otlpd.log_events() if e.get("level") == "error"]
