"""Label selectors: syntax rules, matching, and Go-style renderings for error messages."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from engenho.schema import causes as c
from engenho.schema.rules.meta import add_invalid, validate_labels
from engenho.schema.rules.names import qualified_name_errors

__all__ = ["go_label_selector", "go_string_map", "selector_matches", "validate_label_selector"]

_SET_OPERATORS = ("In", "NotIn")
_EXISTS_OPERATORS = ("Exists", "DoesNotExist")


def validate_label_selector(selector: Any, path: str, causes: list[c.Cause]) -> None:
    if type(selector) is not dict:
        return
    if "matchLabels" in selector:
        validate_labels(selector["matchLabels"], f"{path}.matchLabels", causes)
    expressions = selector.get("matchExpressions")
    if type(expressions) is not list:
        return
    for index, requirement in enumerate(expressions):
        if type(requirement) is not dict:
            continue
        here = f"{path}.matchExpressions[{index}]"
        operator = requirement.get("operator")
        values = requirement.get("values") or []
        if operator in _SET_OPERATORS:
            if not values:
                causes.append(
                    c.required(
                        f"{here}.values", "must be specified when `operator` is 'In' or 'NotIn'"
                    )
                )
        elif operator in _EXISTS_OPERATORS:
            if values:
                causes.append(
                    c.forbidden(
                        f"{here}.values",
                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    )
                )
        elif operator:
            causes.append(c.invalid(f"{here}.operator", operator, "not a valid selector operator"))
        key = requirement.get("key")
        if type(key) is str and key:
            errors = qualified_name_errors(key)
            if errors:
                add_invalid(causes, f"{here}.key", key, errors)


def selector_matches(selector: Mapping[str, Any], labels: Mapping[str, Any]) -> bool:
    """Whether a ``metav1.LabelSelector`` selects an object with ``labels``."""
    match_labels = selector.get("matchLabels") or {}
    if type(match_labels) is dict:
        for key, value in match_labels.items():
            if labels.get(key) != value:
                return False
    for requirement in selector.get("matchExpressions") or ():
        if type(requirement) is not dict:
            continue
        key, operator = str(requirement.get("key")), requirement.get("operator")
        values = requirement.get("values") or ()
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


def go_string_map(value: Any) -> c.GoLiteral:
    """``map[string]string{"a":"b", "c":"d"}``, as Go's ``%#v`` prints it."""
    if type(value) is not dict or not value:
        return c.GoLiteral("map[string]string(nil)")
    items = ", ".join(f"{json.dumps(k)}:{json.dumps(v)}" for k, v in sorted(value.items()))
    return c.GoLiteral(f"map[string]string{{{items}}}")


def go_label_selector(selector: Any) -> c.GoLiteral:
    """``v1.LabelSelector{MatchLabels:..., MatchExpressions:...}`` as Go's ``%#v`` prints it."""
    if type(selector) is not dict:
        return c.GoLiteral("null")
    labels = go_string_map(selector.get("matchLabels")).text
    expressions = selector.get("matchExpressions") or []
    if expressions:
        rendered = []
        for requirement in expressions:
            values = requirement.get("values")
            values_text = (
                "[]string{" + ", ".join(json.dumps(v) for v in values) + "}"
                if values
                else "[]string(nil)"
            )
            rendered.append(
                f"v1.LabelSelectorRequirement{{Key:{json.dumps(requirement.get('key', ''))}, "
                f"Operator:{json.dumps(requirement.get('operator', ''))}, Values:{values_text}}}"
            )
        expressions_text = "[]v1.LabelSelectorRequirement{" + ", ".join(rendered) + "}"
    else:
        expressions_text = "[]v1.LabelSelectorRequirement(nil)"
    return c.GoLiteral(
        f"v1.LabelSelector{{MatchLabels:{labels}, MatchExpressions:{expressions_text}}}"
    )
