"""Parsing label selector text: the lexer and recursive-descent parser of apimachinery's
``labels.Parse``, step for step, so that the same text is accepted, rejected with the same
message, and yields the same requirements.

Grammar (upstream's comment, with Gt/Lt, which it also accepts)::

    <selector>     ::= <requirement> | <requirement> "," <selector>
    <requirement>  ::= [!] KEY [ <set-restriction> | <exact-restriction> ]
    <set-restriction>   ::= "" | ("in" | "notin") "(" VALUE {"," VALUE} ")"
    <exact-restriction> ::= ("=" | "==" | "!=" | ">" | "<") VALUE
"""

from __future__ import annotations

import enum

from attrs import frozen

from engenho.selectors.errors import InvalidLabelSelectorError
from engenho.selectors.labels import LabelSelector
from engenho.selectors.requirements import Operator, Requirement, new_requirement
from engenho.selectors.validation import go_quote, label_key_errors

__all__ = ["parse_label_selector"]


class _Token(enum.Enum):
    END = enum.auto()
    CLOSE = enum.auto()
    COMMA = enum.auto()
    NOT = enum.auto()
    DOUBLE_EQUALS = enum.auto()
    EQUALS = enum.auto()
    GREATER = enum.auto()
    IDENTIFIER = enum.auto()
    IN = enum.auto()
    LESS = enum.auto()
    NOT_EQUALS = enum.auto()
    NOT_IN = enum.auto()
    OPEN = enum.auto()


_SYMBOLS = {
    ")": _Token.CLOSE,
    ",": _Token.COMMA,
    "!": _Token.NOT,
    "==": _Token.DOUBLE_EQUALS,
    "=": _Token.EQUALS,
    ">": _Token.GREATER,
    "<": _Token.LESS,
    "!=": _Token.NOT_EQUALS,
    "(": _Token.OPEN,
}
_KEYWORDS = {"in": _Token.IN, "notin": _Token.NOT_IN}
_SPECIAL = frozenset("=!(),><")
_WHITESPACE = frozenset(" \t\r\n")
_BINARY = {
    _Token.IN: Operator.IN,
    _Token.EQUALS: Operator.EQUALS,
    _Token.DOUBLE_EQUALS: Operator.DOUBLE_EQUALS,
    _Token.GREATER: Operator.GREATER_THAN,
    _Token.LESS: Operator.LESS_THAN,
    _Token.NOT_IN: Operator.NOT_IN,
    _Token.NOT_EQUALS: Operator.NOT_EQUALS,
}
# Upstream lists its binary operators by their selection.Operator spelling.
_BINARY_NAMES = ", ".join(
    op.value
    for op in (
        Operator.IN,
        Operator.NOT_IN,
        Operator.EQUALS,
        Operator.DOUBLE_EQUALS,
        Operator.NOT_EQUALS,
        Operator.GREATER_THAN,
        Operator.LESS_THAN,
    )
)


@frozen
class _Item:
    token: _Token
    literal: str


def parse_label_selector(text: str) -> LabelSelector:
    """Parse ``text`` (``labelSelector=`` of a request); ``""`` selects everything.

    Raises :class:`InvalidLabelSelectorError` with upstream's message, for example
    ``unable to parse requirement: found '', expected: in, notin, =, ==, !=, gt, lt``.
    """
    return LabelSelector.of(_Parser(_scan(text)).parse())


def _scan(text: str) -> list[_Item]:
    """The whole token stream, ending with END (the parser looks one token ahead)."""
    items = []
    position, length = 0, len(text)
    while True:
        while position < length and text[position] in _WHITESPACE:
            position += 1
        if position == length:
            items.append(_Item(_Token.END, ""))
            return items
        if text[position] in _SPECIAL:
            # Longest match: every special character is a token alone, and "!=" and "=="
            # are the only two-character ones.
            pair = text[position : position + 2]
            symbol = pair if pair in _SYMBOLS else text[position]
            items.append(_Item(_SYMBOLS[symbol], symbol))
            position += len(symbol)
            continue
        start = position
        while position < length and text[position] not in _SPECIAL | _WHITESPACE:
            position += 1
        word = text[start:position]
        items.append(_Item(_KEYWORDS.get(word, _Token.IDENTIFIER), word))


class _Parser:
    def __init__(self, items: list[_Item]) -> None:
        self._items = items
        self._position = 0

    # "in" and "notin" are keywords only where an operator may stand; as keys and values
    # they are identifiers ("notin=in" is a valid selector).
    def _lookahead(self, *, values: bool) -> _Item:
        return (
            self._as_value(self._items[self._position]) if values else self._items[self._position]
        )

    def _consume(self, *, values: bool) -> _Item:
        item = self._lookahead(values=values)
        self._position += 1
        return item

    @staticmethod
    def _as_value(item: _Item) -> _Item:
        if item.token in (_Token.IN, _Token.NOT_IN):
            return _Item(_Token.IDENTIFIER, item.literal)
        return item

    def parse(self) -> list[Requirement]:
        requirements: list[Requirement] = []
        while True:
            item = self._lookahead(values=True)
            if item.token is _Token.END:
                return requirements
            if item.token not in (_Token.IDENTIFIER, _Token.NOT):
                raise _error(f"found '{item.literal}', expected: !, identifier, or 'end of string'")
            try:
                requirements.append(self._requirement())
            except InvalidLabelSelectorError as exc:
                raise _error(f"unable to parse requirement: {exc}") from exc
            after = self._consume(values=True)
            if after.token is _Token.END:
                return requirements
            if after.token is not _Token.COMMA:
                raise _error(f"found '{after.literal}', expected: ',' or 'end of string'")
            following = self._lookahead(values=True)
            if following.token not in (_Token.IDENTIFIER, _Token.NOT):
                raise _error(f"found '{following.literal}', expected: identifier after ','")

    def _requirement(self) -> Requirement:
        key, unary = self._key_and_inferred_operator()
        if unary is not None:
            return new_requirement(key, unary)
        operator = self._operator()
        if operator in (Operator.IN, Operator.NOT_IN):
            values = self._value_set()
        else:
            values = self._exact_value()
        return new_requirement(key, operator, sorted(values))

    def _key_and_inferred_operator(self) -> tuple[str, Operator | None]:
        item = self._consume(values=True)
        operator = None
        if item.token is _Token.NOT:
            operator = Operator.DOES_NOT_EXIST
            item = self._consume(values=True)
        if item.token is not _Token.IDENTIFIER:
            raise _error(f"found '{item.literal}', expected: identifier")
        errors = label_key_errors(item.literal)
        if errors:
            # Upstream validates with a nil field path, which prints as "<nil>".
            shown = go_quote(item.literal)
            raise _error(f"<nil>: Invalid value: {shown}: {'; '.join(errors)}")
        if operator is None and self._lookahead(values=True).token in (_Token.END, _Token.COMMA):
            operator = Operator.EXISTS
        return item.literal, operator

    def _operator(self) -> Operator:
        item = self._consume(values=False)
        if item.token not in _BINARY:
            raise _error(f"found '{item.literal}', expected: {_BINARY_NAMES}")
        return _BINARY[item.token]

    def _value_set(self) -> set[str]:
        item = self._consume(values=True)
        if item.token is not _Token.OPEN:
            raise _error(f"found '{item.literal}' expected: '('")
        item = self._lookahead(values=True)
        if item.token is _Token.CLOSE:  # "()" is the set of the empty value
            self._consume(values=True)
            return {""}
        if item.token not in (_Token.IDENTIFIER, _Token.COMMA):
            raise _error(f"found '{item.literal}', expected: ',', ')' or identifier")
        values = self._identifiers()
        self._consume(values=True)  # the ")" that _identifiers stopped at
        return values

    def _identifiers(self) -> set[str]:
        """A comma-separated list of possibly empty values, up to (not including) ")"."""
        values: set[str] = set()
        while True:
            item = self._consume(values=True)
            if item.token is _Token.IDENTIFIER:
                values.add(item.literal)
                following = self._lookahead(values=True)
                if following.token is _Token.CLOSE:
                    return values
                if following.token is not _Token.COMMA:
                    raise _error(f"found '{following.literal}', expected: ',' or ')'")
            elif item.token is _Token.COMMA:
                # A comma with nothing before it, after it or between it and the next one
                # stands for the empty value: "(,a)", "(a,)", "(a,,b)".
                next_token = self._lookahead(values=True).token
                if not values or next_token in (_Token.CLOSE, _Token.COMMA):
                    values.add("")
                if next_token is _Token.CLOSE:
                    return values
            else:
                raise _error(f"found '{item.literal}', expected: ',', or identifier")

    def _exact_value(self) -> set[str]:
        if self._lookahead(values=True).token in (_Token.END, _Token.COMMA):
            return {""}
        item = self._consume(values=True)
        if item.token is not _Token.IDENTIFIER:
            raise _error(f"found '{item.literal}', expected: identifier")
        return {item.literal}


def _error(message: str) -> InvalidLabelSelectorError:
    return InvalidLabelSelectorError(message)
