"""Where otlpd keeps telemetry when it is its own backend.

Receivers and the query API see only :class:`otlpd.store.engine.Engine`; the
embedded DuckDB engine is one implementation, so a distributed engine
(ClickHouse) can be added beside it without touching either side.
"""
