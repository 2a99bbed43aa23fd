"""Typed errors → wire codes, in one place for both transports (OTLP spec, "Failures")."""

from __future__ import annotations

import math
from dataclasses import dataclass

import grpc
from google.protobuf import duration_pb2
from google.rpc import error_details_pb2, status_pb2

from otlpd.errors import (
    InvalidDataError,
    OtlpdError,
    PermanentError,
    RetryableError,
    ThrottledError,
    TooLargeError,
)


@dataclass(frozen=True)
class WireError:
    http_status: int
    grpc_code: grpc.StatusCode
    message: str
    retry_after: float | None
    reason: str  # metrics label for refused items

    def status(self) -> status_pb2.Status:
        """A google.rpc.Status, with RetryInfo when the client should wait."""
        st = status_pb2.Status(code=self.grpc_code.value[0], message=self.message)
        if self.retry_after is not None:
            info = error_details_pb2.RetryInfo(
                retry_delay=duration_pb2.Duration(
                    seconds=int(self.retry_after),
                    nanos=int((self.retry_after % 1) * 1e9),
                )
            )
            st.details.add().Pack(info)
        return st

    def retry_after_header(self) -> str | None:
        if self.retry_after is None:
            return None
        return str(max(1, math.ceil(self.retry_after)))


def to_wire(error: BaseException) -> WireError:
    if isinstance(error, TooLargeError):
        return WireError(413, grpc.StatusCode.RESOURCE_EXHAUSTED, error.message, None, "too_large")
    if isinstance(error, InvalidDataError):
        return WireError(400, grpc.StatusCode.INVALID_ARGUMENT, error.message, None, "invalid")
    if isinstance(error, PermanentError):
        # The pipeline refused the data for good; the client must not retry.
        return WireError(400, grpc.StatusCode.INVALID_ARGUMENT, error.message, None, "rejected")
    if isinstance(error, ThrottledError):
        # RESOURCE_EXHAUSTED is retryable for a client only when RetryInfo is present.
        after = error.retry_after if error.retry_after is not None else 1.0
        return WireError(429, grpc.StatusCode.RESOURCE_EXHAUSTED, error.message, after, "throttled")
    if isinstance(error, RetryableError):
        return WireError(503, grpc.StatusCode.UNAVAILABLE, error.message, error.retry_after, "unavailable")
    message = error.message if isinstance(error, OtlpdError) else "internal error"
    return WireError(500, grpc.StatusCode.INTERNAL, message, None, "internal")
