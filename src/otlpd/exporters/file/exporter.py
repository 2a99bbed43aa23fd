"""The ``file`` exporter: one OTLP/JSON request per line (or length-prefixed protobuf).

Writes happen in a worker thread so a slow disk never stalls the event loop;
a lock keeps lines whole when several signals write to one file. With
``rotation``, the file is renamed with a timestamp once it passes
``max_megabytes`` and the oldest backups beyond ``max_backups`` are removed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import struct
import threading
import time
from pathlib import Path
from typing import IO

from otlpd import otlpjson
from otlpd.component import Consumer, Settings
from otlpd.errors import PermanentError
from otlpd.exporters.file.config import FileConfig
from otlpd.pdata import Payload, Signal
from otlpd.telemetry import logging as otlpd_logging


class FileExporter:
    def __init__(self, settings: Settings) -> None:
        self._cfg: FileConfig = settings.config
        self._path = Path(self._cfg.path)
        if settings.worker is not None:  # workers must not interleave or truncate each other's lines
            self._path = self._path.with_name(
                f"{self._path.stem}.worker-{settings.worker}{self._path.suffix}"
            )
        self._lock = threading.Lock()
        self._file: IO[bytes] | None = None
        self._last_flush = 0.0
        self._flusher: asyncio.Task[None] | None = None
        self._id = str(settings.id)
        self._sent = settings.metrics.exporter_sent
        self._failed = settings.metrics.exporter_failed_attempts
        self._log = otlpd_logging.get(f"exporter.{settings.id}")

    def consumer(self, signal: Signal) -> Consumer:
        return _SignalConsumer(self)

    async def start(self) -> None:
        await asyncio.to_thread(self._open)
        if self._cfg.flush_interval > 0:
            self._flusher = asyncio.create_task(self._flush_every_interval(), name=f"{self._id}-flush")

    async def _flush_every_interval(self) -> None:
        """Writes flush only when they come; this flushes what the last ones left buffered."""
        while True:
            await asyncio.sleep(self._cfg.flush_interval)
            with contextlib.suppress(OSError):  # a failing disk fails the next write, which counts it
                await asyncio.to_thread(self._flush)

    def _flush(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.flush()
                self._last_flush = time.monotonic()

    def _open(self, append: bool | None = None) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        append = self._cfg.append if append is None else append
        self._file = open(self._path, "ab" if append else "wb")  # noqa: SIM115

    def encode(self, payload: Payload) -> bytes:
        if self._cfg.format == "proto":
            return struct.pack(">I", len(payload.data)) + payload.data
        line = otlpjson.dumps(payload.message) + b"\n"
        payload.release()
        return line

    async def write(self, payload: Payload) -> None:
        record = self.encode(payload)
        try:
            await asyncio.to_thread(self._write, record)
        except OSError as exc:
            # The caller that gives up on the data counts it as dropped; counted here
            # too it would be lost twice in the metrics.
            self._failed.labels(self._id, payload.signal.value, "permanent").inc()
            raise PermanentError(f"cannot write {self._path}: {exc.strerror or exc}") from None
        self._sent.labels(self._id, payload.signal.value).inc(payload.items)

    def _write(self, record: bytes) -> None:
        with self._lock:
            if self._file is None:  # a failed rotation left no file open: append to what is there
                self._open(append=True)
            assert self._file is not None
            self._file.write(record)
            now = time.monotonic()
            if now - self._last_flush >= self._cfg.flush_interval:
                self._file.flush()
                self._last_flush = now
            rotation = self._cfg.rotation
            if rotation is not None and self._file.tell() >= rotation.max_megabytes * 1024 * 1024:
                try:
                    self._rotate()
                except OSError as exc:
                    # The record is written; only the rotation failed. Keep appending to
                    # the current file and try again on the next write.
                    self._log.warning(
                        "cannot rotate file", extra={"path": str(self._path), "error": str(exc)}
                    )

    def _rotate(self) -> None:
        assert self._file is not None
        assert self._cfg.rotation is not None
        self._file.close()
        self._file = None  # if anything below fails, the next write reopens the file
        # One clock reading, to the microsecond: backup names sort in the order they were made,
        # which is how the oldest are found below.
        seconds, nanos = divmod(time.time_ns(), 1_000_000_000)
        when = time.localtime(seconds) if self._cfg.rotation.localtime else time.gmtime(seconds)
        stamp = time.strftime("%Y-%m-%dT%H-%M-%S", when) + f".{nanos // 1000:06d}"
        backup = self._path.with_name(f"{self._path.stem}-{stamp}{self._path.suffix}")
        os.replace(self._path, backup)
        # only our backups, not a neighbour such as otlp-1.json beside otlp.json
        date = "[0-9]" * 4 + "-" + "[0-9]" * 2 + "-" + "[0-9]" * 2 + "T"
        backups = sorted(self._path.parent.glob(f"{self._path.stem}-{date}*{self._path.suffix}"))
        keep = self._cfg.rotation.max_backups
        expired = backups[: max(0, len(backups) - keep)] if keep else []
        max_days = self._cfg.rotation.max_days
        if max_days:
            cutoff = time.time() - max_days * 86400
            expired += [b for b in backups if b not in expired and _mtime(b) < cutoff]
        for old in expired:
            old.unlink(missing_ok=True)
        self._file = open(self._path, "wb")  # noqa: SIM115

    async def shutdown(self, deadline: float) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            await asyncio.gather(self._flusher, return_exceptions=True)
        await asyncio.to_thread(self._close)

    def _close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.flush()
                os.fsync(self._file.fileno())
                self._file.close()
                self._file = None


class _SignalConsumer:
    def __init__(self, exporter: FileExporter) -> None:
        self._exporter = exporter

    async def consume(self, payload: Payload) -> None:
        await self._exporter.write(payload)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return float("inf")  # already gone: nothing to remove
