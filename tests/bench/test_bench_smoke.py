"""The benchmark harness as a smoke test: it starts, sends, reports.

Not a measurement: ``--quick`` runs one short round so ``make test`` only
proves the harness works end to end (sink, collectors, load generator, the
report files). Throughput targets are never asserted here.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from bench.run import rotel_binary

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ("traces-grpc", "traces-http")


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("bench")
    collectors = "otlpd,rotel" if rotel_binary() is not None else "otlpd"
    argv = [sys.executable, "-m", "bench.run", "--quick", "--scenarios", ",".join(SCENARIOS)]
    argv += ["--collectors", collectors, "--out", str(out)]
    proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=90)
    assert proc.returncode == 0, f"bench.run failed:\n{proc.stdout}\n{proc.stderr}"
    files = sorted(out.glob("*.json"))
    assert len(files) == 1, list(out.iterdir())
    md = files[0].with_suffix(".md")
    assert md.exists()
    assert "| traces-grpc | otlpd |" in md.read_text()
    result: dict[str, Any] = json.loads(files[0].read_text())
    return result


def _median(report: dict[str, Any], scenario: str, collector: str) -> dict[str, Any]:
    by_name = {s["name"]: s for s in report["scenarios"]}
    assert scenario in by_name
    assert collector in by_name[scenario]["collectors"], f"{collector} did not run {scenario}"
    median: dict[str, Any] = by_name[scenario]["collectors"][collector]["median"]
    return median


def test_report_has_machine_and_targets(report: dict[str, Any]) -> None:
    for key in ("nproc", "cpu_model", "python", "otlpd", "rotel"):
        assert key in report["machine"]
    assert {"started", "settings", "scenarios", "targets"} <= set(report)
    assert [s["name"] for s in report["scenarios"]] == list(SCENARIOS)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_otlpd_accepts_and_delivers(report: dict[str, Any], scenario: str) -> None:
    m = _median(report, scenario, "otlpd")
    for key in ("items_per_s", "cpu_util", "cpu_s_per_m_items", "items_per_cpu_s", "peak_rss_mb"):
        assert m[key] > 0, key
    assert m["latency_p99_ms"] >= m["latency_p50_ms"] > 0
    assert m["delivered_ratio_min"] > 0  # what reached the null sink; 100 % is for the real run to show


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_rotel_accepts_and_delivers(report: dict[str, Any], scenario: str) -> None:
    if rotel_binary() is None:
        pytest.skip("rotel-agent is not installed (pip install --pre rotel): no comparison run")
    m = _median(report, scenario, "rotel")
    assert m["items_per_s"] > 0
    assert m["items_per_cpu_s"] > 0
    ratio = next(s for s in report["scenarios"] if s["name"] == scenario)["ratio"]
    assert ratio is not None
    assert ratio > 0


# --- otlpd --workers 1 vs 2 (the workers scenarios) ------------------------------------------

WORKERS_SCENARIOS = ("workers-grpc", "workers-http")


@pytest.fixture(scope="module")
def workers_report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("bench-workers")
    # --no-pin: only the runs on all cores (the pinned pair would double the time); ~13 s
    argv = [sys.executable, "-m", "bench.run", "--quick", "--no-pin", "--scenarios", "workers"]
    argv += ["--out", str(out)]
    proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=90)
    assert proc.returncode == 0, f"bench.run failed:\n{proc.stdout}\n{proc.stderr}"
    files = sorted(out.glob("*.json"))
    assert len(files) == 1, list(out.iterdir())
    md = files[0].with_suffix(".md").read_text()
    assert "| workers-grpc | 2 |" in md
    assert "| workers-http | 1 |" in md
    result: dict[str, Any] = json.loads(files[0].read_text())
    return result


def test_workers_alias_runs_both_transports(workers_report: dict[str, Any]) -> None:
    assert [s["name"] for s in workers_report["scenarios"]] == list(WORKERS_SCENARIOS)
    for sc in workers_report["scenarios"]:
        assert list(sc["collectors"]) == ["workers=1", "workers=2"]


@pytest.mark.parametrize("scenario", WORKERS_SCENARIOS)
@pytest.mark.parametrize("workers", [1, 2])
def test_workers_run_reads_every_worker(workers_report: dict[str, Any], scenario: str, workers: int) -> None:
    m = _median(workers_report, scenario, f"workers={workers}")
    assert m["items_per_s"] > 0
    assert m["items_per_cpu_s"] > 0
    assert m["capacity_items_per_s"] > 0
    assert m["delivered_ratio_min"] > 0
    (cpu,) = m["worker_cpu_util"]  # one round
    (conns,) = m["worker_connections"]
    assert len(cpu) == len(conns) == workers  # every worker found, its CPU and connections read
    assert sum(conns) >= 1
    assert m["worker_restarts"] == 0
    # otlpd's merged /metrics equal the sum of the workers' own, and both what the load generator
    # was told and what the sink received
    assert m["metrics_mismatches"] == []
    assert m["log_problems"] == []


@pytest.mark.parametrize("scenario", WORKERS_SCENARIOS)
def test_workers_scaling_is_reported(workers_report: dict[str, Any], scenario: str) -> None:
    sc = next(s for s in workers_report["scenarios"] if s["name"] == scenario)
    for key in ("measured", "capacity", "capacity_conns"):
        assert sc["scaling"][key] > 0, key
    targets = [t["target"] for t in workers_report["targets"]]
    assert any(t.startswith(f"{scenario}: 2 workers") for t in targets)
