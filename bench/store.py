"""Store benchmark: sustained ingest, and queries over a large database.

Ingest: ``otlpd serve`` pinned to one core with OTLP/gRPC in → batch → the
``store`` exporter (nothing else), the load generator and this script on the
other core. Reported: spans/s stored over the measurement window (the store
exporter's sent counter, which counts a batch once it is in the database's
write buffer), collector CPU-seconds per second (1.0 = its core was
saturated), refusals, peak RSS, and the rows in the database after shutdown
(must equal what was accepted: nothing lost).

Queries: a database of ``--spans`` spans (default 10 M) over the last 24 h,
10 services, traces of ~10 spans, built in-process through the engine's own
write path from realistic pre-built requests whose trace ids and timestamps
are rewritten for every batch (inside the stored span too, so what the API
returns is consistent). Then ``otlpd serve`` (pinned to one core) opens it and
the API is timed over HTTP: trace by id (random stored traces) and service
search (``/api/v1/traces?service=…&limit=20``), p50/p95. Also reported: the
database size per million spans.

    python -m bench.store                    # both, 10 M spans (~4 min)
    python -m bench.store --spans 1000000 --ingest-seconds 10
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from bench import procfs
from bench.requests import build_traces
from bench.run import PROCS, RESULTS, _pinned, _tail, free_port

COLLECTOR_CORE = 0
LOAD_CORE = 1


def _otlpd(
    workdir: Path, config: dict[str, Any], core: int | None
) -> tuple[subprocess.Popen[bytes], int, Path]:
    admin = free_port()
    path = workdir / "otlpd.yaml"
    path.write_text(yaml.safe_dump(config))
    log = workdir / "otlpd.log"
    env = {**os.environ, "OTLPD_HTTP_ENDPOINT": f"127.0.0.1:{admin}", "OTLPD_LOG_FORMAT": "json"}
    with open(log, "wb") as out:
        proc = PROCS.start(
            _pinned(core, [sys.executable, "-m", "otlpd", "serve", "--config", str(path)]),
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=workdir,
        )
    deadline = time.monotonic() + 120  # opening a large database takes a moment
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"otlpd exited with {proc.returncode}:\n{_tail(log)}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{admin}/health/ready", timeout=1) as r:
                if r.status == 200:
                    return proc, admin, log
        except OSError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"otlpd not ready:\n{_tail(log)}")


def _metric(admin: int, name: str, **labels: str) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"http://127.0.0.1:{admin}/metrics", timeout=10) as r:
        text = r.read().decode()
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


def _store_config(db: Path, grpc_port: int | None) -> dict[str, Any]:
    receivers = (
        {"otlp": {"protocols": {"grpc": {"endpoint": f"127.0.0.1:{grpc_port}"}}}}
        if grpc_port
        else {"otlp": {"protocols": {"http": {"endpoint": f"127.0.0.1:{free_port()}"}}}}
    )
    return {
        "receivers": receivers,
        "processors": {"batch": {}},
        "exporters": {"store": {"path": str(db), "retention": {"max_age": "0"}}},
        "service": {
            "pipelines": {"traces": {"receivers": ["otlp"], "processors": ["batch"], "exporters": ["store"]}}
        },
    }


def ingest(workdir: Path, seconds: float, warmup: float) -> dict[str, Any]:
    db = workdir / "ingest.duckdb"
    grpc_port = free_port()
    proc, admin, log = _otlpd(workdir, _store_config(db, grpc_port), COLLECTOR_CORE)
    peak = 0
    stop = threading.Event()

    def sample_rss() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, procfs.rss_bytes(proc.pid))
            time.sleep(0.2)

    sampler = threading.Thread(target=sample_rss, daemon=True)
    sampler.start()
    loadgen = PROCS.start(
        _pinned(
            LOAD_CORE,
            [
                sys.executable, "-m", "bench.loadgen", "--endpoint", f"127.0.0.1:{grpc_port}",
                "--signal", "traces", "--items", "500", "--concurrency", "8",
                "--warmup", str(warmup), "--seconds", str(seconds), "--timeout", "30",
            ],
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    assert loadgen.stdout is not None
    marks: dict[str, tuple[float, float, float]] = {}
    result: dict[str, Any] = {}
    for line in loadgen.stdout:
        event = json.loads(line)
        if event.get("event") in ("measure-start", "measure-end"):
            marks[event["event"]] = (
                time.monotonic(),
                procfs.cpu_seconds(proc.pid),
                _metric(admin, "otlpd_exporter_sent_items_total", exporter="store"),
            )
        elif event.get("event") == "result":
            result = event
    loadgen.wait(30)
    accepted = _metric(admin, "otlpd_receiver_accepted_items_total")
    refused = _metric(admin, "otlpd_receiver_refused_items_total")
    PROCS.stop(proc, timeout=60)
    stop.set()
    sampler.join()
    (t0, cpu0, sent0), (t1, cpu1, sent1) = marks["measure-start"], marks["measure-end"]
    import duckdb

    with duckdb.connect(str(db), read_only=True) as con:
        row = con.execute("SELECT count(*) FROM spans").fetchone()
    stored = int(row[0]) if row else 0
    wall = t1 - t0
    return {
        "spans_per_s": (sent1 - sent0) / wall,
        "collector_cpu_per_s": (cpu1 - cpu0) / wall,
        "spans_per_cpu_s": (sent1 - sent0) / max(cpu1 - cpu0, 1e-9),
        "accepted": int(accepted),
        "refused": int(refused),
        "stored_after_shutdown": stored,
        "lost": int(accepted) - stored,
        "peak_rss_mb": peak / 2**20,
        "request_p50_ms": result.get("latency_p50_ms"),
        "request_p99_ms": result.get("latency_p99_ms"),
        "log": str(log),
    }


class _Template:
    """A pre-built request's spans, with where each stored span keeps its ids and times."""

    def __init__(self, seed: int) -> None:
        from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as ts

        from otlpd.store import columns

        request = build_traces(5, 500, 8, seed=seed)
        for i, rs in enumerate(request.resource_spans):  # ten services across the templates
            for kv in rs.resource.attributes:
                if kv.key == "service.name":
                    kv.value.string_value = f"service-{(seed * 5 + i) % 10}"
        self.columns = columns.spans(ts.ExportTraceServiceRequest.FromString(request.SerializeToString()))
        c = self.columns
        self.trace_of = []  # index of the span's trace within the template
        seen: dict[bytes, int] = {}
        for tid in c.trace_id:
            self.trace_of.append(seen.setdefault(tid, len(seen)))
        self.traces = len(seen)
        self.durations = [e - s for s, e in zip(c.start_ns, c.end_ns, strict=True)]
        self.offsets = []
        for data, start, end in zip(c.data, c.start_ns, c.end_ns, strict=True):
            raw = data.encode("latin-1")
            assert raw[:2] == b"\n\x10"  # trace_id is field 1: serialized first
            s = raw.index(b"\x39" + struct.pack("<Q", start)) + 1
            e = raw.index(b"\x41" + struct.pack("<Q", end)) + 1
            self.offsets.append((s, e))


def _rewrite(template: _Template, base_ns: int, rng: random.Random) -> Any:
    """The template's spans as new traces at ``base_ns``: new trace ids, coherent times."""
    from otlpd.store.columns import SpanColumns, trace_key

    t = template.columns
    ids = [rng.getrandbits(128).to_bytes(16, "big") for _ in range(template.traces)]
    trace_start = [base_ns + rng.randrange(0, 2 * 10**9) for _ in range(template.traces)]
    c = SpanColumns(dims=t.dims)
    for i, data in enumerate(t.data):
        k = template.trace_of[i]
        tid = ids[k]
        start = trace_start[k] + (i % 10) * 1_000_000
        end = start + template.durations[i]
        s, e = template.offsets[i]
        packed_s = struct.pack("<Q", start).decode("latin-1")
        packed_e = struct.pack("<Q", end).decode("latin-1")
        c.data.append(
            "\n\x10"
            + tid.decode("latin-1")
            + data[18:s]
            + packed_s
            + data[s + 8 : e]
            + packed_e
            + data[e + 8 :]
        )
        c.trace_id.append(tid)
        c.trace_key.append(trace_key(tid))
        c.start_ns.append(start)
        c.end_ns.append(end)
    c.span_id, c.parent_span_id, c.service_name = t.span_id, t.parent_span_id, t.service_name
    c.name, c.kind, c.status_code = t.name, t.kind, t.status_code
    c.resource_key, c.scope_key = t.resource_key, t.scope_key
    return c


def build_database(db: Path, spans: int, seed: int = 7) -> dict[str, Any]:
    from otlpd.store.duckdb.engine import DuckDBEngine

    rng = random.Random(seed)
    templates = [_Template(s) for s in range(1, 9)]
    engine = DuckDBEngine(str(db))
    engine.migrate()
    batches = max(1, spans // 500)
    now = time.time_ns()
    window = 24 * 3600 * 10**9
    sample_ids: list[bytes] = []
    began = time.perf_counter()
    cpu0 = time.process_time()
    for b in range(batches):
        columns = _rewrite(templates[b % len(templates)], now - window + b * (window // batches), rng)
        if b == 0 or rng.random() < 0.02:
            sample_ids.append(columns.trace_id[0])
        engine.write_spans(columns)
    engine.flush()
    engine._con().execute("CHECKPOINT")
    elapsed = time.perf_counter() - began
    cpu = time.process_time() - cpu0
    usage = engine.usage()
    engine.close()
    size = db.stat().st_size
    return {
        "spans": usage.spans,
        "build_s": elapsed,
        "build_spans_per_s": usage.spans / elapsed,
        "build_spans_per_cpu_s": usage.spans / cpu,
        "file_bytes": size,
        "bytes_per_million_spans": size / (usage.spans / 1e6),
        "sample_ids": [i.hex() for i in sample_ids],
    }


def _time(url: str) -> float:
    began = time.perf_counter()
    with urllib.request.urlopen(url, timeout=60) as r:
        r.read()
        assert r.status == 200, url
    return time.perf_counter() - began


def _pcts(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "p50_ms": 1000 * statistics.median(ordered),
        "p95_ms": 1000 * ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))],
        "n": len(ordered),
    }


def queries(workdir: Path, spans: int, lookups: int) -> dict[str, Any]:
    db = workdir / "query.duckdb"
    built = build_database(db, spans)
    ids = built.pop("sample_ids")
    proc, admin, _ = _otlpd(workdir, _store_config(db, None), COLLECTOR_CORE)
    base = f"http://127.0.0.1:{admin}/api/v1"
    rng = random.Random(3)
    try:
        _time(f"{base}/traces/{ids[0]}")  # the first query loads the schema and the zone maps
        by_id = [_time(f"{base}/traces/{rng.choice(ids)}") for _ in range(lookups)]
        services = [f"service-{i}" for i in range(10)]
        search = [
            _time(f"{base}/traces?service={rng.choice(services)}&limit=20")
            for _ in range(max(1, lookups // 4))
        ]
        hour = time.time_ns() - 3600 * 10**9
        recent = [
            _time(f"{base}/traces?service={rng.choice(services)}&start={hour}&limit=20")
            for _ in range(max(1, lookups // 4))
        ]
        attr = [
            _time(f"{base}/traces?service={rng.choice(services)}&attr.http.response.status_code=500&limit=20")
            for _ in range(max(1, lookups // 10))
        ]
    finally:
        PROCS.stop(proc, timeout=60)
    return {
        **built,
        "trace_by_id": _pcts(by_id),
        "service_search": _pcts(search),
        "service_search_last_hour": _pcts(recent),
        "service_attribute_search": _pcts(attr),
    }


def report(result: dict[str, Any]) -> str:
    lines = ["## Store", ""]
    if "ingest" in result:
        i = result["ingest"]
        lines += [
            "| ingest (OTLP/gRPC → batch → store, otlpd on one core) | value |",
            "| --- | --- |",
            f"| spans/s stored | {i['spans_per_s']:,.0f} |",
            f"| collector CPU-s per s | {i['collector_cpu_per_s']:.2f} |",
            f"| spans per CPU-second | {i['spans_per_cpu_s']:,.0f} |",
            f"| accepted / stored after shutdown | {i['accepted']:,} / {i['stored_after_shutdown']:,} |",
            f"| lost | {i['lost']:,} |",
            f"| refused (back-pressure) | {i['refused']:,} |",
            f"| peak RSS | {i['peak_rss_mb']:.0f} MB |",
            "",
        ]  # fmt: skip
    if "queries" in result:
        q = result["queries"]
        lines += [
            f"Database: {q['spans']:,} spans, {q['file_bytes'] / 2**20:,.0f} MiB on disk "
            f"({q['bytes_per_million_spans'] / 2**20:.0f} MiB per million spans); built in "
            f"{q['build_s']:.0f} s in-process ({q['build_spans_per_s']:,.0f} spans/s).",
            "",
            "| query over HTTP (otlpd on one core) | p50 | p95 | n |",
            "| --- | --- | --- | --- |",
        ]
        for key, label in (
            ("trace_by_id", "trace by id"),
            ("service_search", "service search (all 24 h)"),
            ("service_search_last_hour", "service search (last hour)"),
            ("service_attribute_search", "service + attribute search"),
        ):
            p = q[key]
            lines.append(f"| {label} | {p['p50_ms']:.1f} ms | {p['p95_ms']:.1f} ms | {p['n']} |")
        lines.append("")
    return "\n".join(lines)


def run(spans: int, ingest_seconds: float, lookups: int, parts: set[str]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="otlpd-store-bench-") as tmp:
        workdir = Path(tmp)
        try:
            if "ingest" in parts:
                result["ingest"] = ingest(workdir, ingest_seconds, warmup=3.0)
                result["ingest"].pop("log")
            if "queries" in parts:
                result["queries"] = queries(workdir, spans, lookups)
        finally:
            PROCS.stop_all()
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--spans", type=int, default=10_000_000, help="spans in the query database")
    p.add_argument("--ingest-seconds", type=float, default=20.0)
    p.add_argument("--lookups", type=int, default=200, help="trace-by-id requests (searches: a quarter)")
    p.add_argument("--parts", default="ingest,queries")
    p.add_argument("--out", type=Path, default=RESULTS, help="directory for the .md and .json report")
    args = p.parse_args(argv)
    started = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    result = run(args.spans, args.ingest_seconds, args.lookups, set(args.parts.split(",")))
    text = report(result)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"store-{started}.md").write_text(text)
    (args.out / f"store-{started}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"written: {args.out / f'store-{started}.md'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
