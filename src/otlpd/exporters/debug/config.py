from __future__ import annotations

from typing import Literal

from pydantic import Field

from otlpd.config.base import Strict


class DebugConfig(Strict):
    """The Collector's ``debug`` exporter keys."""

    verbosity: Literal["basic", "normal", "detailed"] = "basic"
    sampling_initial: int = Field(2, ge=0)
    sampling_thereafter: int = Field(1, ge=1)
    use_internal_logger: bool = True
