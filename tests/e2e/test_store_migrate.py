"""`otlpd migrate` on databases of older, newer and broken schemas, then `otlpd serve` reading old data."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from otlpd.store.duckdb.migrations import LATEST
from tests.store import v1
from tests.store.support import MS, SECOND, ok, store_config
from tests.support.process import Otlpd

T0 = (time.time_ns() // (10 * SECOND)) * 10 * SECOND - 600 * SECOND  # ten minutes ago, on a 10 s boundary


def migrate(tmp_path: Path, config: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    config_path = tmp_path / "otlpd.yaml"
    config_path.write_text(yaml.safe_dump(config))
    return subprocess.run(
        [sys.executable, "-m", "otlpd", "migrate", "--config", str(config_path)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={**os.environ, "OTLPD_LOG_FORMAT": "json"},
        check=False,
    )


@pytest.mark.timeout(60)
def test_migrate_v1_then_serve_the_old_data(tmp_path: Path) -> None:
    db = str(tmp_path / "old.duckdb")
    v1.create(db, T0)
    config = store_config(db)

    done = migrate(tmp_path, config)
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == f"store ({db}): schema 1 -> 3 (applied 2, 3)\n"
    assert v1.version(db) == 3
    again = migrate(tmp_path, config)  # idempotent
    assert (again.returncode, again.stdout, again.stderr) == (
        0,
        f"store ({db}): schema 3 is up to date\n",
        "",
    )

    with Otlpd(config) as otlpd:
        admin = otlpd.admin
        assert ok(admin, "/api/v1/services") == {"services": ["legacy-api", "legacy-worker"]}
        assert ok(admin, "/api/v1/services/legacy-api/operations") == {
            "operations": [
                {"name": "GET /orders", "spanKind": "server"},
                {"name": "SELECT orders", "spanKind": "client"},
            ]
        }
        traces = ok(admin, "/api/v1/traces")["traces"]
        assert [(t["traceId"], t["rootName"], t["spanCount"], t["errorCount"]) for t in traces] == [
            (v1.OTHER_TRACE.hex(), "tick", 1, 0),
            (v1.TRACE.hex(), "GET /orders", 2, 1),
        ]
        assert [t["traceId"] for t in ok(admin, "/api/v1/traces", {"attr.db.rows": "12"})["traces"]] == [
            v1.TRACE.hex()
        ]
        spans = ok(admin, f"/api/v1/traces/{v1.TRACE.hex()}")["spans"]
        assert [(s["name"], s["durationNs"], s["status"]["code"]) for s in spans] == [
            ("GET /orders", 50 * MS, "unset"),
            ("SELECT orders", 40 * MS, "error"),
        ]
        (jaeger,) = ok(admin, "/api/traces/c0ffee")["data"]  # the 64-bit id, as Jaeger writes it
        assert jaeger["processes"]["p1"]["serviceName"] == "legacy-worker"
        logs = ok(admin, "/api/v1/logs")["logs"]
        assert [(r["body"], r["traceId"]) for r in logs] == [
            ("slow query", ""),
            ("order 42 loaded", v1.TRACE.hex()),
        ]
        assert ok(admin, "/api/v1/metrics") == {
            "metrics": [
                {"name": "legacy.latency", "type": "histogram", "unit": "ms", "description": ""},
                {"name": "legacy.queue", "type": "gauge", "unit": "", "description": ""},
            ]
        }
        window = {"start": T0, "end": T0 + 20 * SECOND, "step": "10s"}
        (latency,) = ok(admin, "/api/v1/metrics/legacy.latency/series", window)["series"]
        assert [(p["count"], p["sum"]) for p in latency["points"]] == [(2, 60.0), (2, 100.0)]
        (queue,) = ok(admin, "/api/v1/metrics/legacy.queue/series", window)["series"]
        assert [p["value"] for p in queue["points"]] == [3.0, 5.0]
        assert otlpd.terminate() == 0
        events = otlpd.log_events()
    assert any(e.get("msg") == "starting otlpd" for e in events), events
    assert not [e for e in events if e.get("msg") == "schema migrated"]  # migrate did it already


@pytest.mark.timeout(60)
def test_serve_migrates_a_v1_database_on_start(tmp_path: Path) -> None:
    db = str(tmp_path / "old.duckdb")
    v1.create(db, T0)
    with Otlpd(store_config(db)) as otlpd:
        assert ok(otlpd.admin, "/api/v1/services") == {"services": ["legacy-api", "legacy-worker"]}
        assert otlpd.terminate() == 0
        (event,) = [e for e in otlpd.log_events() if e.get("msg") == "schema migrated"]
    assert event["applied"] == [2, 3]
    assert v1.version(db) == 3


@pytest.mark.timeout(60)
def test_a_database_from_a_newer_otlpd_is_refused(tmp_path: Path) -> None:
    db = str(tmp_path / "future.duckdb")
    v1.create(db, T0, version=LATEST + 1)
    done = migrate(tmp_path, store_config(db))
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.startswith(f"otlpd: exporters::store: cannot migrate {db}: ")
    assert f"schema version {LATEST + 1}; this otlpd knows up to {LATEST}" in done.stderr
    assert v1.version(db) == LATEST + 1
    assert "operations" not in v1.tables(db)
    # serve refuses it too, instead of running without its store
    otlpd = Otlpd(store_config(db))
    with pytest.raises(RuntimeError, match="exited with"):
        otlpd.start()
    try:
        assert "this otlpd knows up to" in otlpd.logs()
    finally:
        otlpd.__exit__()


@pytest.mark.timeout(60)
def test_a_failing_migration_changes_nothing(tmp_path: Path) -> None:
    import duckdb

    db = str(tmp_path / "broken.duckdb")
    v1.create(db, T0)
    con = duckdb.connect(db)
    con.execute("CREATE TABLE trace_index (something_else VARCHAR)")
    con.close()
    done = migrate(tmp_path, store_config(db))
    assert done.returncode == 1
    assert "cannot migrate" in done.stderr
    assert "trace_index" in done.stderr
    assert v1.version(db) == 1
    assert {"operations", "metric_catalog"}.isdisjoint(v1.tables(db))


def test_migrate_without_a_store(tmp_path: Path) -> None:
    config = store_config("unused.duckdb")
    config["exporters"] = {"debug": {}}
    for pipeline in config["service"]["pipelines"].values():
        pipeline["exporters"] = ["debug"]
    done = migrate(tmp_path, config)
    assert (done.returncode, done.stdout) == (
        0,
        "otlpd: no store exporter in the config: nothing to migrate\n",
    )
    assert not (tmp_path / "unused.duckdb").exists()


def test_migrate_every_store_of_a_config(tmp_path: Path) -> None:
    """Two stores: each is brought up to date and reported."""
    config = store_config(str(tmp_path / "a.duckdb"))
    config["exporters"]["store/b"] = {"path": str(tmp_path / "b.duckdb")}
    config["service"]["pipelines"]["logs"]["exporters"] = ["store", "store/b"]
    v1.create(str(tmp_path / "b.duckdb"), T0)
    done = migrate(tmp_path, config)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        f"store ({tmp_path / 'a.duckdb'}): schema 0 -> 3 (applied 1, 2, 3)",
        f"store/b ({tmp_path / 'b.duckdb'}): schema 1 -> 3 (applied 2, 3)",
    ]
