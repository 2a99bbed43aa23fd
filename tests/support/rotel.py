"""Start rotel, an independent OTLP collector written in Rust, as an interop peer.

rotel ships as the PyPI package ``rotel``; its binary is ``rotel/rotel-agent``
inside the package. Tests that need it call :func:`rotel_agent` and skip with
a clear reason when it is missing.
"""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.support.process import free_port


def rotel_agent() -> Path:
    """The rotel-agent binary, or skip the test saying why it is not there."""
    try:
        import rotel
    except ImportError:
        pytest.skip("rotel is not installed (pip install --pre rotel): no rotel-agent to test against")
    binary = Path(os.path.dirname(rotel.__file__)) / "rotel-agent"
    if not binary.is_file() or not os.access(binary, os.X_OK):
        pytest.skip(f"rotel is installed but {binary} is missing or not executable")
    return binary


class Rotel:
    """A running ``rotel-agent start`` with OTLP in on free ports, OTLP out to ``upstream``.

    ``upstream`` is ``http://host:port``; ``protocol`` is rotel's exporter
    protocol (``grpc`` or ``http``).
    """

    def __init__(self, upstream: str, protocol: str = "grpc", extra: list[str] | None = None) -> None:
        self.binary = rotel_agent()
        self.grpc_port = free_port()
        self.http_port = free_port()
        self._dir = tempfile.TemporaryDirectory(prefix="rotel-")
        self.log_path = Path(self._dir.name) / "stdout.log"
        self.args = [
            str(self.binary),
            "start",
            "--pid-file", f"{self._dir.name}/rotel.pid",
            "--log-file", f"{self._dir.name}/rotel.log",
            "--otlp-grpc-endpoint", self.grpc_endpoint,
            "--otlp-http-endpoint", f"127.0.0.1:{self.http_port}",
            "--exporter", "otlp",
            "--otlp-exporter-endpoint", upstream,
            "--otlp-exporter-protocol", protocol,
            "--batch-timeout", "100ms",
            *(extra or []),
        ]  # fmt: skip
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def grpc_endpoint(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def http_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def logs(self) -> str:
        out = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        own = Path(self._dir.name) / "rotel.log"
        if own.exists():
            out += own.read_text(errors="replace")
        return out

    def __enter__(self) -> Rotel:
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(self.args, stdout=self._log, stderr=subprocess.STDOUT)
        try:
            for port in (self.grpc_port, self.http_port):
                self._wait_port(port)
        except BaseException:
            self.__exit__()
            raise
        return self

    def _wait_port(self, port: int, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"rotel-agent exited with {self.proc.returncode}:\n{self.logs()}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise TimeoutError(f"rotel-agent not listening on {port} after {timeout}s:\n{self.logs()}")

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()
        self._dir.cleanup()
