"""The environment tier: ``ENGENHO_<SECTION>__<FIELD>`` variables.

Names are upper case with ``__`` between levels (``ENGENHO_NETWORKING__SERVICE_CIDR``,
``ENGENHO_SERVER__TLS__CERT_FILE``, ``ENGENHO_CONTROLLERS__GARBAGE_COLLECTOR__ENABLED``, where a
controller's ``-`` is written ``_``). Values are text, read by the field's type: booleans as
true/false (also 1/0, yes/no, on/off), lists comma-separated, and the empty string as null for
a field that may be null. ``ENGENHO_CONFIG`` names the configuration file and is no setting.
A variable that looks like a setting but names none is refused, with its name, rather than
ignored.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from engenho.config.controllers import ControllerSpec
from engenho.config.engenho_schema import ControllerSettings, EngenhoConfig
from engenho.config.layering import Layer
from engenho.config.networks import VALUE_TYPES
from engenho.config.problems import Problem
from engenho.config.tiers import Tier

__all__ = ["CONFIG_FILE_VARIABLE", "ENV_PREFIX", "environment_layer", "variable_for"]

ENV_PREFIX = "ENGENHO_"
CONFIG_FILE_VARIABLE = "ENGENHO_CONFIG"

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def variable_for(path: str) -> str:
    """The variable that sets the value at dotted ``path``."""
    return ENV_PREFIX + "__".join(part.replace("-", "_").upper() for part in path.split("."))


def environment_layer(
    env: Mapping[str, str], controllers: Sequence[ControllerSpec]
) -> tuple[Layer, list[Problem]]:
    values: dict[str, Any] = {}
    origins: dict[str, str] = {}
    problems: list[Problem] = []
    sections = {a.name for a in attrs.fields(EngenhoConfig)}
    for name in sorted(env):
        if not name.startswith(ENV_PREFIX) or name == CONFIG_FILE_VARIABLE:
            continue
        source = f"env {name}"
        segments = name[len(ENV_PREFIX) :].lower().split("__")
        if len(segments) == 1:
            section = next(
                (s for s in sections if segments[0] == s or segments[0].startswith(s + "_")),
                None,
            )
            if section is not None:
                problems.append(
                    Problem(
                        section,
                        "names no setting: write a double underscore between section and "
                        f"field ({ENV_PREFIX}{section.upper()}__...)",
                        source,
                    )
                )
            continue
        try:
            path, field_type = _resolve(segments, controllers)
        except LookupError as exc:
            problems.append(Problem(".".join(segments), str(exc), source))
            continue
        try:
            value = _parse(env[name], field_type)
        except ValueError as exc:
            problems.append(Problem(".".join(path), str(exc), source))
            continue
        _put(values, path, value)
        origins[".".join(path)] = name
    return Layer(Tier.ENV, values, "environment", origins), problems


def _resolve(segments: list[str], controllers: Sequence[ControllerSpec]) -> tuple[list[str], Any]:
    """The document path and the field type a variable's segments name."""
    cls: Any = EngenhoConfig
    path: list[str] = []
    remaining = list(segments)
    while remaining:
        segment = remaining.pop(0)
        if cls is EngenhoConfig and segment == "controllers":
            if not remaining:
                raise LookupError("name a controller and a field: CONTROLLERS__<NAME>__<FIELD>")
            wanted = remaining.pop(0)
            spec = next((s for s in controllers if s.name.replace("-", "_") == wanted), None)
            if spec is None:
                known = ", ".join(sorted(s.name for s in controllers))
                raise LookupError(f"no controller {wanted!r} (known: {known})")
            path += ["controllers", spec.name]
            cls = ControllerSettings
            continue
        if not _is_section(cls):
            raise LookupError(f"{'.'.join(path)} is a value, not a section")
        attrs.resolve_types(cls)
        field = attrs.fields_dict(cls).get(segment)
        if field is None:
            where = ".".join(path) or "the configuration"
            raise LookupError(f"{where} has no field {segment!r}")
        path.append(segment)
        cls = field.type
    if _is_section(cls):
        raise LookupError(f"{'.'.join(path)} is a section; name one of its fields")
    return path, cls


def _is_section(cls: Any) -> bool:
    return isinstance(cls, type) and attrs.has(cls) and cls not in VALUE_TYPES


def _parse(text: str, field_type: Any) -> Any:
    args = typing.get_args(field_type)
    if typing.get_origin(field_type) in (typing.Union, types.UnionType) and type(None) in args:
        if text == "":
            return None
        rest = [a for a in args if a is not type(None)]
        field_type = rest[0] if len(rest) == 1 else field_type
    if field_type is bool:
        word = text.strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
        raise ValueError(f"{text!r} is not a boolean (true or false)")
    if field_type is int:
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"{text!r} is not an integer") from None
    if field_type is float:
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"{text!r} is not a number") from None
    if typing.get_origin(field_type) is tuple:
        item_type = typing.get_args(field_type)[0]
        return [_parse(part.strip(), item_type) for part in text.split(",") if part.strip()]
    # Everything else (strings, paths, addresses, enums) is text the converter parses.
    return text


def _put(values: dict[str, Any], path: list[str], value: Any) -> None:
    for key in path[:-1]:
        values = values.setdefault(key, {})
    values[path[-1]] = value
