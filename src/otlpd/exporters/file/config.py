from __future__ import annotations

from typing import Literal

from pydantic import Field

from otlpd.config.base import Strict
from otlpd.config.units import Duration


class RotationConfig(Strict):
    max_megabytes: int = Field(100, ge=1)
    max_days: int = Field(0, ge=0)
    max_backups: int = Field(100, ge=0)
    localtime: bool = False


class FileConfig(Strict):
    """The Collector's ``file`` exporter keys (JSON lines by default)."""

    path: str
    format: Literal["json", "proto"] = "json"
    append: bool = False
    rotation: RotationConfig | None = None
    flush_interval: Duration = 1.0
