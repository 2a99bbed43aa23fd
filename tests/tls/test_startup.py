"""A TLS file that cannot be read stops ``otlpd serve`` at startup with an error, not a hang or traceback."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest

from tests.support.process import Otlpd

MISSING = "/nonexistent/otlpd-tls/missing.pem"


def config(
    receiver_tls: dict[str, Any] | None, protocol: str, exporter_tls: dict[str, Any]
) -> dict[str, Any]:
    return {
        "receivers": {"otlp": {"protocols": {protocol: {"tls": receiver_tls} if receiver_tls else None}}},
        "exporters": {"otlphttp": {"endpoint": "https://127.0.0.1:9", "tls": exporter_tls}},
        "service": {"pipelines": {"traces": {"receivers": ["otlp"], "exporters": ["otlphttp"]}}},
    }


@pytest.mark.parametrize(
    ("component", "cfg"),
    [
        ("receiver/otlp", config({"cert_file": MISSING, "key_file": MISSING}, "grpc", {})),
        ("receiver/otlp", config({"cert_file": MISSING, "key_file": MISSING}, "http", {})),
        ("exporter/otlphttp", config(None, "grpc", {"ca_file": MISSING})),
    ],
    ids=["grpc-receiver-cert", "http-receiver-cert", "otlphttp-ca"],
)
def test_a_missing_tls_file_fails_startup(component: str, cfg: dict[str, Any]) -> None:
    otlpd = Otlpd(cfg)
    with contextlib.ExitStack() as stack:
        otlpd.start(wait_ready=False)
        stack.push(otlpd)
        assert otlpd.proc is not None
        assert otlpd.proc.wait(15) == 1, otlpd.logs()
        failed = [e for e in otlpd.log_events() if e.get("msg") == "component failed to start"]
        assert [e["component"] for e in failed] == [component], otlpd.logs()
        assert "No such file or directory" in failed[0]["error"]
        assert "Traceback" not in otlpd.logs()
