"""Load, substitute and validate a config, collecting every error with its path.

Paths are written the Collector's way, ``exporters::otlp/x::timeout``, so a
user can find the key in their file. Validation never stops at the first
error: ``otlpd validate`` prints them all.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from otlpd.component import ComponentID, Factory, Kind
from otlpd.config import defaults
from otlpd.config.env import MissingVariables, substitute
from otlpd.config.service import PipelineConfig, ServiceConfig
from otlpd.pdata import Signal

_SECTIONS = ("receivers", "processors", "exporters", "extensions", "connectors", "service")


class ConfigError(Exception):
    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


@dataclass
class ComponentConfig:
    id: ComponentID
    factory: Factory
    config: BaseModel
    key: str  # as written in the file, for print-config


@dataclass
class Pipeline:
    name: str  # "traces" or "traces/name"
    signal: Signal
    receivers: list[ComponentID]
    processors: list[ComponentID]
    exporters: list[ComponentID]


@dataclass
class Config:
    components: dict[Kind, dict[ComponentID, ComponentConfig]]
    service: ServiceConfig
    pipelines: list[Pipeline]
    source: str  # the file, or "built-in default"
    extensions: list[ComponentID] = field(default_factory=list)  # service.extensions, resolved
    warnings: list[str] = field(default_factory=list)

    def component(self, kind: Kind, id: ComponentID) -> ComponentConfig:
        return self.components[kind][id]

    def effective(self) -> dict[str, Any]:
        """The config as otlpd runs it: defaults filled in, secrets redacted.

        Unset optional sections are left out rather than written as null: for
        the Collector (and otlpd) ``http: null`` under ``protocols`` *enables*
        HTTP, so printing the null would change the config when read back.
        """
        out: dict[str, Any] = {}
        for kind in (Kind.RECEIVER, Kind.PROCESSOR, Kind.EXPORTER, Kind.EXTENSION):
            section = {
                c.key: c.config.model_dump(mode="json", exclude_none=True)
                for c in self.components[kind].values()
            }
            if section:
                out[kind.section] = section
        out["service"] = self.service.model_dump(mode="json")
        return out


def load(
    path: str | os.PathLike[str] | None,
    environ: Mapping[str, str] | None = None,
) -> Config:
    """Load ``path`` (or the built-in default when None) and apply env overrides."""
    env = os.environ if environ is None else environ
    if path is None:
        raw: Any = defaults.default_config(env)
        source = "built-in default"
    else:
        raw = _read_yaml(Path(path))
        source = str(path)
    missing = MissingVariables()
    raw = substitute(raw, env, missing)
    config = _validate(raw, source)
    for name in sorted(set(missing)):
        config.warnings.append(f"environment variable {name} is not set; it expanded to an empty string")
    _apply_env_overrides(config, env)
    return config


def _read_yaml(path: Path) -> Any:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read config: {exc.strerror or exc}"]) from None
    try:
        return yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        where = ""
        mark = getattr(exc, "problem_mark", None)
        if mark is not None:
            where = f" (line {mark.line + 1}, column {mark.column + 1})"
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError([f"{path}: invalid YAML{where}: {problem}"]) from None


def _apply_env_overrides(config: Config, env: Mapping[str, str]) -> None:
    """12-factor: these variables win over the file."""
    if env.get("OTLPD_WORKERS"):
        try:
            config.service.workers = ServiceConfig.model_validate({"workers": env["OTLPD_WORKERS"]}).workers
        except ValidationError:
            raise ConfigError(
                [f"OTLPD_WORKERS: must be a whole number from 1 to 256, not {env['OTLPD_WORKERS']!r}"]
            ) from None
    if env.get("OTLPD_HTTP_ENDPOINT"):
        config.service.http.endpoint = env["OTLPD_HTTP_ENDPOINT"]
    telemetry_logs = config.service.telemetry.logs
    if env.get("OTLPD_LOG_LEVEL"):
        telemetry_logs.level = env["OTLPD_LOG_LEVEL"].lower()  # type: ignore[assignment]
    if env.get("OTLPD_LOG_FORMAT"):
        telemetry_logs.encoding = env["OTLPD_LOG_FORMAT"].lower()  # type: ignore[assignment]


def pydantic_errors(prefix: str, exc: ValidationError) -> list[str]:
    out = []
    for err in exc.errors():
        loc = [str(p) for p in err["loc"] if not str(p).startswith("function-")]
        path = "::".join([prefix, *loc]) if prefix else "::".join(loc)
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key (not a setting of this component in otlpd)"
        elif msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        out.append(f"{path}: {msg}")
    return out


def _validate(raw: Any, source: str) -> Config:
    from otlpd.service import registry  # components import config modules; import late

    errors: list[str] = []
    if not isinstance(raw, dict):
        raise ConfigError([f"{source}: the config must be a YAML mapping"])
    for key in raw:
        if key not in _SECTIONS:
            errors.append(f"{key}: unknown top-level section (expected one of {', '.join(_SECTIONS)})")
    if raw.get("connectors"):
        errors.append("connectors: connectors are not supported by otlpd yet")

    components: dict[Kind, dict[ComponentID, ComponentConfig]] = {k: {} for k in Kind}
    # Defined, but with an error already reported: references to these are not
    # reported again as "not defined", which would send the user looking for a typo.
    invalid: set[tuple[Kind, ComponentID]] = set()
    for kind in Kind:
        section = raw.get(kind.section) or {}
        if not isinstance(section, dict):
            errors.append(f"{kind.section}: must be a mapping of component ids to their settings")
            continue
        for key, body in section.items():
            path = f"{kind.section}::{key}"
            try:
                cid = ComponentID.parse(key)
            except ValueError as exc:
                errors.append(f"{path}: {exc}")
                continue
            factory = registry.lookup(kind, cid.type)
            if factory is None:
                known = ", ".join(registry.types(kind)) or "none"
                errors.append(f'{path}: unknown {kind.value} type "{cid.type}" (known: {known})')
                continue
            cid = ComponentID(factory.type, cid.name)  # aliases resolve to the canonical type
            try:
                model = factory.config.model_validate(body or {})
            except ValidationError as exc:
                errors.extend(pydantic_errors(path, exc))
                invalid.add((kind, cid))
                continue
            if cid in components[kind]:
                errors.append(f"{path}: duplicates {components[kind][cid].key}")
                continue
            components[kind][cid] = ComponentConfig(cid, factory, model, str(key))

    service_raw = raw.get("service") or {}
    try:
        service = ServiceConfig.model_validate(service_raw)
    except ValidationError as exc:
        errors.extend(pydantic_errors("service", exc))
        # Still check the pipelines that parse, so every error is printed at once.
        _pipelines(_parsable_pipelines(service_raw), components, invalid, errors, required=False)
        raise ConfigError(errors) from None

    pipelines = _pipelines(service.pipelines, components, invalid, errors)
    extensions = []
    for i, ext in enumerate(service.extensions):
        xid = _resolve(ext, Kind.EXTENSION, components, invalid, f"service::extensions::{i}", errors)
        if xid is not None:
            extensions.append(xid)
    if errors:
        raise ConfigError(errors)
    return Config(components, service, pipelines, source, extensions)


def _resolve(
    text: str,
    kind: Kind,
    components: dict[Kind, dict[ComponentID, ComponentConfig]],
    invalid: set[tuple[Kind, ComponentID]],
    path: str,
    errors: list[str],
) -> ComponentID | None:
    from otlpd.service import registry

    try:
        cid = ComponentID.parse(text)
    except ValueError as exc:
        errors.append(f"{path}: {exc}")
        return None
    factory = registry.lookup(kind, cid.type)
    if factory is not None:
        cid = ComponentID(factory.type, cid.name)
    if cid not in components[kind]:
        if (kind, cid) not in invalid:
            errors.append(f'{path}: {kind.value} "{text}" is not defined')
        return None
    return cid


def _parsable_pipelines(service_raw: Any) -> dict[str, PipelineConfig]:
    """The pipelines of an invalid ``service`` section that are themselves valid."""
    raw = service_raw.get("pipelines") if isinstance(service_raw, dict) else None
    out = {}
    for name, spec in (raw if isinstance(raw, dict) else {}).items():
        try:
            out[str(name)] = PipelineConfig.model_validate(spec or {})
        except ValidationError:
            continue  # already reported
    return out


def _pipelines(
    specs: dict[str, PipelineConfig],
    components: dict[Kind, dict[ComponentID, ComponentConfig]],
    invalid: set[tuple[Kind, ComponentID]],
    errors: list[str],
    *,
    required: bool = True,
) -> list[Pipeline]:
    if required and not specs:
        errors.append("service::pipelines: at least one pipeline must be configured")
    out = []
    for name, spec in specs.items():
        path = f"service::pipelines::{name}"
        signal_name = name.partition("/")[0]
        try:
            signal = Signal(signal_name)
        except ValueError:
            errors.append(f'{path}: unknown signal "{signal_name}" (expected traces, metrics or logs)')
            continue
        refs: dict[Kind, list[ComponentID]] = {}
        for kind, items in (
            (Kind.RECEIVER, spec.receivers),
            (Kind.PROCESSOR, spec.processors),
            (Kind.EXPORTER, spec.exporters),
        ):
            refs[kind] = []
            if not items and kind is not Kind.PROCESSOR:
                errors.append(f"{path}: must have at least one {kind.value}")
            seen: set[ComponentID] = set()
            for item in items:
                cid = _resolve(item, kind, components, invalid, path, errors)
                if cid is None:
                    continue
                if cid in seen:
                    errors.append(f'{path}: {kind.value} "{item}" is listed twice')
                    continue
                seen.add(cid)
                factory = components[kind][cid].factory
                if signal not in factory.signals:
                    errors.append(f'{path}: {kind.value} "{item}" does not support {signal.value}')
                elif factory.check_signal is not None:
                    problem = factory.check_signal(components[kind][cid].config, signal)
                    if problem:
                        errors.append(f'{path}: {kind.value} "{item}" {problem}')
                refs[kind].append(cid)
        out.append(Pipeline(name, signal, refs[Kind.RECEIVER], refs[Kind.PROCESSOR], refs[Kind.EXPORTER]))
    return out
