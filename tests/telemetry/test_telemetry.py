"""Structured logging, the metrics registry, and the health/metrics HTTP server (real socket)."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from otlpd.telemetry import logging as otlpd_logging
from otlpd.telemetry.metrics import Metrics
from otlpd.telemetry.server import TelemetryServer


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger("otlpd")
    handlers, level, propagate = root.handlers[:], root.level, root.propagate
    yield
    otlpd_logging.flush()
    root.handlers[:], root.level, root.propagate = handlers, level, propagate


def capture(level: str, fmt: str) -> io.StringIO:
    stream = io.StringIO()
    otlpd_logging.setup(level, fmt, stream)
    return stream


@pytest.mark.usefixtures("restore_logging")
def test_json_events_carry_extra_fields_and_exceptions() -> None:
    stream = capture("info", "json")
    log = otlpd_logging.get("test")
    log.info("hello", extra={"items": 3, "exporter": "otlp/x", "obj": object()})
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("it failed", extra={"component": "c"})
    log.debug("hidden")
    otlpd_logging.flush()
    events = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [e["msg"] for e in events] == ["hello", "it failed"]
    hello, failed = events
    assert hello["level"] == "info"
    assert hello["logger"] == "otlpd.test"
    assert (hello["items"], hello["exporter"]) == (3, "otlp/x")
    assert hello["obj"].startswith("<object")  # not JSON-native: rendered, never a crash
    assert hello["ts"].endswith("Z")
    assert failed["level"] == "error"
    assert failed["component"] == "c"
    assert "ValueError: boom" in failed["exception"]


@pytest.mark.usefixtures("restore_logging")
@pytest.mark.parametrize(
    ("level", "shown"),
    [("debug", ["d", "i", "w", "e"]), ("info", ["i", "w", "e"]), ("warn", ["w", "e"]), ("error", ["e"])],
)
def test_levels(level: str, shown: list[str]) -> None:
    stream = capture(level, "json")
    log = otlpd_logging.get("lvl")
    log.debug("d")
    log.info("i")
    log.warning("w")
    log.error("e")
    otlpd_logging.flush()
    assert [json.loads(line)["msg"] for line in stream.getvalue().splitlines()] == shown


@pytest.mark.usefixtures("restore_logging")
def test_text_format_and_auto_on_a_non_tty() -> None:
    stream = capture("info", "text")
    otlpd_logging.get("t").warning("careful", extra={"port": 4317})
    otlpd_logging.flush()
    line = stream.getvalue().strip()
    assert "WARNING" in line
    assert line.endswith("otlpd.t: careful  port=4317")
    stream = capture("info", "auto")  # a StringIO is not a TTY: JSON
    otlpd_logging.get("t").info("auto")
    otlpd_logging.flush()
    assert json.loads(stream.getvalue())["msg"] == "auto"


@pytest.mark.usefixtures("restore_logging")
def test_setup_twice_keeps_one_handler() -> None:
    capture("info", "json")
    stream = capture("info", "json")
    otlpd_logging.get("x").info("once")
    otlpd_logging.flush()
    assert len(stream.getvalue().splitlines()) == 1
    assert len(logging.getLogger("otlpd").handlers) == 1


def test_each_metrics_instance_has_its_own_registry() -> None:
    a, b = Metrics(), Metrics()
    a.exporter_sent.labels("otlp", "traces").inc(5)
    families = {f.name: f for f in text_string_to_metric_families(a.exposition().decode())}
    assert families["otlpd_exporter_sent_items"].samples[0].value == 5
    other = {f.name: f for f in text_string_to_metric_families(b.exposition().decode())}
    assert other["otlpd_exporter_sent_items"].samples == []
    assert "process_resident_memory_bytes" in families
    assert not any(
        name.endswith("_created") for f in families.values() for name in [s.name for s in f.samples]
    )


async def _serve(health: Any, scenario: Any) -> None:
    metrics = Metrics()

    async def exposition() -> bytes:
        return metrics.exposition()

    server = TelemetryServer("127.0.0.1:0", exposition, health)
    await server.start()
    try:
        assert server.port > 0
        async with aiohttp.ClientSession(f"http://127.0.0.1:{server.port}") as session:
            await scenario(session)
    finally:
        await server.stop()


def test_server_probes_follow_the_health_function() -> None:
    state: dict[str, Any] = {"ready": True}

    def health() -> tuple[bool, dict[str, Any]]:
        body = {
            "status": "ready" if state["ready"] else "not_ready",
            "state": "running" if state["ready"] else "stopping",
            "components": {"receiver:otlp": {"status": "started"}},
        }
        return state["ready"], body

    async def scenario(session: aiohttp.ClientSession) -> None:
        for path in ("/health/ready", "/ready"):
            async with session.get(path) as resp:
                assert resp.status == 200
                assert resp.content_type == "application/json"
                assert (await resp.json())["status"] == "ready"
        state["ready"] = False
        for path in ("/health/ready", "/ready"):
            async with session.get(path) as resp:
                assert resp.status == 503
                assert (await resp.json())["status"] == "not_ready"
        for path in ("/health/live", "/health"):
            async with session.get(path) as resp:
                assert resp.status == 200  # alive while not ready
                body = await resp.json()
                assert body["status"] == "alive"
                assert body["state"] == "stopping"
                assert body["components"] == {"receiver:otlp": {"status": "started"}}
        async with session.get("/metrics") as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"].startswith("text/plain")
            assert "# TYPE otlp_requests_total counter" in await resp.text()
        async with session.post("/health/ready") as resp:
            assert resp.status == 405

    asyncio.run(_serve(health, scenario))


def test_server_on_a_busy_port_raises_oserror() -> None:
    async def scenario() -> None:
        async def exposition() -> bytes:
            return b""

        first = TelemetryServer("127.0.0.1:0", exposition, lambda: (True, {}))
        await first.start()
        try:
            second = TelemetryServer(f"127.0.0.1:{first.port}", exposition, lambda: (True, {}))
            with pytest.raises(OSError):
                await second.start()
            await second.stop()
        finally:
            await first.stop()

    asyncio.run(scenario())
