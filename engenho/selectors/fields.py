"""Field selectors (``fields.ParseSelector``): ``field=value``, ``field==value`` and
``field!=value`` terms joined by commas, all of which must hold.

Values may contain ``\\,``, ``\\=`` and ``\\\\`` escapes. A field an object does not have
reads as the empty string, so ``spec.nodeName=`` selects unscheduled pods. Which fields a
resource offers is :mod:`engenho.selectors.selectable`'s business.
"""

from __future__ import annotations

from collections.abc import Mapping

from attrs import frozen

from engenho.selectors.errors import InvalidFieldSelectorError
from engenho.selectors.requirements import Operator

__all__ = [
    "FieldRequirement",
    "FieldSelector",
    "escape_field_value",
    "parse_field_selector",
    "unescape_field_value",
]

# Tried in this order at each position of a term: "!=" before "==" before "=".
_TERM_OPERATORS = (("!=", Operator.NOT_EQUALS), ("==", Operator.EQUALS), ("=", Operator.EQUALS))


@frozen
class FieldRequirement:
    """``field = value`` or ``field != value`` (``==`` parses as ``=``, as upstream)."""

    field: str
    operator: Operator
    value: str

    def matches(self, fields: Mapping[str, str]) -> bool:
        equal = fields.get(self.field, "") == self.value
        return equal if self.operator is Operator.EQUALS else not equal

    def __str__(self) -> str:
        operator = "=" if self.operator is Operator.EQUALS else "!="
        return f"{self.field}{operator}{escape_field_value(self.value)}"


@frozen
class FieldSelector:
    """Requirements that must all hold, in upstream's order (terms sorted as raw text)."""

    requirements: tuple[FieldRequirement, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.requirements

    def matches(self, fields: Mapping[str, str]) -> bool:
        return all(requirement.matches(fields) for requirement in self.requirements)

    def requires_exact_match(self, field: str) -> str | None:
        """The value ``field`` must equal, if some ``=`` term pins it (for index lookups such
        as the kubelet's ``spec.nodeName=<node>``), else ``None``."""
        for requirement in self.requirements:
            if requirement.field == field and requirement.operator is Operator.EQUALS:
                return requirement.value
        return None

    def __str__(self) -> str:
        return ",".join(str(requirement) for requirement in self.requirements)


def parse_field_selector(text: str) -> FieldSelector:
    """Parse ``text`` (``fieldSelector=`` of a request); ``""`` selects everything.

    Field names are not checked here: see ``check_supported``. Raises
    :class:`InvalidFieldSelectorError` with upstream's message.
    """
    requirements = []
    for term in sorted(_split_terms(text)):
        if not term:
            continue  # "a=b,,c=d" and a trailing comma are tolerated, as upstream does
        requirement = _parse_term(text, term)
        # A term with neither field nor value ("=", "!=") selects everything: upstream's
        # Transform step drops it, and so do we.
        if requirement.field or requirement.value:
            requirements.append(requirement)
    return FieldSelector(tuple(requirements))


def escape_field_value(value: str) -> str:
    """Escape ``\\``, ``,`` and ``=`` so that ``value`` survives a field selector."""
    return value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")


def unescape_field_value(text: str) -> str:
    """Undo :func:`escape_field_value`; a bare ``,``/``=`` or another escape is an error."""
    if not any(char in text for char in "\\,="):
        return text
    out: list[str] = []
    escaped = False
    for char in text:
        if escaped:
            if char not in "\\,=":
                raise InvalidFieldSelectorError(
                    f"invalid field selector: invalid escape sequence: \\{char}"
                )
            out.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char in ",=":
            # Upstream prints the rune with %v, that is as its code point number.
            raise InvalidFieldSelectorError(
                f"invalid field selector: unescaped character in value: {ord(char)}"
            )
        else:
            out.append(char)
    if escaped:
        raise InvalidFieldSelectorError("invalid field selector: invalid escape sequence: \\")
    return "".join(out)


def _split_terms(text: str) -> list[str]:
    """Split at commas that are not escaped."""
    if not text:
        return []
    terms, start, escaped = [], 0, False
    for index, char in enumerate(text):
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == ",":
            terms.append(text[start:index])
            start = index + 1
    terms.append(text[start:])
    return terms


def _parse_term(selector: str, term: str) -> FieldRequirement:
    # The first operator found from the left splits the term; escapes do not count here.
    for index in range(len(term)):
        for spelling, operator in _TERM_OPERATORS:
            if term.startswith(spelling, index):
                value = unescape_field_value(term[index + len(spelling) :])
                return FieldRequirement(term[:index], operator, value)
    raise InvalidFieldSelectorError(f"invalid selector: '{selector}'; can't understand '{term}'")
