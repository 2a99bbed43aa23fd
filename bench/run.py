"""Side-by-side benchmark: otlpd and rotel on the same scenarios, A B A B.

For each scenario and round, and for each collector in turn:

1. start the null sink (:mod:`bench.sink`) on the load core;
2. start the collector pinned to the collector core (``taskset``), receiving
   OTLP on loopback and exporting OTLP/gRPC to the sink with its default
   batching;
3. run the load generator (:mod:`bench.loadgen`) on the load core: warm-up,
   then a measurement window; the collector's CPU time (``/proc``, whole
   process tree, user + system) is read when the window opens and closes;
   its resident memory is sampled throughout;
4. wait for the sink to have received everything the collector accepted;
   stop the collector and the sink.

Reported per collector (median over rounds): accepted items/s, collector CPU
utilisation (CPU-seconds per wall-second: ~1.0 means the collector's core was
saturated), CPU-seconds per million items, items per CPU-second, peak RSS,
request latency p50/p99, delivered/accepted, refusals; and the otlpd/rotel
ratio of items per CPU-second, which is the number this benchmark is about.
Before each run the runner waits (up to 30 s) for a quiet machine.

The workers scenarios (``--scenarios workers``) run otlpd alone, ``--workers 1``
and ``--workers 2`` alternating, once with nothing pinned (collector, load
generator and sink share every core) and once pinned as above (2 workers then
share the collector's core), and report per worker CPU, connections and items,
the load generator's and any other job's CPU, and the 2-vs-1 ratio of
throughput: measured, and estimated for one core per worker
(docs/performance.md, "Workers").

    python -m bench.run                       # the standard scenarios (~6 min)
    python -m bench.run --scenarios workers   # otlpd --workers 1 vs 2 (~4 min)
    python -m bench.run --quick --scenarios traces-grpc
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib.metadata
import json
import os
import platform
import queue
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bench.procfs import (
    RssSampler,
    connections_on,
    cpu_seconds,
    hwm_bytes,
    listening_ports,
    machine_busy_seconds,
    rss_bytes,
    tcp_sockets,
)

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
MB = 1024 * 1024


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    signal: str = "traces"
    transport: str = "grpc"  # how the load reaches the collector
    compression: str = "none"  # client → collector and collector → sink
    resources: int = 5
    items: int = 500
    attributes: int = 8
    concurrency: int = 32  # requests in flight
    connections: int = 4  # gRPC connections they share (HTTP/1.1: one per request in flight)
    idle: bool = False
    target_ratio: float | None = None  # otlpd/rotel items per CPU-second the issue asks for
    workers: tuple[int, ...] = ()  # set: otlpd alone, --workers 1 vs 2, on all cores (and pinned)
    assign: str = "rotate"  # gRPC load: request → channel (bench.loadgen --assign)


SCENARIOS: list[Scenario] = [
    Scenario(
        "traces-grpc",
        "traces, OTLP/gRPC in → batch → OTLP/gRPC out, no compression",
        target_ratio=3.0,
    ),
    Scenario(
        "traces-grpc-gzip",
        "traces, OTLP/gRPC in → batch → OTLP/gRPC out, gzip on both sides",
        compression="gzip",
        target_ratio=1.5,
    ),
    Scenario(
        "traces-http",
        "traces, OTLP/HTTP protobuf in → batch → OTLP/gRPC out, no compression",
        transport="http",
        target_ratio=1.5,
    ),
    Scenario(
        "logs-grpc",
        "logs, OTLP/gRPC in → batch → OTLP/gRPC out, no compression",
        signal="logs",
        attributes=5,
        target_ratio=1.5,
    ),
    Scenario(
        "metrics-grpc",
        "metrics (gauges, sums, histograms), OTLP/gRPC in → batch → OTLP/gRPC out",
        signal="metrics",
        attributes=6,
        target_ratio=1.5,
    ),
    Scenario("idle", "started, no traffic: memory and CPU at rest", idle=True),
    Scenario(
        "workers-grpc",
        "traces, OTLP/gRPC over 8 connections → otlpd --workers 1 | 2 → OTLP/gRPC out",
        connections=8,
        assign="fixed",
        workers=(1, 2),
    ),
    Scenario(
        "workers-http",
        "traces, OTLP/HTTP protobuf over 32 connections → otlpd --workers 1 | 2 → OTLP/gRPC out",
        transport="http",
        workers=(1, 2),
    ),
]
SCENARIO_BY_NAME = {s.name: s for s in SCENARIOS}
ALIASES = {"workers": [s.name for s in SCENARIOS if s.workers]}
# the workers scenarios (~4 min) are not in the default run: with them it would take ~10 min
DEFAULT_SCENARIOS = [s.name for s in SCENARIOS if not s.workers]

WORKERS_TARGET = 1.7  # 2 workers deliver ≥ 1.7x the throughput of 1 worker

IDLE_RSS_TARGET_MB = 80
PEAK_RSS_TARGET_MB = 250


@dataclass
class Settings:
    seconds: float = 10.0
    warmup: float = 3.0
    rounds: int = 2
    idle_seconds: float = 10.0
    collectors: tuple[str, ...] = ("otlpd", "rotel")
    collector_core: int | None = 0
    load_core: int | None = 1
    all_cpus: str | None = None  # the workers scenarios run everything here ("0,1"); None: inherit
    quiet_below: float = 0.3  # before each run, wait until the machine's other load is under this many cores
    quiet_timeout: float = 30.0  # ... for at most this long (0: do not wait)
    quick: bool = False
    drain_timeout: float = 10.0
    profile_dir: str = ""  # py-spy profiles of otlpd go here when set
    profile_native: bool = False  # py-spy --native: C frames (gRPC core, upb) too


# ---------------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pinned(cpus: int | str | None, argv: list[str]) -> list[str]:
    """``argv`` under ``taskset -c cpus`` (a core or a list such as "0,1"); None: as it is."""
    if cpus is None:
        return argv
    return ["taskset", "-c", str(cpus), *argv]


class _Procs:
    """Every child this run started, so all of them end on exit, Ctrl-C or error."""

    def __init__(self) -> None:
        self.live: list[subprocess.Popen[bytes]] = []

    def start(self, argv: list[str], **kw: Any) -> subprocess.Popen[bytes]:
        proc: subprocess.Popen[bytes] = subprocess.Popen(argv, **kw)
        self.live.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[bytes], timeout: float = 10.0) -> int | None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        if proc in self.live:
            self.live.remove(proc)
        return proc.returncode

    def stop_all(self) -> None:
        for proc in list(self.live):
            with contextlib.suppress(Exception):
                self.stop(proc, timeout=5)


PROCS = _Procs()


def _wait_port(proc: subprocess.Popen[bytes], port: int, timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}:\n{_tail(log)}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"{what} not listening on {port} after {timeout}s:\n{_tail(log)}")


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


class Sink:
    def __init__(self, workdir: Path, core: int | str | None) -> None:
        self.log = workdir / "sink.log"
        self._err = open(self.log, "wb")  # noqa: SIM115
        self.proc = PROCS.start(
            _pinned(core, [sys.executable, "-m", "bench.sink"]),
            stdout=subprocess.PIPE,
            stderr=self._err,
            cwd=ROOT,
        )
        assert self.proc.stdout is not None
        line = _readline(self.proc.stdout, 15.0)
        if not line:
            raise RuntimeError(f"sink did not start:\n{_tail(self.log)}")
        ports = json.loads(line)
        self.grpc_port: int = ports["grpc_port"]
        self.http_port: int = ports["http_port"]

    def stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/stats", timeout=5) as resp:
            return dict(json.loads(resp.read()))

    def stop(self) -> None:
        PROCS.stop(self.proc)
        self._err.close()


def _readline(stream: Any, timeout: float) -> bytes:
    """One line from a pipe, or b"" after ``timeout`` seconds."""
    out: queue.Queue[bytes] = queue.Queue()
    threading.Thread(target=lambda: out.put(stream.readline()), daemon=True).start()
    try:
        return out.get(timeout=timeout)
    except queue.Empty:
        return b""


class Collector:
    name = ""

    def __init__(self, workdir: Path, core: int | str | None) -> None:
        self.workdir = workdir
        self.core = core
        self.grpc_port = free_port()
        self.http_port = free_port()
        self.log = workdir / f"{self.name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def endpoint(self, transport: str) -> str:
        return f"127.0.0.1:{self.grpc_port if transport == 'grpc' else self.http_port}"

    def start(self, sink_port: int, compression: str) -> None:
        raise NotImplementedError

    def counters(self) -> dict[str, float]:
        return {}

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        return PROCS.stop(self.proc, timeout=15)

    @staticmethod
    def version() -> str:
        raise NotImplementedError


class Otlpd(Collector):
    name = "otlpd"
    command: list[str] = [sys.executable, "-m", "otlpd"]  # --otlpd-command: another build or venv
    workers: int | None = None  # --workers N; None: not passed (otlpd's default)

    def start(self, sink_port: int, compression: str) -> None:
        self.admin_port = free_port()
        pipelines = {
            signal: {"receivers": ["otlp"], "processors": ["batch"], "exporters": ["otlp"]}
            for signal in ("traces", "metrics", "logs")
        }
        config = {
            "receivers": {
                "otlp": {
                    "protocols": {
                        "grpc": {"endpoint": f"127.0.0.1:{self.grpc_port}"},
                        "http": {"endpoint": f"127.0.0.1:{self.http_port}"},
                    }
                }
            },
            "processors": {"batch": {}},
            "exporters": {
                "otlp": {
                    "endpoint": f"http://127.0.0.1:{sink_port}",
                    "tls": {"insecure": True},
                    "compression": compression,
                }
            },
            "service": {"pipelines": pipelines},
        }
        path = self.workdir / "otlpd.yaml"
        path.write_text(yaml.safe_dump(config))
        env = {
            **os.environ,
            "OTLPD_HTTP_ENDPOINT": f"127.0.0.1:{self.admin_port}",
            "OTLPD_LOG_FORMAT": "json",
        }
        argv = [*self.command, "serve", "--config", str(path)]
        if self.workers is not None:
            argv += ["--workers", str(self.workers)]
        with open(self.log, "wb") as log:
            self.proc = PROCS.start(
                _pinned(self.core, argv),
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"otlpd exited with {self.proc.returncode}:\n{_tail(self.log)}")
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{self.admin_port}/health/ready", timeout=1
                ) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise TimeoutError(f"otlpd not ready after 30s:\n{_tail(self.log)}")

    def counters(self, port: int | None = None) -> dict[str, float]:
        """otlpd's item counters from /metrics: the supervisor's merged ones, or one worker's (port)."""
        from prometheus_client.parser import text_string_to_metric_families

        url = f"http://127.0.0.1:{port or self.admin_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as resp:
            text = resp.read().decode()
        wanted = {
            "otlpd_receiver_accepted_items_total": "accepted",
            "otlpd_receiver_refused_items_total": "refused",
            "otlpd_exporter_sent_items_total": "sent",
            "otlpd_exporter_enqueue_failed_items_total": "enqueue_failed",
            "otlpd_exporter_dropped_items_total": "exporter_dropped",
            "otlpd_processor_dropped_items_total": "processor_dropped",
            "otlpd_worker_restarts_total": "worker_restarts",
            "otlpd_workers_ready": "workers_ready",
        }
        out = dict.fromkeys(wanted.values(), 0.0)
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name in wanted:
                    out[wanted[sample.name]] += sample.value
        return out

    def worker_pids(self) -> list[int]:
        """The worker processes' pids, in worker order (the supervisor's /health/ready); [] for one."""
        if not self.workers or self.workers < 2:
            return []
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.admin_port}/health/ready", timeout=5
            ) as resp:
                body = json.loads(resp.read())
        except (OSError, ValueError):
            return []
        found = {
            int(c["id"]): int(c["pid"])
            for c in body.get("components", {}).values()
            if c.get("kind") == "worker" and c.get("pid")
        }
        return [found[i] for i in sorted(found)]

    def worker_counters(self, pid: int) -> dict[str, float]:
        """One worker's own counters, from its private admin port (found in /proc: its one listener
        that is not a receiver port)."""
        ports = listening_ports(pid) - {self.grpc_port, self.http_port}
        for port in sorted(ports):
            with contextlib.suppress(OSError, ValueError):
                return self.counters(port)
        return {}

    def log_problems(self) -> list[str]:
        """Warning and error events in otlpd's log (JSON lines; workers' carry "worker")."""
        out: list[str] = []
        with contextlib.suppress(OSError):
            for line in self.log.read_text(errors="replace").splitlines():
                try:
                    event = json.loads(line)
                except ValueError:
                    if line.strip():
                        out.append(line.strip()[:200])  # not ours: a traceback, a crash
                    continue
                if isinstance(event, dict) and event.get("level") in ("warning", "error", "critical"):
                    worker = f"worker {event['worker']}: " if "worker" in event else ""
                    out.append(f"{event.get('level')}: {worker}{event.get('msg', '')}")
        return out

    @staticmethod
    def version() -> str:
        return importlib.metadata.version("otlpd")


def rotel_binary() -> Path | None:
    try:
        import rotel
    except ImportError:
        return None
    binary = Path(os.path.dirname(rotel.__file__)) / "rotel-agent"
    return binary if binary.is_file() and os.access(binary, os.X_OK) else None


class Rotel(Collector):
    name = "rotel"

    def start(self, sink_port: int, compression: str) -> None:
        binary = rotel_binary()
        if binary is None:
            raise RuntimeError(
                "rotel is not installed (pip install --pre rotel): no rotel-agent to compare with"
            )
        argv = [
            str(binary), "start",
            "--pid-file", str(self.workdir / "rotel.pid"),
            "--log-file", str(self.workdir / "rotel-own.log"),
            "--otlp-grpc-endpoint", f"127.0.0.1:{self.grpc_port}",
            "--otlp-http-endpoint", f"127.0.0.1:{self.http_port}",
            "--exporter", "otlp",
            "--otlp-exporter-endpoint", f"http://127.0.0.1:{sink_port}",
            "--otlp-exporter-protocol", "grpc",
            "--otlp-exporter-compression", compression,
        ]  # fmt: skip
        with open(self.log, "wb") as log:
            self.proc = PROCS.start(_pinned(self.core, argv), stdout=log, stderr=subprocess.STDOUT)
        for port in (self.grpc_port, self.http_port):
            _wait_port(self.proc, port, 15, "rotel-agent", self.log)

    @staticmethod
    def version() -> str:
        binary = rotel_binary()
        if binary is None:
            return "not installed"
        out = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=10)
        pkg = importlib.metadata.version("rotel")
        return f"{out.stdout.strip()} (PyPI rotel {pkg})"


COLLECTORS: dict[str, type[Collector]] = {"otlpd": Otlpd, "rotel": Rotel}

# ---------------------------------------------------------------------------- one run


@dataclass
class RunResult:
    collector: str
    round: int
    wall_seconds: float = 0.0
    cpu_seconds: float = 0.0
    cpu_util: float = 0.0
    items: int = 0
    items_per_s: float = 0.0
    cpu_s_per_m_items: float = 0.0
    items_per_cpu_s: float = 0.0
    peak_rss_mb: float = 0.0
    rss_end_mb: float = 0.0
    latency_p50_ms: float = 0.0
    latency_p99_ms: float = 0.0
    requests: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    rejected_items: int = 0
    accepted_items_total: int = 0
    delivered_items: int = 0
    delivered_ratio: float = 0.0
    collector_counters: dict[str, float] = field(default_factory=dict)
    request_bytes: int = 0
    load_cpu_util: float = 0.0  # load generator + sink CPU-s per wall-s
    profile: str = ""
    # the workers scenarios
    workers: int = 0  # otlpd --workers
    pinned: bool = False  # the workers scenarios: collector on the collector core (else all cores)
    sink_cpu_util: float = 0.0  # the sink's part of load_cpu_util
    machine_cpu_util: float = 0.0  # busy CPU-s of the whole machine per wall-s (max = cores)
    other_cpu_util: float = 0.0  # machine less collector, load generator, sink and this runner
    background_cpu_util: float = 0.0  # the machine's busy cores in the second before the run started
    worker_cpu_util: list[float] = field(default_factory=list)  # per worker process tree, in the window
    supervisor_cpu_util: float = 0.0  # the supervisor process alone
    worker_connections: list[int] = field(default_factory=list)  # established on the receiver port
    worker_accepted: list[int] = field(default_factory=list)  # each worker's own accepted-items counter
    worker_pids_changed: bool = False  # a worker was replaced during the run
    capacity_items_per_s: float = 0.0  # estimate: workers x items per CPU-s (one busy core per worker)
    capacity_conns_items_per_s: float = 0.0  # estimate: the same if every connection carried equal load
    log_problems: list[str] = field(default_factory=list)  # warnings/errors in otlpd's log


def _loadgen_argv(scenario: Scenario, endpoint: str, settings: Settings) -> list[str]:
    return [
        sys.executable, "-m", "bench.loadgen",
        "--endpoint", endpoint,
        "--signal", scenario.signal,
        "--transport", scenario.transport,
        "--compression", scenario.compression,
        "--resources", str(scenario.resources),
        "--items", str(scenario.items),
        "--attributes", str(scenario.attributes),
        "--concurrency", str(scenario.concurrency if not settings.quick else min(4, scenario.concurrency)),
        "--connections", str(scenario.connections),
        "--assign", scenario.assign,
        "--warmup", str(settings.warmup),
        "--seconds", str(settings.seconds),
    ]  # fmt: skip


def _py_spy() -> str | None:
    here = Path(sys.executable).parent / "py-spy"
    return str(here) if here.exists() else shutil.which("py-spy")


def run_once(
    scenario: Scenario,
    name: str,
    rnd: int,
    settings: Settings,
    workdir: Path,
    workers: int | None = None,
    pinned: bool = False,
) -> RunResult:
    """One collector, one scenario, one round. ``workers``: otlpd --workers N, and everything on all
    cores unless ``pinned`` (then the collector on its core, load and sink on theirs, as usual)."""
    result = RunResult(collector=name, round=rnd, workers=workers or 0, pinned=pinned)
    result.background_cpu_util = _wait_quiet(settings)
    collector_cpus: int | str | None = settings.collector_core
    load_cpus: int | str | None = settings.load_core
    if workers is not None and not pinned:  # collector, load and sink share every core
        collector_cpus = load_cpus = settings.all_cpus
    sink = Sink(workdir, load_cpus)
    collector = COLLECTORS[name](workdir, collector_cpus)
    if workers is not None:
        assert isinstance(collector, Otlpd)
        collector.workers = workers
    try:
        collector.start(sink.grpc_port, scenario.compression)
        with RssSampler(collector.pid, interval=0.2) as rss:
            if scenario.idle:
                time.sleep(settings.warmup)
                cpu0, t0 = cpu_seconds(collector.pid), time.monotonic()
                time.sleep(settings.idle_seconds)
                cpu1, t1 = cpu_seconds(collector.pid), time.monotonic()
            else:
                cpu0, t0, cpu1, t1, lg = _drive(
                    scenario, collector, sink, settings, load_cpus, workdir, result
                )
                result.items = int(lg["window_items"])
                result.requests = int(lg["requests"])
                result.errors = dict(lg["errors"])
                result.rejected_items = int(lg["rejected_items"])
                result.accepted_items_total = int(lg["items_ok"])
                result.latency_p50_ms = float(lg["latency_p50_ms"])
                result.latency_p99_ms = float(lg["latency_p99_ms"])
                result.request_bytes = int(lg["request_bytes"])
                result.delivered_items = _drain(sink, scenario.signal, result.accepted_items_total, settings)
                result.delivered_ratio = (
                    result.delivered_items / result.accepted_items_total
                    if result.accepted_items_total
                    else 0.0
                )
            result.rss_end_mb = rss_bytes(collector.pid) / MB
            result.peak_rss_mb = max(rss.peak, hwm_bytes(collector.pid)) / MB
        result.collector_counters = collector.counters()
        if isinstance(collector, Otlpd) and workers is not None:
            pids = collector.worker_pids() or [collector.pid]
            result.worker_pids_changed = result.worker_pids_changed or len(pids) != workers
            if workers > 1:
                result.worker_accepted = [int(collector.worker_counters(p).get("accepted", 0)) for p in pids]
            else:
                result.worker_accepted = [int(result.collector_counters.get("accepted", 0))]
    finally:
        collector.stop()
        sink.stop()
    if isinstance(collector, Otlpd) and workers is not None:
        result.log_problems = collector.log_problems()
    result.wall_seconds = t1 - t0
    result.cpu_seconds = cpu1 - cpu0
    result.cpu_util = result.cpu_seconds / result.wall_seconds if result.wall_seconds else 0.0
    if result.items:
        result.items_per_s = result.items / result.wall_seconds
        result.cpu_s_per_m_items = result.cpu_seconds / result.items * 1e6
        result.items_per_cpu_s = result.items / result.cpu_seconds if result.cpu_seconds else 0.0
        if workers:
            # each worker on a core of its own and kept busy, the load generator elsewhere; the CPU
            # cost per item as measured
            result.capacity_items_per_s = workers * result.items_per_cpu_s
        conns = sum(result.worker_connections)
        if workers and conns:
            # clients that send at a fixed rate whatever the response time: every connection carries
            # the same load, and the worker with the most connections fills its core first
            busiest = max(result.worker_connections) / conns
            result.capacity_conns_items_per_s = result.items_per_cpu_s / busiest
    return result


def _wait_quiet(settings: Settings) -> float:
    """Wait (up to quiet_timeout) for a second in which the machine is busy less than quiet_below
    cores: another job on the machine (a test run, a build) takes the cores the run is about to
    measure. Returns the busy cores of the last second."""
    if settings.quiet_timeout <= 0:
        return 0.0
    deadline = time.monotonic() + settings.quiet_timeout
    while True:
        b0, t0 = machine_busy_seconds(), time.monotonic()
        time.sleep(1.0)
        busy = (machine_busy_seconds() - b0) / (time.monotonic() - t0)
        if busy < settings.quiet_below:
            return busy
        if time.monotonic() > deadline:
            print(
                f"warning: the machine stays busy ({busy:.2f} cores) before the run; measuring anyway",
                file=sys.stderr,
            )
            return busy


@dataclass
class _Snapshot:
    t: float
    collector: float  # CPU-seconds of the collector's process tree
    workers: list[float]  # of each worker (the workers scenarios)
    loadgen: float
    sink: float
    machine: float  # busy CPU-seconds of every core
    runner: float  # this process (the RSS sampler, /proc reads)


def _snapshot(collector: Collector, worker_pids: list[int], loadgen: int, sink: Sink) -> _Snapshot:
    return _Snapshot(
        t=time.monotonic(),
        collector=cpu_seconds(collector.pid),
        workers=[cpu_seconds(p) for p in worker_pids],
        loadgen=cpu_seconds(loadgen),
        sink=cpu_seconds(sink.proc.pid),
        machine=machine_busy_seconds(),
        runner=time.process_time(),
    )


def _drive(
    scenario: Scenario,
    collector: Collector,
    sink: Sink,
    settings: Settings,
    load_cpus: int | str | None,
    workdir: Path,
    result: RunResult,
) -> tuple[float, float, float, float, dict[str, Any]]:
    """Run the load generator; read the collector's CPU when its window opens and closes."""
    argv = _loadgen_argv(scenario, collector.endpoint(scenario.transport), settings)
    worker_pids: list[int] = []
    if isinstance(collector, Otlpd) and result.workers:
        worker_pids = collector.worker_pids() or [collector.pid]
    err = workdir / "loadgen.log"
    with open(err, "wb") as errf:
        proc = PROCS.start(_pinned(load_cpus, argv), stdout=subprocess.PIPE, stderr=errf, cwd=ROOT)
    assert proc.stdout is not None
    deadline = time.monotonic() + settings.warmup + settings.seconds + 60
    start: _Snapshot | None = None
    end: _Snapshot | None = None
    lg: dict[str, Any] | None = None
    spy: subprocess.Popen[bytes] | None = None
    try:
        while lg is None:
            line = _readline(proc.stdout, max(0.1, deadline - time.monotonic()))
            if not line:
                raise RuntimeError(f"load generator ended without a result:\n{_tail(err)}")
            event = json.loads(line)
            if event["event"] == "measure-start":
                start = _snapshot(collector, worker_pids, proc.pid, sink)
                if worker_pids:  # after the warm-up every connection is open (at the end some close)
                    port = int(collector.endpoint(scenario.transport).rsplit(":", 1)[1])
                    table = tcp_sockets()
                    result.worker_connections = [connections_on(p, port, table) for p in worker_pids]
                if settings.profile_dir and collector.name == "otlpd":
                    spy = _start_profiler(scenario, collector, settings, result)
            elif event["event"] == "measure-end":
                end = _snapshot(collector, worker_pids, proc.pid, sink)
            elif event["event"] == "result":
                lg = event
        proc.wait(30)
    finally:
        PROCS.stop(proc)
        if spy is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                spy.wait(settings.seconds + 10)
            PROCS.stop(spy)
    if start is None:
        raise RuntimeError(f"the load generator never opened its window:\n{_tail(err)}")
    if end is None:  # the window ended early (max requests): close it now
        end = _snapshot(collector, worker_pids, proc.pid, sink)
    wall = end.t - start.t
    if wall > 0:
        result.load_cpu_util = (end.loadgen - start.loadgen + end.sink - start.sink) / wall
        result.sink_cpu_util = (end.sink - start.sink) / wall
        result.machine_cpu_util = (end.machine - start.machine) / wall
        ours = (
            (end.collector - start.collector + end.loadgen - start.loadgen + end.sink - start.sink)
            + end.runner
            - start.runner
        )
        result.other_cpu_util = max(0.0, result.machine_cpu_util - ours / wall)
        if worker_pids:
            result.worker_cpu_util = [(b - a) / wall for a, b in zip(start.workers, end.workers, strict=True)]
            if len(worker_pids) > 1:
                result.supervisor_cpu_util = max(
                    0.0, (end.collector - start.collector - sum(end.workers) + sum(start.workers)) / wall
                )
            if isinstance(collector, Otlpd) and len(worker_pids) > 1:
                result.worker_pids_changed = collector.worker_pids() != worker_pids
    return start.collector, start.t, end.collector, end.t, lg


def _start_profiler(
    scenario: Scenario, collector: Collector, settings: Settings, result: RunResult
) -> subprocess.Popen[bytes] | None:
    """py-spy, sampling otlpd without pausing it, for the measurement window."""
    spy = _py_spy()
    if spy is None:
        print("warning: --profile needs py-spy (pip install py-spy)", file=sys.stderr)
        return None
    out = Path(settings.profile_dir) / f"profile-{scenario.name}-r{result.round}.speedscope.json"
    argv = [spy, "record", "--pid", str(collector.pid), "--rate", "250"]
    argv += ["--duration", str(max(1, int(settings.seconds))), "--format", "speedscope", "-o", str(out)]
    # --native needs py-spy to pause the process while it unwinds; otherwise sample without pausing
    argv.append("--native" if settings.profile_native else "--nonblocking")
    result.profile = str(out)
    with open(out.with_suffix(".log"), "wb") as log:  # py-spy keeps its own copy of the descriptor
        return PROCS.start(_pinned(settings.load_core, argv), stdout=log, stderr=subprocess.STDOUT)


def _drain(sink: Sink, signal_name: str, accepted: int, settings: Settings) -> int:
    """Wait until the sink has every item the collector accepted (or the drain timeout)."""
    deadline = time.monotonic() + settings.drain_timeout
    got = 0
    while True:
        stats = sink.stats()
        if not stats["counting"]:
            return 0
        got = int(stats["items"][signal_name])
        if got >= accepted or time.monotonic() > deadline:
            return got
        time.sleep(0.05)


# ---------------------------------------------------------------------------- report


_MEDIAN_KEYS = (
    "items_per_s", "cpu_util", "cpu_s_per_m_items", "items_per_cpu_s", "peak_rss_mb",
    "rss_end_mb", "load_cpu_util", "latency_p50_ms", "latency_p99_ms", "delivered_ratio",
    "cpu_seconds", "wall_seconds", "sink_cpu_util", "machine_cpu_util", "supervisor_cpu_util",
    "capacity_items_per_s", "capacity_conns_items_per_s", "other_cpu_util", "background_cpu_util",
)  # fmt: skip


def summarize(runs: list[RunResult]) -> dict[str, Any]:
    out: dict[str, Any] = {k: statistics.median(getattr(r, k) for r in runs) for k in _MEDIAN_KEYS}
    out["peak_rss_mb_max"] = max(r.peak_rss_mb for r in runs)
    out["delivered_ratio_min"] = min(r.delivered_ratio for r in runs)
    errors: dict[str, int] = {}
    for r in runs:
        for k, v in r.errors.items():
            errors[k] = errors.get(k, 0) + v
    out["errors"] = errors
    out["rejected_items"] = sum(r.rejected_items for r in runs)
    out["refused_items"] = sum(
        int(r.collector_counters.get("refused", 0)) for r in runs
    )  # otlpd's own count; rotel exposes none, its refusals show as load-generator errors
    out["dropped_items"] = sum(
        int(
            r.collector_counters.get("exporter_dropped", 0) + r.collector_counters.get("processor_dropped", 0)
        )
        for r in runs
    )
    out["request_bytes"] = runs[0].request_bytes
    if any(r.workers for r in runs):
        out.update(_summarize_workers(runs))
    return out


def _summarize_workers(runs: list[RunResult]) -> dict[str, Any]:
    """What the workers scenarios add: balance between workers, restarts, log problems, and whether
    otlpd's merged /metrics agree with what the load generator and the sink counted."""
    mismatches: list[str] = []
    for r in runs:
        c = r.collector_counters
        accepted, sent = int(c.get("accepted", -1)), int(c.get("sent", -1))
        said = f"round {r.round}: /metrics"
        if accepted != r.accepted_items_total:
            mismatches.append(f"{said} accepted {accepted} != load generator {r.accepted_items_total}")
        if sent != r.delivered_items:
            mismatches.append(f"{said} sent {sent} != sink {r.delivered_items}")
        if r.workers > 1 and sum(r.worker_accepted) != accepted:
            mismatches.append(f"{said} accepted {accepted} != the workers' own {r.worker_accepted}")
    return {
        "worker_connections": [r.worker_connections for r in runs],
        "worker_cpu_util": [[round(u, 3) for u in r.worker_cpu_util] for r in runs],
        "worker_item_share": [
            [round(a / total, 3) for a in r.worker_accepted] if (total := sum(r.worker_accepted)) else []
            for r in runs
        ],
        "worker_restarts": sum(int(r.collector_counters.get("worker_restarts", 0)) for r in runs)
        + sum(1 for r in runs if r.worker_pids_changed),
        "log_problems": sorted({p for r in runs for p in r.log_problems}),
        "metrics_mismatches": mismatches,
    }


def machine_facts() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem = ""
    with contextlib.suppress(OSError, ValueError, IndexError):
        kib = int(Path("/proc/meminfo").read_text().splitlines()[0].split()[1])
        mem = f"{kib / 1024 / 1024:.0f} GiB RAM"

    def version(pkg: str) -> str:
        try:
            return importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            return "-"

    from google.protobuf.internal import api_implementation

    revision = "-"
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "src"], cwd=ROOT, capture_output=True, text=True
        )
        if head.returncode == 0:
            revision = head.stdout.strip() + (
                " + uncommitted changes in src/" if dirty.stdout.strip() else ""
            )

    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "memory": mem,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "otlpd": Otlpd.version(),
        "revision": revision,
        "rotel": Rotel.version(),
        "grpcio": version("grpcio"),
        "protobuf": f"{version('protobuf')} ({api_implementation.Type()})",
        "aiohttp": version("aiohttp"),
    }


def _fmt(value: float, digits: int = 0) -> str:
    if digits == 0:
        return f"{value:,.0f}"
    return f"{value:,.{digits}f}"


def markdown(report: dict[str, Any]) -> str:
    m = report["machine"]
    s = report["settings"]
    lines = [
        f"# otlpd vs rotel — {report['started']}",
        "",
        f"Machine: {m['nproc']} x {m['cpu_model']}, {m['memory']}, Linux {m['kernel']}; "
        f"Python {m['python']}, "
        f"otlpd {m['otlpd']} ({m['revision']}), {m['rotel']}, grpcio {m['grpcio']}, "
        f"protobuf {m['protobuf']}.",
    ]
    side_by_side = [sc for sc in report["scenarios"] if not sc["params"]["workers"]]
    if side_by_side:
        lines += [
            f"Collector pinned to core {s['collector_core']}, load generator and sink to core "
            f"{s['load_core']}; {s['rounds']} round(s) A B A B, {s['warmup']} s warm-up + {s['seconds']} s "
            "measured per run; medians shown.",
            "",
            "| scenario | collector | req KB | items/s | CPU util | CPU-s / M items | items / CPU-s "
            "| peak RSS MB | p50 ms | p99 ms | delivered | refused / errors | load CPU |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |",
        ]
    for sc in side_by_side:
        for name, data in sc["collectors"].items():
            md = data["median"]
            if sc["params"]["idle"]:
                lines.append(
                    f"| {sc['name']} | {name} | - | - | {_fmt(md['cpu_util'] * 100, 2)} % | - | - "
                    f"| {_fmt(md['peak_rss_mb'], 1)} (now {_fmt(md['rss_end_mb'], 1)}) | - | - | - | - | - |"
                )
                continue
            cells = [
                sc["name"],
                name,
                f"{md['request_bytes'] / 1024:,.0f}",
                _fmt(md["items_per_s"]),
                _fmt(md["cpu_util"], 2),
                _fmt(md["cpu_s_per_m_items"], 2),
                _fmt(md["items_per_cpu_s"]),
                _fmt(md["peak_rss_mb"], 1),
                _fmt(md["latency_p50_ms"], 1),
                _fmt(md["latency_p99_ms"], 1),
                f"{md['delivered_ratio_min'] * 100:.1f} %",
                ", ".join(_problems(md)) or "none",
                _fmt(md["load_cpu_util"], 2),
            ]
            lines.append("| " + " | ".join(cells) + " |")
    lines += _workers_markdown(report)
    lines += ["", "| target | measured | met |", "| --- | --- | --- |"]
    for t in report["targets"]:
        met = {True: "yes", False: "**no**", None: "n/a"}[t["met"]]
        lines.append(f"| {t['target']} | {t['measured']} | {met} |")
    lines += [""]
    if side_by_side:
        lines += [
            "items/s: items the collector answered OK for during the window. CPU util: collector "
            "CPU-seconds per wall-second (1.00 = its core saturated). delivered: items the sink received / "
            "items accepted (minimum over rounds). load CPU: load generator + sink CPU-seconds per "
            "wall-second on their own core (near 1.00 = the load, not the collector, was the limit).",
            "",
        ]
    return "\n".join(lines)


def _problems(md: dict[str, Any]) -> list[str]:
    problems = [f"{k}: {v}" for k, v in md["errors"].items()]
    if md["refused_items"]:
        problems.append(f"refused {md['refused_items']}")
    if md["rejected_items"]:
        problems.append(f"partial {md['rejected_items']}")
    if md["dropped_items"]:
        problems.append(f"dropped {md['dropped_items']}")
    if md.get("worker_restarts"):
        problems.append(f"worker restarts {md['worker_restarts']}")
    if md.get("metrics_mismatches"):
        problems.append(f"/metrics disagree ({len(md['metrics_mismatches'])})")
    if md.get("log_problems"):
        problems.append(f"log warnings/errors {len(md['log_problems'])}")
    return problems


def scaling(entry: dict[str, Any]) -> dict[str, Any]:
    """2 workers vs 1 in a workers scenario, per round (each 2-worker run against the 1-worker run
    just before it, so drift between rounds cancels) and the median of those."""
    cols = entry["collectors"]
    out: dict[str, Any] = {}
    for name, one_key, two_key, field_name in (
        ("measured", "workers=1", "workers=2", "items_per_s"),
        ("pinned", "workers=1 pinned", "workers=2 pinned", "items_per_s"),
        ("capacity", "workers=1", "workers=2", "capacity_items_per_s"),
        ("capacity_conns", "workers=1", "workers=2", "capacity_conns_items_per_s"),
        ("items_per_cpu_s", "workers=1", "workers=2", "items_per_cpu_s"),
    ):
        one, two = cols.get(one_key), cols.get(two_key)
        if one is None or two is None:
            continue
        rounds = [
            b[field_name] / a[field_name] if a[field_name] else None
            for a, b in zip(one["runs"], two["runs"], strict=False)
        ]
        valid = [r for r in rounds if r is not None]
        out[name] = statistics.median(valid) if valid else None
        out[f"{name}_per_round"] = rounds
    return out


def _x(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _workers_markdown(report: dict[str, Any]) -> list[str]:
    scenarios = [sc for sc in report["scenarios"] if sc["params"]["workers"]]
    if not scenarios:
        return []
    s = report["settings"]
    cores = report["machine"]["nproc"]
    shared = f"all {cores}"
    pinned = f"collector {s['collector_core']}, load {s['load_core']}"
    with_pinned = s["collector_core"] is not None
    layouts = (
        f"cores {shared}: nothing pinned, the collector (supervisor + workers), the load generator and "
        "the sink share every core"
    )
    if with_pinned:
        layouts += (
            f"; cores {pinned}: the collector pinned to core {s['collector_core']}, load generator and "
            f"sink to core {s['load_core']}"
        )
    lines = [
        "",
        f"Workers: otlpd --workers 1 and 2 alternating, {s['rounds']} round(s); {layouts}; "
        f"{s['warmup']} s warm-up + {s['seconds']} s measured per run; medians shown.",
        "",
        "| scenario | workers | cores | items/s | collector CPU | items / CPU-s | load + sink CPU "
        "| other CPU | per worker, each round: CPU; connections; items % | capacity est.: balanced "
        "| by connections | peak RSS MB | p99 ms | delivered | /metrics = load = sink | problems |",
        "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | --- "
        "| ---: | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for sc in scenarios:
        for data in sc["collectors"].values():
            md = data["median"]
            per_worker = []
            for run in data["runs"]:
                cpu = "+".join(f"{u:.2f}" for u in run["worker_cpu_util"])
                conns = "+".join(str(c) for c in run["worker_connections"])
                total = sum(run["worker_accepted"])
                share = "/".join(f"{a / total * 100:.0f}" for a in run["worker_accepted"]) if total else "-"
                per_worker.append(f"{cpu}; {conns}; {share}")
            cells = [
                sc["name"],
                str(data["runs"][0]["workers"]),
                pinned if data["runs"][0]["pinned"] else shared,
                _fmt(md["items_per_s"]),
                _fmt(md["cpu_util"], 2),
                _fmt(md["items_per_cpu_s"]),
                f"{md['load_cpu_util']:.2f}",
                f"{md['other_cpu_util']:.2f}",
                " · ".join(per_worker),
                _fmt(md["capacity_items_per_s"]),
                _fmt(md["capacity_conns_items_per_s"]),
                _fmt(md["peak_rss_mb"], 1),
                _fmt(md["latency_p99_ms"], 1),
                f"{md['delivered_ratio_min'] * 100:.1f} %",
                "yes" if not md["metrics_mismatches"] else "**no**",
                ", ".join(_problems(md)) or "none",
            ]
            lines.append("| " + " | ".join(cells) + " |")
    columns = [("measured", f"measured, cores {shared}")]
    if with_pinned:
        columns.append(("pinned", f"measured, cores {pinned}"))
    columns += [("capacity", "capacity est., balanced"), ("capacity_conns", "capacity est., by connections")]
    head = " | ".join(f"{title} | per round" for _, title in columns)
    lines += [
        "",
        f"| scenario | 2 vs 1 worker, items/s: {head} |",
        "| --- |" + " ---: | --- |" * len(columns),
    ]
    for sc in scenarios:
        sg = sc.get("scaling") or {}
        cells = [sc["name"]]
        for key, _ in columns:
            cells += [_x(sg.get(key)), ", ".join(_x(v) for v in sg.get(f"{key}_per_round", []))]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "Measured, from /proc, in CPU-seconds per wall-second: collector = supervisor + workers; load + sink "
        "= load generator and null sink; other = the machine's busy time less all of these and the runner "
        "(another job on the machine). Per worker: its CPU, its established connections on the receiver "
        "port, its share of the accepted items (its own /metrics). Estimated, not measured: capacity "
        "balanced = workers * items per collector CPU-second (each worker on a core of its own, kept busy, "
        "the load generator elsewhere); by connections = items per collector CPU-second ÷ the largest "
        "share of the connections one worker holds (the same, if every connection carried the same load, "
        "so the worker with the most connections fills its core first). Ratios: each 2-worker run against "
        "the 1-worker run just before it, median over the rounds."
        + (
            " With the collector pinned to one core, 2 workers time-share it: their ratio to 1 worker is "
            "the CPU cost of the second process, measured with the load generator on a core of its own."
            if with_pinned
            else ""
        ),
    ]
    return lines


def targets(report: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    scenarios = report["scenarios"]
    for sc in scenarios:
        cols = sc["collectors"]
        if sc["params"]["target_ratio"] is not None:
            ratio = sc.get("ratio")
            out.append(
                {
                    "target": f"{sc['name']}: otlpd/rotel items per CPU-s ≥ {sc['params']['target_ratio']}x",
                    "measured": f"{ratio:.2f}x" if ratio is not None else "no rotel run",
                    "met": None if ratio is None else ratio >= sc["params"]["target_ratio"],
                }
            )
        if sc["params"]["idle"] and "otlpd" in cols:
            rss = cols["otlpd"]["median"]["rss_end_mb"]
            out.append(
                {
                    "target": f"idle RSS ≤ {IDLE_RSS_TARGET_MB} MB",
                    "measured": f"{rss:.1f} MB (peak {cols['otlpd']['median']['peak_rss_mb']:.1f} MB)",
                    "met": rss <= IDLE_RSS_TARGET_MB,
                }
            )
        if sc["params"]["workers"] and sc.get("scaling"):
            sg = sc["scaling"]
            for what, key in (
                (f"measured, load generator on the same {report['machine']['nproc']} cores", "measured"),
                ("estimated capacity, one core per worker, balanced", "capacity"),
                ("estimated capacity, one core per worker, equal load per connection", "capacity_conns"),
            ):
                out.append(
                    {
                        "target": f"{sc['name']}: 2 workers ≥ {WORKERS_TARGET}x the items/s of 1 ({what})",
                        "measured": _x(sg[key]),
                        "met": None if sg[key] is None else sg[key] >= WORKERS_TARGET,
                    }
                )
    loaded = [
        sc
        for sc in scenarios
        if not sc["params"]["idle"] and not sc["params"]["workers"] and "otlpd" in sc["collectors"]
    ]
    if loaded:
        peak = max(sc["collectors"]["otlpd"]["median"]["peak_rss_mb_max"] for sc in loaded)
        out.append(
            {
                "target": f"peak RSS under saturating load ≤ {PEAK_RSS_TARGET_MB} MB",
                "measured": f"{peak:.1f} MB",
                "met": peak <= PEAK_RSS_TARGET_MB,
            }
        )
    otlpd_runs = [
        (f"{sc['name']} {key}" if sc["params"]["workers"] else sc["name"], data["median"])
        for sc in scenarios
        if not sc["params"]["idle"]
        for key, data in sc["collectors"].items()
        if key == "otlpd" or key.startswith("workers=")
    ]
    if otlpd_runs:
        lost = []
        for name, md in otlpd_runs:
            bad = (
                sum(md["errors"].values()) + md["refused_items"] + md["dropped_items"] + md["rejected_items"]
            )
            if bad or md["delivered_ratio_min"] < 1.0 or md.get("metrics_mismatches"):
                lost.append(
                    f"{name}: {bad} refused/failed, {md['delivered_ratio_min'] * 100:.2f} % delivered"
                    + ("; /metrics disagree" if md.get("metrics_mismatches") else "")
                )
        out.append({
            "target": "nothing dropped or refused (otlpd)",
            "measured": "; ".join(lost) or "0 refused, 100 % delivered in every run",
            "met": not lost,
        })  # fmt: skip
    return out


# ---------------------------------------------------------------------------- main


def _variants(scenario: Scenario, settings: Settings) -> list[tuple[str, str, int | None, bool]]:
    """(report key, collector, otlpd --workers, pinned) of each run in a round, in order."""
    if scenario.workers:
        if "otlpd" not in settings.collectors:
            return []
        out: list[tuple[str, str, int | None, bool]] = [
            (f"workers={n}", "otlpd", n, False) for n in scenario.workers
        ]
        if settings.collector_core is not None:  # and the same with the load generator on its own core
            out += [(f"workers={n} pinned", "otlpd", n, True) for n in scenario.workers]
        return out
    return [(name, name, None, False) for name in settings.collectors]


def run(scenarios: list[Scenario], settings: Settings, out_dir: Path) -> dict[str, Any]:
    if settings.load_core is not None:
        settings.all_cpus = ",".join(str(c) for c in sorted(os.sched_getaffinity(0)))
        os.sched_setaffinity(0, {settings.load_core})  # keep this process off the collector's core
    started = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    report: dict[str, Any] = {
        "started": started,
        "machine": machine_facts(),
        "settings": {k: v for k, v in asdict(settings).items()},
        "scenarios": [],
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    t_start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="otlpd-bench-") as tmp:
        for scenario in scenarios:
            variants = _variants(scenario, settings)
            if not variants:
                print(f"skipping {scenario.name}: it runs otlpd only", file=sys.stderr)
                continue
            runs: dict[str, list[RunResult]] = {key: [] for key, _, _, _ in variants}
            for rnd in range(1, settings.rounds + 1):
                for key, name, workers, pinned in variants:  # A B A B: drift hits both alike
                    workdir = Path(tmp) / f"{scenario.name}-{key.replace('=', '').replace(' ', '-')}-{rnd}"
                    workdir.mkdir()
                    r = run_once(scenario, name, rnd, settings, workdir, workers, pinned)
                    runs[key].append(r)
                    print(
                        f"[{time.monotonic() - t_start:6.1f}s] {scenario.name:<17} {key:<16} round {rnd}: "
                        f"{r.items_per_s:>10,.0f} items/s  cpu {r.cpu_util:4.2f}  "
                        f"{r.items_per_cpu_s:>10,.0f} items/cpu-s  peak {r.peak_rss_mb:6.1f} MB  "
                        f"p99 {r.latency_p99_ms:7.1f} ms  delivered {r.delivered_ratio * 100:5.1f} %"
                        + (
                            f"  load {r.load_cpu_util:4.2f}  other {r.other_cpu_util:4.2f}"
                            f"  workers cpu {[round(u, 2) for u in r.worker_cpu_util]}"
                            f" conns {r.worker_connections}"
                            if workers
                            else ""
                        )
                        + (f"  errors {r.errors}" if r.errors else ""),
                        file=sys.stderr,
                        flush=True,
                    )
            entry: dict[str, Any] = {
                "name": scenario.name,
                "description": scenario.description,
                "params": asdict(scenario),
                "collectors": {
                    key: {"median": summarize(rs), "runs": [asdict(r) for r in rs]}
                    for key, rs in runs.items()
                },
            }
            cols = entry["collectors"]
            if not scenario.idle and "otlpd" in cols and "rotel" in cols:
                rotel = cols["rotel"]["median"]["items_per_cpu_s"]
                entry["ratio"] = cols["otlpd"]["median"]["items_per_cpu_s"] / rotel if rotel else None
            if scenario.workers:
                entry["scaling"] = scaling(entry)
            report["scenarios"].append(entry)
    report["elapsed_seconds"] = time.monotonic() - t_start
    report["targets"] = targets(report)
    stamp = started.replace(":", "").replace("-", "")
    (out_dir / f"{stamp}.json").write_text(json.dumps(report, indent=2) + "\n")
    md = markdown(report)
    (out_dir / f"{stamp}.md").write_text(md)
    report["files"] = {"json": str(out_dir / f"{stamp}.json"), "markdown": str(out_dir / f"{stamp}.md")}
    return report


def _parse(argv: list[str] | None) -> tuple[list[Scenario], Settings, Path]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--scenarios",
        default=",".join(DEFAULT_SCENARIOS),
        help=f"comma-separated, of {[s.name for s in SCENARIOS]}; 'workers' = "
        f"{','.join(ALIASES['workers'])} (default: {','.join(DEFAULT_SCENARIOS)})",
    )
    p.add_argument("--collectors", default="otlpd,rotel", help="comma-separated: otlpd, rotel")
    p.add_argument("--seconds", type=float, help="measured seconds per run (default 10)")
    p.add_argument("--warmup", type=float, help="warm-up seconds per run (default 3)")
    p.add_argument("--rounds", type=int, help="A B rounds per scenario (default 2)")
    p.add_argument("--quick", action="store_true", help="tiny durations: a smoke test, not a measurement")
    p.add_argument("--no-pin", action="store_true", help="do not pin processes to cores")
    p.add_argument(
        "--quiet-wait",
        type=float,
        help="before each run, wait up to this many seconds for the machine to be idle "
        "(default 30, --quick 0)",
    )
    p.add_argument(
        "--otlpd-command",
        help='how to start otlpd, e.g. "../other/.venv/bin/python -m otlpd" (default: this Python)',
    )
    p.add_argument(
        "--profile", action="store_true", help="py-spy record otlpd during each window (perturbs it)"
    )
    p.add_argument("--profile-native", action="store_true", help="with --profile: C frames too")
    p.add_argument("--out", type=Path, default=RESULTS, help="directory for the .md and .json report")
    a = p.parse_args(argv)
    names: list[str] = []
    for n in (n.strip() for n in a.scenarios.split(",")):
        names += [x for x in ALIASES.get(n, [n]) if x and x not in names]
    unknown = [n for n in names if n not in SCENARIO_BY_NAME]
    if unknown:
        p.error(f"unknown scenario(s) {unknown}; known: {list(SCENARIO_BY_NAME)}")
    collectors = tuple(n.strip() for n in a.collectors.split(",") if n.strip())
    if any(c not in COLLECTORS for c in collectors):
        p.error(f"--collectors takes {list(COLLECTORS)}")
    needs_rotel = any(not SCENARIO_BY_NAME[n].workers for n in names if n in SCENARIO_BY_NAME)
    if "rotel" in collectors and needs_rotel and rotel_binary() is None:
        p.error("rotel-agent not found (pip install --pre rotel), or run with --collectors otlpd")
    if a.otlpd_command:
        Otlpd.command = shlex.split(a.otlpd_command)
    s = Settings(collectors=collectors, quick=a.quick, profile_dir=str(a.out) if a.profile else "")
    s.profile_native = a.profile_native
    if a.quick:
        s.seconds, s.warmup, s.rounds, s.idle_seconds, s.drain_timeout = 1.0, 0.5, 1, 1.0, 5.0
        s.quiet_timeout = 0.0
    s.quiet_timeout = a.quiet_wait if a.quiet_wait is not None else s.quiet_timeout
    s.seconds = a.seconds if a.seconds is not None else s.seconds
    s.warmup = a.warmup if a.warmup is not None else s.warmup
    s.rounds = a.rounds if a.rounds is not None else s.rounds
    if a.no_pin or (os.cpu_count() or 1) < 2 or shutil.which("taskset") is None:
        s.collector_core = s.load_core = None
    return [SCENARIO_BY_NAME[n] for n in names], s, a.out


def main(argv: list[str] | None = None) -> int:
    scenarios, settings, out = _parse(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally below: end every child
    if settings.collector_core is None:
        print(
            "warning: not pinning (needs 2 cores and taskset): numbers mix collector and load",
            file=sys.stderr,
        )
    try:
        report = run(scenarios, settings, out)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        PROCS.stop_all()
    print(markdown(report))
    print(f"written: {report['files']['markdown']} and {report['files']['json']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
