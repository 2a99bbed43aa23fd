"""The service in-process: graph wiring, lifecycle, health, and start failures, on real sockets."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from otlpd.component import Kind
from otlpd.config import Config, load
from otlpd.pdata import Signal
from otlpd.service.graph import Graph
from otlpd.service.service import Service, StartError, State
from otlpd.telemetry.metrics import Metrics
from tests.support.process import free_port


def config_file(tmp_path: Path, out: Path, *, batch_timeout: str = "10s") -> Path:
    config = {
        "receivers": {
            "otlp": {"protocols": {"http": {"endpoint": f"127.0.0.1:{free_port()}"}}},
            "otlp/2": {"protocols": {"grpc": {"endpoint": f"127.0.0.1:{free_port()}"}}},
        },
        "processors": {"batch": {"timeout": batch_timeout}, "batch/2": {}},
        "exporters": {"file": {"path": str(out), "flush_interval": "0s"}, "debug": {}},
        "service": {
            "http": {"endpoint": f"127.0.0.1:{free_port()}"},
            "shutdown_timeout": "5s",
            "pipelines": {
                "traces": {"receivers": ["otlp"], "processors": ["batch", "batch/2"], "exporters": ["file"]},
                "traces/b": {
                    "receivers": ["otlp", "otlp/2"],
                    "processors": ["batch"],
                    "exporters": ["file", "debug"],
                },
                "logs": {"receivers": ["otlp/2"], "exporters": ["debug"]},
            },
        },
    }
    path = tmp_path / "otlpd.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def build(config: Config) -> Graph:
    """Components bind to the running loop, so the graph is built inside one."""

    class NoHost:
        def health(self) -> tuple[bool, dict[str, object]]:
            return True, {}

    async def inside() -> Graph:
        return Graph(config, Metrics(), NoHost())

    return asyncio.run(inside())


def test_graph_is_downstream_first_with_one_processor_per_pipeline(tmp_path: Path) -> None:
    config = load(config_file(tmp_path, tmp_path / "out.jsonl"), environ={})
    graph = build(config)
    keys = [n.key for n in graph.nodes]
    assert keys == [
        "exporter:file",
        "exporter:debug",
        "processor:batch/2@traces",  # the last processor of a pipeline first
        "processor:batch@traces",
        "processor:batch@traces/b",
        "receiver:otlp",
        "receiver:otlp/2",
    ]
    kinds = [n.kind for n in graph.nodes]
    assert kinds == sorted(kinds, key=[Kind.EXPORTER, Kind.PROCESSOR, Kind.RECEIVER].index)
    # exporters are shared between pipelines; processors are not
    batches = [n.component for n in graph.of_kind(Kind.PROCESSOR) if str(n.id) == "batch"]
    assert len(batches) == 2
    assert batches[0] is not batches[1]


def spans_request(n: int) -> bytes:
    request = ExportTraceServiceRequest()
    spans = request.resource_spans.add().scope_spans.add()
    for i in range(n):
        span = spans.spans.add()
        span.trace_id = bytes([1] * 16)
        span.span_id = bytes([i + 1] * 8)
        span.name = f"span-{i}"
    return request.SerializeToString()


async def get(session: aiohttp.ClientSession, url: str) -> tuple[int, dict[str, Any]]:
    async with session.get(url) as resp:
        return resp.status, await resp.json()


def test_lifecycle_start_serve_and_drain_on_shutdown(tmp_path: Path) -> None:
    """Data buffered in a batch at shutdown is flushed into a still-running exporter."""
    out = tmp_path / "out.jsonl"
    config = load(config_file(tmp_path, out), environ={})
    http = config.component(Kind.RECEIVER, next(iter(config.components[Kind.RECEIVER]))).config.protocols.http

    async def scenario() -> None:
        service = Service(config)
        assert service.health()[0] is False
        assert service.health()[1]["state"] == "starting"
        await service.start()
        admin = f"http://{config.service.http.endpoint}"
        async with aiohttp.ClientSession() as session:
            status, body = await get(session, f"{admin}/health/ready")
            assert status == 200
            assert body["state"] == "running"
            assert {c["status"] for c in body["components"].values()} == {"started"}
            async with session.post(
                f"http://{http.endpoint}/v1/traces",
                data=spans_request(3),
                headers={"Content-Type": "application/x-protobuf"},
            ) as resp:
                assert resp.status == 200
            # buffered in two batch processors (pipelines traces and traces/b), not written yet
            assert not out.exists() or out.read_text() == ""
        await service.shutdown()
        assert service.state is State.STOPPED
        assert set(service.status.values()) == {"stopped"}
        assert service.health()[0] is False
        await service.shutdown()  # idempotent

    asyncio.run(scenario())
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    names = sorted(
        s["name"]
        for line in lines
        for rs in line["resourceSpans"]
        for ss in rs["scopeSpans"]
        for s in ss["spans"]
    )
    assert names == sorted(["span-0", "span-1", "span-2"] * 2)  # one copy per pipeline


def test_request_stop_ends_run_with_0(tmp_path: Path) -> None:
    config = load(config_file(tmp_path, tmp_path / "o.jsonl"), environ={})

    async def scenario() -> int:
        service = Service(config)
        task = asyncio.create_task(service.run())
        while service.state is not State.RUNNING:
            assert not task.done(), "run() ended before the service was running"
            await asyncio.sleep(0.01)
        service.request_stop()
        return await asyncio.wait_for(task, 20)

    assert asyncio.run(scenario()) == 0


def test_a_component_that_fails_to_start_stops_the_others(tmp_path: Path) -> None:
    path = config_file(tmp_path, tmp_path / "o.jsonl")
    config = load(path, environ={})
    grpc = config.component(Kind.RECEIVER, list(config.components[Kind.RECEIVER])[1]).config.protocols.grpc
    port = int(grpc.endpoint.rpartition(":")[2])

    async def scenario() -> Service:
        service = Service(config)
        with pytest.raises(StartError, match="receiver/otlp/2 failed to start"):
            await service.start()
        return service

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", port))
        busy.listen()
        service = asyncio.run(scenario())
    statuses = {k: v for k, v in service.status.items()}
    assert statuses["receiver:otlp/2"] == "failed"
    # everything that had started was stopped again
    assert {v for k, v in statuses.items() if k != "receiver:otlp/2"} == {"stopped"}
    assert service.state is State.STOPPED


def test_admin_port_in_use_is_a_start_error(tmp_path: Path) -> None:
    config = load(config_file(tmp_path, tmp_path / "o.jsonl"), environ={})
    port = int(config.service.http.endpoint.rpartition(":")[2])

    async def scenario() -> int:
        return await Service(config).run()

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", port))
        busy.listen()
        assert asyncio.run(scenario()) == 1


def test_not_ready_while_a_component_refuses_data(tmp_path: Path) -> None:
    config = load(config_file(tmp_path, tmp_path / "o.jsonl"), environ={})

    async def scenario() -> None:
        service = Service(config)
        await service.start()
        try:
            assert service.health()[0] is True
            node = next(n for n in service.graph.nodes if n.kind is Kind.PROCESSOR)
            node.component._items = node.component._cfg.pending_limit  # as if the exporters stalled
            ready, body = service.health()
            assert ready is False
            assert body["refusing"] == [node.name]
            assert service.metrics.ready._value.get() == 0  # otlpd_ready follows
            node.component._items = 0
            assert service.health()[0] is True
        finally:
            await service.shutdown()

    asyncio.run(scenario())


@pytest.mark.parametrize("signal", list(Signal))
def test_every_signal_has_a_pipeline_in_the_default_config(signal: Signal) -> None:
    graph = build(load(None, environ={}))
    pipelines = {n.pipeline for n in graph.of_kind(Kind.PROCESSOR)}
    assert signal.value in pipelines
