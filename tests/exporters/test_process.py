"""Exporters and the batch processor in a running ``otlpd serve``, as a user runs it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import grpc

from otlpd import otlpjson
from otlpd.pdata import Signal
from tests.exporters.helpers import FAST_RETRY, events, logs, metrics, post, span_names, traces
from tests.support.process import Otlpd
from tests.support.sink import Failure, Sink

HTTP_IN = {"otlp": {"protocols": {"http": None}}}


def config(
    exporters: dict[str, Any], processors: dict[str, Any] | None = None, **service: Any
) -> dict[str, Any]:
    names = list(exporters)
    pipeline = {"receivers": ["otlp"], "processors": list(processors or {}), "exporters": names}
    return {
        "receivers": HTTP_IN,
        "processors": processors or {},
        "exporters": exporters,
        "service": {"pipelines": {s.value: dict(pipeline) for s in Signal}, **service},
    }


def test_debug_exporter_logs_at_each_verbosity_and_file_exporter_writes_lines(tmp_path: Path) -> None:
    out = tmp_path / "otlp.json"
    cfg = config(
        {
            "debug/basic": {"verbosity": "basic"},
            "debug/normal": {"verbosity": "normal"},
            "debug/detailed": {"verbosity": "detailed"},
            "file": {"path": str(out), "flush_interval": "50ms"},
        }
    )
    sent = {Signal.TRACES: traces(3, "a"), Signal.LOGS: logs(2, "l"), Signal.METRICS: metrics([2, 1], "m")}
    with Otlpd(cfg) as otlpd:
        for signal, message in sent.items():
            assert post(otlpd.http_endpoint, signal, message) == 200
        sent_items = otlpd.metric("otlpd_exporter_sent_items_total", exporter="debug/basic")
        assert otlpd.metric("otlpd_exporter_sent_items_total", exporter="file") == 8
        assert otlpd.terminate() == 0
        log_events = otlpd.log_events()
    assert sent_items == 8

    basic = list(events(log_events, "otlpd.exporter.debug/basic"))
    assert [(e["msg"], e["signal"]) for e in basic] == [
        ("traces received", "traces"), ("logs received", "logs"), ("metrics received", "metrics"),
    ]  # fmt: skip
    assert (basic[0]["spans"], basic[1]["log_records"], basic[2]["data_points"]) == (3, 2, 3)

    normal = [e["msg"] for e in events(log_events, "otlpd.exporter.debug/normal")]
    span = sent[Signal.TRACES].resource_spans[0].scope_spans[0].spans[0]
    assert normal[0] == f"span a-0 trace_id={span.trace_id.hex()} span_id={span.span_id.hex()}"
    assert normal == [
        normal[0], normal[1], normal[2],  # the three spans
        "log INFO l-0", "log INFO l-1",
        "metric m-0 gauge points=2", "metric m-1 gauge points=1",
    ]  # fmt: skip
    assert [line.split(" trace_id")[0] for line in normal[:3]] == ["span a-0", "span a-1", "span a-2"]

    detailed = list(events(log_events, "otlpd.exporter.debug/detailed"))
    assert [e["signal"] for e in detailed] == ["traces", "logs", "metrics"]
    for event, (signal, message) in zip(detailed, sent.items(), strict=True):
        got = signal.request_type()
        otlpjson.parse(json.dumps(event["request"]), got)
        assert got == message

    lines = out.read_bytes().splitlines()
    assert len(lines) == 3
    for line, (signal, message) in zip(lines, sent.items(), strict=True):
        got = signal.request_type()
        otlpjson.parse(line, got)
        assert got == message


def test_a_failing_upstream_neither_delays_nor_loses_data_for_a_healthy_one(
    sink: Sink, other_sink: Sink
) -> None:
    cfg = config(
        {
            "otlp/flaky": {
                "endpoint": sink.grpc_endpoint,
                "tls": {"insecure": True},
                "retry_on_failure": FAST_RETRY,
                "sending_queue": {"queue_size": 50},
            },
            "otlphttp/healthy": {"endpoint": other_sink.http_endpoint, "retry_on_failure": FAST_RETRY},
        }
    )
    sink.fail_next(10_000)
    with Otlpd(cfg) as otlpd:
        for i in range(3):
            assert post(otlpd.http_endpoint, Signal.TRACES, traces(2, f"p{i}")) == 200
        assert other_sink.wait_for_items(Signal.TRACES, 6) == 6
        assert sink.wait_until(lambda s: s.attempts >= 6)  # every request retried at least once
        assert sink.state.received == []
        flaky = {"exporter": "otlp/flaky", "signal": "traces"}
        assert otlpd.metric("otlpd_exporter_send_failed_requests_total", **flaky) >= 6
        assert otlpd.metric("otlpd_exporter_queue_capacity", **flaky) == 50
        assert otlpd.metric("otlpd_exporter_queue_capacity", exporter="otlphttp/healthy") == 1000 * 3
        assert otlpd.metric("otlpd_exporter_send_failed_requests_total", exporter="otlphttp/healthy") == 0

        sink.state.failures.clear()  # the upstream comes back
        assert sink.wait_for_items(Signal.TRACES, 6) == 6
        assert otlpd.metric("otlpd_exporter_sent_items_total", **flaky) == 6
        assert otlpd.metric("otlpd_exporter_dropped_items_total") == 0
        assert otlpd.terminate() == 0
    # exactly once each, and the healthy upstream had everything before the flaky one got anything
    assert len(sink.state.received) == 3
    assert sorted(span_names(sink.state.messages(Signal.TRACES))) == sorted(
        span_names(other_sink.state.messages(Signal.TRACES))
    )
    assert max(r.at for r in other_sink.state.received) < min(r.at for r in sink.state.received)


def test_permanent_errors_and_exhausted_retries_are_counted_as_dropped(sink: Sink, other_sink: Sink) -> None:
    cfg = config(
        {
            "otlp/strict": {
                "endpoint": sink.grpc_endpoint,
                "tls": {"insecure": True},
                "retry_on_failure": FAST_RETRY,
            },
            "otlphttp/patient": {
                "endpoint": other_sink.http_endpoint,
                "retry_on_failure": {**FAST_RETRY, "max_elapsed_time": "300ms"},
            },
        }
    )
    sink.fail_next(10, Failure(grpc.StatusCode.PERMISSION_DENIED))
    other_sink.fail_next(10_000, Failure(http_status=503))
    with Otlpd(cfg) as otlpd:
        assert post(otlpd.http_endpoint, Signal.TRACES, traces(4)) == 200
        strict = {"exporter": "otlp/strict", "signal": "traces"}
        patient = {"exporter": "otlphttp/patient", "signal": "traces"}
        assert other_sink.wait_until(
            lambda _: otlpd.metric("otlpd_exporter_dropped_items_total", **patient) > 0
        )
        assert otlpd.metric("otlpd_exporter_dropped_items_total", **strict, reason="permanent") == 4
        assert otlpd.metric("otlpd_exporter_dropped_items_total", **patient, reason="retries_exhausted") == 4
        assert otlpd.metric("otlpd_exporter_send_failed_requests_total", **strict, error="permanent") == 1
        failed = otlpd.metric("otlpd_exporter_send_failed_requests_total", **patient)
        assert failed == other_sink.state.attempts
        assert otlpd.terminate() == 0
    assert sink.state.attempts == 1
    assert other_sink.state.attempts > 1
    assert sink.state.received == other_sink.state.received == []


def test_batches_reach_the_upstream_as_fewer_larger_requests(sink: Sink) -> None:
    cfg = config(
        {"otlp": {"endpoint": sink.grpc_endpoint, "tls": {"insecure": True}}},
        {"batch": {"timeout": "300ms", "send_batch_size": 1000}},
    )
    with Otlpd(cfg) as otlpd:
        sent = [traces(3, f"p{i}") for i in range(10)]
        for message in sent:
            assert post(otlpd.http_endpoint, Signal.TRACES, message) == 200
        assert sink.wait_for_items(Signal.TRACES, 30) == 30
        assert otlpd.metric("otlpd_processor_batch_sends_total", trigger="timeout") >= 1
        assert otlpd.metric("otlpd_processor_batch_send_size_sum") == 30
        assert otlpd.terminate() == 0
    assert len(sink.state.received) < len(sent)
    assert sorted(span_names(sink.state.messages(Signal.TRACES))) == sorted(span_names(sent))


def test_a_full_queue_refuses_clients_and_readiness(sink: Sink) -> None:
    cfg = config(
        {
            "otlp": {
                "endpoint": sink.grpc_endpoint,
                "tls": {"insecure": True},
                "timeout": "10s",
                "sending_queue": {"queue_size": 1, "num_consumers": 1},
            }
        }
    )
    sink.state.delay = 2.0
    with Otlpd(cfg) as otlpd:
        assert post(otlpd.http_endpoint, Signal.TRACES, traces(1, "a")) == 200
        assert sink.wait_until(lambda s: s.attempts == 1)  # the one worker is busy
        assert post(otlpd.http_endpoint, Signal.TRACES, traces(1, "b")) == 200  # queued
        assert otlpd.metric("otlpd_exporter_queue_size", exporter="otlp", signal="traces") == 1
        assert post(otlpd.http_endpoint, Signal.TRACES, traces(2, "c")) == 503
        assert otlpd.metric("otlpd_exporter_enqueue_failed_items_total", exporter="otlp") == 2
        status, body = otlpd.health()
        assert status == 503
        assert body["refusing"]
        sink.state.delay = 0
        assert sink.wait_for_items(Signal.TRACES, 2) == 2
        otlpd.wait_ready()
        assert otlpd.terminate() == 0
    assert span_names(sink.state.messages(Signal.TRACES)) == ["a-0", "b-0"]


def test_sigterm_flushes_the_batch_and_counts_what_could_not_be_delivered(sink: Sink) -> None:
    cfg = config(
        {"otlp": {"endpoint": sink.grpc_endpoint, "tls": {"insecure": True}, "retry_on_failure": FAST_RETRY}},
        {"batch": {"timeout": "30s"}},
        shutdown_timeout="1s",
    )
    sink.fail_next(10_000)
    with Otlpd(cfg) as otlpd:
        assert post(otlpd.http_endpoint, Signal.TRACES, traces(5)) == 200
        assert sink.state.attempts == 0  # still in the batch
        assert otlpd.terminate() == 0
        log_events = otlpd.log_events()
    assert sink.state.attempts >= 1  # flushed into the exporter at shutdown, which tried
    drops = [e for e in events(log_events, "otlpd.exporter.otlp") if e["msg"] == "dropping data"]
    assert [(d["reason"], d["items"]) for d in drops] == [("shutdown", 5)]
