"""``otlpd validate`` on TLS settings: every mistake is reported with its config path."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from otlpd.config import ConfigError, load
from tests.tls.certs import Certs


def validate(tmp_path: Path, config: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "otlpd.yaml"
    path.write_text(yaml.safe_dump(config))
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTLPD_")}
    return subprocess.run(
        [sys.executable, "-m", "otlpd", "validate", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
    )


def config(grpc_tls: Any, http_tls: Any, otlp_tls: Any, otlphttp_tls: Any) -> dict[str, Any]:
    return {
        "receivers": {"otlp": {"protocols": {"grpc": {"tls": grpc_tls}, "http": {"tls": http_tls}}}},
        "exporters": {
            "otlp": {"endpoint": "upstream:4317", "tls": otlp_tls},
            "otlphttp": {"endpoint": "https://upstream:4318", "tls": otlphttp_tls},
        },
        "service": {"pipelines": {"traces": {"receivers": ["otlp"], "exporters": ["otlp", "otlphttp"]}}},
    }


def test_a_complete_tls_config_is_valid(tmp_path: Path, certs: Certs) -> None:
    server = {"cert_file": str(certs.server.cert), "key_file": str(certs.server.key)}
    client = {
        "ca_file": str(certs.ca),
        "cert_file": str(certs.client.cert),
        "key_file": str(certs.client.key),
    }
    mtls = {**server, "client_ca_file": str(certs.ca), "min_version": "1.3"}
    result = validate(tmp_path, config(server, mtls, client, {**client, "insecure_skip_verify": True}))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith(": valid")


def test_a_cert_without_its_key_and_other_tls_mistakes_are_errors_with_their_paths(tmp_path: Path) -> None:
    cert_only = {"cert_file": "/etc/otlpd/server.pem"}
    result = validate(
        tmp_path,
        config(
            grpc_tls=cert_only,
            http_tls={"client_ca_file": "/etc/otlpd/ca.pem"},  # a server needs a certificate
            otlp_tls={"key_file": "/etc/otlpd/client.key"},  # a key without its certificate
            otlphttp_tls={**cert_only, "key_file": "/etc/otlpd/server.key", "min_version": "1.1"},
        ),
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    errors = sorted(line.strip() for line in result.stderr.splitlines()[1:])
    assert errors == sorted(
        [
            "receivers::otlp::protocols::grpc::tls: cert_file and key_file must be given together",
            "receivers::otlp::protocols::http::tls: a server TLS config needs cert_file and key_file",
            "exporters::otlp::tls: cert_file and key_file must be given together",
            "exporters::otlphttp::tls: min_version must be one of ['1.2', '1.3'], not '1.1'",
        ]
    )


def test_tls_settings_grpc_cannot_honour_are_config_errors(tmp_path: Path) -> None:
    """Python's gRPC client has no skip-verify or version pinning: refuse, do not silently ignore.

    The gRPC receiver is otlpd's own HTTP/2 server on Python's ssl, so it honours min_version.
    """
    path = tmp_path / "c.yaml"
    path.write_text(
        """
receivers:
  otlp:
    protocols:
      grpc: {tls: {cert_file: c.pem, key_file: k.pem, min_version: "1.3"}}
exporters:
  otlp: {endpoint: "x:4317", tls: {insecure_skip_verify: true}}
  otlp/reload: {endpoint: "x:4317", tls: {reload_interval: 1h}}
service: {pipelines: {traces: {receivers: [otlp], exporters: [otlp, otlp/reload]}}}
"""
    )
    with pytest.raises(ConfigError) as info:
        load(path, {})
    errors = "\n".join(info.value.errors)
    assert "receivers::" not in errors
    assert "exporters::otlp: tls: insecure_skip_verify is not available for gRPC in otlpd" in errors
    assert "exporters::otlp/reload::tls: reload_interval is not supported by otlpd" in errors
