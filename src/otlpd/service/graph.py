"""Wire pipelines into a graph of live components.

Receivers and exporters are one instance per id, shared by every pipeline
that names them; processors are one instance per pipeline (as in the
Collector), so a batch in the traces pipeline never holds logs. The graph
lists components downstream-first: start in that order, stop in reverse.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from otlpd.component import ComponentID, Consumer, Host, Kind, Settings
from otlpd.config.load import Config
from otlpd.pdata import Signal
from otlpd.service.fanout import fan
from otlpd.telemetry.metrics import Metrics


@dataclass
class Node:
    kind: Kind
    id: ComponentID
    pipeline: str | None  # processors belong to one pipeline
    component: Any  # Component; typed loosely because each kind adds methods

    @property
    def name(self) -> str:
        where = f" in {self.pipeline}" if self.pipeline else ""
        return f"{self.kind.value}/{self.id}{where}"

    @property
    def key(self) -> str:
        base = f"{self.kind.value}:{self.id}"
        return f"{base}@{self.pipeline}" if self.pipeline else base


class Graph:
    def __init__(self, config: Config, metrics: Metrics, host: Host, worker: int | None = None) -> None:
        self.nodes: list[Node] = []  # downstream first; extensions before everything
        self._worker = worker
        # With workers, the supervisor runs the extensions (one health_check port, not N).
        for xid in config.extensions if worker is None else ():
            extension = self._create(config, metrics, Kind.EXTENSION, xid, host)
            self.nodes.append(Node(Kind.EXTENSION, xid, None, extension))
        exporters: dict[ComponentID, Any] = {}
        entries: dict[tuple[ComponentID, Signal], list[Consumer]] = {}
        for pipeline in config.pipelines:
            for eid in pipeline.exporters:
                if eid not in exporters:
                    exporters[eid] = self._create(config, metrics, Kind.EXPORTER, eid)
                    self.nodes.append(Node(Kind.EXPORTER, eid, None, exporters[eid]))
        processor_nodes: list[Node] = []
        for pipeline in config.pipelines:
            consumer: Consumer = fan([exporters[e].consumer(pipeline.signal) for e in pipeline.exporters])
            chain: list[Node] = []
            for pid in reversed(pipeline.processors):
                processor = self._create(
                    config, metrics, Kind.PROCESSOR, pid, pipeline.signal, consumer, pipeline=pipeline.name
                )
                chain.append(Node(Kind.PROCESSOR, pid, pipeline.name, processor))
                consumer = processor
            processor_nodes.extend(chain)  # last processor of a pipeline first
            for rid in pipeline.receivers:
                entries.setdefault((rid, pipeline.signal), []).append(consumer)
        self.nodes.extend(processor_nodes)
        receiver_ids = sorted({rid for p in config.pipelines for rid in p.receivers})
        for rid in receiver_ids:
            consumers = {signal: fan(cs) for (r, signal), cs in entries.items() if r == rid}
            receiver = self._create(config, metrics, Kind.RECEIVER, rid, consumers)
            self.nodes.append(Node(Kind.RECEIVER, rid, None, receiver))

    def _create(
        self, config: Config, metrics: Metrics, kind: Kind, cid: ComponentID, *args: Any, pipeline: str = ""
    ) -> Any:
        spec = config.component(kind, cid)
        return spec.factory.create(Settings(cid, spec.config, metrics, pipeline, self._worker), *args)

    def of_kind(self, kind: Kind) -> Sequence[Node]:
        return [n for n in self.nodes if n.kind is kind]
