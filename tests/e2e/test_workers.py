"""``serve --workers N``: workers share the ports, are supervised, drain together."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from typing import Any

import yaml

from otlpd.pdata import Signal
from tests.e2e.sdk import exporter, received_spans, send_traces
from tests.support.process import Otlpd, free_port
from tests.support.sink import Sink

SPAN_JSON = (
    b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c",'
    b'"spanId":"eee19b7ec3c1b174","name":"w"}]}]}]}'
)


def gateway(sink: Sink, **service: Any) -> dict[str, Any]:
    return {
        "receivers": {"otlp": {"protocols": {"grpc": None, "http": None}}},
        "processors": {"batch": {"timeout": "50ms"}},
        "exporters": {
            "otlp": {"endpoint": sink.grpc_endpoint, "tls": {"insecure": True}},
            "debug": {"verbosity": "basic"},
        },
        "service": {
            "pipelines": {
                "traces": {"receivers": ["otlp"], "processors": ["batch"], "exporters": ["otlp", "debug"]}
            },
            **service,
        },
    }


def post_new_connection(port: int) -> int:
    """One request on its own TCP connection, so SO_REUSEPORT can pick any worker."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("POST", "/v1/traces", SPAN_JSON, {"Content-Type": "application/json"})
        return conn.getresponse().status
    finally:
        conn.close()


def worker_pids(otlpd: Otlpd) -> dict[str, int]:
    _, body = otlpd.health()
    return {k: v["pid"] for k, v in body["components"].items()}


def test_two_workers_share_the_ports_and_metrics_add_up(sink: Sink) -> None:
    with Otlpd(gateway(sink), env={"OTLPD_WORKERS": "2"}) as otlpd:
        status, body = otlpd.health()
        assert status == 200
        assert sorted(body["components"]) == ["worker:0", "worker:1"]
        assert all(c["status"] == "ready" for c in body["components"].values())
        statuses = [post_new_connection(otlpd.http_port) for _ in range(24)]
        assert statuses == [200] * 24
        sent = send_traces(exporter(Signal.TRACES, "grpc", otlpd.grpc_endpoint), "workers", 5)
        assert sink.wait_for_items(Signal.TRACES, 29) == 29
        assert sent <= received_spans(sink.state.messages(Signal.TRACES))
        # /metrics is the sum over both workers
        assert otlpd.metric("otlp_requests_total", transport="http", status="200") == 24
        assert otlpd.metric("otlpd_exporter_sent_items_total", exporter="otlp") == 29
        assert otlpd.metric("otlpd_workers") == 2
        assert otlpd.metric("otlpd_ready") == 1
        # the kernel spread the 24 connections over both workers (chance of not: 2**-23)
        writers = {e.get("worker") for e in otlpd.log_events() if e.get("msg") == "traces received"}
        assert writers == {0, 1}
        assert otlpd.terminate() == 0


def test_a_crashed_worker_is_restarted(sink: Sink) -> None:
    with Otlpd(gateway(sink), env={"OTLPD_WORKERS": "2"}) as otlpd:
        before = worker_pids(otlpd)
        os.kill(before["worker:0"], signal.SIGKILL)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            status, _ = otlpd.health()
            pids = worker_pids(otlpd)
            if status == 200 and pids["worker:0"] not in (None, before["worker:0"]):
                break
            time.sleep(0.1)
        assert pids["worker:0"] != before["worker:0"]
        assert pids["worker:1"] == before["worker:1"]
        assert status == 200
        assert otlpd.metric("otlpd_worker_restarts_total") == 1
        assert [post_new_connection(otlpd.http_port) for _ in range(6)] == [200] * 6
        assert otlpd.terminate() == 0


def test_sigterm_drains_every_worker(sink: Sink) -> None:
    config = gateway(sink)
    config["processors"]["batch"]["timeout"] = "30s"  # data stays in each worker's batch until the drain
    sink.state.delay = 0.3
    with Otlpd(config, env={"OTLPD_WORKERS": "2"}) as otlpd:
        assert [post_new_connection(otlpd.http_port) for _ in range(16)] == [200] * 16
        assert sink.state.items(Signal.TRACES) == 0
        assert otlpd.terminate() == 0
    assert sink.state.items(Signal.TRACES) == 16


def test_a_worker_that_cannot_start_stops_the_supervisor(sink: Sink) -> None:
    with socket.socket() as taken:  # bound without SO_REUSEPORT: workers cannot share it
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        otlpd = Otlpd(gateway(sink), env={"OTLPD_WORKERS": "2"})
        assert otlpd.config_path is not None
        written = yaml.safe_load(otlpd.config_path.read_text())
        written["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"] = f"127.0.0.1:{taken.getsockname()[1]}"
        otlpd.config_path.write_text(yaml.safe_dump(written))
        otlpd.start(wait_ready=False)
        try:
            assert otlpd.proc is not None
            assert otlpd.proc.wait(30) == 1
            events = otlpd.log_events()
        finally:
            otlpd.__exit__(None, None, None)
    assert any("while starting" in str(e.get("msg")) for e in events)
    assert any(e.get("msg") == "component failed to start" and "worker" in e for e in events)


def test_cli_flag_and_bad_env_value() -> None:
    bad = subprocess.run(
        [sys.executable, "-m", "otlpd", "serve"],
        env={**os.environ, "OTLPD_WORKERS": "zero", "OTLPD_HTTP_ENDPOINT": f"127.0.0.1:{free_port()}"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert bad.returncode == 1
    assert "OTLPD_WORKERS: must be a whole number from 1 to 256, not 'zero'" in bad.stderr
    flag = subprocess.run(
        [sys.executable, "-m", "otlpd", "serve", "--workers", "0"], capture_output=True, text=True, timeout=30
    )
    assert flag.returncode == 2
    assert "--workers must be from 1 to 256" in flag.stderr
