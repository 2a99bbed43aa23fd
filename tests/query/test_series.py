"""Metric points → one value per step: quantiles from buckets, cumulative differencing, delta sums."""

from __future__ import annotations

import math
from typing import Any

import pytest
from opentelemetry.proto.metrics.v1 import metrics_pb2

from otlpd.query.series import Distribution, exponential, histogram, series
from otlpd.store.engine import MetricInfo, PointRow

S = 1_000_000_000
T0 = 1_800_000_000 * S
CUMULATIVE, DELTA = 2, 1
Buckets = metrics_pb2.ExponentialHistogramDataPoint.Buckets


# -- quantiles ------------------------------------------------------------------


def test_quantile_interpolates_within_the_bucket() -> None:
    # Prometheus' histogram_quantile example: le 0.1: 10, 0.5: 20 (cumulative 30), 1: 10, +Inf: 0
    d = Distribution(40, 0.0, {0.1: 10, 0.5: 20, 1.0: 10, math.inf: 0})
    assert d.quantile(0.25) == pytest.approx(0.1)  # rank 10: the top of the first bucket
    assert d.quantile(0.5) == pytest.approx(0.1 + 0.4 * (10 / 20))
    assert d.quantile(0.75) == pytest.approx(0.5)
    assert d.quantile(0.9) == pytest.approx(0.5 + 0.5 * (6 / 10))
    assert d.quantile(1.0) == pytest.approx(1.0)


def test_quantile_first_bucket_starts_at_zero_or_is_its_bound() -> None:
    assert Distribution(4, 0.0, {10.0: 4, math.inf: 0}).quantile(0.5) == pytest.approx(5.0)
    # a first bound at or below zero: nothing to interpolate from, the bound itself
    assert Distribution(4, 0.0, {-5.0: 4, 0.0: 0}).quantile(0.5) == -5.0


def test_quantile_in_the_overflow_bucket_is_the_last_bound() -> None:
    d = Distribution(10, 0.0, {1.0: 5, 2.0: 0, math.inf: 5})
    assert d.quantile(0.4) == pytest.approx(0.8)
    assert d.quantile(0.9) == 2.0
    assert Distribution(3, 0.0, {math.inf: 3}).quantile(0.5) is None  # no finite bound at all


def test_quantile_of_nothing_is_none() -> None:
    assert Distribution().quantile(0.5) is None
    assert Distribution(0, 0.0, {1.0: 0, math.inf: 0}).quantile(0.99) is None


def test_minus_and_plus() -> None:
    before = Distribution(10, 100.0, {1.0: 4, 5.0: 6, math.inf: 0})
    after = Distribution(15, 130.0, {1.0: 5, 5.0: 8, math.inf: 2})
    assert after.minus(before) == Distribution(5, 30.0, {1.0: 1, 5.0: 2, math.inf: 2})
    reset = Distribution(3, 9.0, {1.0: 3, 5.0: 0, math.inf: 0})
    assert reset.minus(before) is reset  # the count went down: a restart, all of it is new
    assert before.plus(reset) == Distribution(13, 109.0, {1.0: 7, 5.0: 6, math.inf: 0})


def test_histogram_point_buckets() -> None:
    p = metrics_pb2.HistogramDataPoint(count=6, sum=21.0, explicit_bounds=[1, 5], bucket_counts=[1, 2, 3])
    assert histogram(p) == Distribution(6, 21.0, {1.0: 1, 5.0: 2, math.inf: 3})
    # count and sum only (no buckets): no quantiles
    assert histogram(metrics_pb2.HistogramDataPoint(count=2, sum=3.0)).quantile(0.5) is None


def test_exponential_buckets_scale_zero() -> None:
    p = metrics_pb2.ExponentialHistogramDataPoint(
        count=4, sum=10.0, scale=0, positive=Buckets(offset=1, bucket_counts=[1, 3])
    )
    # index 1 covers (2, 4], index 2 covers (4, 8]; each bucket's lower bound is listed too
    assert exponential(p) == Distribution(4, 10.0, {2.0: 0, 4.0: 1, 8.0: 3})
    assert exponential(p).quantile(0.25) == pytest.approx(4.0)
    assert exponential(p).quantile(0.5) == pytest.approx(4 + 4 * (1 / 3))


def test_exponential_sparse_buckets_interpolate_within_their_own_range() -> None:
    # one bucket far above zero: (16, 32]; the median is its middle, not 16
    p = metrics_pb2.ExponentialHistogramDataPoint(
        count=2, scale=0, positive=Buckets(offset=4, bucket_counts=[2])
    )
    assert exponential(p).quantile(0.5) == pytest.approx(24.0)
    # a gap: (1, 2] then (8, 16]
    p = metrics_pb2.ExponentialHistogramDataPoint(
        count=2, scale=0, positive=Buckets(offset=0, bucket_counts=[1, 0, 0, 1])
    )
    assert exponential(p).quantile(0.75) == pytest.approx(12.0)


def test_exponential_scale_one_negative_and_zero_buckets() -> None:
    base = math.sqrt(2)
    p = metrics_pb2.ExponentialHistogramDataPoint(
        count=6,
        scale=1,
        zero_count=2,
        zero_threshold=0.5,
        positive=Buckets(offset=2, bucket_counts=[3]),  # (2, 2√2]
        negative=Buckets(offset=0, bucket_counts=[1]),  # [-√2, -1)
    )
    d = exponential(p)
    bounds = [-base, -1.0, -0.5, 0.5, 2.0, 2 * base]  # base^2 is 2 only to float precision
    assert sorted(d.buckets) == pytest.approx(bounds)
    assert [d.buckets[b] for b in sorted(d.buckets)] == [0, 1, 0, 2, 0, 3]
    assert d.quantile(1 / 6) == pytest.approx(-1.0)
    assert d.quantile(0.5) == pytest.approx(0.5)
    assert d.quantile(0.75) == pytest.approx(2 + (2 * base - 2) * (1.5 / 3))


def test_exponential_zero_bucket_without_threshold() -> None:
    p = metrics_pb2.ExponentialHistogramDataPoint(count=3, zero_count=1, positive=Buckets(bucket_counts=[2]))
    assert exponential(p).buckets == {0.0: 1, 1.0: 0, 2.0: 2}
    assert exponential(p).quantile(1 / 3) == 0.0


def test_exponential_huge_indexes_do_not_overflow() -> None:
    p = metrics_pb2.ExponentialHistogramDataPoint(
        count=1, scale=0, positive=Buckets(offset=5000, bucket_counts=[1])
    )
    assert exponential(p).buckets == {math.inf: 1}
    assert exponential(p).quantile(0.5) is None


# -- series ------------------------------------------------------------------------


def row(
    time_ns: int, data: Any, temporality: int = CUMULATIVE, attrs: str = "{}", key: int = 1, start_ns: int = 0
) -> PointRow:
    return PointRow(key, "svc", attrs, temporality, True, time_ns, start_ns, data.SerializeToString())


def number(value: float | int) -> metrics_pb2.NumberDataPoint:
    p = metrics_pb2.NumberDataPoint()
    if isinstance(value, int):
        p.as_int = value
    else:
        p.as_double = value
    return p


def hist(counts: list[int], total: float) -> metrics_pb2.HistogramDataPoint:
    return metrics_pb2.HistogramDataPoint(
        count=sum(counts), sum=total, explicit_bounds=[10.0, 100.0], bucket_counts=counts
    )


def run(kind: str, rows: list[PointRow], start: int = T0, end: int = T0 + 40 * S, step: int = 10 * S) -> Any:
    out = series(MetricInfo("m", kind, "", ""), rows, start, end, step)
    return [
        {
            **s,
            "points": [{**p, "timeUnixNano": (int(p["timeUnixNano"]) - start) // S} for p in s["points"]],
        }
        for s in out
    ]


def test_gauge_takes_the_last_value_of_each_step() -> None:
    rows = [
        row(T0 + 1 * S, number(1.0)),
        row(T0 + 10 * S, number(2.0)),  # the end of step 1 belongs to it
        row(T0 + 10 * S + 1, number(3)),  # one nanosecond later: step 2 (ints come back as floats)
        row(T0 + 35 * S, number(4.5)),
    ]
    (s,) = run("gauge", rows)
    assert s == {
        "serviceName": "svc",
        "attributes": {},
        "points": [
            {"timeUnixNano": 10, "value": 2.0},
            {"timeUnixNano": 20, "value": 3.0},
            {"timeUnixNano": 40, "value": 4.5},
        ],
    }


def test_points_at_or_before_start_are_not_a_step() -> None:
    (s,) = run("gauge", [row(T0, number(9.0)), row(T0 - 5 * S, number(8.0)), row(T0 + 5 * S, number(1.0))])
    assert s["points"] == [{"timeUnixNano": 10, "value": 1.0}]


def test_cumulative_sum_is_its_last_value_and_delta_sums_add_up() -> None:
    cumulative = [row(T0 + 2 * S, number(5)), row(T0 + 8 * S, number(9)), row(T0 + 15 * S, number(12))]
    (s,) = run("sum", cumulative)
    assert s["points"] == [{"timeUnixNano": 10, "value": 9.0}, {"timeUnixNano": 20, "value": 12.0}]
    delta = [
        row(T0 + 2 * S, number(5), DELTA),
        row(T0 + 8 * S, number(4), DELTA),
        row(T0 + 15 * S, number(1.5), DELTA),
    ]
    (s,) = run("sum", delta)
    assert s["points"] == [{"timeUnixNano": 10, "value": 9.0}, {"timeUnixNano": 20, "value": 1.5}]


def test_series_are_kept_apart() -> None:
    rows = [
        row(T0 + 5 * S, number(1.0), attrs='{"a": "x"}', key=1),
        row(T0 + 5 * S, number(2.0), attrs='{"a": "y"}', key=2),
        row(T0 + 15 * S, number(3.0), attrs='{"a": "x"}', key=1),
    ]
    out = run("gauge", rows)
    assert [(s["attributes"], [p["value"] for p in s["points"]]) for s in out] == [
        ({"a": "x"}, [1.0, 3.0]),
        ({"a": "y"}, [2.0]),
    ]


def hist_points(out: Any) -> list[tuple[int, float, float, float | None]]:
    (s,) = out
    return [(p["timeUnixNano"], p["count"], p["sum"], p["p50"]) for p in s["points"]]


def test_cumulative_histogram_is_differenced_against_the_step_before() -> None:
    rows = [
        row(T0, hist([1, 1, 0], 20.0)),  # the baseline, just before the window
        row(T0 + 10 * S, hist([3, 1, 0], 30.0)),
        row(T0 + 15 * S, hist([3, 2, 0], 80.0)),
        row(T0 + 20 * S, hist([3, 5, 0], 300.0)),  # the last in its step counts
        row(T0 + 30 * S, hist([1, 0, 0], 4.0)),  # reset
        row(T0 + 40 * S, hist([1, 0, 2], 404.0)),
    ]
    out = run("histogram", rows)
    assert hist_points(out) == [
        (10, 2, 10.0, pytest.approx(5.0)),  # [2, 0, 0]
        (20, 4, 270.0, pytest.approx(10 + 90 * (2 / 4))),  # [0, 4, 0]: rank 2 of 4 in (10, 100]
        (30, 1, 4.0, pytest.approx(5.0)),  # after the reset: [1, 0, 0] as is
        (40, 2, 400.0, 100.0),  # [0, 0, 2]: all above the last bound
    ]
    (s,) = out
    assert s["points"][1]["p99"] == pytest.approx(10 + 90 * (3.96 / 4))


def test_cumulative_histogram_without_a_point_before_the_window() -> None:
    # started within the first step: everything it counted was recorded in that step
    out = run("histogram", [row(T0 + 5 * S, hist([4, 0, 0], 8.0), start_ns=T0 + 1)])
    assert hist_points(out) == [(10, 4, 8.0, pytest.approx(5.0))]
    # started before it (an hour ago): unknown for the first step, the baseline for the next
    rows = [
        row(T0 + 5 * S, hist([100, 0, 0], 80.0), start_ns=T0 - 3600 * S),
        row(T0 + 15 * S, hist([103, 0, 0], 86.0), start_ns=T0 - 3600 * S),
    ]
    assert hist_points(run("histogram", rows)) == [(20, 3, 6.0, pytest.approx(5.0))]
    # no start time at all: taken as a new series
    assert hist_points(run("histogram", [row(T0 + 5 * S, hist([4, 0, 0], 8.0))])) == [
        (10, 4, 8.0, pytest.approx(5.0))
    ]


def test_delta_histograms_add_up_within_a_step() -> None:
    rows = [
        row(T0 - 5 * S, hist([9, 9, 9], 999.0), DELTA),  # before the window: not a baseline for deltas
        row(T0 + 2 * S, hist([1, 1, 0], 20.0), DELTA),
        row(T0 + 9 * S, hist([1, 1, 0], 40.0), DELTA),
        row(T0 + 12 * S, hist([0, 0, 1], 500.0), DELTA),
    ]
    out = run("histogram", rows)
    assert hist_points(out) == [(10, 4, 60.0, pytest.approx(10.0)), (20, 1, 500.0, 100.0)]


def test_exponential_histogram_series() -> None:
    def point(counts: list[int]) -> metrics_pb2.ExponentialHistogramDataPoint:
        return metrics_pb2.ExponentialHistogramDataPoint(
            count=sum(counts), sum=1.0, scale=0, positive=Buckets(offset=0, bucket_counts=counts)
        )

    rows = [row(T0 + 10 * S, point([2, 0])), row(T0 + 20 * S, point([2, 4]))]
    out = run("exponential_histogram", rows)
    (s,) = out
    assert [(p["count"], p["p50"]) for p in s["points"]] == [
        (2, pytest.approx(1.5)),  # (1, 2]
        (4, pytest.approx(3.0)),  # the difference: 4 in (2, 4]
    ]


def test_summary_takes_the_last_point() -> None:
    def point(count: int, total: float, median: float) -> metrics_pb2.SummaryDataPoint:
        return metrics_pb2.SummaryDataPoint(
            count=count,
            sum=total,
            quantile_values=[
                metrics_pb2.SummaryDataPoint.ValueAtQuantile(quantile=0.5, value=median),
                metrics_pb2.SummaryDataPoint.ValueAtQuantile(quantile=0.999, value=median * 3),
            ],
        )

    rows = [row(T0 + 3 * S, point(1, 2.0, 2.0)), row(T0 + 7 * S, point(5, 12.0, 2.5))]
    (s,) = run("summary", rows)
    assert s["points"] == [
        {"timeUnixNano": 10, "count": 5, "sum": 12.0, "quantiles": {"0.5": 2.5, "0.999": 7.5}}
    ]


def test_steps_cover_a_range_not_divisible_by_the_step() -> None:
    (s,) = run("gauge", [row(T0 + 44 * S, number(1.0))], end=T0 + 45 * S)
    assert s["points"] == [{"timeUnixNano": 50, "value": 1.0}]
