"""bench.ab as a smoke test: two otlpd builds start, take turns under load, and are reported.

Not a measurement (``--quick --no-pin``): it proves the A/B harness works end
to end, never which build is faster.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_ab_runs_both_builds_in_turns_and_reports_the_ratio() -> None:
    argv = [sys.executable, "-m", "bench.ab", "--quick", "--no-pin", "--b-env", "OTLPD_LOG_LEVEL=warn"]
    proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=110)
    assert proc.returncode == 0, f"bench.ab failed:\n{proc.stdout}\n{proc.stderr}"
    slices = [line for line in proc.stdout.splitlines() if line.startswith("slice ")]
    assert len(slices) == 2, proc.stdout
    total = re.search(r"^A ([\d,]+)  B ([\d,]+) items/cpu-s   B/A (\d+\.\d+)", proc.stdout, re.MULTILINE)
    assert total is not None, proc.stdout
    a, b = (int(total.group(i).replace(",", "")) for i in (1, 2))
    assert a > 0
    assert b > 0
