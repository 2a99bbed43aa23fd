"""``python -m otlpd`` as a user runs it: validate, print-config, components, version."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from otlpd import __version__

COLLECTOR_YAML = Path(__file__).parent / "config" / "collector.yaml"


def otlpd(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("OTLPD_")}
    return subprocess.run(
        [sys.executable, "-m", "otlpd", *args],
        capture_output=True,
        text=True,
        timeout=30,
        env={**base, **(env or {})},
    )


def write(tmp_path: Path, config: dict[str, Any] | str, name: str = "otlpd.yaml") -> Path:
    path = tmp_path / name
    path.write_text(config if isinstance(config, str) else yaml.safe_dump(config, sort_keys=False))
    return path


def test_version() -> None:
    result = otlpd("version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"otlpd {__version__}"


def test_components_lists_every_component_and_alias() -> None:
    result = otlpd("components")
    assert result.returncode == 0, result.stderr
    sections: dict[str, list[str]] = {}
    current = ""
    for line in result.stdout.splitlines():
        if not line.startswith(" "):
            current = line.rstrip(":")
            sections[current] = []
        else:
            sections[current].append(line.strip())
    names = {section: [entry.split(":")[0] for entry in entries] for section, entries in sections.items()}
    assert names["receivers"] == ["otlp"]
    assert names["processors"] == ["batch"]
    assert names["exporters"] == ["otlp (alias", "otlphttp (alias", "debug", "file", "store"]
    exporters = "\n".join(sections["exporters"])
    assert "otlp (alias: otlp_grpc)" in exporters
    assert "[logs, metrics, traces]" in exporters


def test_validate_accepts_a_collector_config_unchanged() -> None:
    result = otlpd("validate", "--config", str(COLLECTOR_YAML))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{COLLECTOR_YAML}: valid"
    assert result.stderr == ""


BAD = """
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:4317
  jaeger: {}
processors:
  batch:
    timeout: 10
exporters:
  otlp:
    endpoint: up:4317
    bogus: true
  otlphttp:
    endpoint: up:4318
  debug:
    verbosity: loud
service:
  shutdown_timeout: 1 minute
  pipelines:
    traces:
      receivers: [otlp, zipkin]
      processors: [batch]
      exporters: [otlp/x, otlp]
    spans:
      receivers: [otlp]
      exporters: [otlp]
"""

BAD_ERRORS = [
    'receivers::jaeger: unknown receiver type "jaeger" (known: otlp)',
    "processors::batch::timeout: duration 10 has no unit; write e.g. 10s or 10ms",
    "exporters::otlp::bogus: unknown key (not a setting of this component in otlpd)",
    "exporters::otlphttp: endpoint must be an http:// or https:// URL, not 'up:4318'",
    "exporters::debug::verbosity: Input should be 'basic', 'normal' or 'detailed'",
    "service::shutdown_timeout: invalid duration '1 minute'; expected e.g. 200ms, 5s, 1m30s",
    'service::pipelines::traces: receiver "zipkin" is not defined',
    'service::pipelines::traces: exporter "otlp/x" is not defined',
    'service::pipelines::spans: unknown signal "spans" (expected traces, metrics or logs)',
]


def test_validate_prints_every_error_with_its_path_and_exits_1(tmp_path: Path) -> None:
    path = write(tmp_path, BAD)
    result = otlpd("validate", "--config", str(path))
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert lines[0] == f"otlpd: invalid config {path}:"
    errors = [line.strip() for line in lines[1:]]
    assert sorted(errors) == sorted(BAD_ERRORS)
    assert "Traceback" not in result.stderr
    assert "valid" not in result.stdout


def test_serve_refuses_an_invalid_config_the_same_way(tmp_path: Path) -> None:
    result = otlpd("serve", "--config", str(write(tmp_path, BAD)))
    assert result.returncode == 1
    assert 'service::pipelines::traces: exporter "otlp/x" is not defined' in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("receivers: [unclosed\n", "invalid YAML (line 2, column 1)"),
        ("just a string\n", "the config must be a YAML mapping"),
    ],
)
def test_validate_broken_yaml(tmp_path: Path, text: str, error: str) -> None:
    result = otlpd("validate", "-c", str(write(tmp_path, text)))
    assert result.returncode == 1
    assert error in result.stderr


def test_validate_a_missing_file(tmp_path: Path) -> None:
    result = otlpd("validate", "--config", str(tmp_path / "absent.yaml"))
    assert result.returncode == 1
    assert "cannot read config" in result.stderr
    assert "Traceback" not in result.stderr


def test_validate_needs_a_config() -> None:
    result = otlpd("validate")
    assert result.returncode == 2
    assert "--config" in result.stderr


def test_validate_warns_about_unset_variables(tmp_path: Path) -> None:
    config = {
        "receivers": {"otlp": {"protocols": {"grpc": {"endpoint": "127.0.0.1:4317"}}}},
        "exporters": {"otlp": {"endpoint": "x:4317", "headers": {"api-key": "${env:NOT_SET_ANYWHERE}"}}},
        "service": {"pipelines": {"traces": {"receivers": ["otlp"], "exporters": ["otlp"]}}},
    }
    result = otlpd("validate", "-c", str(write(tmp_path, config)))
    # an empty header value is valid, so the config is, but the user is warned
    assert result.returncode == 0, result.stderr
    assert "warning: environment variable NOT_SET_ANYWHERE is not set" in result.stderr


def test_print_config_redacts_headers_and_its_output_is_a_valid_config(tmp_path: Path) -> None:
    env = {"UPSTREAM_TOKEN": "very-secret-token", "VENDOR_API_KEY": "k3y-k3y"}
    first = otlpd("print-config", "--config", str(COLLECTOR_YAML), env=env)
    assert first.returncode == 0, first.stderr
    assert "very-secret-token" not in first.stdout
    assert "k3y-k3y" not in first.stdout
    assert "tenant-1" not in first.stdout
    printed = yaml.safe_load(first.stdout)
    assert printed["exporters"]["otlp"]["headers"] == {
        "x-scope-orgid": "[REDACTED]",
        "authorization": "[REDACTED]",
    }
    assert printed["exporters"]["otlphttp/vendor"]["headers"] == {"api-key": "[REDACTED]"}
    # defaults are filled in, in the Collector's syntax
    assert printed["exporters"]["otlp"]["timeout"] == "10s"
    assert printed["exporters"]["otlp"]["retry_on_failure"]["max_elapsed_time"] == "5m"
    assert printed["processors"]["batch"]["timeout"] == "200ms"
    assert printed["service"]["shutdown_timeout"] == "30s"

    path = write(tmp_path, first.stdout, "printed.yaml")
    validated = otlpd("validate", "--config", str(path))
    assert validated.returncode == 0, validated.stderr
    second = otlpd("print-config", "--config", str(path))
    assert second.returncode == 0, second.stderr
    assert second.stdout == first.stdout  # a fixed point


def test_print_config_round_trips_dollar_signs(tmp_path: Path) -> None:
    config = {
        "receivers": {"otlp": {"protocols": {"grpc": None}}},
        "exporters": {"file": {"path": "/tmp/$${env:HOME}/cost-$$5.jsonl"}},
        "service": {"pipelines": {"traces": {"receivers": ["otlp"], "exporters": ["file"]}}},
    }
    first = otlpd("print-config", "-c", str(write(tmp_path, config)), env={"HOME": "/root"})
    assert first.returncode == 0, first.stderr
    second = otlpd("print-config", "-c", str(write(tmp_path, first.stdout, "p.yaml")), env={"HOME": "/root"})
    assert second.returncode == 0, second.stderr
    assert second.stdout == first.stdout
    assert "/root" not in second.stdout


def test_print_config_without_a_file_shows_the_default() -> None:
    result = otlpd("print-config")
    assert result.returncode == 0, result.stderr
    printed = yaml.safe_load(result.stdout)
    assert list(printed["exporters"]) == ["store", "debug"]
    assert printed["exporters"]["store"]["path"] == "./data/otlpd.duckdb"
    assert printed["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"] == "0.0.0.0:4317"
    upstream = otlpd("print-config", env={"OTLPD_EXPORTER_OTLP_ENDPOINT": "http://10.0.0.1:4317"})
    printed = yaml.safe_load(upstream.stdout)
    assert printed["exporters"]["otlp"]["endpoint"] == "http://10.0.0.1:4317"
    assert printed["service"]["pipelines"]["logs"]["exporters"] == ["store", "debug", "otlp"]


def test_print_config_follows_otlpd_config(tmp_path: Path) -> None:
    config = {
        "receivers": {"otlp/mine": {"protocols": {"http": None}}},
        "exporters": {"debug/mine": {}},
        "service": {"pipelines": {"logs": {"receivers": ["otlp/mine"], "exporters": ["debug/mine"]}}},
    }
    result = otlpd("print-config", env={"OTLPD_CONFIG": str(write(tmp_path, config))})
    assert result.returncode == 0, result.stderr
    assert list(yaml.safe_load(result.stdout)["receivers"]) == ["otlp/mine"]


def test_print_config_of_an_invalid_config_exits_1(tmp_path: Path) -> None:
    result = otlpd("print-config", "--config", str(write(tmp_path, BAD)))
    assert result.returncode == 1
    assert result.stdout == ""


def test_unknown_command_exits_2() -> None:
    result = otlpd("frobnicate")
    assert result.returncode == 2


def test_serve_refuses_workers_sharing_a_store(tmp_path: Path) -> None:
    """A DuckDB file has one writer process: N workers cannot share one store."""
    result = otlpd("serve", "--workers", "2", env={"OTLPD_STORE_PATH": str(tmp_path / "db.duckdb")})
    assert result.returncode == 1
    assert "service::workers: 2 workers cannot share the store exporter (store)" in result.stderr
    assert not (tmp_path / "db.duckdb").exists()
    env = {"OTLPD_WORKERS": "3", "OTLPD_STORE_PATH": str(tmp_path / "db.duckdb")}
    assert "3 workers cannot share" in otlpd("serve", env=env).stderr
