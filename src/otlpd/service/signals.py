"""SIGTERM/SIGINT: the first signal drains, a second one exits at once.

Shared by a single-process service and the workers' supervisor, so both
behave the same for an operator pressing Ctrl-C twice or a Kubernetes
SIGTERM followed by an impatient SIGKILL-like retry.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable

from otlpd.telemetry import logging as otlpd_logging

log = otlpd_logging.get("service")


def on_stop_signals(drain: Callable[[], None], abandon: Callable[[], None] = lambda: None) -> None:
    """Call ``drain`` on the first signal; on a second, ``abandon`` then exit 1 immediately."""
    loop = asyncio.get_running_loop()
    seen = 0

    def handle(signum: int) -> None:
        nonlocal seen
        seen += 1
        name = signal.Signals(signum).name
        if seen > 1:
            log.warning("second signal: exiting without draining", extra={"signal": name})
            abandon()
            otlpd_logging.flush()
            os._exit(1)
        log.info("signal received, draining", extra={"signal": name})
        drain()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, handle, signum)
