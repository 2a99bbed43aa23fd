"""``bench.store`` as a smoke test: ingest through a real otlpd, a small database, timed queries.

Not a measurement (the numbers are whatever this machine gives under test
load); it proves the harness works and that nothing is lost on the way in.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_store_bench_runs_and_reports(tmp_path: Path) -> None:
    argv = [
        sys.executable,
        "-m",
        "bench.store",
        "--spans",
        "20000",
        "--ingest-seconds",
        "2",
        "--ingest-rounds",
        "2",
    ]
    argv += ["--lookups", "8", "--out", str(tmp_path)]
    proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"bench.store failed:\n{proc.stdout}\n{proc.stderr}"
    [result_file] = tmp_path.glob("store-*.json")
    result = json.loads(result_file.read_text())
    ingest, queries = result["ingest"], result["queries"]
    assert ingest["accepted"] > 0
    assert ingest["stored_after_shutdown"] == ingest["accepted"]  # nothing lost across shutdown
    assert ingest["lost"] == 0  # in either run
    assert len(ingest["rounds"]) == 2
    assert queries["spans"] == 20000
    assert queries["trace_by_id"]["n"] == 8
    assert "| trace by id |" in result_file.with_suffix(".md").read_text()
