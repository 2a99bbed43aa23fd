"""The config otlpd runs with when no file is given.

OTLP on 4317/4318 on all interfaces (a container needs that), batching, the
``store`` exporter (``./data/otlpd.duckdb``, or OTLPD_STORE_PATH) so that
everything sent can be queried on :8080, and a ``debug`` exporter so a
developer sees data arrive; an ``otlp`` exporter is added when
OTLPD_EXPORTER_OTLP_ENDPOINT names an upstream.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def default_config(env: Mapping[str, str]) -> dict[str, Any]:
    store_path = env.get("OTLPD_STORE_PATH", "").strip() or "./data/otlpd.duckdb"
    exporters: dict[str, Any] = {"store": {"path": store_path}, "debug": {"verbosity": "basic"}}
    upstream = env.get("OTLPD_EXPORTER_OTLP_ENDPOINT", "").strip()
    if upstream:
        exporters["otlp"] = {
            "endpoint": upstream,
            "tls": {"insecure": upstream.startswith("http://")},
        }
    names = list(exporters)
    return {
        "receivers": {
            "otlp": {
                "protocols": {
                    "grpc": {"endpoint": "0.0.0.0:4317"},
                    "http": {"endpoint": "0.0.0.0:4318"},
                }
            }
        },
        "processors": {"batch": {}},
        "exporters": exporters,
        "service": {
            "pipelines": {
                signal: {"receivers": ["otlp"], "processors": ["batch"], "exporters": names}
                for signal in ("traces", "metrics", "logs")
            }
        },
    }
