"""OTLP/JSON: protobuf's JSON mapping with the OTLP exceptions.

OTLP/JSON differs from canonical proto3 JSON in that trace and span ids are
hex strings (not base64) and enums are integers. Everything else (lowerCamelCase
keys, 64-bit integers as strings, ignoring unknown fields) is protobuf's own
``json_format``; we only rewrite the id fields on the way in and out.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message

from otlpd.errors import InvalidDataError

# JSON keys holding trace/span ids anywhere in an OTLP message (both spellings
# are accepted on input: protobuf's parser takes the proto field name too).
_ID_KEYS = frozenset({"traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id"})


def parse(data: bytes | str, message: Message) -> None:
    """Fill ``message`` from OTLP/JSON text; raise :class:`InvalidDataError` on bad input."""
    # RecursionError: deeply nested input is the client's fault (400), not ours (500).
    try:
        tree = json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise InvalidDataError(f"malformed JSON: {exc}") from None
    if not isinstance(tree, dict):
        raise InvalidDataError("malformed JSON: the request must be a JSON object")
    try:
        _ids_hex_to_base64(tree)
        json_format.ParseDict(tree, message, ignore_unknown_fields=True)
    except (json_format.ParseError, ValueError, TypeError, RecursionError) as exc:
        raise InvalidDataError(f"invalid OTLP/JSON: {exc}") from None


def to_dict(message: Message) -> dict[str, Any]:
    """OTLP/JSON object for ``message`` (hex ids, integer enums, camelCase keys)."""
    tree = json_format.MessageToDict(message, use_integers_for_enums=True)
    _ids_base64_to_hex(tree)
    return tree


def dumps(message: Message) -> bytes:
    return json.dumps(to_dict(message), separators=(",", ":")).encode()


def _ids_hex_to_base64(node: Any) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _ID_KEYS and isinstance(value, str):
                try:
                    node[key] = base64.b64encode(bytes.fromhex(value)).decode()
                except ValueError:
                    raise InvalidDataError(f"invalid OTLP/JSON: {key} {value!r} is not hex") from None
            elif isinstance(value, (dict, list)):
                _ids_hex_to_base64(value)
    elif isinstance(node, list):
        for value in node:
            if isinstance(value, (dict, list)):
                _ids_hex_to_base64(value)


def _ids_base64_to_hex(node: Any) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _ID_KEYS and isinstance(value, str):
                with contextlib.suppress(binascii.Error):  # protobuf always emits valid base64
                    node[key] = base64.b64decode(value).hex()
            elif isinstance(value, (dict, list)):
                _ids_base64_to_hex(value)
    elif isinstance(node, list):
        for value in node:
            if isinstance(value, (dict, list)):
                _ids_base64_to_hex(value)
