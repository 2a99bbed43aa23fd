"""Start ``otlpd`` as a subprocess, as a user would, on free loopback ports."""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import yaml


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


_PORTS = range(10_000, max(10_001, _ephemeral_low()))


def free_port() -> int:
    """A free loopback port below the kernel's ephemeral range.

    A port the kernel hands out (bind to 0) can be handed out again as the
    source port of an outgoing connection before otlpd binds it: a worker
    then failed to start with "address already in use". Ports below the
    ephemeral range are only ever taken by an explicit bind.
    """
    for _ in range(200):
        port = random.choice(_PORTS)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Otlpd:
    """A running ``otlpd serve``; config is a dict (written to a temp file) or None."""

    def __init__(self, config: dict[str, Any] | None, env: dict[str, str] | None = None) -> None:
        self.grpc_port = free_port()
        self.http_port = free_port()
        self.admin_port = free_port()
        self._dir = tempfile.TemporaryDirectory()
        self.config_path: Path | None = None
        if config is not None:
            config = _with_ports(config, self.grpc_port, self.http_port)
            self.config_path = Path(self._dir.name) / "otlpd.yaml"
            self.config_path.write_text(yaml.safe_dump(config))
        self.log_path = Path(self._dir.name) / "otlpd.log"
        self.workdir = Path(self._dir.name)
        self.env = {
            **os.environ,
            "OTLPD_HTTP_ENDPOINT": f"127.0.0.1:{self.admin_port}",
            "OTLPD_LOG_FORMAT": "json",
            **(env or {}),
        }
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def grpc_endpoint(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def http_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def admin(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    def start(self, wait_ready: bool = True) -> Otlpd:
        args = [sys.executable, "-m", "otlpd", "serve"]
        if self.config_path is not None:
            args += ["--config", str(self.config_path)]
        self._log = open(self.log_path, "wb")  # noqa: SIM115
        # In its own directory: the default config's store (./data/otlpd.duckdb) lands there.
        self.proc = subprocess.Popen(
            args, env=self.env, stdout=self._log, stderr=subprocess.STDOUT, cwd=self.workdir
        )
        if wait_ready:
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"otlpd exited with {self.proc.returncode}:\n{self.logs()}")
            try:
                with urllib.request.urlopen(f"{self.admin}/health/ready", timeout=1) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise TimeoutError(f"otlpd not ready after {timeout}s:\n{self.logs()}")

    def metrics(self) -> str:
        with urllib.request.urlopen(f"{self.admin}/metrics", timeout=5) as resp:
            return str(resp.read().decode())

    def metric(self, name: str, **labels: str) -> float:
        """Sum of a metric's samples whose labels include ``labels``."""
        from prometheus_client.parser import text_string_to_metric_families

        total = 0.0
        for family in text_string_to_metric_families(self.metrics()):
            for sample in family.samples:
                if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                    total += sample.value
        return total

    def health(self, path: str = "/health/ready") -> tuple[int, dict[str, Any]]:
        try:
            with urllib.request.urlopen(f"{self.admin}{path}", timeout=5) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read())

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_events(self) -> list[dict[str, Any]]:
        events = []
        for line in self.logs().splitlines():
            with contextlib.suppress(ValueError):  # a non-JSON line (e.g. a crash) is not an event
                events.append(json.loads(line))
        return events

    def terminate(self, timeout: float = 40.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise

    def __enter__(self) -> Otlpd:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._log.close()
        self._dir.cleanup()


def _with_ports(config: dict[str, Any], grpc_port: int, http_port: int) -> dict[str, Any]:
    """Point every otlp receiver's endpoints at this instance's free ports."""
    config = json.loads(json.dumps(config))
    for key, rec in (config.get("receivers") or {}).items():
        if key.split("/")[0] != "otlp":
            continue
        protocols = rec.setdefault("protocols", {})
        if "grpc" in protocols:
            protocols["grpc"] = {**(protocols["grpc"] or {}), "endpoint": f"127.0.0.1:{grpc_port}"}
        if "http" in protocols:
            protocols["http"] = {**(protocols["http"] or {}), "endpoint": f"127.0.0.1:{http_port}"}
    return config
