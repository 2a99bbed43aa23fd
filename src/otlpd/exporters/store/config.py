"""The ``store`` exporter: where and how long otlpd keeps what it receives."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from otlpd.config.base import Strict
from otlpd.config.units import Duration, Size
from otlpd.exporters.helper.config import QueueConfig, RetryConfig


class RetentionConfig(Strict):
    max_age: Duration = 7 * 24 * 3600.0  # 0 = keep forever
    max_size: Size = 0  # bytes on disk, 0 = no limit
    check_interval: Duration = 60.0

    @model_validator(mode="after")
    def _check(self) -> RetentionConfig:
        if self.check_interval <= 0:
            raise ValueError("check_interval must be positive")
        return self


def _queue() -> QueueConfig:
    # One consumer: writes are serialized by the engine anyway, and order is kept. A short
    # queue: batches wait here as bytes (a few MB each), and a store that cannot keep up
    # should push back on clients soon rather than hold hundreds of MB.
    return QueueConfig(num_consumers=1, queue_size=10)


def _retry() -> RetryConfig:
    return RetryConfig.model_validate({"initial_interval": "1s", "max_interval": "10s"})


class StoreConfig(Strict):
    engine: Literal["duckdb"] = "duckdb"
    path: str = "./data/otlpd.duckdb"  # ":memory:" keeps nothing across restarts
    retention: RetentionConfig = Field(default_factory=RetentionConfig)
    flush_interval: Duration = 1.0  # longest a received item waits before it can be queried
    # DuckDB worker threads; 0 = the CPUs this process may run on, at most 4 (on one pinned
    # core a second thread only competes with ingest for it)
    threads: int = Field(0, ge=0, le=64)
    memory_limit: Size = 128 * 2**20
    sending_queue: QueueConfig = Field(default_factory=_queue)
    retry_on_failure: RetryConfig = Field(default_factory=_retry)

    @model_validator(mode="after")
    def _check(self) -> StoreConfig:
        if not self.path.strip():
            raise ValueError("path must not be empty (use :memory: for a database that is not kept)")
        if self.flush_interval <= 0:
            raise ValueError("flush_interval must be positive")
        if self.memory_limit < 16 * 2**20:
            raise ValueError("memory_limit must be at least 16MiB")
        return self
