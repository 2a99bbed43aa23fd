"""Skeleton protobuf types: OTLP's message tree with only the fields a fast path reads.

Parsing the same bytes with a type that knows a few fields lets upb do, in C,
what would otherwise be a Python loop over items: the id check reads every id
through one (``receivers/otlp/idcheck.py``), and the store cuts a request into
its items' bytes through another (``store/columns.py``). Fields the skeleton
does not name are skipped by their wire length. Field numbers must be those of
opentelemetry-proto.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_F = descriptor_pb2.FieldDescriptorProto

# (name, number, nested message name or None for bytes, repeated)
Field = tuple[str, int, str | None, bool]


def message_classes(package: str, messages: Mapping[str, Sequence[Field]], *roots: str) -> list[Any]:
    """The generated classes of ``roots``, from ``messages`` (name → fields) in one file."""
    fd = descriptor_pb2.FileDescriptorProto(
        name=f"{package.replace('.', '/')}.proto", package=package, syntax="proto3"
    )
    for name, fields in messages.items():
        message = fd.message_type.add(name=name)
        for field, number, nested, repeated in fields:
            spec = message.field.add(
                name=field,
                number=number,
                type=_F.TYPE_BYTES if nested is None else _F.TYPE_MESSAGE,
                label=_F.LABEL_REPEATED if repeated else _F.LABEL_OPTIONAL,
            )
            if nested is not None:
                spec.type_name = f".{package}.{nested}"
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fd)
    return [message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{package}.{r}")) for r in roots]
