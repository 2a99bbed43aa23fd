"""Typed errors: the contract between components.

A consumer raises one of these to tell its caller what to do with the data.
Receivers translate them to wire codes in one place
(``receivers/otlp/status.py``); the exporter helper decides from them whether
to retry. Anything else escaping a consumer is treated as a bug and reported
as an internal (non-retryable) error.
"""

from __future__ import annotations


class OtlpdError(Exception):
    """Base for every typed error; ``message`` is safe to show a client."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class PermanentError(OtlpdError):
    """The data can never be accepted as sent: retrying is pointless."""


class InvalidDataError(PermanentError):
    """The payload is malformed (HTTP 400 / gRPC INVALID_ARGUMENT)."""


class TooLargeError(PermanentError):
    """The payload exceeds a size limit (HTTP 413 / gRPC RESOURCE_EXHAUSTED)."""


class RetryableError(OtlpdError):
    """A transient failure; the same data may succeed later.

    ``retry_after`` (seconds) is a hint from whoever refused the data, e.g. a
    full queue or an upstream's RetryInfo / Retry-After.
    """

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ThrottledError(RetryableError):
    """The receiver of the data asks us to slow down (HTTP 429)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message, retry_after)
