"""Queue, retry and timeout: written once for every exporter."""

from otlpd.exporters.helper.config import QueueConfig, RetryConfig
from otlpd.exporters.helper.sender import Exporter, QueuedRetrySender

__all__ = ["Exporter", "QueueConfig", "QueuedRetrySender", "RetryConfig"]
