"""The ``file`` exporter: OTLP/JSON lines, length-prefixed protobuf, append, flush, rotation."""

from __future__ import annotations

import asyncio
import contextlib
import json
import struct
from pathlib import Path
from typing import Any

import pytest

from otlpd import otlpjson
from otlpd.errors import PermanentError
from otlpd.pdata import Signal
from otlpd.telemetry.metrics import Metrics
from tests.exporters.helpers import build_exporter, logs, metric, metrics, payload, traces, wait_for

_KEY = {"resourceSpans": Signal.TRACES, "resourceMetrics": Signal.METRICS, "resourceLogs": Signal.LOGS}


def parse_lines(path: Path) -> list[tuple[Signal, Any]]:
    """Every line back into a request; the signal is told by the top-level key."""
    out = []
    for line in path.read_bytes().splitlines():
        [key] = json.loads(line).keys()
        signal = _KEY[key]
        message = signal.request_type()
        otlpjson.parse(line, message)
        out.append((signal, message))
    return out


def parse_records(path: Path) -> list[bytes]:
    data = path.read_bytes()
    records, pos = [], 0
    while pos < len(data):
        (size,) = struct.unpack(">I", data[pos : pos + 4])
        records.append(data[pos + 4 : pos + 4 + size])
        pos += 4 + size
    assert pos == len(data)
    return records


def listing(directory: Path) -> dict[Path, int]:
    """Files in ``directory`` and their sizes."""
    return {f: f.stat().st_size for f in sorted(directory.iterdir())}


async def start(cfg: dict[str, Any], m: Metrics | None = None) -> Any:
    exporter = build_exporter("file", cfg, m or Metrics())
    consumers = {s: exporter.consumer(s) for s in Signal}
    await exporter.start()
    return exporter, consumers


async def stop(exporter: Any) -> None:
    await exporter.shutdown(asyncio.get_running_loop().time() + 5)


SENT = [
    (Signal.TRACES, traces(3, "a")),
    (Signal.METRICS, metrics([2, 1])),
    (Signal.LOGS, logs(2)),
    (Signal.TRACES, traces(1, "b")),
]


async def test_one_otlp_json_request_per_line(tmp_path: Path) -> None:
    path = tmp_path / "out" / "otlp.json"  # the directory is created
    m = Metrics()
    exporter, consumers = await start({"path": str(path)}, m)
    for signal, message in SENT:
        await consumers[signal].consume(payload(signal, message))
    await stop(exporter)
    assert parse_lines(path) == SENT
    assert metric(m, "otlpd_exporter_sent_items_total", exporter="file", signal="traces") == 4
    assert metric(m, "otlpd_exporter_sent_items_total", exporter="file", signal="metrics") == 3
    # OTLP/JSON, not proto3 JSON: hex ids
    first = json.loads(path.read_bytes().splitlines()[0])
    span = first["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    assert span["traceId"] == SENT[0][1].resource_spans[0].scope_spans[0].spans[0].trace_id.hex()


async def test_proto_format_is_length_prefixed(tmp_path: Path) -> None:
    path = tmp_path / "otlp.binpb"
    exporter, consumers = await start({"path": str(path), "format": "proto"})
    for signal, message in SENT:
        await consumers[signal].consume(payload(signal, message))
    await stop(exporter)
    assert parse_records(path) == [message.SerializeToString() for _, message in SENT]


@pytest.mark.parametrize("append", [False, True])
async def test_append_or_truncate(tmp_path: Path, append: bool) -> None:
    path = tmp_path / "otlp.json"
    for tag in ("first", "second"):
        exporter, consumers = await start({"path": str(path), "append": append})
        await consumers[Signal.TRACES].consume(payload(Signal.TRACES, traces(1, tag)))
        await stop(exporter)
    got = [m.resource_spans[0].scope_spans[0].spans[0].name for _, m in parse_lines(path)]
    assert got == (["first-0", "second-0"] if append else ["second-0"])


async def test_lines_reach_the_disk_within_the_flush_interval(tmp_path: Path) -> None:
    path = tmp_path / "otlp.json"
    exporter, consumers = await start({"path": str(path), "flush_interval": "100ms"})
    try:
        for i in range(3):
            await consumers[Signal.TRACES].consume(payload(Signal.TRACES, traces(1, f"p{i}")))
        # nothing else is written; a reader (tail -f, a log shipper) must still see all three
        assert await wait_for(lambda: len(path.read_bytes().splitlines()) == 3, timeout=5)
    finally:
        await stop(exporter)


async def test_rotation_keeps_max_backups_of_the_newest_data(tmp_path: Path) -> None:
    path = tmp_path / "otlp.json"
    neighbour = tmp_path / "otlp-1.json"  # not a backup: another file that happens to look alike
    neighbour.write_text("{}\n")
    cfg = {"path": str(path), "rotation": {"max_megabytes": 1, "max_backups": 2}}
    exporter, consumers = await start(cfg)
    for i in range(26):  # ~300 KB each: a rotation every 4 requests, 6 in all
        await consumers[Signal.TRACES].consume(
            payload(Signal.TRACES, traces(1, f"r{i:02d}", attr_bytes=300_000))
        )
    await stop(exporter)
    files = listing(tmp_path)
    assert files.pop(neighbour) == 3
    backups = [f for f in files if f != path]
    assert len(backups) == 2, files
    assert all(f.name.startswith("otlp-") and f.suffix == ".json" for f in backups)
    for f in backups:
        assert files[f] >= 1024 * 1024
    kept = sorted(m.resource_spans[0].scope_spans[0].spans[0].name for f in files for _, m in parse_lines(f))
    # the four oldest backups went; the two newest and the current file stay
    assert kept == [f"r{i:02d}-0" for i in range(16, 26)]


async def test_rotation_removes_backups_older_than_max_days(tmp_path: Path) -> None:
    import os
    import time

    path = tmp_path / "otlp.json"
    old = tmp_path / "otlp-2020-01-01T00-00-00.000000.json"  # a backup from an earlier run
    old.write_text("{}\n")
    week_ago = time.time() - 7 * 86400
    os.utime(old, (week_ago, week_ago))
    cfg = {"path": str(path), "rotation": {"max_megabytes": 1, "max_backups": 10, "max_days": 3}}
    exporter, consumers = await start(cfg)
    for i in range(5):  # ~300 KB each: one rotation
        await consumers[Signal.TRACES].consume(payload(Signal.TRACES, traces(1, f"d{i}", attr_bytes=300_000)))
    await stop(exporter)
    backups = [f for f in listing(tmp_path) if f != path]
    assert old not in backups  # older than max_days: removed although max_backups allows it
    assert len(backups) == 1


async def test_a_write_error_is_permanent_and_counted() -> None:
    m = Metrics()
    exporter, consumers = await start({"path": "/dev/full", "append": True, "flush_interval": "0s"}, m)
    with pytest.raises(PermanentError):
        await consumers[Signal.LOGS].consume(payload(Signal.LOGS, logs(3)))
    # the caller that gives up counts the loss (once); the exporter counts its failed attempt
    assert metric(m, "otlpd_exporter_dropped_items_total", exporter="file") == 0
    assert metric(m, "otlpd_exporter_send_failed_requests_total", exporter="file", error="permanent") == 1
    assert metric(m, "otlpd_exporter_sent_items_total", exporter="file") == 0
    with contextlib.suppress(OSError):  # the bytes still buffered cannot be flushed either
        await stop(exporter)


async def test_a_failed_rotation_does_not_break_the_exporter_or_lose_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    from otlpd.exporters.file import exporter as file_exporter

    path = tmp_path / "otlp.json"
    cfg = {"path": str(path), "rotation": {"max_megabytes": 1, "max_backups": 2}}
    exporter, consumers = await start(cfg)
    consumer = consumers[Signal.TRACES]

    def refuse(src: object, dst: object) -> None:
        raise OSError(30, "Read-only file system")

    real_replace = os.replace  # file_exporter.os *is* os: keep the original to put it back
    monkeypatch.setattr(file_exporter.os, "replace", refuse)  # the disk refuses the rename
    for i in range(3):  # ~300 KB each; the fourth write crosses 1 MB and tries to rotate
        await consumer.consume(payload(Signal.TRACES, traces(1, f"x{i}", attr_bytes=300_000)))
    # the record is written even though the rotation after it fails: no error, no loss
    await consumer.consume(payload(Signal.TRACES, traces(1, "x3", attr_bytes=300_000)))
    assert len(listing(tmp_path)) == 1  # not rotated
    monkeypatch.setattr(file_exporter.os, "replace", real_replace)
    await consumer.consume(payload(Signal.TRACES, traces(1, "after")))
    await stop(exporter)
    names = {
        m.resource_spans[0].scope_spans[0].spans[0].name for f in listing(tmp_path) for _, m in parse_lines(f)
    }
    assert "after-0" in names
    assert len(listing(tmp_path)) == 2  # rotated on the next write, once the rename worked again
    assert {"x0-0", "x1-0", "x2-0", "x3-0"} <= names  # nothing written before the failure was lost
