"""One label requirement — a key, an operator, values — with apimachinery's validation
(``labels.NewRequirement``), matching (``Requirement.Matches``) and string form."""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping

from attrs import frozen

from engenho.selectors.errors import InvalidLabelSelectorError
from engenho.selectors.validation import aggregate, invalid, label_key_errors, label_value_errors

__all__ = ["Operator", "Requirement", "new_requirement"]


class Operator(enum.StrEnum):
    """``selection.Operator``; the values are upstream's spellings (used in messages)."""

    DOES_NOT_EXIST = "!"
    EQUALS = "="
    DOUBLE_EQUALS = "=="
    IN = "in"
    NOT_EQUALS = "!="
    NOT_IN = "notin"
    EXISTS = "exists"
    GREATER_THAN = "gt"
    LESS_THAN = "lt"


_SET = (Operator.IN, Operator.NOT_IN)
_EXACT = (Operator.EQUALS, Operator.DOUBLE_EQUALS, Operator.NOT_EQUALS)
_UNARY = (Operator.EXISTS, Operator.DOES_NOT_EXIST)
_NUMERIC = (Operator.GREATER_THAN, Operator.LESS_THAN)
_INFIX = {
    Operator.EQUALS: "=",
    Operator.DOUBLE_EQUALS: "==",
    Operator.NOT_EQUALS: "!=",
    Operator.IN: " in ",
    Operator.NOT_IN: " notin ",
    Operator.GREATER_THAN: ">",
    Operator.LESS_THAN: "<",
}
_INT64 = re.compile(r"[+-]?[0-9]+")


@frozen
class Requirement:
    """``key operator values``. Build it with :func:`new_requirement`, which validates.

    ``values`` keep the order they were given in (the parser gives them sorted and
    deduplicated, as upstream's parser does); only the string form sorts them.
    """

    key: str
    operator: Operator
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Upstream's rules: ``!=`` and ``notin`` also match when the key is absent."""
        value = labels.get(self.key)
        operator = self.operator
        if operator in (Operator.IN, Operator.EQUALS, Operator.DOUBLE_EQUALS):
            return value is not None and value in self.values
        if operator in (Operator.NOT_IN, Operator.NOT_EQUALS):
            return value is None or value not in self.values
        if operator is Operator.EXISTS:
            return value is not None
        if operator is Operator.DOES_NOT_EXIST:
            return value is None
        # Gt and Lt compare base-10 integers; a value that is not one never matches.
        have = None if value is None else _parse_int64(value)
        want = _parse_int64(self.values[0]) if len(self.values) == 1 else None
        if have is None or want is None:
            return False
        return have > want if operator is Operator.GREATER_THAN else have < want

    def __str__(self) -> str:
        if self.operator is Operator.DOES_NOT_EXIST:
            return "!" + self.key
        if self.operator is Operator.EXISTS:
            return self.key
        shown = self.values[0] if len(self.values) == 1 else ",".join(sorted(self.values))
        if self.operator in _SET:
            shown = f"({shown})"
        return f"{self.key}{_INFIX[self.operator]}{shown}"


def new_requirement(key: str, operator: Operator, values: Iterable[str] = ()) -> Requirement:
    """A validated :class:`Requirement`, or :class:`InvalidLabelSelectorError` carrying every
    problem in upstream's aggregated form (``[key: Invalid value: ..., ...]``)."""
    values = tuple(values)
    errors = []
    key_errors = label_key_errors(key)
    if key_errors:
        errors.append(invalid("key", key, "; ".join(key_errors)))
    # Only an object's empty list reaches these checks empty, and Go copies it with
    # append([]string(nil), ...), which marshals as null.
    shown = list(values) or None
    if operator in _SET and not values:
        errors.append(
            invalid("values", shown, "for 'in', 'notin' operators, values set can't be empty")
        )
    elif operator in _EXACT and len(values) != 1:
        errors.append(
            invalid("values", shown, "exact-match compatibility requires one single value")
        )
    elif operator in _UNARY and values:
        errors.append(
            invalid("values", shown, "values set must be empty for exists and does not exist")
        )
    elif operator in _NUMERIC:
        if len(values) != 1:
            errors.append(
                invalid("values", shown, "for 'Gt', 'Lt' operators, exactly one value is required")
            )
        errors.extend(
            invalid(f"values[{i}]", value, "for 'Gt', 'Lt' operators, the value must be an integer")
            for i, value in enumerate(values)
            if _parse_int64(value) is None
        )
    for i, value in enumerate(values):
        value_errors = label_value_errors(value)
        if value_errors:
            errors.append(invalid(f"values[{i}][{key}]", value, "; ".join(value_errors)))
    if errors:
        raise InvalidLabelSelectorError(aggregate(errors))
    return Requirement(key, operator, values)


def _parse_int64(text: str) -> int | None:
    """Go's ``strconv.ParseInt(text, 10, 64)``: an optional sign and decimal digits only."""
    if not _INT64.fullmatch(text):
        return None
    number = int(text)
    return number if -(2**63) <= number < 2**63 else None
