"""Ingest and queries at the same time: no errors, consistent answers, nothing refused or dropped.

For a few seconds an SDK (OTLP/gRPC) and a hand-rolled OTLP/HTTP client send
spans and log records while several threads query every endpoint. A query may
not see the newest data yet, but it never fails, never sees a span twice, and
once the senders stop everything sent is there exactly once.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from otlpd.pdata import Signal
from tests.e2e import sdk
from tests.store.support import (
    get,
    log_record,
    logs_request,
    ok,
    post,
    span,
    store_config,
    traces_request,
    wait_until,
)
from tests.support.process import Otlpd

SEND_SECONDS = 2.0
HTTP_TRACES_PER_REQUEST = 20  # of 3 spans each
SDK_SPANS_PER_TRACE = 4


class Sent:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.traces: dict[str, int] = {}  # trace id → spans
        self.services: dict[str, set[str]] = {"http-load": set(), "sdk-load": set()}
        self.logs = 0

    def add(self, service: str, trace_id: str, spans: int) -> None:
        with self.lock:
            self.traces[trace_id] = self.traces.get(trace_id, 0) + spans
            self.services[service].add(trace_id)

    def some(self) -> str | None:
        with self.lock:
            return random.choice(list(self.traces)) if self.traces else None


def http_sender(otlpd: Otlpd, sent: Sent, stop: threading.Event) -> None:
    n = 0
    while not stop.is_set():
        now = time.time_ns()
        spans, ids = [], []
        for _ in range(HTTP_TRACES_PER_REQUEST):
            n += 1
            tid = (0xABC << 100 | n).to_bytes(16, "big")
            root, child, leaf = (bytes([1, 0, 0, 0, 0, 0, 0, i]) for i in (1, 2, 3))
            spans += [
                span(tid, root, "GET /load", now, now + 3000, kind=2, attrs={"n": n}),
                span(tid, child, "query", now + 1000, now + 2000, parent=root, kind=3),
                span(tid, leaf, "parse", now + 1100, now + 1200, parent=child),
            ]
            ids.append(tid.hex())
        assert post(otlpd.http_endpoint, "traces", traces_request("http-load", spans)) == 200
        records = [log_record(now + i, f"request {n} line {i}", 9 + i % 9) for i in range(10)]
        assert post(otlpd.http_endpoint, "logs", logs_request("http-load", records)) == 200
        for tid_hex in ids:
            sent.add("http-load", tid_hex, 3)
        with sent.lock:
            sent.logs += len(records)
        time.sleep(0.02)


def sdk_sender(otlpd: Otlpd, sent: Sent, stop: threading.Event) -> None:
    provider = TracerProvider(resource=Resource({"service.name": "sdk-load"}))
    exporter = sdk.exporter(Signal.TRACES, "grpc", otlpd.grpc_endpoint)
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=50))
    tracer = provider.get_tracer("load")
    ids = []
    while not stop.is_set():
        with tracer.start_as_current_span("root", kind=trace.SpanKind.SERVER) as root:
            for i in range(SDK_SPANS_PER_TRACE - 1):
                with tracer.start_as_current_span(f"step {i}", attributes={"i": i}):
                    pass
        ids.append(format(root.get_span_context().trace_id, "032x"))
        time.sleep(0.002)
    assert provider.force_flush(10_000)
    provider.shutdown()
    for tid_hex in ids:
        sent.add("sdk-load", tid_hex, SDK_SPANS_PER_TRACE)


def querier(
    otlpd: Otlpd, sent: Sent, stop: threading.Event, problems: list[str], answered: list[int]
) -> None:
    admin = otlpd.admin
    queries: list[Callable[[], tuple[int, Any]]] = [
        lambda: get(admin, "/api/v1/services"),
        lambda: get(admin, "/api/v1/services/http-load/operations"),
        lambda: get(admin, "/api/v1/traces", {"service": "http-load", "limit": 50}),
        lambda: get(admin, "/api/v1/traces", {"attr.i": "2", "minDuration": "1ns"}),
        lambda: get(admin, "/api/v1/logs", {"severity": "WARN", "q": "line", "limit": 50}),
        lambda: get(admin, "/api/v1/metrics"),
        lambda: get(admin, "/api/services"),
        lambda: get(admin, "/api/traces", {"service": "sdk-load", "limit": 20, "lookback": "1h"}),
    ]
    i = 0
    while not stop.is_set():
        try:
            some = sent.some()
            if some is not None and i % 3 == 0:
                status, body = get(admin, f"/api/v1/traces/{some}")
                if status == 200:
                    ids = [s["spanId"] for s in body["spans"]]
                    if len(ids) != len(set(ids)):
                        problems.append(f"trace {some} has a span twice: {ids}")
                elif status != 404:  # 404: not committed yet
                    problems.append(f"trace {some}: {status} {body}")
            else:
                status, body = queries[i % len(queries)]()
                if status != 200:
                    problems.append(f"query {i % len(queries)}: {status} {body}")
            answered.append(status)
        except Exception as exc:
            problems.append(f"{type(exc).__name__}: {exc}")
        i += 1


@pytest.mark.timeout(90)
def test_concurrent_ingest_and_queries() -> None:
    config = store_config("db/otlpd.duckdb", retention={"check_interval": "300ms"})
    with Otlpd(config) as otlpd:
        sent = Sent()
        sending, querying = threading.Event(), threading.Event()
        problems: list[str] = []
        answered: list[int] = []
        failures: list[BaseException] = []

        def guarded(fn: Callable[..., None], *args: Any) -> Callable[[], None]:
            def run() -> None:
                try:
                    fn(*args)
                except BaseException as exc:
                    failures.append(exc)

            return run

        senders = [
            threading.Thread(target=guarded(http_sender, otlpd, sent, sending)),
            threading.Thread(target=guarded(sdk_sender, otlpd, sent, sending)),
        ]
        queriers = [
            threading.Thread(target=guarded(querier, otlpd, sent, querying, problems, answered))
            for _ in range(4)
        ]
        for t in senders + queriers:
            t.start()
        time.sleep(SEND_SECONDS)
        sending.set()
        for t in senders:
            t.join(30)
        querying.set()
        for t in queriers:
            t.join(30)
        assert not failures, failures
        assert not problems, problems[:10]
        assert len(answered) > 100, len(answered)  # the queries really ran alongside

        spans = sum(sent.traces.values())
        assert spans > 1000, spans
        # once committed: everything, exactly once
        wait_until(lambda: otlpd.metric("otlpd_store_items", signal="traces") == spans, timeout=30)
        wait_until(lambda: otlpd.metric("otlpd_store_items", signal="logs") == sent.logs)
        assert otlpd.metric("otlpd_exporter_sent_items_total", exporter="store", signal="traces") == spans
        assert otlpd.metric("otlpd_receiver_accepted_items_total", signal="traces") == spans
        for name in (
            "otlpd_receiver_refused_items_total",
            "otlpd_exporter_dropped_items_total",
            "otlpd_exporter_enqueue_failed_items_total",
            "otlpd_exporter_send_failed_requests_total",
            "otlpd_processor_dropped_items_total",
        ):
            assert otlpd.metric(name) == 0, name
        # every trace whole: a sample by id, and all of them through search
        for tid_hex in random.sample(sorted(sent.traces), 100):
            body = ok(otlpd.admin, f"/api/v1/traces/{tid_hex}")
            ids = [s["spanId"] for s in body["spans"]]
            assert len(ids) == len(set(ids)) == sent.traces[tid_hex], tid_hex
        for service, ids in sent.services.items():
            found = ok(otlpd.admin, "/api/v1/traces", {"service": service, "limit": 1000, "start": 0})[
                "traces"
            ]
            assert len(found) == min(len(ids), 1000), service
            assert all(t["traceId"] in ids and t["spanCount"] == sent.traces[t["traceId"]] for t in found)
        assert otlpd.terminate() == 0
        assert not [e for e in otlpd.log_events() if e.get("level") == "error"]
