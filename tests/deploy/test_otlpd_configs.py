"""Every otlpd config the deploy files ship passes ``otlpd validate``: the compose config, the Kustomize
base, each overlay's rendered ConfigMap and the Helm chart's rendered ConfigMap (default and all-on)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.deploy.support import DEPLOY, SOURCES, by_kind, render, rendered, require_tool

FILES = {
    "compose": DEPLOY / "compose" / "otlpd.yaml",
    "kustomize:base-file": DEPLOY / "kubernetes" / "base" / "otlpd.yaml",
}


def _config_file(source: str, tmp_path: Path) -> Path:
    if source in FILES:
        return FILES[source]
    render(source)  # skips when the tool is missing
    maps = [d for d in by_kind(rendered(source), "ConfigMap") if "otlpd.yaml" in d.get("data", {})]
    assert len(maps) == 1, f"{source}: expected one ConfigMap with otlpd.yaml"
    path = tmp_path / f"{source.replace(':', '-')}.yaml"
    path.write_text(maps[0]["data"]["otlpd.yaml"])
    return path


def _start(config: Path) -> subprocess.Popen[str]:
    # No OTLPD_* variables, in particular no OTLPD_API_KEY: an optional Secret may be absent.
    environ = {k: v for k, v in os.environ.items() if not k.startswith("OTLPD_")}
    args = [str(require_tool("otlpd")), "validate", "--config", str(config)]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environ)


@pytest.fixture(scope="module")
def validations(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, int, str, str] | str]:
    """Every config validated at once (the validations run in parallel): results, or why one was skipped."""
    tmp = tmp_path_factory.mktemp("configs")
    started: dict[str, tuple[Path, subprocess.Popen[str]]] = {}
    results: dict[str, tuple[Path, int, str, str] | str] = {}
    for source in [*FILES, *SOURCES]:
        try:
            config = _config_file(source, tmp)
            started[source] = (config, _start(config))
        except pytest.skip.Exception as skip:
            results[source] = str(skip.msg)
    for source, (config, proc) in started.items():
        out, err = proc.communicate(timeout=60)
        results[source] = (config, proc.returncode, out, err)
    return results


@pytest.mark.parametrize("source", [*FILES, *SOURCES])
def test_config_passes_otlpd_validate(
    source: str, validations: dict[str, tuple[Path, int, str, str] | str]
) -> None:
    result = validations[source]
    if isinstance(result, str):
        pytest.skip(result)
    config, code, out, err = result
    assert code == 0, f"{source}:\n{err}"
    assert out.strip() == f"{config}: valid"
    loaded = yaml.safe_load(config.read_text())
    pipelines = loaded["service"]["pipelines"]
    assert {p.split("/")[0] for p in pipelines} == {"traces", "metrics", "logs"}, f"{source}: every signal"
    for protocol in ("grpc", "http"):
        endpoint = loaded["receivers"]["otlp"]["protocols"][protocol]["endpoint"]
        assert endpoint.startswith("0.0.0.0:"), (
            f"{source}: {protocol} must listen on all interfaces in a container"
        )
    assert "store" not in {k.split("/")[0] for k in loaded["exporters"]}


def test_validate_rejects_a_broken_config(tmp_path: Path) -> None:
    """The check above means something: a broken gateway config fails, naming the key."""
    config = yaml.safe_load(FILES["kustomize:base-file"].read_text())
    config["exporters"]["otlp/upstream"]["retry_on_failure"]["max_interval"] = "30 seconds"
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(config))
    proc = _start(path)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert str(path) in err
    assert "exporters::otlp/upstream::retry_on_failure::max_interval" in err
