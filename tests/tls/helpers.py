"""A TLS chain: SDK → A (plain OTLP in) → exporter over TLS → B (OTLP receiver with TLS) → Sink.

B and its Sink (an :class:`Upstream`) are shared by the tests of a package-scoped fixture; each test
tags what it sends with its own ``run`` and looks only at that run, so tests do not see each other.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from otlpd.pdata import Signal
from tests.e2e import sdk
from tests.support.process import Otlpd
from tests.support.sink import Sink
from tests.tls.certs import Certs, Pair

# Short retry intervals everywhere, so one failed attempt on a slow machine costs 50 ms, not 5 s;
# where sending is expected to fail, retries also give up after 2 s.
RETRY = {"initial_interval": "50ms", "max_interval": "200ms", "max_elapsed_time": "10s"}
FAIL_FAST_RETRY = {**RETRY, "max_elapsed_time": "2s"}


@dataclass(frozen=True)
class Upstream:
    b: Otlpd
    sink: Sink


def pipelines(exporter: str) -> dict[str, Any]:
    return {s.value: {"receivers": ["otlp"], "exporters": [exporter]} for s in Signal}


def server_tls(pair: Pair, **extra: Any) -> dict[str, Any]:
    return {"cert_file": str(pair.cert), "key_file": str(pair.key), **extra}


def b_config(sink: Sink, tls: dict[str, Any], http_tls: dict[str, Any] | None = None) -> dict[str, Any]:
    """B: OTLP receiver with TLS on gRPC and HTTP, plain OTLP/gRPC on to the Sink."""
    return {
        "receivers": {"otlp": {"protocols": {"grpc": {"tls": tls}, "http": {"tls": http_tls or tls}}}},
        "exporters": {"otlp": {"endpoint": sink.grpc_endpoint, "tls": {"insecure": True}}},
        "service": {"pipelines": pipelines("otlp")},
    }


def a_config(exporter: str, b: Otlpd, tls: dict[str, Any], *, fail_fast: bool = False) -> dict[str, Any]:
    """A: plain OTLP/gRPC receiver, ``exporter`` (otlp | otlphttp) over TLS to B."""
    endpoint = b.grpc_endpoint if exporter == "otlp" else f"https://127.0.0.1:{b.http_port}"
    config: dict[str, Any] = {"endpoint": endpoint, "tls": tls, "retry_on_failure": RETRY}
    if fail_fast:
        config["timeout"] = "2s"
        config["retry_on_failure"] = FAIL_FAST_RETRY
    return {
        "receivers": {"otlp": {"protocols": {"grpc": None}}},
        "exporters": {exporter: config},
        "service": {"pipelines": pipelines(exporter)},
    }


@contextlib.contextmanager
def running(*procs: Otlpd) -> Iterator[None]:
    """Start every process at once (ports are known before start), wait for all, kill at exit."""
    with contextlib.ExitStack() as stack:
        for proc in procs:
            proc.start(wait_ready=False)
            stack.push(proc)
        for proc in procs:
            proc.wait_ready()
        yield


@contextlib.contextmanager
def upstream(tls: dict[str, Any], http_tls: dict[str, Any] | None = None) -> Iterator[Upstream]:
    """B, with ``tls`` on both of its OTLP listeners (or ``http_tls`` on HTTP), in front of a Sink."""
    with Sink() as sink:
        b = Otlpd(b_config(sink, tls, http_tls))
        with running(b):
            yield Upstream(b, sink)


def relay(exporter: str, up: Upstream, tls: dict[str, Any], *, fail_fast: bool = False, **kw: Any) -> Otlpd:
    return Otlpd(a_config(exporter, up.b, tls, fail_fast=fail_fast), **kw)


def ca(certs: Certs) -> dict[str, Any]:
    return {"ca_file": str(certs.ca)}


def send(signal: Signal, endpoint: str, run: str) -> set[Any]:
    """Send a known set of items, tagged ``run``, with the OpenTelemetry SDK over plain OTLP/gRPC."""
    return sdk.SENDERS[signal](sdk.exporter(signal, "grpc", endpoint), run)  # type: ignore[no-any-return]


def received(sink: Sink, signal: Signal, run: str) -> set[Any]:
    """What the Sink got of ``signal`` from ``run``, in the shape ``send`` returns."""
    return sdk.of_run(sdk.RECEIVED[signal](sink.state.messages(signal)), run)


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def alive(proc: Otlpd) -> bool:
    return proc.proc is not None and proc.proc.poll() is None


def failed_sends(a: Otlpd, exporter: str) -> float:
    return a.metric("otlpd_exporter_send_failed_requests_total", exporter=exporter)


def assert_arrives(sink: Sink, signal: Signal, run: str, sent: set[Any], logs: Callable[[], str]) -> None:
    """Everything sent in ``run`` reaches the Sink, unchanged, and nothing else of that run."""
    wait_for(lambda: len(received(sink, signal, run)) >= len(sent))
    assert received(sink, signal, run) == sent, logs()


def assert_delivered(a: Otlpd, up: Upstream, run: str) -> None:
    """Spans sent to A arrive at the Sink unchanged."""
    assert_arrives(up.sink, Signal.TRACES, run, send(Signal.TRACES, a.grpc_endpoint, run), a.logs)


def assert_not_delivered(a: Otlpd, up: Upstream, exporter: str, run: str) -> None:
    """Spans sent to A do not get through B: A counts failed sends and both keep running."""
    send(Signal.TRACES, a.grpc_endpoint, run)
    wait_for(lambda: failed_sends(a, exporter) >= 2 or bool(received(up.sink, Signal.TRACES, run)))
    assert received(up.sink, Signal.TRACES, run) == set(), "delivered, but it must not have been"
    assert failed_sends(a, exporter) >= 2, f"no failed sends counted:\n{a.logs()}"
    assert alive(a), a.logs()
    assert a.health()[0] == 200
    assert alive(up.b), up.b.logs()
