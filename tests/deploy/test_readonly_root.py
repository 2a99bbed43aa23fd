"""otlpd runs with a read-only root file system, as the image and the manifests run it: in a private
mount namespace every file system is remounted read-only except a fresh /tmp, which also holds the
working directory (the image's /var/lib/otlpd volume). With two workers and the compose config's
file exporter (./data/... under the working directory), it serves, writes, and drains on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from otlpd.pdata import Signal
from tests.deploy.support import DEPLOY, ROOT, require_tool
from tests.e2e import sdk
from tests.support.process import free_port

SCRIPT = r"""
set -eu
config=$(cat "$CONFIG_SRC")  # read before /tmp is replaced
# A checkout under /tmp (CI clones often are) would vanish under the fresh /tmp: keep its
# top directory, bound back in place (and made read-only below like everything else).
keep=""
case "$OTLPD" in /tmp/*) keep=$(printf '%s' "$OTLPD" | cut -d/ -f1-3) ;; esac
if [ -n "$keep" ]; then
    mount -t tmpfs tmpfs /mnt
    mkdir /mnt/keep
    mount --bind "$keep" /mnt/keep
fi
mount -t tmpfs -o size=64m,mode=1777 tmpfs /tmp
if [ -n "$keep" ]; then
    mkdir -p "$keep"
    mount --bind /mnt/keep "$keep"
fi
awk '{print $2}' /proc/self/mounts | while read -r m; do
    case "$m" in /proc|/proc/*|/sys|/sys/*|/dev|/dev/*|/tmp) continue ;; esac
    mount -o remount,bind,ro "$m" 2>/dev/null || true
done
if touch "$PROBE" 2>/dev/null; then echo "the root file system is still writable" >&2; exit 3; fi
mkdir /tmp/workdir
cd /tmp/workdir
printf '%s\n' "$config" > /tmp/otlpd.yaml
exec "$OTLPD" serve --config /tmp/otlpd.yaml
"""


def _unshare() -> tuple[list[str] | None, str]:
    """A command prefix that makes a private mount namespace: as root, or in a user namespace."""
    problems = []
    for prefix in (["unshare", "-m"], ["unshare", "-r", "-m"]):
        command = [*prefix, "--propagation", "private", "sh", "-c", "mount -t tmpfs tmpfs /mnt"]
        try:
            proc = subprocess.run(command, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired) as exc:
            problems.append(f"{' '.join(prefix)}: {exc}")
            continue
        if proc.returncode == 0:
            return [*prefix, "--propagation", "private"], ""
        problems.append(f"{' '.join(prefix)}: {proc.stderr.strip() or proc.returncode}")
    return None, "; ".join(problems)


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=2) as resp:
        return str(resp.read().decode())


@pytest.mark.timeout(90)
def test_otlpd_runs_with_a_read_only_root(tmp_path: Path) -> None:
    unshare, why = _unshare()
    if unshare is None:
        pytest.skip(
            f"cannot make a private mount namespace here (needs CAP_SYS_ADMIN or user namespaces): {why}"
        )
    otlpd = require_tool("otlpd")
    grpc, http, admin = free_port(), free_port(), free_port()
    config = yaml.safe_load((DEPLOY / "compose" / "otlpd.yaml").read_text())
    config["receivers"]["otlp"]["protocols"] = {
        "grpc": {"endpoint": f"127.0.0.1:{grpc}"},
        "http": {"endpoint": f"127.0.0.1:{http}"},
    }
    config["service"]["http"]["endpoint"] = f"127.0.0.1:{admin}"
    config["service"]["workers"] = 2
    source = tmp_path / "otlpd.yaml"
    source.write_text(yaml.safe_dump(config))
    probe = ROOT / ".readonly-root-probe"
    log = tmp_path / "otlpd.log"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("OTLPD_")},
        "CONFIG_SRC": str(source),
        "PROBE": str(probe),
        "OTLPD": str(otlpd),
        "OTLPD_LOG_FORMAT": "json",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*unshare, "bash", "-c", SCRIPT],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, f"otlpd exited {proc.returncode}:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"not ready:\n{log.read_text()}"
            try:
                _get(f"http://127.0.0.1:{admin}/health/ready")
                break
            except OSError:
                time.sleep(0.1)
        sdk.send_traces(sdk.exporter(Signal.TRACES, "grpc", f"127.0.0.1:{grpc}"), "ro", n=5)
        sdk.send_logs(sdk.exporter(Signal.LOGS, "http", f"http://127.0.0.1:{http}"), "ro", n=4)

        def written() -> float:
            lines = _get(f"http://127.0.0.1:{admin}/metrics").splitlines()
            return sum(
                float(line.rsplit(" ", 1)[1])
                for line in lines
                if line.startswith("otlpd_exporter_sent_items_total{") and 'exporter="file"' in line
            )

        while written() < 9:  # the file exporter wrote ./data/... in the working directory
            assert time.monotonic() < deadline + 20, (
                f"file exporter wrote {written()} items:\n{log.read_text()}"
            )
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(40) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        probe.unlink(missing_ok=True)
    events = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    problems = [e for e in events if e.get("level") in {"error", "critical", "ERROR", "CRITICAL"}]
    assert not problems, problems
    assert "Read-only file system" not in log.read_text()
