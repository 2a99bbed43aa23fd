"""``serve --workers N``: a worker whose start hangs cannot hold the supervisor.

The hang is a real one, no test hook: the ``file`` exporter's path is a FIFO
that nobody reads, so opening it for writing blocks the worker's start (as a
dead NFS mount would). The worker never reports ready and never exits.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.process import Otlpd


def file_config(out: Path, **service: Any) -> dict[str, Any]:
    return {
        "receivers": {"otlp": {"protocols": {"grpc": None, "http": None}}},
        "exporters": {"file": {"path": str(out)}},
        "service": {
            "pipelines": {"traces": {"receivers": ["otlp"], "exporters": ["file"]}},
            "workers": 2,
            **service,
        },
    }


def worker_pid(otlpd: Otlpd, index: int, *, other_than: int | None = None, timeout: float = 15.0) -> int:
    """The pid the supervisor reports for worker ``index`` (ready or not)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            _, body = otlpd.health()
        except OSError:  # the supervisor's server is not up yet
            body = {}
        pid = body.get("components", {}).get(f"worker:{index}", {}).get("pid")
        if pid is not None and pid != other_than:
            return int(pid)
        time.sleep(0.05)
    raise TimeoutError(f"no pid for worker {index}:\n{otlpd.logs()}")


def gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def wait_for_event(otlpd: Otlpd, msg: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(e.get("msg") == msg for e in otlpd.log_events()):
            return
        time.sleep(0.05)
    raise TimeoutError(f"no {msg!r} in the log:\n{otlpd.logs()}")


@pytest.fixture
def out(tmp_path: Path) -> Path:
    return tmp_path / "out.json"


def hang(out: Path, worker: int) -> Path:
    fifo = out.with_name(f"out.worker-{worker}.json")  # the file exporter's per-worker path
    fifo.unlink(missing_ok=True)
    os.mkfifo(fifo)
    return fifo


def test_a_worker_that_hangs_on_its_first_start_is_killed_and_stops_otlpd(out: Path) -> None:
    hang(out, 1)
    otlpd = Otlpd(file_config(out, worker_start_timeout="2s"))
    try:
        otlpd.start(wait_ready=False)
        hung = worker_pid(otlpd, 1)
        assert otlpd.proc is not None
        assert otlpd.proc.wait(30) == 1
        events = otlpd.log_events()
    finally:
        otlpd.__exit__(None, None, None)
    assert gone(hung)
    why = "worker 1 did not start within 2s (service.worker_start_timeout); killed it"
    errors = [e for e in events if e.get("level") == "error"]
    assert [e["msg"] for e in errors] == [why, why]  # when it happens, and as the reason for exit 1
    assert errors[0]["pid"] == hung


def test_a_restarted_worker_that_hangs_is_killed_and_restarted_again(out: Path) -> None:
    with Otlpd(file_config(out, worker_start_timeout="2s")) as otlpd:
        first = worker_pid(otlpd, 0)
        fifo = hang(out, 0)
        os.kill(first, signal.SIGKILL)
        hung = worker_pid(otlpd, 0, other_than=first)
        wait_for_event(otlpd, "worker 0 did not start within 2s (service.worker_start_timeout); killed it")
        assert gone(hung)
        fifo.unlink()  # whatever hung is fixed: the next restart comes up
        third = worker_pid(otlpd, 0, other_than=hung, timeout=20)
        otlpd.wait_ready(timeout=20)
        assert third not in (first, hung)
        assert otlpd.metric("otlpd_worker_restarts_total") == 2
        assert otlpd.proc is not None
        assert otlpd.proc.poll() is None
        assert otlpd.terminate() == 0


def test_sigterm_during_a_hung_start_stops_within_the_shutdown_timeout(out: Path) -> None:
    hang(out, 1)
    otlpd = Otlpd(file_config(out, shutdown_timeout="1s"))  # the default 60s start timeout
    try:
        otlpd.start(wait_ready=False)
        hung = worker_pid(otlpd, 1)
        wait_for_event(otlpd, "otlpd is ready")  # worker 0 is up; worker 1 is stuck in its start
        time.sleep(0.5)
        started = time.monotonic()
        assert otlpd.terminate(timeout=30) == 1  # the hung worker had to be killed
        assert time.monotonic() - started < 20
        events = otlpd.log_events()
    finally:
        otlpd.__exit__(None, None, None)
    assert gone(hung)
    assert any(e.get("msg") == "workers did not stop in time; killing them" for e in events)
