"""A/B of two otlpd builds under the same noise: both pinned to one core, driven in turns.

Why: on a shared machine the collector's CPU per item moves by ±10-15 % from
one run of ``bench.run`` to the next (other jobs, a busy host), which hides
the few per cent a hot-path change is worth. Here both builds run at once,
each pinned to the collector core with its own sink and load generator on
the load core, and the load generators take turns (SIGSTOP / SIGCONT) in
short slices: each build has the core to itself while measured, as in
``bench.run``, and both see the same drift. An A/A run agrees within ~1 %.

    python -m bench.ab --a-env PYTHONPATH=/tmp/base/src            # HEAD vs another tree
    python -m bench.ab --b-command "/other/venv/bin/python -m otlpd" --slices 16
    python -m bench.ab --b-env SOME_SWITCH=1 --signal logs

Traces over gRPC as in the ``traces-grpc`` scenario (500-span requests, 32 in
flight over 4 connections, default batching, OTLP/gRPC export to a null
sink). Reports items per collector CPU-second for each build (totals over
all slices) and B/A, total and median per slice pair.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import yaml

from bench.procfs import cpu_seconds

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {port} after {timeout}s")


def _accepted(admin: int) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"http://127.0.0.1:{admin}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "otlpd_receiver_accepted_items_total"
    )


@dataclass
class Build:
    name: str
    sink: subprocess.Popen[bytes]
    otlpd: subprocess.Popen[bytes]
    load: subprocess.Popen[bytes]
    admin: int
    sink_http: int
    cpu: float = 0.0
    items: float = 0.0

    def delivered(self, signal: str, timeout: float = 15.0) -> bool:
        """Whether the sink got every item otlpd accepted: a build that accepts but cannot
        export would otherwise look cheap."""
        deadline = time.monotonic() + timeout
        while True:
            url = f"http://127.0.0.1:{self.sink_http}/stats"
            with urllib.request.urlopen(url, timeout=5) as resp:
                got = json.loads(resp.read())["items"][signal]
            if got >= _accepted(self.admin) or time.monotonic() > deadline:
                return bool(got >= _accepted(self.admin))
            time.sleep(0.2)

    def stop(self) -> None:
        self.load.send_signal(signal.SIGCONT)
        for proc in (self.load, self.otlpd, self.sink):
            proc.terminate()
        for proc in (self.load, self.otlpd, self.sink):
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()


def _start(
    name: str, command: list[str], env: dict[str, str], args: argparse.Namespace, workdir: Path
) -> Build:
    pin_c = [] if args.no_pin else ["taskset", "-c", args.collector_core]
    pin_l = [] if args.no_pin else ["taskset", "-c", args.load_core]
    sink_port, sink_http, grpc_port, admin = _free_port(), _free_port(), _free_port(), _free_port()
    sink_argv = [
        sys.executable,
        "-m",
        "bench.sink",
        "--grpc-port",
        str(sink_port),
        "--http-port",
        str(sink_http),
    ]
    sink = subprocess.Popen([*pin_l, *sink_argv], cwd=ROOT, stdout=subprocess.DEVNULL)
    _wait_port(sink_port)
    _wait_port(sink_http)
    config = {
        "receivers": {"otlp": {"protocols": {"grpc": {"endpoint": f"127.0.0.1:{grpc_port}"}}}},
        "processors": {"batch": {}},
        "exporters": {
            "otlp": {
                "endpoint": f"http://127.0.0.1:{sink_port}",
                "tls": {"insecure": True},
                "compression": "none",
            }
        },
        "service": {
            "pipelines": {
                args.signal: {"receivers": ["otlp"], "processors": ["batch"], "exporters": ["otlp"]}
            }
        },
    }
    path = workdir / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    full_env = {**os.environ, **env, "OTLPD_HTTP_ENDPOINT": f"127.0.0.1:{admin}", "OTLPD_LOG_FORMAT": "json"}
    with open(workdir / f"{name}.log", "wb") as log:
        otlpd = subprocess.Popen(
            [*pin_c, *command, "serve", "--config", str(path)], cwd=ROOT, env=full_env, stdout=log, stderr=log
        )
    _wait_port(grpc_port)
    _wait_port(admin)
    load_argv = [sys.executable, "-m", "bench.loadgen", "--endpoint", f"127.0.0.1:{grpc_port}"]
    load_argv += ["--signal", args.signal, "--resources", "5", "--items", "500", "--concurrency", "32"]
    load_argv += ["--connections", "4", "--warmup", "0", "--seconds", "1000000"]
    load = subprocess.Popen([*pin_l, *load_argv], cwd=ROOT, stdout=subprocess.DEVNULL)
    time.sleep(args.ramp * 2)  # connections up, caches warm
    load.send_signal(signal.SIGSTOP)
    return Build(name, sink, otlpd, load, admin, sink_http)


def _slice(build: Build, args: argparse.Namespace) -> float:
    """Run ``build`` alone for one slice; its items per CPU-second in it."""
    build.load.send_signal(signal.SIGCONT)
    time.sleep(args.ramp)
    cpu0, items0 = cpu_seconds(build.otlpd.pid), _accepted(build.admin)
    time.sleep(args.slice)
    cpu1, items1 = cpu_seconds(build.otlpd.pid), _accepted(build.admin)
    build.load.send_signal(signal.SIGSTOP)
    time.sleep(args.settle)  # its in-flight requests and batches finish before the other's turn
    build.cpu += cpu1 - cpu0
    build.items += items1 - items0
    return (items1 - items0) / max(cpu1 - cpu0, 1e-9)


def _env(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"--a-env/--b-env take KEY=VALUE, not {pair!r}")
        out[key] = value
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default = f"{shlex.quote(sys.executable)} -m otlpd"
    p.add_argument("--a-command", default=default, help="how to run build A (default: this venv's otlpd)")
    p.add_argument("--b-command", default=default, help="how to run build B")
    p.add_argument("--a-env", action="append", default=[], metavar="KEY=VALUE", help="extra env for A")
    p.add_argument("--b-env", action="append", default=[], metavar="KEY=VALUE", help="extra env for B")
    p.add_argument("--signal", choices=("traces", "logs", "metrics"), default="traces")
    p.add_argument("--slices", type=int, default=12, help="slice pairs (A then B, or B then A)")
    p.add_argument("--slice", type=float, default=2.5, help="measured seconds per slice")
    p.add_argument("--ramp", type=float, default=0.7, help="unmeasured seconds at the start of a slice")
    p.add_argument("--settle", type=float, default=0.3, help="seconds between slices")
    p.add_argument("--collector-core", default="0")
    p.add_argument("--load-core", default="1")
    p.add_argument("--no-pin", action="store_true", help="do not pin (fewer than 2 cores; not a measurement)")
    p.add_argument(
        "--quick", action="store_true", help="2 short slice pairs: a smoke test, not a measurement"
    )
    args = p.parse_args(argv)
    if args.quick:
        args.slices, args.slice, args.ramp, args.settle = 2, 0.5, 0.3, 0.1
    with tempfile.TemporaryDirectory() as tmp:
        builds: dict[str, Build] = {}
        try:
            for name in ("A", "B"):
                command = shlex.split(getattr(args, f"{name.lower()}_command"))
                builds[name] = _start(
                    name, command, _env(getattr(args, f"{name.lower()}_env")), args, Path(tmp)
                )
            ratios = []
            for i in range(args.slices):
                order = ("A", "B") if i % 2 == 0 else ("B", "A")  # neither always goes first
                rate = {name: _slice(builds[name], args) for name in order}
                ratios.append(rate["B"] / rate["A"])
                line = f"slice {i + 1}: A {rate['A']:,.0f}  B {rate['B']:,.0f} items/cpu-s"
                print(f"{line}  B/A {ratios[-1]:.3f}", flush=True)
            undelivered = [n for n, build in builds.items() if not build.delivered(args.signal)]
        finally:
            for build in builds.values():
                build.stop()
    a, b = (builds[n].items / max(builds[n].cpu, 1e-9) for n in ("A", "B"))
    median = statistics.median(ratios)
    print(f"A {a:,.0f}  B {b:,.0f} items/cpu-s   B/A {b / a:.3f} (median per slice {median:.3f})")
    if undelivered:
        print(f"not delivered to the sink: {', '.join(undelivered)} (the numbers above do not count)")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
