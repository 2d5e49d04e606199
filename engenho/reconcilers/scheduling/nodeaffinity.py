"""Which nodes a pod may land on by their labels and name: ``spec.nodeSelector`` and node
affinity, matched as ``component-helpers/scheduling/corev1/nodeaffinity`` matches them.

- ``nodeSelectorTerms`` are ORed; within a term, ``matchExpressions`` and ``matchFields`` are
  ANDed; a term with neither matches nothing.
- A term that does not parse (a bad key, ``Gt`` with a non-integer, a field other than
  ``metadata.name``) is dropped, and the others still count: upstream ignores these errors for
  backwards compatibility.
- Required affinity is ``nodeSelector`` AND the required terms (when there are any).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from attrs import frozen

from engenho.selectors import (
    InvalidLabelSelectorError,
    LabelSelector,
    Operator,
    new_requirement,
)

__all__ = [
    "NodeSelectorTerm",
    "PreferredTerm",
    "RequiredNodeAffinity",
    "parse_node_selector_terms",
    "parse_preferred_terms",
    "required_node_affinity",
]

_OPERATORS = {
    "In": Operator.IN,
    "NotIn": Operator.NOT_IN,
    "Exists": Operator.EXISTS,
    "DoesNotExist": Operator.DOES_NOT_EXIST,
    "Gt": Operator.GREATER_THAN,
    "Lt": Operator.LESS_THAN,
}


@frozen
class NodeSelectorTerm:
    labels: LabelSelector
    names: tuple[tuple[bool, str], ...] = ()
    """``matchFields`` on ``metadata.name``: (must equal, name) per requirement."""

    def matches(self, name: str, labels: Mapping[str, str]) -> bool:
        for equal, wanted in self.names:
            if (name == wanted) != equal:
                return False
        return self.labels.matches(labels)


@frozen
class PreferredTerm:
    weight: int
    term: NodeSelectorTerm


@frozen
class RequiredNodeAffinity:
    """``nodeSelector`` AND (any of the required terms, when ``terms`` is not None)."""

    selector: tuple[tuple[str, str], ...]
    """``nodeSelector`` as (key, value) pairs; upstream matches them without validating."""
    terms: tuple[NodeSelectorTerm, ...] | None

    def matches(self, name: str, labels: Mapping[str, str]) -> bool:
        for key, value in self.selector:
            if labels.get(key) != value:
                return False
        if self.terms is None:
            return True
        return any(term.matches(name, labels) for term in self.terms)


def _term(term: Any) -> NodeSelectorTerm | None:
    """One parsed term, or None when it is empty (matches nothing) or malformed."""
    if not isinstance(term, dict):
        return None
    expressions = term.get("matchExpressions") or []
    fields = term.get("matchFields") or []
    if not isinstance(expressions, list) or not isinstance(fields, list):
        return None
    if not expressions and not fields:
        return None
    requirements = []
    names: list[tuple[bool, str]] = []
    try:
        for expression in expressions:
            operator = _OPERATORS.get(expression.get("operator", ""))
            values = expression.get("values") or []
            if operator is None or not isinstance(values, list):
                return None
            requirements.append(new_requirement(str(expression.get("key", "")), operator, values))
        for field in fields:
            values = field.get("values") or []
            operator = field.get("operator")
            # Upstream turns these into a field selector, which takes exactly one value.
            if field.get("key") != "metadata.name" or operator not in ("In", "NotIn"):
                return None
            if not isinstance(values, list) or len(values) != 1:
                return None
            names.append((operator == "In", str(values[0])))
    except (InvalidLabelSelectorError, AttributeError, TypeError):
        return None
    return NodeSelectorTerm(LabelSelector.of(requirements), tuple(names))


def parse_node_selector_terms(terms: Any) -> tuple[NodeSelectorTerm, ...]:
    if not isinstance(terms, list):
        return ()
    return tuple(parsed for parsed in map(_term, terms) if parsed is not None)


def parse_preferred_terms(items: Any) -> tuple[PreferredTerm, ...]:
    """``preferredDuringSchedulingIgnoredDuringExecution``; weight-0 and empty terms count
    for nothing, so they are dropped."""
    if not isinstance(items, list):
        return ()
    preferred = []
    for item in items:
        if not isinstance(item, dict):
            continue
        weight = item.get("weight")
        term = _term(item.get("preference"))
        if isinstance(weight, int) and weight and term is not None:
            preferred.append(PreferredTerm(weight, term))
    return tuple(preferred)


def required_node_affinity(spec: Mapping[str, Any]) -> RequiredNodeAffinity | None:
    """The pod's hard node constraints, or None when it has none (every node matches)."""
    node_selector = spec.get("nodeSelector")
    selector = (
        tuple(sorted((str(k), str(v)) for k, v in node_selector.items()))
        if isinstance(node_selector, dict)
        else ()
    )
    affinity = spec.get("affinity")
    node_affinity = affinity.get("nodeAffinity") if isinstance(affinity, dict) else None
    required = (
        node_affinity.get("requiredDuringSchedulingIgnoredDuringExecution")
        if isinstance(node_affinity, dict)
        else None
    )
    terms = (
        parse_node_selector_terms(required.get("nodeSelectorTerms"))
        if isinstance(required, dict)
        else None
    )
    if not selector and terms is None:
        return None
    return RequiredNodeAffinity(selector, terms)
