"""Configuration: Collector-compatible YAML, typed models, errors with config paths."""

from otlpd.config.load import Config, ConfigError, load

__all__ = ["Config", "ConfigError", "load"]
