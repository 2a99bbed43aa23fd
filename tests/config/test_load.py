"""Loading and validating configs in-process: errors with Collector-style paths, env, defaults."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from otlpd.component import ComponentID, Kind
from otlpd.config import Config, ConfigError, load
from otlpd.pdata import Signal

HERE = Path(__file__).parent


def write(tmp_path: Path, config: dict[str, Any] | str) -> Path:
    path = tmp_path / "otlpd.yaml"
    path.write_text(config if isinstance(config, str) else yaml.safe_dump(config))
    return path


def minimal(**overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "receivers": {"otlp": {"protocols": {"grpc": None}}},
        "exporters": {"debug": {}},
        "service": {"pipelines": {"traces": {"receivers": ["otlp"], "exporters": ["debug"]}}},
    }
    config.update(overrides)
    return config


def errors_of(tmp_path: Path, config: dict[str, Any] | str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as exc:
        load(write(tmp_path, config), environ=env or {})
    return exc.value.errors


def test_minimal_config_loads(tmp_path: Path) -> None:
    config = load(write(tmp_path, minimal()), environ={})
    assert isinstance(config, Config)
    (pipeline,) = config.pipelines
    assert pipeline.name == "traces"
    assert pipeline.signal is Signal.TRACES
    assert pipeline.receivers == [ComponentID("otlp")]
    assert pipeline.exporters == [ComponentID("debug")]
    receiver = config.component(Kind.RECEIVER, ComponentID("otlp")).config
    assert receiver.protocols.grpc.endpoint == "localhost:4317"  # the Collector's default
    assert receiver.protocols.http is None
    assert config.service.shutdown_timeout == 30.0
    assert config.service.worker_start_timeout == 60.0
    assert config.warnings == []


def test_collector_config_is_accepted_unchanged() -> None:
    config = load(HERE / "collector.yaml", environ={"UPSTREAM_TOKEN": "t0k"})
    assert sorted(p.name for p in config.pipelines) == ["logs", "metrics", "traces", "traces/archive"]
    exporters = config.components[Kind.EXPORTER]
    assert set(map(str, exporters)) == {"otlp", "otlphttp/vendor", "debug", "file/archive"}
    otlp = exporters[ComponentID("otlp")].config
    assert otlp.tls.insecure is True
    assert otlp.timeout == 10.0
    assert otlp.headers == {"x-scope-orgid": "tenant-1", "authorization": "Bearer t0k"}
    assert (otlp.sending_queue.num_consumers, otlp.sending_queue.queue_size) == (4, 5000)
    assert (otlp.retry_on_failure.initial_interval, otlp.retry_on_failure.max_elapsed_time) == (1.0, 300.0)
    assert exporters[ComponentID("debug")].config.verbosity == "detailed"
    assert exporters[ComponentID("otlphttp", "vendor")].config.headers == {"api-key": "none"}
    grpc = config.component(Kind.RECEIVER, ComponentID("otlp")).config.protocols.grpc
    assert grpc.max_recv_msg_size_mib == 16
    assert grpc.keepalive.server_parameters.max_connection_age == 60.0
    batch = config.component(Kind.PROCESSOR, ComponentID("batch", "logs")).config
    assert (batch.send_batch_size, batch.timeout) == (1024, 1.0)
    assert config.service.telemetry.logs.level == "info"
    assert config.warnings == []


def test_every_error_is_reported_with_its_path(tmp_path: Path) -> None:
    config = {
        "receivers": {"otlp": {"protocols": {"grpc": None}}, "kafka": {}},
        "processors": {"batch": {"timeout": "5 seconds"}, "batch/ok": {}},
        "exporters": {
            "otlp": {"endpoint": "up:4317", "bogus": 1},
            "otlp/b": {"endpoint": "up:4317", "retry_on_failure": {"max_interval": "forever"}},
            "debug": {},
        },
        "service": {
            "pipelines": {
                "traces": {"receivers": ["otlp"], "processors": ["batch/ok"], "exporters": ["otlp/x"]},
                "metrics": {"receivers": ["nope"], "exporters": ["debug"]},
                "profiles": {"receivers": ["otlp"], "exporters": ["debug"]},
                "logs": {"receivers": [], "exporters": ["debug"]},
            }
        },
    }
    errors = errors_of(tmp_path, config)
    expected = [
        'receivers::kafka: unknown receiver type "kafka" (known: otlp)',
        "processors::batch::timeout: invalid duration '5 seconds'; expected e.g. 200ms, 5s, 1m30s",
        "exporters::otlp::bogus: unknown key (not a setting of this component in otlpd)",
        "exporters::otlp/b::retry_on_failure::max_interval: invalid duration 'forever'; "
        "expected e.g. 200ms, 5s, 1m30s",
        'service::pipelines::traces: exporter "otlp/x" is not defined',
        'service::pipelines::metrics: receiver "nope" is not defined',
        'service::pipelines::profiles: unknown signal "profiles" (expected traces, metrics or logs)',
        "service::pipelines::logs: must have at least one receiver",
    ]
    for line in expected:
        assert line in errors, f"missing {line!r} in {errors}"
    assert len(errors) == len(expected), errors


def test_an_invalid_component_is_not_also_reported_as_undefined(tmp_path: Path) -> None:
    config = minimal(exporters={"debug": {"verbosity": "loud"}})
    errors = errors_of(tmp_path, config)
    assert len(errors) == 1, errors
    assert errors[0].startswith("exporters::debug::verbosity: ")


@pytest.mark.parametrize(
    ("patch", "error"),
    [
        ({"receivers": {"otlp": {"protocols": {}}}}, "receivers::otlp: must specify at least one protocol"),
        (
            {"receivers": {"otlp": {"protocols": {"grpc": None}, "extra": 1}}},
            "receivers::otlp::extra: unknown key",
        ),
        ({"exporters": {"debug": {}, "otlp": {}}}, "exporters::otlp::endpoint: Field required"),
        (
            {"exporters": {"debug": {}, "otlp": {"endpoint": "a:1", "compression": "lz4"}}},
            "exporters::otlp::compression",
        ),
        (
            {"exporters": {"debug": {}, "otlphttp": {"endpoint": "up:4318"}}},
            "exporters::otlphttp: endpoint must be",
        ),
        ({"exporters": {"debug": {}, "otlp/": {"endpoint": "a:1"}}}, "exporters::otlp/: component id"),
        ({"processors": {"batch": {"send_batch_size": -1}}}, "processors::batch::send_batch_size"),
        (
            {"processors": {"batch": {"send_batch_max_size": 10, "send_batch_size": 100}}},
            "processors::batch: ",
        ),
        ({"connectors": {"spanmetrics": {}}}, "connectors: connectors are not supported"),
        (
            {"extensions": {"zpages": {}}},
            'extensions::zpages: unknown extension type "zpages" (known: health_check)',
        ),
        ({"exporter": {}}, "exporter: unknown top-level section"),
    ],
)
def test_single_error(tmp_path: Path, patch: dict[str, Any], error: str) -> None:
    errors = errors_of(tmp_path, minimal(**patch))
    assert any(e.startswith(error) for e in errors), errors


@pytest.mark.parametrize(
    ("service", "error"),
    [
        ({"pipelines": {}}, "service::pipelines: at least one pipeline must be configured"),
        ({"shutdown_timeout": "soon", "pipelines": {}}, "service::shutdown_timeout: invalid duration 'soon'"),
        (
            {"http": {"endpoint": "localhost"}, "pipelines": {}},
            "service::http::endpoint: endpoint 'localhost'",
        ),
        ({"telemetry": {"logs": {"level": "chatty"}}, "pipelines": {}}, "service::telemetry::logs::level: "),
        ({"pipeline": {}}, "service::pipeline: unknown key"),
    ],
)
def test_service_errors(tmp_path: Path, service: dict[str, Any], error: str) -> None:
    errors = errors_of(tmp_path, minimal(service=service))
    assert any(e.startswith(error) for e in errors), errors


def test_pipeline_errors(tmp_path: Path) -> None:
    pipelines = {
        "traces": {"receivers": ["otlp", "otlp"], "exporters": ["debug"]},
        "metrics/x": {"receivers": ["otlp"], "exporters": []},
        "logs": {"receivers": ["otlp"], "exporters": ["debug"], "connectors": []},
        "traces/2": {"receivers": ["otlp"], "processors": ["batch"], "exporters": ["debug"]},
    }
    errors = errors_of(tmp_path, minimal(service={"pipelines": pipelines}))
    assert 'service::pipelines::traces: receiver "otlp" is listed twice' in errors
    assert "service::pipelines::metrics/x: must have at least one exporter" in errors
    assert any(e.startswith("service::pipelines::logs::connectors: unknown key") for e in errors), errors
    assert 'service::pipelines::traces/2: processor "batch" is not defined' in errors


def test_aliases_resolve_to_the_canonical_type(tmp_path: Path) -> None:
    config = minimal(
        exporters={"otlp_grpc/a": {"endpoint": "a:1"}, "otlp_http": {"endpoint": "http://a:2"}},
        service={"pipelines": {"logs": {"receivers": ["otlp"], "exporters": ["otlp_grpc/a", "otlp_http"]}}},
    )
    loaded = load(write(tmp_path, config), environ={})
    assert loaded.pipelines[0].exporters == [ComponentID("otlp", "a"), ComponentID("otlphttp")]
    # the same component under its alias and its own name is a duplicate
    dup = minimal(exporters={"debug": {}, "otlp": {"endpoint": "a:1"}, "otlp_grpc": {"endpoint": "a:1"}})
    assert any("duplicates" in e for e in errors_of(tmp_path, dup))


def test_durations_and_sizes(tmp_path: Path) -> None:
    config = minimal(
        receivers={"otlp": {"protocols": {"http": {"max_request_body_size": "4MiB"}}}},
        processors={"batch": {"timeout": "1m30s"}},
        exporters={
            "otlp": {
                "endpoint": "a:1",
                "timeout": "200ms",
                "read_buffer_size": "512KB",
                "retry_on_failure": {"initial_interval": "1.5s", "max_interval": "1h"},
            }
        },
        service={
            "shutdown_timeout": "0",
            "pipelines": {"traces": {"receivers": ["otlp"], "processors": ["batch"], "exporters": ["otlp"]}},
        },
    )
    loaded = load(write(tmp_path, config), environ={})
    assert loaded.component(
        Kind.RECEIVER, ComponentID("otlp")
    ).config.protocols.http.max_request_body_size == (4 * 1024 * 1024)
    assert loaded.component(Kind.PROCESSOR, ComponentID("batch")).config.timeout == 90.0
    otlp = loaded.component(Kind.EXPORTER, ComponentID("otlp")).config
    assert otlp.timeout == pytest.approx(0.2)
    assert otlp.read_buffer_size == 512_000
    assert otlp.retry_on_failure.initial_interval == 1.5
    assert otlp.retry_on_failure.max_interval == 3600.0
    assert loaded.service.shutdown_timeout == 0.0


def test_env_substitution_is_typed_and_has_defaults(tmp_path: Path) -> None:
    text = """
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: "127.0.0.1:${env:GRPC_PORT}"
        max_recv_msg_size_mib: ${env:MIB}
      http:
        endpoint: ${env:HTTP_ENDPOINT:-127.0.0.1:4318}
exporters:
  otlp:
    endpoint: ${env:UPSTREAM}
    tls:
      insecure: ${env:INSECURE:-true}
    headers:
      price: "$$5 ${env:EMPTY:-fallback}"
service:
  telemetry:
    metrics:
      port: ${env:METRICS_PORT}
      literal: "$${env:METRICS_PORT}"
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [otlp]
"""
    env = {"GRPC_PORT": "14317", "MIB": "8", "UPSTREAM": "up:4317", "EMPTY": "", "METRICS_PORT": "9464"}
    loaded = load(write(tmp_path, text), environ=env)
    protocols = loaded.component(Kind.RECEIVER, ComponentID("otlp")).config.protocols
    assert protocols.grpc.endpoint == "127.0.0.1:14317"
    assert protocols.grpc.max_recv_msg_size_mib == 8
    assert protocols.http.endpoint == "127.0.0.1:4318"
    otlp = loaded.component(Kind.EXPORTER, ComponentID("otlp")).config
    assert otlp.endpoint == "up:4317"
    assert otlp.tls.insecure is True
    assert otlp.headers["price"] == "$5 fallback"  # $$ is a literal $; an empty var takes the :-default
    metrics = loaded.service.telemetry.metrics
    assert metrics["port"] == 9464  # a whole-value reference takes its YAML type: an int
    assert isinstance(metrics["port"], int)
    assert metrics["literal"] == "${env:METRICS_PORT}"  # escaped, not substituted
    assert loaded.warnings == []


def test_env_values_cannot_inject_structure(tmp_path: Path) -> None:
    config = minimal()
    config["service"]["telemetry"] = {"metrics": {"a": "${env:A}", "b": "${env:B}"}}
    loaded = load(write(tmp_path, config), environ={"A": "{x: 1}", "B": "[1, 2]"})
    assert loaded.service.telemetry.metrics == {"a": "{x: 1}", "b": "[1, 2]"}


def test_missing_env_variable_is_a_warning(tmp_path: Path) -> None:
    config = minimal(exporters={"otlp": {"endpoint": "${env:UPSTREAM_HOST}:4317"}})
    config["service"]["pipelines"]["traces"]["exporters"] = ["otlp"]
    loaded = load(write(tmp_path, config), environ={})
    assert loaded.component(Kind.EXPORTER, ComponentID("otlp")).config.endpoint == ":4317"
    assert loaded.warnings == [
        "environment variable UPSTREAM_HOST is not set; it expanded to an empty string"
    ]


def test_env_overrides_win_over_the_file(tmp_path: Path) -> None:
    config = minimal(service={**minimal()["service"], "http": {"endpoint": "127.0.0.1:1"}})
    env = {"OTLPD_HTTP_ENDPOINT": "127.0.0.1:9999", "OTLPD_LOG_LEVEL": "DEBUG", "OTLPD_LOG_FORMAT": "TEXT"}
    loaded = load(write(tmp_path, config), environ=env)
    assert loaded.service.http.endpoint == "127.0.0.1:9999"
    assert loaded.service.telemetry.logs.level == "debug"
    assert loaded.service.telemetry.logs.encoding == "text"


def test_default_config_without_and_with_an_upstream() -> None:
    plain = load(None, environ={})
    assert plain.source == "built-in default"
    assert [str(e) for p in plain.pipelines for e in p.exporters] == ["store", "debug"] * 3
    store = plain.component(Kind.EXPORTER, ComponentID("store")).config
    assert store.path == "./data/otlpd.duckdb"
    moved = load(None, environ={"OTLPD_STORE_PATH": "/var/lib/otlpd/traces.duckdb"})
    assert moved.component(Kind.EXPORTER, ComponentID("store")).config.path == "/var/lib/otlpd/traces.duckdb"
    assert sorted(p.signal.value for p in plain.pipelines) == ["logs", "metrics", "traces"]
    protocols = plain.component(Kind.RECEIVER, ComponentID("otlp")).config.protocols
    assert (protocols.grpc.endpoint, protocols.http.endpoint) == ("0.0.0.0:4317", "0.0.0.0:4318")

    upstream = load(None, environ={"OTLPD_EXPORTER_OTLP_ENDPOINT": "http://collector:4317"})
    for p in upstream.pipelines:
        assert [str(e) for e in p.exporters] == ["store", "debug", "otlp"]
    otlp = upstream.component(Kind.EXPORTER, ComponentID("otlp")).config
    assert otlp.endpoint == "http://collector:4317"
    assert otlp.tls.insecure is True
    tls = load(None, environ={"OTLPD_EXPORTER_OTLP_ENDPOINT": "https://collector:4317"})
    assert tls.component(Kind.EXPORTER, ComponentID("otlp")).config.tls.insecure is False


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("receivers: [a, b\n", "invalid YAML (line 2, column 1)"),
        ("- 1\n- 2\n", "the config must be a YAML mapping"),
        ("receivers: 5\nservice: {pipelines: {}}\n", "receivers: must be a mapping"),
    ],
)
def test_broken_files(tmp_path: Path, text: str, error: str) -> None:
    errors = errors_of(tmp_path, text)
    assert any(error in e for e in errors), errors


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as exc:
        load(tmp_path / "nope.yaml", environ={})
    assert "cannot read config" in exc.value.errors[0]


def test_effective_config_redacts_secrets_and_loads_again(tmp_path: Path) -> None:
    loaded = load(HERE / "collector.yaml", environ={"UPSTREAM_TOKEN": "t0k", "VENDOR_API_KEY": "k3y"})
    effective = loaded.effective()
    text = yaml.safe_dump(effective)
    assert "t0k" not in text
    assert "k3y" not in text
    assert "tenant-1" not in text
    assert effective["exporters"]["otlp"]["headers"] == {
        "x-scope-orgid": "[REDACTED]",
        "authorization": "[REDACTED]",
    }
    again = load(write(tmp_path, effective), environ={})
    assert again.effective() == effective


def test_effective_config_keeps_absent_protocols_absent(tmp_path: Path) -> None:
    """``http: null`` enables HTTP, so an absent protocol must not be printed as null."""
    loaded = load(write(tmp_path, minimal()), environ={})
    effective = loaded.effective()
    assert list(effective["receivers"]["otlp"]["protocols"]) == ["grpc"]
    again = load(write(tmp_path, effective), environ={})
    assert again.component(Kind.RECEIVER, ComponentID("otlp")).config.protocols.http is None


def test_values_that_would_break_serve_fail_validation(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        """
receivers:
  otlp:
    protocols:
      grpc: {endpoint: localhost}
      http: {endpoint: "127.0.0.1:4318", max_request_body_size: 0}
exporters:
  otlp: {endpoint: "x:4317", timeout: -5s}
  otlphttp: {traces_endpoint: "http://x:4318/v1/traces"}
service:
  shutdown_timeout: -1s
  pipelines:
    metrics: {receivers: [otlp], exporters: [otlphttp]}
"""
    )
    with pytest.raises(ConfigError) as info:
        load(path, {})
    assert set(info.value.errors) == {
        "receivers::otlp::protocols::grpc::endpoint: endpoint 'localhost' must be host:port",
        "exporters::otlp::timeout: duration '-5s' must not be negative",
        "service::shutdown_timeout: duration '-1s' must not be negative",
        'service::pipelines::metrics: exporter "otlphttp" has neither endpoint nor metrics_endpoint,'
        " so it cannot send metrics",
    }


def test_max_request_body_size_zero_means_the_collector_default(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        """
receivers: {otlp: {protocols: {http: {max_request_body_size: 0}}}}
exporters: {debug: {}}
service: {pipelines: {logs: {receivers: [otlp], exporters: [debug]}}}
"""
    )
    config = load(path, {})
    receiver = next(iter(config.components[Kind.RECEIVER].values())).config
    assert receiver.protocols.http.max_request_body_size == 20 * 1024 * 1024
