"""The OTLP receiver without its transports: decode, validate, count, hand on.

gRPC and HTTP adapters only move bytes and map the outcome to their wire;
everything about what a request means happens here, once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

import grpc
from google.protobuf.message import DecodeError

from otlpd import otlpjson, skeleton
from otlpd.component import ComponentID, Consumer, reads_span_skeleton, refusal
from otlpd.errors import OtlpdError, RetryableError
from otlpd.pdata import ExportRequest, ExportResponse, Payload, Signal, count_items, decode
from otlpd.receivers.otlp.status import WireError, to_wire
from otlpd.receivers.otlp.validate import reject_invalid
from otlpd.telemetry.metrics import Metrics

TRANSPORTS = ("grpc", "http")


class ReceiverCore:
    def __init__(
        self,
        id: ComponentID,
        consumers: Mapping[Signal, Consumer],
        metrics: Metrics,
        log: logging.Logger,
    ) -> None:
        self.id = id
        self.consumers = dict(consumers)
        self._metrics = metrics
        self._log = log
        self.accepting = True
        # OTLP/JSON is decoded by protobuf's pure-Python json_format: ~50x slower
        # than upb. It runs in a thread so the event loop (other requests, probes,
        # exporters) keeps going, and only a couple at a time so a burst of large
        # JSON bodies cannot multiply memory.
        self._json_slots = asyncio.Semaphore(2)
        rid = str(id)
        self._accepted = {
            (s, t): metrics.receiver_accepted.labels(rid, s.value, t) for s in Signal for t in TRANSPORTS
        }
        self._requests: dict[tuple[Signal, str, str], Any] = {}
        self._durations = {
            (s, t): metrics.request_duration.labels(rid, s.value, t) for s in Signal for t in TRANSPORTS
        }

    async def export(self, signal: Signal, body: bytes, *, json: bool, transport: str) -> ExportResponse:
        """Accept one request; raise a typed error to refuse it."""
        consumer = self.consumers.get(signal)
        if consumer is None:
            raise _NotConfigured(signal)
        if json:
            async with self._json_slots:
                message = await asyncio.to_thread(_parse_json, signal, body)
        else:
            self._refuse_early(signal, consumer, body, transport)
            message = decode(signal, body)
        items = count_items(signal, message)
        spans = None
        if signal is Signal.TRACES and not json and reads_span_skeleton(consumer):
            spans = _span_skeleton(body)
        rejected, why = reject_invalid(message, None if json else body, items, spans)
        if rejected or json:
            payload = Payload.from_message(signal, message)
        else:
            payload = Payload(signal, body, items, message, spans)
        response = signal.response_type()
        if rejected:
            partial = response.partial_success
            setattr(partial, f"rejected_{signal.item_name}", rejected)
            partial.error_message = why
            self._refused(signal, transport, "invalid", rejected)
        if payload.items == 0:
            return response
        if not self.accepting:
            error = RetryableError("otlpd is shutting down", retry_after=1.0)
            self._refused(signal, transport, to_wire(error).reason, payload.items)
            raise error
        try:
            await consumer.consume(payload)
        except OtlpdError as exc:
            self._refused(signal, transport, to_wire(exc).reason, payload.items)
            raise
        except Exception:
            self._log.exception("pipeline failed", extra={"signal": signal.value})
            self._refused(signal, transport, "internal", payload.items)
            raise
        self._accepted[signal, transport].inc(payload.items)
        return response

    def _refuse_early(self, signal: Signal, consumer: Consumer, body: bytes, transport: str) -> None:
        """Refuse before decoding when the pipeline would refuse any request.

        Under overload about half of what clients send is refused; decoding and
        validating each first cost more CPU than storing what was accepted. A
        request this cannot count (malformed) or that holds nothing goes the
        usual way, so it still gets its 400 or its empty success.
        """
        error = refusal(consumer)
        if error is None:
            return
        try:
            items = skeleton.count_items(signal.value, body)
        except DecodeError:
            return
        if items:
            self._refused(signal, transport, to_wire(error).reason, items)
            raise error

    def log_timeout(self) -> None:
        self._log.warning("in-flight HTTP requests did not finish before the shutdown deadline")

    def _refused(self, signal: Signal, transport: str, reason: str, items: int) -> None:
        self._metrics.receiver_refused.labels(str(self.id), signal.value, transport, reason).inc(items)

    def record(self, signal: Signal, transport: str, status: str, seconds: float) -> None:
        key = (signal, transport, status)
        counter = self._requests.get(key)
        if counter is None:
            counter = self._requests[key] = self._metrics.requests.labels(
                str(self.id), signal.value, transport, status
            )
        counter.inc()
        self._durations[signal, transport].observe(seconds)


def _span_skeleton(body: bytes) -> bytes | None:
    """The span skeleton the id check reads, kept with the request for the store."""
    try:
        return skeleton.canonical_spans(body)
    except DecodeError:  # the full parse took these bytes; should the skeleton not, the id
        return None  # check fails the same way and its per-span loop decides, and the store its own


def _parse_json(signal: Signal, body: bytes) -> ExportRequest:
    message = signal.request_type()
    otlpjson.parse(body, message)
    return message


class _NotConfigured(OtlpdError):
    """A signal with no pipeline behind this receiver."""

    def __init__(self, signal: Signal) -> None:
        super().__init__(f"no {signal.value} pipeline is configured for this receiver")


def wire_error(exc: BaseException) -> WireError:
    if isinstance(exc, _NotConfigured):
        return WireError(404, grpc.StatusCode.UNIMPLEMENTED, exc.message, None, "not_configured")
    return to_wire(exc)
