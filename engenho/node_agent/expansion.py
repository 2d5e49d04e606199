"""``$(VAR)`` expansion in env values, command, args and ``subPathExpr``, as upstream.

A port of Kubernetes' ``third_party/forked/golang/expansion``: ``$(NAME)`` is replaced by the
variable's value when it is defined and left as written when it is not; ``$$`` is an escaped
``$``; any other ``$`` is kept with the character after it. Values are not expanded again
(``$(REF)`` whose value is ``$(A)`` gives ``$(A)``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

__all__ = ["expand", "mapping_for"]

_OPERATOR = "$"
_OPENER = "("
_CLOSER = ")"


def mapping_for(*contexts: Mapping[str, str]) -> Callable[[str], str]:
    """The value of a name from the first context that defines it; an undefined name stays
    ``$(name)`` (upstream's ``MappingFuncFor``). Contexts are read at call time, so a map
    that grows while a container's env is resolved is seen as it grows, as upstream's is."""

    def lookup(name: str) -> str:
        for context in contexts:
            if name in context:
                return context[name]
        return f"{_OPERATOR}{_OPENER}{name}{_CLOSER}"

    return lookup


def expand(text: str, mapping: Callable[[str], str]) -> str:
    """Expand every ``$(NAME)`` in ``text`` through ``mapping`` (upstream's ``Expand``)."""
    out: list[str] = []
    checkpoint = 0
    cursor = 0
    while cursor < len(text):
        if text[cursor] == _OPERATOR and cursor + 1 < len(text):
            out.append(text[checkpoint:cursor])
            read, is_var, advance = _read_variable_name(text[cursor + 1 :])
            out.append(mapping(read) if is_var else read)
            cursor += advance
            checkpoint = cursor + 1
        cursor += 1
    return "".join(out) + text[checkpoint:]


def _read_variable_name(text: str) -> tuple[str, bool, int]:
    """What follows a ``$``: (the text read, whether it names a variable, characters used)."""
    first = text[0]
    if first == _OPERATOR:
        return _OPERATOR, False, 1  # an escaped operator
    if first == _OPENER:
        closer = text.find(_CLOSER, 1)
        if closer != -1:
            return text[1:closer], True, closer + 1
        return _OPERATOR + _OPENER, False, 1  # an incomplete reference: kept as written
    return _OPERATOR + first, False, 1
