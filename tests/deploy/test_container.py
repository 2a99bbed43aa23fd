"""The container: Dockerfile, .dockerignore and deploy/docker-compose.yaml, read as the builder and
compose would read them (no Docker engine here). CI builds and runs the image for real."""

from __future__ import annotations

import fnmatch
import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.support import DEPLOY, ROOT, load_yaml

UID = 10001


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or (line.startswith("#") and not pending):
            continue
        if line.startswith("#"):
            continue  # a comment inside a continued instruction
        pending += line
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        word, _, rest = pending.partition(" ")
        out.append((word.upper(), rest.strip()))
        pending = ""
    assert not pending, "dangling line continuation"
    return out


def stages(path: Path) -> list[list[tuple[str, str]]]:
    result: list[list[tuple[str, str]]] = []
    for instr in instructions(path):
        if instr[0] == "FROM":
            result.append([])
        if result:
            result[-1].append(instr)
    return result


DOCKERFILE = ROOT / "Dockerfile"


def final_stage() -> list[tuple[str, str]]:
    return stages(DOCKERFILE)[-1]


def args(stage: list[tuple[str, str]], name: str) -> list[str]:
    return [rest for word, rest in stage if word == name]


def test_multi_stage_on_a_pinned_slim_base() -> None:
    all_stages = stages(DOCKERFILE)
    assert len(all_stages) >= 2
    base_args = {
        m.group(1): m.group(2)
        for word, rest in instructions(DOCKERFILE)
        if word == "ARG" and (m := re.fullmatch(r"(\w+)=(\S+)", rest))
    }
    base = base_args["PYTHON_IMAGE"]
    assert re.fullmatch(r"python:3\.11(\.\d+)?-slim-\w+(@sha256:[0-9a-f]{64})?", base), base
    assert all_stages[0][0][1] == "${PYTHON_IMAGE} AS build"
    assert final_stage()[0][1] == "${PYTHON_IMAGE} AS runtime"


def test_build_stage_installs_from_the_hashed_locks_without_compiling() -> None:
    build = " ".join(rest for word, rest in stages(DOCKERFILE)[0] if word == "RUN")
    assert "--require-hashes --only-binary=:all: -r requirements/build.lock" in build
    assert "--require-hashes --only-binary=:all: --no-deps -r requirements/runtime.lock" in build
    assert "python -m venv --without-pip /opt/otlpd" in build
    assert "compileall" in build
    assert "unchecked-hash" in build


def test_final_stage_has_no_build_tools_and_runs_unprivileged() -> None:
    stage = final_stage()
    runs = " ".join(args(stage, "RUN"))
    assert "pip uninstall --yes --quiet pip setuptools wheel" in runs
    for tool in ("apt-get install", "gcc", "build-essential", "hatchling", "pip install", "curl", "wget"):
        assert tool not in runs, tool
    assert args(stage, "COPY") == ["--from=build /opt/otlpd /opt/otlpd"]
    user = args(stage, "USER")
    assert user == ["${OTLPD_UID}:${OTLPD_UID}"]
    assert f"OTLPD_UID={UID}" in args(stage, "ARG")
    assert "PYTHONDONTWRITEBYTECODE=1" in " ".join(args(stage, "ENV"))


def test_uid_matches_kubernetes_and_helm() -> None:
    base = load_yaml(DEPLOY / "kubernetes" / "base" / "deployment.yaml")
    assert base["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == UID
    values = load_yaml(DEPLOY / "helm" / "otlpd" / "values.yaml")
    assert values["podSecurityContext"]["runAsUser"] == UID
    assert values["podSecurityContext"]["fsGroup"] == UID


def test_data_directory_ports_health_and_signals() -> None:
    stage = final_stage()
    assert args(stage, "WORKDIR") == ["/var/lib/otlpd"]
    assert args(stage, "VOLUME") == ['["/var/lib/otlpd"]']
    runs = " ".join(args(stage, "RUN"))
    assert "install -d -o otlpd -g otlpd -m 0750 /var/lib/otlpd" in runs  # owned by the non-root user
    assert sorted(int(p) for rest in args(stage, "EXPOSE") for p in rest.split()) == [4317, 4318, 8080]
    (health,) = args(stage, "HEALTHCHECK")
    options, _, command = health.partition("CMD ")
    assert "--interval=" in options
    assert "--timeout=" in options
    cmd = json.loads(command)  # exec form: no shell needed in the image
    assert cmd[:2] == ["python", "-c"]
    assert "/health/live" in cmd[2]
    assert "8080" in cmd[2]
    assert args(stage, "STOPSIGNAL") == ["SIGTERM"]
    assert args(stage, "ENTRYPOINT") == ['["otlpd"]']  # otlpd is PID 1: it drains on SIGTERM itself
    assert args(stage, "CMD") == ['["serve"]']
    assert "tini" not in DOCKERFILE.read_text().lower().replace("tini-free", "")


def dockerignored(path: str) -> bool:
    """Docker's rule: the last matching pattern wins; ``!`` re-includes."""
    ignored = False
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        pattern = line.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        candidates = [path] + [str(Path(*Path(path).parts[:i])) for i in range(1, len(Path(path).parts))]
        regex = fnmatch.translate(pattern).replace(".*", "[^/]*").replace("[^/]*[^/]*", ".*")
        if pattern.startswith("**/"):
            regex = "(.*/)?" + fnmatch.translate(pattern[3:]).replace(".*", "[^/]*")
        if any(re.fullmatch(regex, c) for c in candidates):
            ignored = not negate
    return ignored


def test_build_context_is_only_what_the_image_needs() -> None:
    for word, rest in instructions(DOCKERFILE):
        if word != "COPY" or rest.startswith("--from"):
            continue
        *sources, _ = rest.split()
        for source in sources:
            assert (ROOT / source).exists(), source
            assert not dockerignored(source.rstrip("/")), f"{source} is excluded by .dockerignore"
    assert not dockerignored("src/otlpd/cli.py")
    for excluded in (".git", ".venv", ".tools", "tests", "bench", "deploy", "data", "src/otlpd/__pycache__"):
        assert dockerignored(excluded), f"{excluded} must not be sent to the builder"


def compose() -> dict[str, Any]:
    return dict(load_yaml(DEPLOY / "docker-compose.yaml"))


def test_compose_runs_otlpd_like_kubernetes_does() -> None:
    otlpd = compose()["services"]["otlpd"]
    assert (DEPLOY / otlpd["build"]["context"] / otlpd["build"]["dockerfile"]).resolve() == DOCKERFILE
    assert otlpd["read_only"] is True
    assert any(t.startswith("/tmp") for t in otlpd["tmpfs"])
    assert any(v.endswith(":/var/lib/otlpd") for v in otlpd["volumes"])
    assert otlpd["cap_drop"] == ["ALL"]
    assert "no-new-privileges:true" in otlpd["security_opt"]
    assert otlpd["stop_signal"] == "SIGTERM"
    grace = int(otlpd["stop_grace_period"].rstrip("s"))
    assert grace > 30, "longer than service.shutdown_timeout"
    assert {int(p.rsplit(":", 1)[1]) for p in otlpd["ports"]} == {4317, 4318, 8080}
    assert all(p.startswith("127.0.0.1:") for s in compose()["services"].values() for p in s.get("ports", []))
    assert "/health/live" in " ".join(otlpd["healthcheck"]["test"])
    config = next(v for v in otlpd["volumes"] if v.endswith(":/etc/otlpd/otlpd.yaml:ro"))
    assert otlpd["command"] == ["serve", "--config", "/etc/otlpd/otlpd.yaml"]
    assert (DEPLOY / config.split(":")[0]).is_file()  # test_otlpd_configs validates it


def test_compose_prometheus_scrapes_otlpd_with_the_rules() -> None:
    services = compose()["services"]
    prometheus = services["prometheus"]
    mounts = dict(v.removesuffix(":ro").split(":") for v in prometheus["volumes"] if v.startswith("./"))
    config_path = next(host for host, target in mounts.items() if target.endswith("prometheus.yaml"))
    assert f"--config.file={mounts[config_path]}" in prometheus["command"]
    config = load_yaml(DEPLOY / config_path)
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "otlpd")
    assert job["static_configs"][0]["targets"] == ["otlpd:8080"]
    rules_target = mounts["./monitoring/prometheus/otlpd-alerts.yaml"]
    assert any(fnmatch.fnmatch(rules_target, pattern) for pattern in config["rule_files"])
    assert prometheus["depends_on"]["otlpd"]["condition"] == "service_healthy"


def test_compose_example_app_sends_otlp_to_otlpd() -> None:
    services = compose()["services"]
    apps = {name: s for name, s in services.items() if name.startswith("app-")}
    assert set(apps) == {"app-traces", "app-metrics", "app-logs"}
    endpoints = set()
    for app in apps.values():
        assert app["command"][0] in {"traces", "metrics", "logs"}
        endpoints |= {a.split("=", 1)[1] for a in app["command"] if a.startswith("--otlp-endpoint=")}
        assert app["depends_on"]["otlpd"]["condition"] == "service_healthy"
    assert endpoints == {"otlpd:4317", "otlpd:4318"}


def test_compose_images_are_pinned_and_mounts_exist() -> None:
    for name, service in compose()["services"].items():
        if "image" in service and "build" not in service:
            image = service["image"]
            assert re.search(r":v?\d+\.\d+\.\d+(@sha256:[0-9a-f]{64})?$", image), (
                f"{name}: {image} is not pinned"
            )
        for volume in service.get("volumes", []):
            host = volume.split(":")[0]
            if host.startswith("./"):
                assert (DEPLOY / host).exists(), f"{name}: {host} does not exist"


@pytest.mark.parametrize(
    "path", ["grafana/provisioning/datasources/prometheus.yaml", "prometheus/prometheus.yaml"]
)
def test_monitoring_config_files_parse(path: str) -> None:
    assert load_yaml(DEPLOY / "monitoring" / path)
