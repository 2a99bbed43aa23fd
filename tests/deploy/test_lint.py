"""yamllint, with the repository's .yamllint: every YAML file in the repository, and the rendered
output of Helm (its templates are Go templates, not YAML, so .yamllint excludes them) and Kustomize."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.deploy.support import ROOT, SOURCES, render, require_tool, run

# Rendered output mixes the templates' indentation with toYaml's (sequences not indented) and
# carries embedded files (the dashboard JSON, the rules) on long lines; everything else is as strict.
RENDERED_CONFIG = """\
extends: {base}
rules:
  indentation:
    spaces: 2
    indent-sequences: whatever
  line-length: disable
"""


LINTED = ["deploy", ".github", ".yamllint"]  # the same paths CI lints


def test_yamllint_deploy_files() -> None:
    yamllint = require_tool("yamllint")
    files = set(run([yamllint, "--list-files", *LINTED]).split())
    assert {"deploy/kubernetes/base/deployment.yaml", ".github/workflows/ci.yaml", ".yamllint"} <= files
    assert not {f for f in files if f.startswith("deploy/helm/otlpd/templates/")}, "templates are not YAML"
    run([yamllint, "--strict", "-f", "parsable", *LINTED])


@pytest.mark.parametrize("source", SOURCES)
def test_yamllint_rendered(source: str, tmp_path: Path) -> None:
    yamllint = require_tool("yamllint")
    config = tmp_path / "yamllint-rendered.yaml"
    config.write_text(RENDERED_CONFIG.format(base=ROOT / ".yamllint"))
    path = tmp_path / "rendered.yaml"
    path.write_text(render(source))
    run([yamllint, "--strict", "-f", "parsable", "-c", config, path])
