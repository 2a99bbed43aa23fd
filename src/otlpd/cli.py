"""``otlpd serve | validate | print-config | components | migrate | version``."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from typing import Any

import yaml

from otlpd import __version__
from otlpd.component import Kind
from otlpd.config import Config, ConfigError, load
from otlpd.telemetry import logging as otlpd_logging


def _config_arg(parser: argparse.ArgumentParser, required: bool = False) -> None:
    parser.add_argument(
        "--config",
        "-c",
        required=required,
        default=None if required else os.environ.get("OTLPD_CONFIG") or None,
        help="config file (default: $OTLPD_CONFIG, else the built-in default)",
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="otlpd", description="OpenTelemetry (OTLP) collector")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the collector")
    _config_arg(serve)
    serve.add_argument(
        "--workers",
        type=int,
        default=None,
        help="worker processes sharing the receiver ports (default: service.workers, $OTLPD_WORKERS, 1)",
    )
    validate = sub.add_parser("validate", help="check a config and print every error")
    _config_arg(validate, required=True)
    show = sub.add_parser("print-config", help="print the effective config (secrets redacted)")
    _config_arg(show)
    sub.add_parser("components", help="list the available components")
    migrate = sub.add_parser("migrate", help="bring every store's database schema up to date, then exit")
    _config_arg(migrate)
    sub.add_parser("version", help="print the version")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "version":
        print(f"otlpd {__version__}")
        return 0
    if args.command == "components":
        return _components()
    try:
        config = load(args.config)
    except ConfigError as exc:
        where = args.config or "built-in default"
        print(f"otlpd: invalid config {where}:", file=sys.stderr)
        for error in exc.errors:
            print(f"  {error}", file=sys.stderr)
        return 1
    if args.command == "validate":
        for warning in config.warnings:
            print(f"warning: {warning}", file=sys.stderr)
        print(f"{args.config}: valid")
        return 0
    if args.command == "migrate":
        return _migrate(config)
    if args.command == "print-config":
        try:
            yaml.safe_dump(_escape_dollars(config.effective()), sys.stdout, sort_keys=False)
            sys.stdout.flush()
        except BrokenPipeError:  # `otlpd print-config | head` is not an error
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    if args.workers is not None:
        if not 1 <= args.workers <= 256:
            print("otlpd: --workers must be from 1 to 256", file=sys.stderr)
            return 2
        config.service.workers = args.workers
    if config.service.workers > 1:
        stores = sorted({str(e) for p in config.pipelines for e in p.exporters if e.type == "store"})
        if stores:
            where = args.config or "built-in default"
            print(
                f"otlpd: invalid config {where}:\n  service::workers: {config.service.workers} workers cannot"
                f" share the store exporter ({', '.join(stores)}): its database has one writer process."
                " Run one worker, or use the store in a separate otlpd.",
                file=sys.stderr,
            )
            return 1
    return _serve(config, args.config)


def _migrate(config: Config) -> int:
    """A one-off admin step (a Kubernetes Job, an init container) before the new version serves."""
    from otlpd.exporters.store.config import StoreConfig
    from otlpd.exporters.store.exporter import open_engine

    stores = {
        cid: c.config for cid, c in config.components.get(Kind.EXPORTER, {}).items() if cid.type == "store"
    }
    if not stores:
        print("otlpd: no store exporter in the config: nothing to migrate")
        return 0
    code = 0
    for cid, cfg in sorted(stores.items()):
        assert isinstance(cfg, StoreConfig)
        try:
            engine = open_engine(cfg)
            try:
                before = engine.schema_version()
                applied = engine.migrate()
                after = engine.schema_version()
            finally:
                engine.close()
        except Exception as exc:
            print(f"otlpd: exporters::{cid}: cannot migrate {cfg.path}: {exc}", file=sys.stderr)
            code = 1
            continue
        if applied:
            print(f"{cid} ({cfg.path}): schema {before} -> {after} (applied {', '.join(map(str, applied))})")
        else:
            print(f"{cid} ({cfg.path}): schema {after} is up to date")
    return code


def _escape_dollars(node: Any) -> Any:
    """Write ``$`` as ``$$`` so that loading the printed config gives back the same values."""
    if isinstance(node, dict):
        return {key: _escape_dollars(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_escape_dollars(value) for value in node]
    if isinstance(node, str):
        return node.replace("$", "$$")
    return node


def _components() -> int:
    from otlpd.service import registry

    for kind in (Kind.RECEIVER, Kind.PROCESSOR, Kind.EXPORTER, Kind.EXTENSION):
        factories = [f for f in registry.FACTORIES if f.kind is kind]
        if not factories:
            continue
        print(f"{kind.section}:")
        for f in factories:
            aliases = f" (alias: {', '.join(f.aliases)})" if f.aliases else ""
            signals = ", ".join(s.value for s in sorted(f.signals, key=lambda s: s.value))
            print(f"  {f.type}{aliases}: {f.description}" + (f" [{signals}]" if signals else ""))
    return 0


def _serve(config: Config, config_path: str | None) -> int:
    from otlpd.service.service import Service, Worker
    from otlpd.service.supervisor import Supervisor

    worker = Worker.from_env(os.environ)
    logs = config.service.telemetry.logs
    otlpd_logging.setup(logs.level, logs.encoding, worker=worker.index if worker else None)
    log = otlpd_logging.get("main")
    if worker is None:
        for warning in config.warnings:
            log.warning(warning)
        log.info("starting otlpd", extra={"version": __version__, "config": config.source})
    else:
        Worker.die_with_parent()

    async def run() -> int:
        if worker is None and config.service.workers > 1:
            return await Supervisor(config, config.service.workers, config_path).run()
        return await Service(config, worker=worker).run()

    try:
        code = asyncio.run(run())
    finally:
        otlpd_logging.flush()
    return code


if __name__ == "__main__":
    raise SystemExit(main())
