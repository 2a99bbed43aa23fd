"""The health_check extension answers like the Collector's, from otlpd's own readiness."""

from __future__ import annotations

import json
import signal
import time
import urllib.error
import urllib.request

from otlpd.pdata import Signal
from tests.e2e.sdk import exporter, send_traces
from tests.support.process import Otlpd, free_port
from tests.support.sink import Sink


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def _config(sink: Sink, port: int, **extension: object) -> dict[str, object]:
    return {
        "extensions": {"health_check": {"endpoint": f"127.0.0.1:{port}", **extension}},
        "receivers": {"otlp": {"protocols": {"grpc": None}}},
        "processors": {"batch": {"timeout": "10s"}},
        "exporters": {"otlp": {"endpoint": sink.grpc_endpoint, "tls": {"insecure": True}}},
        "service": {
            "extensions": ["health_check"],
            "pipelines": {"traces": {"receivers": ["otlp"], "processors": ["batch"], "exporters": ["otlp"]}},
        },
    }


def test_serves_collector_style_status_and_lists_in_readiness(sink: Sink) -> None:
    port = free_port()
    with Otlpd(_config(sink, port)) as otlpd:
        status, body = _get(f"http://127.0.0.1:{port}/")
        assert status == 200
        doc = json.loads(body)
        assert doc["status"] == "Server available"
        assert doc["upSince"].endswith("Z")
        _, ready = otlpd.health()
        assert ready["components"]["extension:health_check"]["status"] == "started"
        assert otlpd.terminate() == 0


def test_custom_path_and_body_and_unhealthy_while_draining(sink: Sink) -> None:
    port = free_port()
    config = _config(sink, port, path="/healthz", response_body={"healthy": "ok", "unhealthy": "draining"})
    config["service"]["shutdown_timeout"] = "5s"  # type: ignore[index]
    sink.state.delay = 1.5  # the drain takes a while, so the probe can be seen failing
    with Otlpd(config) as otlpd:
        assert _get(f"http://127.0.0.1:{port}/healthz") == (200, b"ok")
        assert _get(f"http://127.0.0.1:{port}/")[0] == 404
        sent = send_traces(exporter(Signal.TRACES, "grpc", otlpd.grpc_endpoint), "hc", 3)
        assert otlpd.proc is not None
        otlpd.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 5
        seen = None
        while time.monotonic() < deadline:
            seen = _get(f"http://127.0.0.1:{port}/healthz")
            if seen[0] == 503:
                break
            time.sleep(0.05)
        assert seen == (503, b"draining")
        assert otlpd.proc.wait(15) == 0
        assert sink.state.items(Signal.TRACES) == len(sent)  # the drain delivered the batch
