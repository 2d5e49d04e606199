"""Label selectors: a conjunction of requirements (``labels.Selector``), and their
construction from a ``metav1.LabelSelector`` object or a plain label map."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from attrs import frozen

from engenho.selectors.errors import InvalidLabelSelectorError
from engenho.selectors.requirements import Operator, Requirement, new_requirement
from engenho.selectors.validation import go_quote

__all__ = [
    "LabelSelector",
    "label_selector_from_object",
    "label_selector_from_set",
]

_OBJECT_OPERATORS = {
    "In": Operator.IN,
    "NotIn": Operator.NOT_IN,
    "Exists": Operator.EXISTS,
    "DoesNotExist": Operator.DOES_NOT_EXIST,
}


@frozen
class LabelSelector:
    """Requirements that must all hold, kept sorted by key (stably, as parsed).

    ``matches_nothing`` marks upstream's ``labels.Nothing()``, what a *nil*
    metav1.LabelSelector means; no text parses to it.
    """

    requirements: tuple[Requirement, ...] = ()
    matches_nothing: bool = False

    @classmethod
    def everything(cls) -> LabelSelector:
        return cls()

    @classmethod
    def nothing(cls) -> LabelSelector:
        return cls(matches_nothing=True)

    @classmethod
    def of(cls, requirements: Iterable[Requirement]) -> LabelSelector:
        """A selector of ``requirements``, sorted by key as upstream's ``Add`` sorts them."""
        return cls(tuple(sorted(requirements, key=lambda r: r.key)))

    @property
    def empty(self) -> bool:
        """True when the selector does not restrict anything (``Everything``)."""
        return not self.requirements and not self.matches_nothing

    def matches(self, labels: Mapping[str, str]) -> bool:
        if self.matches_nothing:
            return False
        return all(requirement.matches(labels) for requirement in self.requirements)

    def requires_exact_match(self, key: str) -> str | None:
        """The one value ``key`` must have, if the first requirement on ``key`` pins it
        (``=``, ``==`` or ``in`` with one value), else ``None``; handy for index lookups."""
        for requirement in self.requirements:
            if requirement.key == key:
                exact = requirement.operator in (
                    Operator.EQUALS,
                    Operator.DOUBLE_EQUALS,
                    Operator.IN,
                )
                if exact and len(requirement.values) == 1:
                    return requirement.values[0]
                return None
        return None

    def __str__(self) -> str:
        """Upstream's canonical form, e.g. ``app=web,tier in (a,b),!legacy``."""
        return ",".join(str(requirement) for requirement in self.requirements)


def label_selector_from_set(labels: Mapping[str, str]) -> LabelSelector:
    """``k1=v1,k2=v2`` for a plain map such as a Service's ``spec.selector`` (validated;
    an empty map selects everything, as upstream's ``ValidatedSelectorFromSet``)."""
    return LabelSelector.of(
        new_requirement(key, Operator.EQUALS, (value,)) for key, value in labels.items()
    )


def label_selector_from_object(obj: Mapping[str, Any] | None) -> LabelSelector:
    """``metav1.LabelSelectorAsSelector``: ``None`` selects nothing, ``{}`` everything.

    Keys and values are validated as in a parsed selector; a malformed object (wrong types,
    an unknown operator) raises :class:`InvalidLabelSelectorError`.
    """
    if obj is None:
        return LabelSelector.nothing()
    if not isinstance(obj, Mapping):
        raise InvalidLabelSelectorError(f"a label selector must be an object, not {_kind(obj)}")
    match_labels = obj.get("matchLabels") or {}
    expressions = obj.get("matchExpressions") or []
    if not isinstance(match_labels, Mapping):
        raise InvalidLabelSelectorError(f"matchLabels must be an object, not {_kind(match_labels)}")
    if not isinstance(expressions, list):
        raise InvalidLabelSelectorError(
            f"matchExpressions must be a list, not {_kind(expressions)}"
        )
    requirements = []
    for key, value in match_labels.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise InvalidLabelSelectorError(f"matchLabels[{key}] must be a string")
        requirements.append(new_requirement(key, Operator.EQUALS, (value,)))
    for index, expression in enumerate(expressions):
        requirements.append(_expression(index, expression))
    return LabelSelector.of(requirements)


def _expression(index: int, expression: object) -> Requirement:
    where = f"matchExpressions[{index}]"
    if not isinstance(expression, Mapping):
        raise InvalidLabelSelectorError(f"{where} must be an object, not {_kind(expression)}")
    key, operator, values = (
        expression.get("key", ""),
        expression.get("operator", ""),
        expression.get("values") or [],
    )
    if not isinstance(key, str):
        raise InvalidLabelSelectorError(f"{where}.key must be a string")
    if not isinstance(operator, str) or operator not in _OBJECT_OPERATORS:
        shown = go_quote(operator) if isinstance(operator, str) else repr(operator)
        raise InvalidLabelSelectorError(f"{shown} is not a valid label selector operator")
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise InvalidLabelSelectorError(f"{where}.values must be a list of strings")
    return new_requirement(key, _OBJECT_OPERATORS[operator], values)


def _kind(value: object) -> str:
    return type(value).__name__
