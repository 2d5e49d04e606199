"""Validation findings: :class:`Cause` records with Kubernetes field paths and messages.

A cause maps one-to-one onto a ``metav1.StatusCause`` (``{reason, message, field}``) in the
422 ``Invalid`` Status the apiserver returns. Messages follow apimachinery's
``field.Error.ErrorBody()`` wording (``Required value``, ``Invalid value: "Foo": ...``,
``Unsupported value: "x": supported values: "a", "b"``) because users and tests recognise it.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable, Sequence
from typing import Any

from attrs import frozen

__all__ = [
    "Cause",
    "CauseReason",
    "duplicate",
    "forbidden",
    "format_invalid",
    "format_value",
    "invalid",
    "not_found",
    "not_supported",
    "required",
    "too_long",
    "too_many",
    "type_invalid",
]


class CauseReason(enum.StrEnum):
    """``metav1.CauseType`` values used for field validation (contract §10.3)."""

    REQUIRED = "FieldValueRequired"
    INVALID = "FieldValueInvalid"
    NOT_SUPPORTED = "FieldValueNotSupported"
    DUPLICATE = "FieldValueDuplicate"
    FORBIDDEN = "FieldValueForbidden"
    TOO_LONG = "FieldValueTooLong"
    TOO_MANY = "FieldValueTooMany"
    TYPE_INVALID = "FieldValueTypeInvalid"
    NOT_FOUND = "FieldValueNotFound"


@frozen
class Cause:
    """One validation failure at one field path (``spec.containers[0].image``)."""

    reason: CauseReason
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message

    def to_status_cause(self) -> dict[str, str]:
        """The ``details.causes[]`` entry of a ``metav1.Status``."""
        return {"reason": self.reason.value, "message": self.message, "field": self.field}


def format_invalid(kind: str, name: str, causes: Sequence[Cause]) -> str:
    """The message of a 422 Status: ``Pod "x" is invalid: [a: ..., b: ...]``.

    A single cause is written without brackets, as upstream does.
    """
    parts = [str(cause) for cause in causes]
    body = parts[0] if len(parts) == 1 else "[" + ", ".join(parts) + "]"
    return f'{kind} "{name}" is invalid: {body}'


def format_value(value: Any) -> str:
    """Render a value the way Go's ``%q``/``%d``/``%v`` would in a field error."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, GoLiteral):
        return value.text
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


class GoLiteral:
    """A pre-rendered value (``map[string]string{"app":"web"}``) for messages that quote Go."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


def required(field: str, detail: str = "") -> Cause:
    return Cause(CauseReason.REQUIRED, field, "Required value" + (f": {detail}" if detail else ""))


def invalid(field: str, value: Any, detail: str = "") -> Cause:
    message = f"Invalid value: {format_value(value)}" + (f": {detail}" if detail else "")
    return Cause(CauseReason.INVALID, field, message)


def type_invalid(field: str, value: Any, detail: str) -> Cause:
    return Cause(CauseReason.TYPE_INVALID, field, f"Invalid value: {format_value(value)}: {detail}")


def not_supported(field: str, value: Any, supported: Iterable[str]) -> Cause:
    quoted = ", ".join(json.dumps(item) for item in supported)
    message = f"Unsupported value: {format_value(value)}: supported values: {quoted}"
    return Cause(CauseReason.NOT_SUPPORTED, field, message)


def duplicate(field: str, value: Any) -> Cause:
    return Cause(CauseReason.DUPLICATE, field, f"Duplicate value: {format_value(value)}")


def forbidden(field: str, detail: str) -> Cause:
    return Cause(CauseReason.FORBIDDEN, field, f"Forbidden: {detail}")


def not_found(field: str, value: Any) -> Cause:
    return Cause(CauseReason.NOT_FOUND, field, f"Not found: {format_value(value)}")


def too_long(field: str, limit: int, unit: str = "bytes") -> Cause:
    return Cause(CauseReason.TOO_LONG, field, f"Too long: must have at most {limit} {unit}")


def too_many(field: str, actual: int, limit: int) -> Cause:
    message = f"Too many: {actual}: must have at most {limit} items"
    return Cause(CauseReason.TOO_MANY, field, message)
