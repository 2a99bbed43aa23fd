"""The query API on otlpd's HTTP endpoint: otlpd's own JSON API, a Jaeger-compatible one, OpenAPI."""
