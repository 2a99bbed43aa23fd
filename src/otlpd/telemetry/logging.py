"""Structured logs: JSON lines on stdout (text on a TTY), written by a thread.

Records go through a queue to a listener thread, so a slow stdout (a full pipe,
a stalled log shipper) never blocks the event loop. Fields passed with
``extra=`` become top-level JSON keys.
"""

from __future__ import annotations

import copy
import json
import logging
import logging.handlers
import queue
import sys
import time
from typing import Any, TextIO

_STANDARD = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys() | {"message", "asctime", "taskName"}
)
_listener: logging.handlers.QueueListener | None = None


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        event: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        event.update(_fields(record))
        if record.exc_text:  # _QueueHandler has rendered exc_info into exc_text
            event["exception"] = record.exc_text
        return json.dumps(event, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
        fields = " ".join(f"{k}={v}" for k, v in _fields(record).items())
        line = f"{stamp} {record.levelname:<7} {record.name}: {record.getMessage()}"
        if fields:
            line += "  " + fields
        if record.exc_text:
            line += "\n" + record.exc_text
        return line


class _QueueHandler(logging.handlers.QueueHandler):
    """Hands records to the listener thread with the message and traceback rendered.

    The stock ``prepare`` formats the record with a default formatter, which
    appends the traceback to ``msg`` and clears ``exc_text``: the JSON event
    would then have the traceback in ``msg`` and no ``exception`` field.
    """

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        record = copy.copy(record)
        record.message = record.msg = record.getMessage()
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = _EXC_FORMATTER.formatException(record.exc_info)
        record.exc_info = None
        return record


_EXC_FORMATTER = logging.Formatter()


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}


def setup(
    level: str = "info", fmt: str = "auto", stream: TextIO | None = None, worker: int | None = None
) -> None:
    """Install the handler on the ``otlpd`` logger (idempotent)."""
    global _listener
    stream = stream or sys.stdout
    if fmt == "auto":
        fmt = "text" if stream.isatty() else "json"
    handler = logging.StreamHandler(stream)
    handler.setFormatter(TextFormatter() if fmt in ("text", "console") else JsonFormatter())
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    if _listener is not None:
        _listener.stop()
    _listener = logging.handlers.QueueListener(records, handler, respect_handler_level=False)
    _listener.start()
    root = logging.getLogger("otlpd")
    queue_handler = _QueueHandler(records)
    if worker is not None:  # every event says which worker process wrote it
        queue_handler.addFilter(_WorkerTag(worker))
    root.handlers[:] = [queue_handler]
    root.setLevel(_level(level))
    root.propagate = False


class _WorkerTag(logging.Filter):
    def __init__(self, worker: int) -> None:
        super().__init__()
        self._worker = worker

    def filter(self, record: logging.LogRecord) -> bool:
        record.worker = self._worker
        return True


def flush() -> None:
    """Write out everything queued; called on exit so the last events are not lost."""
    global _listener
    if _listener is not None:
        _listener.stop()
        _listener = None


def _level(name: str) -> int:
    levels = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING,
              "warning": logging.WARNING, "error": logging.ERROR}  # fmt: skip
    return levels.get(name.lower(), logging.INFO)


def get(name: str) -> logging.Logger:
    return logging.getLogger(f"otlpd.{name}")
