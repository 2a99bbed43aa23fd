"""``otlpd serve`` configured the 12-factor way, and how it fails to start."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from otlpd.pdata import Signal
from tests.e2e import sdk
from tests.support.process import Otlpd
from tests.support.sink import Sink


def forwarding(sink: Sink, retry: bool = False) -> dict[str, Any]:
    otlp: dict[str, Any] = {"endpoint": sink.grpc_endpoint, "tls": {"insecure": True}}
    if retry:
        otlp["retry_on_failure"] = {"initial_interval": "100ms", "max_interval": "100ms"}
    return {
        "receivers": {"otlp": {"protocols": {"grpc": None, "http": None}}},
        "exporters": {"otlp": otlp},
        "service": {"pipelines": {"traces": {"receivers": ["otlp"], "exporters": ["otlp"]}}},
    }


@contextmanager
def listening(port: int) -> Iterator[socket.socket]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))
        s.listen()
        yield s


@pytest.mark.timeout(30)
def test_otlpd_config_names_the_file_for_serve(sink: Sink, tmp_path: Path) -> None:
    otlpd = Otlpd(None)
    config = forwarding(sink)
    config["receivers"]["otlp"]["protocols"] = {
        "grpc": {"endpoint": otlpd.grpc_endpoint},
        "http": {"endpoint": f"127.0.0.1:{otlpd.http_port}"},
    }
    path = tmp_path / "from-env.yaml"
    path.write_text(yaml.safe_dump(config))
    otlpd.env["OTLPD_CONFIG"] = str(path)
    with otlpd:
        sent = sdk.send_traces(sdk.exporter(Signal.TRACES, "http", otlpd.http_endpoint), "env-config")
        assert sink.wait_for_items(Signal.TRACES, len(sent)) == len(sent)
        assert sdk.received_spans(sink.state.messages(Signal.TRACES)) == sent
        ready = [e for e in otlpd.log_events() if e.get("msg") == "otlpd is ready"]
        assert ready[0]["config"] == str(path)
        assert otlpd.terminate() == 0


def _ports_free(*ports: int) -> bool:
    for port in ports:
        with socket.socket() as s:
            try:
                s.bind(("0.0.0.0", port))
            except OSError:
                return False
    return True


@pytest.mark.timeout(30)
def test_default_config_forwards_to_otlpd_exporter_otlp_endpoint(sink: Sink) -> None:
    """No file: OTLP on the standard ports, an otlp exporter to the given upstream."""
    if not _ports_free(4317, 4318):
        pytest.skip("ports 4317/4318, which the built-in default config listens on, are in use")
    env = {"OTLPD_EXPORTER_OTLP_ENDPOINT": f"http://{sink.grpc_endpoint}", "OTLPD_CONFIG": ""}
    with Otlpd(None, env=env) as otlpd:
        traces = sdk.send_traces(sdk.exporter(Signal.TRACES, "grpc", "127.0.0.1:4317"), "default-grpc")
        logs = sdk.send_logs(sdk.exporter(Signal.LOGS, "http", "http://127.0.0.1:4318"), "default-http")
        assert sink.wait_for_items(Signal.TRACES, len(traces)) == len(traces)
        assert sink.wait_for_items(Signal.LOGS, len(logs)) == len(logs)
        assert sdk.received_spans(sink.state.messages(Signal.TRACES)) == traces
        assert sdk.received_logs(sink.state.messages(Signal.LOGS)) == logs
        status, body = otlpd.health()
        assert status == 200
        assert {"exporter:otlp", "exporter:debug"} <= set(body["components"])
        # the debug exporter of the default config reports what it saw
        assert [e for e in otlpd.log_events() if e.get("logger", "").startswith("otlpd.exporter.debug")]
        assert otlpd.terminate() == 0


@pytest.mark.timeout(30)
@pytest.mark.parametrize("which", ["grpc", "http", "admin"])
def test_port_in_use_exits_1_with_a_clear_log_line(sink: Sink, which: str) -> None:
    otlpd = Otlpd(forwarding(sink))
    port = {"grpc": otlpd.grpc_port, "http": otlpd.http_port, "admin": otlpd.admin_port}[which]
    try:
        with listening(port):
            otlpd.start(wait_ready=False)
            assert otlpd.proc is not None
            assert otlpd.proc.wait(20) == 1
        logs = otlpd.logs()
        assert "Traceback" not in logs, logs
        errors = [e for e in otlpd.log_events() if e.get("level") == "error"]
        assert len(errors) == 1, logs
        (error,) = errors
        if which == "admin":
            assert error["msg"] == "http server failed to start"
            assert error["endpoint"] == otlpd.admin.removeprefix("http://")
        else:
            assert error["msg"] == "component failed to start"
            assert error["component"] == "receiver/otlp"
        assert str(port) in error["error"]
        assert "in use" in error["error"] or "Failed to bind" in error["error"]
    finally:
        otlpd.__exit__()


@pytest.mark.timeout(30)
@pytest.mark.parametrize("level", ["debug", "info"])
def test_otlpd_log_level(sink: Sink, level: str) -> None:
    """At debug a failed send that will be retried is logged; at info it is not."""
    sink.fail_next(1)
    with Otlpd(forwarding(sink, retry=True), env={"OTLPD_LOG_LEVEL": level.upper()}) as otlpd:
        sent = sdk.send_traces(sdk.exporter(Signal.TRACES, "grpc", otlpd.grpc_endpoint), "lvl", n=2)
        assert sink.wait_for_items(Signal.TRACES, 2) == 2
        assert sdk.received_spans(sink.state.messages(Signal.TRACES)) == sent
        assert otlpd.terminate() == 0
        events = otlpd.log_events()
    retries = [e for e in events if e.get("msg") == "send failed, will retry"]
    levels = {e["level"] for e in events}
    if level == "debug":
        assert retries, events
        assert retries[0]["level"] == "debug"
        assert retries[0]["exporter"] == "otlp"
    else:
        assert not retries
        assert "debug" not in levels
        assert "info" in levels


@pytest.mark.timeout(30)
def test_otlpd_log_level_error_hides_info(sink: Sink) -> None:
    with Otlpd(forwarding(sink), env={"OTLPD_LOG_LEVEL": "error"}) as otlpd:
        assert otlpd.terminate() == 0
        assert otlpd.log_path.exists()
        assert otlpd.logs() == ""


@pytest.mark.timeout(30)
def test_otlpd_log_format_json_is_one_event_per_line(sink: Sink) -> None:
    with Otlpd(forwarding(sink), env={"OTLPD_LOG_FORMAT": "json"}) as otlpd:
        assert otlpd.terminate() == 0
        lines = [line for line in otlpd.logs().splitlines() if line.strip()]
    events = [json.loads(line) for line in lines]  # every line parses
    assert [e["msg"] for e in events][:1] == ["starting otlpd"]
    for e in events:
        assert {"ts", "level", "logger", "msg"} <= set(e)
        assert e["ts"].endswith("Z")
        assert e["logger"].startswith("otlpd.")
    msgs = [e["msg"] for e in events]
    assert msgs.index("otlpd is ready") < msgs.index("signal received, draining") < msgs.index("stopped")
    listening_on = {e["transport"]: e["port"] for e in events if e["msg"] == "listening"}
    assert listening_on == {"grpc": otlpd.grpc_port, "http": otlpd.http_port}


@pytest.mark.timeout(30)
def test_otlpd_log_format_text(sink: Sink) -> None:
    with Otlpd(forwarding(sink), env={"OTLPD_LOG_FORMAT": "text"}) as otlpd:
        assert otlpd.terminate() == 0
        text = otlpd.logs()
        assert otlpd.log_events() == []  # not JSON
    ready = [line for line in text.splitlines() if "otlpd is ready" in line]
    assert ready, text
    assert "INFO" in ready[0]
    assert "otlpd.service: otlpd is ready" in ready[0]
