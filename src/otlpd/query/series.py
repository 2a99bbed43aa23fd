"""Metric points → time series with one value per step.

Each step ``(t - step, t]`` takes, per series:
- gauge: the last value;
- sum: the last value when cumulative, the total of the deltas when delta;
- histogram and exponential histogram: the distribution of what was
  recorded in the step (cumulative points are differenced against the step
  before; a count that went down is a reset and starts afresh; with no point
  before, only a series that started within the step has a value), as count,
  sum and the quantiles p50/p90/p95/p99, interpolated within buckets the way
  Prometheus' ``histogram_quantile`` does;
- summary: the last point's count, sum and quantiles.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.proto.metrics.v1 import metrics_pb2

from otlpd.store.engine import MetricInfo, PointRow

QUANTILES = (0.5, 0.9, 0.95, 0.99)
CUMULATIVE = 2
MAX_STEPS = 11_000


@dataclass
class Distribution:
    count: float = 0.0
    sum: float = 0.0
    buckets: dict[float, float] = field(default_factory=dict)  # upper bound → count

    def minus(self, before: Distribution) -> Distribution:
        if self.count < before.count:  # the process restarted: what we have is all new
            return self
        return Distribution(
            self.count - before.count,
            self.sum - before.sum,
            {b: c - before.buckets.get(b, 0.0) for b, c in self.buckets.items()},
        )

    def plus(self, other: Distribution) -> Distribution:
        merged = dict(self.buckets)
        for b, c in other.buckets.items():
            merged[b] = merged.get(b, 0.0) + c
        return Distribution(self.count + other.count, self.sum + other.sum, merged)

    def quantile(self, q: float) -> float | None:
        total = sum(self.buckets.values())
        if total <= 0:
            return None
        rank = q * total
        seen = 0.0
        lower = None
        bounds = sorted(self.buckets)
        for i, upper in enumerate(bounds):
            count = self.buckets[upper]
            if count > 0 and seen + count >= rank:
                if math.isinf(upper):  # above the last bound: the best answer is that bound
                    return bounds[i - 1] if i else None
                low = lower if lower is not None else min(0.0, upper)
                return low + (upper - low) * ((rank - seen) / count)
            seen += count
            lower = upper
        return bounds[-1] if not math.isinf(bounds[-1]) else (bounds[-2] if len(bounds) > 1 else None)


def histogram(point: metrics_pb2.HistogramDataPoint) -> Distribution:
    bounds = [*point.explicit_bounds, math.inf]
    buckets: dict[float, float] = {}
    for bound, count in zip(bounds, point.bucket_counts, strict=False):
        buckets[bound] = buckets.get(bound, 0.0) + count
    return Distribution(float(point.count), point.sum, buckets)


def exponential(point: metrics_pb2.ExponentialHistogramDataPoint) -> Distribution:
    """Exponential buckets as upper bounds: index i covers (base^i, base^(i+1)].

    Only buckets that hold something are listed, so each one's lower bound is
    added too (with no count): interpolation within a bucket needs both ends,
    and the bucket before it in the list may be far below.
    """
    base = 2.0 ** (2.0**-point.scale)
    buckets: dict[float, float] = {}

    def power(exponent: int) -> float:
        try:
            return float(base**exponent)
        except OverflowError:
            return math.inf

    def add(lower: float, upper: float, count: int) -> None:
        if math.isfinite(lower) and lower < upper:
            buckets.setdefault(lower, 0.0)
        buckets[upper] = buckets.get(upper, 0.0) + count

    for i, count in enumerate(point.negative.bucket_counts):
        if count:  # index i covers [-base^(i+1), -base^i)
            index = point.negative.offset + i
            add(-power(index + 1), -power(index), count)
    if point.zero_count:
        add(-point.zero_threshold, point.zero_threshold, point.zero_count)
    for i, count in enumerate(point.positive.bucket_counts):
        if count:
            index = point.positive.offset + i
            add(power(index), power(index + 1), count)
    return Distribution(float(point.count), point.sum, buckets)


def _steps(start: int, end: int, step: int) -> list[int]:
    return list(range(start + step, end + step, step)) if step > 0 else []


def series(
    info: MetricInfo, rows: Iterable[PointRow], start: int, end: int, step: int
) -> list[dict[str, Any]]:
    """One entry per series (resource + attributes); ``start`` is exclusive, as is each step's start."""
    grouped: dict[int, list[PointRow]] = {}
    for row in rows:
        grouped.setdefault(row.series_key, []).append(row)
    out = []
    for points in grouped.values():
        first = points[0]
        out.append(
            {
                "serviceName": first.service_name,
                "attributes": json.loads(first.attributes),
                "points": _points(info.type, points, start, end, step),
            }
        )
    return out


def _bucket(time_ns: int, start: int, step: int) -> int:
    """The step a point falls in; -1 for the step before the window (the baseline)."""
    return (time_ns - start - 1) // step if time_ns > start else -1


def _points(kind: str, rows: list[PointRow], start: int, end: int, step: int) -> list[dict[str, Any]]:
    ends = _steps(start, end, step)
    by_step: dict[int, list[PointRow]] = {}
    for row in rows:
        by_step.setdefault(_bucket(row.time_ns, start, step), []).append(row)
    out: list[dict[str, Any]] = []
    if kind in ("gauge", "sum"):
        for i, t in enumerate(ends):
            in_step = by_step.get(i)
            if not in_step:
                continue
            values = [_number(r) for r in in_step]
            delta = kind == "sum" and in_step[-1].temporality != CUMULATIVE
            value = sum(values) if delta else values[-1]
            out.append({"timeUnixNano": str(t), "value": value})
        return out
    if kind == "summary":
        for i, t in enumerate(ends):
            in_step = by_step.get(i)
            if not in_step:
                continue
            p = metrics_pb2.SummaryDataPoint.FromString(in_step[-1].data)
            out.append(
                {
                    "timeUnixNano": str(t),
                    "count": p.count,
                    "sum": p.sum,
                    "quantiles": {_q(v.quantile): v.value for v in p.quantile_values},
                }
            )
        return out
    decode: Any = histogram if kind == "histogram" else exponential
    message = (
        metrics_pb2.HistogramDataPoint if kind == "histogram" else metrics_pb2.ExponentialHistogramDataPoint
    )
    previous: Distribution | None = None
    baseline = by_step.get(-1)
    if baseline and baseline[-1].temporality == CUMULATIVE:
        previous = decode(message.FromString(baseline[-1].data))
    for i, t in enumerate(ends):
        in_step = by_step.get(i)
        if not in_step:
            continue
        dists = [decode(message.FromString(r.data)) for r in in_step]
        if in_step[-1].temporality == CUMULATIVE:
            latest = dists[-1]
            if previous is None and 0 < in_step[-1].start_ns < t - step:
                # Counting began before this step and no earlier point is at hand: what was
                # recorded in this step is unknown (not everything since the start). It is the
                # baseline for the next step.
                previous = latest
                continue
            dist = latest.minus(previous) if previous is not None else latest
            previous = latest
        else:
            dist = Distribution()
            for d in dists:
                dist = dist.plus(d)
        entry: dict[str, Any] = {"timeUnixNano": str(t), "count": dist.count, "sum": dist.sum}
        for q in QUANTILES:
            entry[f"p{round(q * 100)}"] = dist.quantile(q)
        out.append(entry)
    return out


def _number(row: PointRow) -> float:
    p = metrics_pb2.NumberDataPoint.FromString(row.data)
    kind = p.WhichOneof("value")
    return float(getattr(p, kind)) if kind else 0.0


def _q(q: float) -> str:
    return f"{q:g}"
