"""Python types for the named wire scalars the generated models use.

``Time`` and ``MicroTime`` are timezone-aware UTC datetimes written as RFC 3339 with second
and microsecond precision respectively (leader election breaks on the wrong precision);
``IntOrString`` is what ``intstr.IntOrString`` carries; ``JsonObject`` is free-form JSON
(``RawExtension``, ``FieldsV1``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, NewType, TypeAlias

__all__ = [
    "IntOrString",
    "JsonObject",
    "MicroTime",
    "Time",
    "format_micro_time",
    "format_time",
    "parse_time",
]

Time = NewType("Time", datetime)
MicroTime = NewType("MicroTime", datetime)
IntOrString: TypeAlias = int | str
JsonObject: TypeAlias = Mapping[str, Any]


def parse_time(text: str) -> datetime:
    """Parse RFC 3339 (``2025-01-02T03:04:05Z``, with or without fraction or offset) to UTC."""
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise ValueError(f"time {text!r} has no timezone")
    return value.astimezone(UTC)


def format_time(value: datetime) -> str:
    """``metav1.Time``: RFC 3339 in UTC, whole seconds."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def format_micro_time(value: datetime) -> str:
    """``metav1.MicroTime``: RFC 3339 in UTC with exactly six fractional digits."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
