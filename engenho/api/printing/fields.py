"""Tolerant readers for fields of API objects held as decoded JSON.

Printers see whatever the store holds. A field that is absent, null or of the wrong JSON type
reads as the Go zero value a typed decoder would have produced, so one odd object yields an
odd cell instead of failing the whole list.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "EMPTY",
    "boolean",
    "dig",
    "integer",
    "mapping",
    "sequence",
    "string",
]

EMPTY: Mapping[str, Any] = {}


def dig(obj: object, *path: str) -> object:
    """The value at ``path`` inside nested objects, or None where the path breaks."""
    current: object = obj
    for key in path:
        if not isinstance(current, Mapping):
            return None
        current = current.get(key)
    return current


def mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else EMPTY


def sequence(value: object) -> Sequence[Any]:
    return value if isinstance(value, list | tuple) else ()


def string(value: object) -> str:
    return value if isinstance(value, str) else ""


def integer(value: object, default: int = 0) -> int:
    # bool is an int subclass in Python; JSON true is not a number.
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return default


def boolean(value: object) -> bool:
    return value is True
