"""Label key and value rules, and the error text apimachinery gives when they are broken.

The rules are ``validation.IsQualifiedName`` and ``IsValidLabelValue``; the text is built the
way ``field.Error`` and ``utilerrors.Aggregate`` print, so that a bad selector produces the
same message as on a real apiserver. Lengths count UTF-8 bytes, as Go's ``len`` does.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence

__all__ = [
    "aggregate",
    "go_quote",
    "invalid",
    "label_key_errors",
    "label_value_errors",
]

_NAME_FORMAT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_NAME = re.compile(_NAME_FORMAT)
_NAME_MESSAGE = (
    "must consist of alphanumeric characters, '-', '_' or '.', "
    "and must start and end with an alphanumeric character"
)
_NAME_MAX = 63

_VALUE_FORMAT = f"({_NAME_FORMAT})?"
_VALUE = re.compile(_VALUE_FORMAT)
_VALUE_MESSAGE = (
    "a valid label must be an empty string or consist of alphanumeric characters, "
    "'-', '_' or '.', and must start and end with an alphanumeric character"
)

_SUBDOMAIN_FORMAT = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
_SUBDOMAIN = re.compile(_SUBDOMAIN_FORMAT)
_SUBDOMAIN_MESSAGE = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
    "'-' or '.', and must start and end with an alphanumeric character"
)
_SUBDOMAIN_MAX = 253


def label_key_errors(key: str) -> list[str]:
    """What is wrong with ``key`` as a label key: ``[prefix/]name``, empty when it is valid."""
    parts = key.split("/")
    errors: list[str] = []
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errors.append("prefix part must be non-empty")
        else:
            errors.extend("prefix part " + e for e in _subdomain_errors(prefix))
    else:
        return [
            "a qualified name "
            + _regex_error(_NAME_MESSAGE, _NAME_FORMAT, "MyName", "my.name", "123-abc")
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    if not name:
        errors.append("name part must be non-empty")
    elif _size(name) > _NAME_MAX:
        errors.append(f"name part must be no more than {_NAME_MAX} characters")
    if not _NAME.fullmatch(name):
        errors.append(
            "name part " + _regex_error(_NAME_MESSAGE, _NAME_FORMAT, "MyName", "my.name", "123-abc")
        )
    return errors


def label_value_errors(value: str) -> list[str]:
    """What is wrong with ``value`` as a label value (which may be empty)."""
    errors: list[str] = []
    if _size(value) > _NAME_MAX:
        errors.append(f"must be no more than {_NAME_MAX} characters")
    if not _VALUE.fullmatch(value):
        errors.append(_regex_error(_VALUE_MESSAGE, _VALUE_FORMAT, "MyValue", "my_value", "12345"))
    return errors


def invalid(path: str, bad_value: str | Sequence[str] | None, detail: str) -> str:
    """``field.Invalid(path, value, detail).Error()``: a string value is Go-quoted, a list
    (or a nil slice, ``None``) is rendered as Go's ``json.Marshal`` would."""
    shown = go_quote(bad_value) if isinstance(bad_value, str) else _go_json(bad_value)
    return f"{path}: Invalid value: {shown}: {detail}"


def aggregate(messages: Iterable[str]) -> str:
    """``utilerrors.NewAggregate(...).Error()``: one message bare, several as ``[a, b]``,
    duplicates dropped."""
    unique = list(dict.fromkeys(messages))
    return unique[0] if len(unique) == 1 else "[" + ", ".join(unique) + "]"


def go_quote(text: str) -> str:
    """Go's ``strconv.Quote`` (what ``%q`` prints): printable characters as they are."""
    out = ['"']
    for char in text:
        if char in _GO_ESCAPES:
            out.append(_GO_ESCAPES[char])
        elif char.isprintable():
            out.append(char)
        elif ord(char) < 0x80:
            out.append(f"\\x{ord(char):02x}")
        elif ord(char) <= 0xFFFF:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(f"\\U{ord(char):08x}")
    out.append('"')
    return "".join(out)


_GO_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
}


def _go_json(values: Sequence[str] | None) -> str:
    # Go marshals a nil slice as null, and escapes <, > and & for safe embedding in HTML.
    if values is None:
        return "null"
    text = json.dumps(list(values), ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _subdomain_errors(value: str) -> list[str]:
    errors: list[str] = []
    if _size(value) > _SUBDOMAIN_MAX:
        errors.append(f"must be no more than {_SUBDOMAIN_MAX} characters")
    if not _SUBDOMAIN.fullmatch(value):
        errors.append(_regex_error(_SUBDOMAIN_MESSAGE, _SUBDOMAIN_FORMAT, "example.com"))
    return errors


def _regex_error(message: str, pattern: str, *examples: str) -> str:
    # Reproduces validation.RegexError, double spaces included: "(e.g. 'a',  or 'b', ...".
    shown = " or ".join(f"'{example}', " for example in examples)
    return f"{message} (e.g. {shown}regex used for validation is '{pattern}')"


def _size(text: str) -> int:
    return len(text.encode("utf-8"))
