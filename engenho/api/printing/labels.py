"""Label sets and label selectors written the way upstream prints them.

``format_labels`` is ``labels.FormatLabels``: ``key=value`` pairs sorted as whole strings,
comma-joined, ``<none>`` when empty. ``selector_string`` is ``LabelSelectorAsSelector(...)
.String()``: requirements sorted by key, ``key=value``, ``key in (a,b)``, ``key notin (a,b)``,
``key``, ``!key``, values sorted; an absent or empty selector prints as the empty string and an
invalid one as None. ``format_label_selector`` (``metav1.FormatLabelSelector``) turns those into
``<none>`` and ``<error>``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from engenho.api.printing.fields import mapping, sequence, string

__all__ = [
    "NONE",
    "format_label_selector",
    "format_labels",
    "selector_string",
]

NONE = "<none>"

_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_NAME_MAX = 63
_PREFIX_MAX = 253
_OPERATORS = {"In": " in ", "NotIn": " notin ", "Exists": "", "DoesNotExist": ""}


def format_labels(labels: object) -> str:
    pairs = sorted(f"{key}={string(value)}" for key, value in mapping(labels).items())
    return ",".join(pairs) or NONE


def format_label_selector(selector: object) -> str:
    text = selector_string(selector)
    if text is None:
        return "<error>"
    return text or NONE


def selector_string(selector: object) -> str | None:
    """The selector as upstream's ``Selector.String()``; None when it is not a valid selector."""
    spec = mapping(selector)
    requirements: list[tuple[str, str]] = []
    for key, value in mapping(spec.get("matchLabels")).items():
        if not _valid_key(key) or not _valid_value(value):
            return None
        requirements.append((key, f"{key}={value}"))
    for expression in sequence(spec.get("matchExpressions")):
        rendered = _expression(mapping(expression))
        if rendered is None:
            return None
        requirements.append(rendered)
    requirements.sort(key=lambda pair: pair[0])
    return ",".join(text for _, text in requirements)


def _expression(expression: Mapping[str, object]) -> tuple[str, str] | None:
    key = string(expression.get("key"))
    operator = string(expression.get("operator"))
    values = [string(v) for v in sequence(expression.get("values"))]
    if operator not in _OPERATORS or not _valid_key(key):
        return None
    if operator in {"Exists", "DoesNotExist"}:
        if values:
            return None
        return key, key if operator == "Exists" else f"!{key}"
    if not values or not all(_valid_value(v) for v in values):
        return None
    return key, f"{key}{_OPERATORS[operator]}({','.join(sorted(values))})"


def _valid_key(key: object) -> bool:
    if not isinstance(key, str):
        return False
    prefix, slash, name = key.rpartition("/")
    if slash and (
        not prefix
        or "/" in prefix
        or len(prefix) > _PREFIX_MAX
        or not _DNS_SUBDOMAIN.fullmatch(prefix)
    ):
        return False
    return 0 < len(name) <= _NAME_MAX and _NAME.fullmatch(name) is not None


def _valid_value(value: object) -> bool:
    if not isinstance(value, str):
        return False
    return value == "" or (len(value) <= _NAME_MAX and _NAME.fullmatch(value) is not None)
