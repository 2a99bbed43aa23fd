"""What the store was sent survives SIGTERM and a restart: committed data, and data still buffered."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from otlpd.pdata import Signal
from tests.e2e import sdk
from tests.store.support import SECOND, get, ok, post, span, store_config, traces_request, wait_until
from tests.support.process import Otlpd


def counts(admin: str, run: str) -> tuple[int, int, int]:
    """Spans, log records and metrics of one SDK run (the resource attribute ``run``) that can be read."""
    traces = ok(admin, "/api/v1/traces", {"attr.run": run, "limit": 1000})["traces"]
    logs = [
        r
        for r in ok(admin, "/api/v1/logs", {"limit": 1000})["logs"]
        if r["resource"]["attributes"]["run"] == run
    ]
    metrics = [m for m in ok(admin, "/api/v1/metrics")["metrics"] if m["name"].startswith(f"{run}.")]
    return sum(t["spanCount"] for t in traces), len(logs), len(metrics)


@pytest.mark.timeout(90)
def test_data_survives_sigterm_and_restart_including_what_was_not_yet_committed(tmp_path: Path) -> None:
    db = str(tmp_path / "otlpd.duckdb")
    t0 = time.time_ns() - 60 * SECOND

    # 1. commits every 200 ms: data is queryable while running
    with Otlpd(store_config(db)) as otlpd:
        for signal in Signal:
            sdk.SENDERS[signal](sdk.exporter(signal, "grpc", otlpd.grpc_endpoint), "committed")
        wait_until(lambda: counts(otlpd.admin, "committed") == (5, 4, 3))
        assert otlpd.terminate() == 0

    # 2. commits only every hour: what arrives stays in memory until the shutdown commits it
    with Otlpd(store_config(db, flush_interval="1h")) as otlpd:
        assert counts(otlpd.admin, "committed") == (5, 4, 3)  # from the first run
        for signal in Signal:
            sdk.SENDERS[signal](sdk.exporter(signal, "http", otlpd.http_endpoint), "buffered")
        trace_id = bytes.fromhex("0af7651916cd43dd8448eb211c80319c")
        request = traces_request("late", [span(trace_id, b"\x01" * 8, "last words", t0, t0 + 1)])
        assert post(otlpd.http_endpoint, "traces", request) == 200
        # accepted by the pipeline, and written to the store's buffer: not yet committed
        wait_until(
            lambda: otlpd.metric("otlpd_exporter_sent_items_total", exporter="store", signal="traces") == 6
        )
        assert counts(otlpd.admin, "buffered") == (0, 0, 0)
        assert get(otlpd.admin, f"/api/v1/traces/{trace_id.hex()}")[0] == 404
        # the last request straight before SIGTERM: still in the batch processor
        final = traces_request(
            "late", [span(trace_id, b"\x02" * 8, "very last", t0 + 2, t0 + 3, parent=b"\x01" * 8)]
        )
        assert post(otlpd.http_endpoint, "traces", final) == 200
        assert otlpd.terminate() == 0

    # 3. a third start on the same file: everything is there, once
    with Otlpd(store_config(db)) as otlpd:
        admin = otlpd.admin
        assert counts(admin, "committed") == (5, 4, 3)
        assert counts(admin, "buffered") == (5, 4, 3)
        spans = ok(admin, f"/api/v1/traces/{trace_id.hex()}")["spans"]
        assert [s["name"] for s in spans] == ["last words", "very last"]
        assert ok(admin, "/api/v1/services") == {"services": ["late", "otlpd-e2e"]}
        (requests,) = [
            s for s in ok(admin, "/api/v1/metrics/buffered.requests/series", {"attr.route": "/a"})["series"]
        ]
        assert [p["value"] for p in requests["points"]] == [8.0]
        assert otlpd.terminate() == 0
