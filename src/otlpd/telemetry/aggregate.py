"""Merge Prometheus expositions from worker processes into one.

Series with the same name and labels are combined: counters, histograms and
most gauges add up (requests, items, queue sizes, memory, CPU of all workers);
a few gauges are states where the minimum or maximum is the truthful answer
(ready only if every worker is ready).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

_MIN = frozenset({"otlpd_ready", "otlpd_component_up", "process_start_time_seconds"})
_MAX = frozenset({"otlpd_build_info", "python_info", "process_max_fds"})


def merge(expositions: Iterable[str]) -> bytes:
    families: dict[str, tuple[str, str]] = {}  # name -> (type, help)
    values: dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]] = {}
    for text in expositions:
        for family in text_string_to_metric_families(text):
            families.setdefault(family.name, (family.type, family.documentation))
            series = values.setdefault(family.name, {})
            for sample in family.samples:
                key = (sample.name, tuple(sorted(sample.labels.items())))
                series[key] = _combine(family.name, series.get(key), sample.value)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Merged(families, values))
    return bytes(generate_latest(registry))


def _combine(family: str, old: float | None, new: float) -> float:
    if old is None:
        return new
    if family in _MIN:
        return min(old, new)
    if family in _MAX:
        return max(old, new)
    return old + new


class _Merged:
    def __init__(
        self,
        families: dict[str, tuple[str, str]],
        values: dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]],
    ) -> None:
        self._families = families
        self._values = values

    def collect(self) -> Iterator[Any]:
        for name, (typ, documentation) in self._families.items():
            metric = Metric(name, documentation, typ)
            for (sample, labels), value in self._values[name].items():
                metric.add_sample(sample, dict(labels), value)
            yield metric
