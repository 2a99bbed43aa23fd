"""Component model, as in the OpenTelemetry Collector.

A component is configured by a pydantic model and built by a :class:`Factory`.
Data flows through :class:`Consumer` objects: a receiver holds the consumer of
each signal's pipelines, a processor holds the next consumer, an exporter is
the end. Every component has the same lifecycle, driven by the service graph.
"""

from __future__ import annotations

import builtins
import enum
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel

from otlpd.errors import OtlpdError
from otlpd.pdata import Payload, Signal

if TYPE_CHECKING:
    from otlpd.telemetry.metrics import Metrics

_TYPE = re.compile(r"^[a-zA-Z][a-zA-Z0-9_]*$")


class Kind(enum.Enum):
    RECEIVER = "receiver"
    PROCESSOR = "processor"
    EXPORTER = "exporter"
    EXTENSION = "extension"

    @property
    def section(self) -> str:
        return self.value + "s"


@dataclass(frozen=True, order=True)
class ComponentID:
    """``type[/name]``, the key of a component in the config."""

    type: str
    name: str = ""

    @classmethod
    def parse(cls, text: str) -> ComponentID:
        type_, sep, name = str(text).strip().partition("/")
        if not _TYPE.match(type_):
            raise ValueError(f"invalid component type {type_!r} in id {text!r}")
        if sep and not name:
            raise ValueError(f"component id {text!r} has an empty name after '/'")
        return cls(type_, name)

    def __str__(self) -> str:
        return f"{self.type}/{self.name}" if self.name else self.type


class Consumer(Protocol):
    """Takes a payload or raises a typed error from :mod:`otlpd.errors`."""

    async def consume(self, payload: Payload) -> None: ...


def refusal(consumer: Consumer) -> OtlpdError | None:
    """The error ``consumer`` would refuse any payload with right now, if it says so.

    A consumer that refuses on its state alone (a full batch processor) has a
    ``refusal`` property: a receiver asks before decoding a request, so an
    overloaded pipeline does not spend a decode on each request it refuses.
    """
    error: OtlpdError | None = getattr(consumer, "refusal", None)
    return error


def reads_span_skeleton(consumer: Consumer) -> bool:
    """Whether ``consumer``, or one downstream of it, reads a payload's span skeleton.

    A receiver makes the store's span skeleton (``Payload.span_skeleton``) only
    for pipelines that lead to an exporter that reads it: elsewhere it costs
    the hot path ~0.17 µs a span for nothing. A consumer that says nothing does
    not read it (and a store behind it makes its own).
    """
    return bool(getattr(consumer, "reads_span_skeleton", False))


class Component(Protocol):
    async def start(self) -> None: ...

    async def shutdown(self, deadline: float) -> None:
        """Stop; ``deadline`` is a ``loop.time()`` by which everything must be done."""
        ...


class BaseComponent:
    """No-op lifecycle for components that hold no resources."""

    async def start(self) -> None:
        return None

    async def shutdown(self, deadline: float) -> None:
        return None


class Host(Protocol):
    """What the running service offers its components."""

    def health(self) -> tuple[bool, dict[str, Any]]:
        """(ready, JSON-able status body), as served on ``/health/ready``."""
        ...


@dataclass
class Settings:
    """What every component is built with."""

    id: ComponentID
    config: Any
    metrics: Metrics
    pipeline: str = ""  # processors are built once per pipeline
    worker: int | None = None  # index of this worker process with `serve --workers N`, else None


@dataclass(frozen=True)
class Factory:
    """How to build one type of component.

    ``create`` takes the settings plus, by kind: receivers a mapping of signal
    to consumer; processors the signal and next consumer; exporters nothing
    (one exporter instance serves all its signals); extensions the :class:`Host`.
    """

    type: str
    kind: Kind
    config: builtins.type[BaseModel]
    signals: frozenset[Signal]
    create: Callable[..., Any]
    aliases: tuple[str, ...] = ()
    description: str = ""
    check_signal: Callable[[Any, Signal], str | None] | None = None
    """Why this configured component cannot serve a signal it is wired to, or None."""
