"""``${env:VAR}`` substitution, as the OpenTelemetry Collector does it.

Substitution happens on parsed YAML values, never on raw text, so a variable
cannot inject structure. A value that is exactly one reference takes the type
its expansion would have in YAML (``${env:PORT}`` with PORT=4317 is an int),
like the Collector. ``$$`` escapes a literal ``$``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import yaml

_REF = re.compile(r"\$\$|\$\{(?:env:)?([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class MissingVariables(list[str]):
    """Names of referenced variables that were not set and had no default."""


def substitute(node: Any, environ: Mapping[str, str], missing: MissingVariables) -> Any:
    if isinstance(node, dict):
        return {key: substitute(value, environ, missing) for key, value in node.items()}
    if isinstance(node, list):
        return [substitute(value, environ, missing) for value in node]
    if isinstance(node, str) and "$" in node:
        return _expand(node, environ, missing)
    return node


def _expand(text: str, environ: Mapping[str, str], missing: MissingVariables) -> Any:
    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, default = match.group(1), match.group(2)
        if name in environ and (environ[name] != "" or default is None):
            return environ[name]
        if default is not None:
            return default
        missing.append(name)
        return ""

    whole = _REF.fullmatch(text)
    expanded = _REF.sub(replace, text)
    if whole and whole.group(0) != "$$":
        try:
            typed = yaml.safe_load(expanded)
        except yaml.YAMLError:
            return expanded
        if typed is None or isinstance(typed, (bool, int, float, str)):
            return typed if typed is not None else expanded
    return expanded
