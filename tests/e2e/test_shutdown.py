"""Graceful shutdown of a real ``otlpd serve`` process.

SIGTERM: not ready (liveness stays up) → stop accepting → flush the batch →
drain the exporter queue → exit 0. Past ``shutdown_timeout`` what is left is
dropped, counted and logged, and the process still exits 0. A second SIGTERM
exits at once, non-zero.
"""

from __future__ import annotations

import signal
import subprocess
import time
from typing import Any

import pytest

from otlpd.pdata import Signal
from tests.e2e import sdk
from tests.support.process import Otlpd
from tests.support.sink import Sink

SPANS = 7


def buffered_gateway(sink: Sink, shutdown_timeout: str, exporter_timeout: str = "30s") -> dict[str, Any]:
    """A batch that holds data for 10s, so at SIGTERM it is still buffered in otlpd."""
    return {
        "receivers": {"otlp": {"protocols": {"grpc": None, "http": None}}},
        "processors": {"batch": {"timeout": "10s", "send_batch_size": 10000}},
        "exporters": {
            "otlp": {
                "endpoint": sink.grpc_endpoint,
                "tls": {"insecure": True},
                "timeout": exporter_timeout,
                "retry_on_failure": {"initial_interval": "100ms", "max_interval": "200ms"},
            }
        },
        "service": {
            "shutdown_timeout": shutdown_timeout,
            "pipelines": {"traces": {"receivers": ["otlp"], "processors": ["batch"], "exporters": ["otlp"]}},
        },
    }


def send_and_wait_buffered(otlpd: Otlpd, sink: Sink) -> set[Any]:
    sent = sdk.send_traces(sdk.exporter(Signal.TRACES, "grpc", otlpd.grpc_endpoint), "drain", n=SPANS)
    assert otlpd.metric("otlpd_processor_batch_pending_items", signal="traces") == SPANS
    assert sink.state.attempts == 0, "the batch was sent before SIGTERM; the test proves nothing"
    return sent


def try_health(otlpd: Otlpd, path: str) -> tuple[int, dict[str, Any]] | None:
    """A probe's status and body, or None when the server no longer answers."""
    try:
        return otlpd.health(path)
    except (OSError, ValueError):
        return None


@pytest.mark.timeout(40)
def test_sigterm_delivers_buffered_data_to_a_slow_upstream_and_exits_0(sink: Sink) -> None:
    sink.state.delay = 1.0
    with Otlpd(buffered_gateway(sink, shutdown_timeout="20s")) as otlpd:
        sent = send_and_wait_buffered(otlpd, sink)
        assert otlpd.proc is not None
        otlpd.proc.send_signal(signal.SIGTERM)

        # Probe while it drains (the upstream takes 1s to answer).
        ready: tuple[int, dict[str, Any]] | None = None
        live: tuple[int, dict[str, Any]] | None = None
        while otlpd.proc.poll() is None:
            ready = try_health(otlpd, "/health/ready")
            if ready is not None and ready[0] == 503:
                live = try_health(otlpd, "/health/live")
                break
            time.sleep(0.02)
        assert ready is not None, "readiness never answered while draining"
        assert ready[0] == 503, f"never saw readiness turn 503 while draining: {ready}"
        assert ready[1]["status"] == "not_ready"
        assert ready[1]["state"] == "stopping"
        assert live is not None, "liveness stopped answering while draining"
        assert live[0] == 200, "liveness must stay 200 while draining"
        assert live[1]["status"] == "alive"

        assert otlpd.proc.wait(30) == 0
        assert sink.state.items(Signal.TRACES) == SPANS
        assert sdk.received_spans(sink.state.messages(Signal.TRACES)) == sent
        events = otlpd.log_events()
        assert not [e for e in events if e.get("msg") == "dropping data"]
        assert [e for e in events if e.get("msg") == "signal received, draining"]
        assert events[-1]["msg"] == "stopped"


@pytest.mark.timeout(40)
def test_shutdown_timeout_exceeded_drops_counts_and_exits_0(sink: Sink) -> None:
    sink.state.delay = 30.0  # the upstream will not answer before the 1s deadline
    with Otlpd(buffered_gateway(sink, shutdown_timeout="1s")) as otlpd:
        send_and_wait_buffered(otlpd, sink)
        # exits within about the timeout: far sooner than the upstream would answer
        assert otlpd.terminate(timeout=15) == 0
        assert sink.state.items(Signal.TRACES) == 0
        events = otlpd.log_events()
        dropped = [e for e in events if e.get("msg") == "dropping data"]
        assert dropped, "nothing was logged as dropped:\n" + otlpd.logs()
        assert {e.get("reason") for e in dropped} == {"shutdown"}
        assert sum(e["items"] for e in dropped) == SPANS
        assert all(e.get("exporter") == "otlp" and e.get("signal") == "traces" for e in dropped)


@pytest.mark.timeout(40)
def test_second_sigterm_during_a_long_drain_exits_at_once_non_zero(sink: Sink) -> None:
    sink.state.delay = 30.0
    with Otlpd(buffered_gateway(sink, shutdown_timeout="60s")) as otlpd:
        send_and_wait_buffered(otlpd, sink)
        assert otlpd.proc is not None
        otlpd.proc.send_signal(signal.SIGTERM)
        # wait until the drain has begun (readiness 503) and the upstream holds the request
        assert sink.wait_until(lambda s: s.attempts >= 1, timeout=10)
        assert otlpd.health("/health/ready")[0] == 503
        assert otlpd.proc.poll() is None, "the first SIGTERM alone must not end a 60s drain"
        otlpd.proc.send_signal(signal.SIGTERM)
        try:
            code = otlpd.proc.wait(10)
        except subprocess.TimeoutExpired:
            pytest.fail("a second SIGTERM did not force an exit")
        assert code != 0
        assert [e for e in otlpd.log_events() if e.get("msg") == "second signal: exiting without draining"]


@pytest.mark.timeout(40)
def test_shutdown_timeout_exceeded_counts_what_was_still_queued(sink: Sink) -> None:
    """One queue consumer, two requests: one hangs in flight, one waits in the queue."""
    sink.state.delay = 30.0
    config = buffered_gateway(sink, shutdown_timeout="1s")
    config["exporters"]["otlp"]["sending_queue"] = {"num_consumers": 1}
    config["service"]["pipelines"]["traces"]["processors"] = []
    with Otlpd(config) as otlpd:
        for run in ("first", "second"):
            sdk.send_traces(sdk.exporter(Signal.TRACES, "grpc", otlpd.grpc_endpoint), run, n=3)
        assert sink.wait_until(lambda s: s.attempts == 1, timeout=10)
        assert otlpd.metric("otlpd_exporter_queue_size", exporter="otlp", signal="traces") == 1
        assert otlpd.terminate(timeout=15) == 0
        assert sink.state.items(Signal.TRACES) == 0
        dropped = [e for e in otlpd.log_events() if e.get("msg") == "dropping data"]
        assert dropped, "nothing was logged as dropped:\n" + otlpd.logs()
        assert {e.get("reason") for e in dropped} == {"shutdown"}
        assert sum(e["items"] for e in dropped) == 6  # the queued request and the one in flight
