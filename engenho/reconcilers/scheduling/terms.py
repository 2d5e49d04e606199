"""Terms that select other pods: inter-pod (anti-)affinity terms and topology spread
constraints, parsed once per pod.

An affinity term matches a pod when the pod's namespace is one the term names, or its
namespace's labels match ``namespaceSelector``, and the pod's labels match ``labelSelector``.
With neither ``namespaces`` nor ``namespaceSelector`` the term means the owning pod's own
namespace; a nil selector matches nothing and ``{}`` everything (``LabelSelectorAsSelector``).
A term whose selector does not parse matches nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from attrs import frozen

from engenho.selectors import (
    InvalidLabelSelectorError,
    LabelSelector,
    Operator,
    label_selector_from_object,
    new_requirement,
)

__all__ = [
    "AffinityTerm",
    "SpreadConstraint",
    "parse_affinity_terms",
    "parse_spread_constraints",
]


@frozen
class AffinityTerm:
    selector: LabelSelector
    namespaces: frozenset[str]
    namespace_selector: LabelSelector
    topology_key: str

    def matches(
        self, namespace: str, labels: Mapping[str, str], namespace_labels: Mapping[str, str]
    ) -> bool:
        """Whether a pod in ``namespace`` with ``labels`` is selected by this term."""
        if namespace in self.namespaces or self.namespace_selector.matches(namespace_labels):
            return self.selector.matches(labels)
        return False


@frozen
class SpreadConstraint:
    max_skew: int
    topology_key: str
    hard: bool
    """``whenUnsatisfiable: DoNotSchedule`` (a filter); otherwise a score."""
    selector: LabelSelector
    min_domains: int = 1
    honor_node_affinity: bool = True
    """``nodeAffinityPolicy`` (default Honor): count only nodes the pod could select."""
    honor_taints: bool = False
    """``nodeTaintsPolicy`` (default Ignore)."""


def _selector(value: Any) -> LabelSelector:
    try:
        return label_selector_from_object(value)
    except InvalidLabelSelectorError:
        return LabelSelector.nothing()


def parse_affinity_terms(items: Any, namespace: str) -> tuple[AffinityTerm, ...]:
    """``requiredDuringSchedulingIgnoredDuringExecution`` pod (anti-)affinity terms of a pod
    in ``namespace``."""
    if not isinstance(items, list):
        return ()
    terms = []
    for item in items:
        if not isinstance(item, dict):
            continue
        names = item.get("namespaces") or []
        names = [n for n in names if isinstance(n, str)] if isinstance(names, list) else []
        raw_namespace_selector = item.get("namespaceSelector")
        if not names and raw_namespace_selector is None:
            names = [namespace]
        terms.append(
            AffinityTerm(
                _selector(item.get("labelSelector")),
                frozenset(names),
                _selector(raw_namespace_selector),
                str(item.get("topologyKey") or ""),
            )
        )
    return tuple(terms)


def _with_label_keys(
    selector: LabelSelector, keys: Any, labels: Mapping[str, str]
) -> LabelSelector:
    """``matchLabelKeys``: the pod's own values for these keys join the selector."""
    if not isinstance(keys, list) or selector.matches_nothing:
        return selector
    extra = [
        new_requirement(key, Operator.IN, (labels[key],))
        for key in keys
        if isinstance(key, str) and key in labels
    ]
    return LabelSelector.of([*selector.requirements, *extra]) if extra else selector


def parse_spread_constraints(items: Any, labels: Mapping[str, str]) -> tuple[SpreadConstraint, ...]:
    """``spec.topologySpreadConstraints`` of a pod with ``labels``."""
    if not isinstance(items, list):
        return ()
    constraints = []
    for item in items:
        if not isinstance(item, dict):
            continue
        try:
            selector = _with_label_keys(
                _selector(item.get("labelSelector")), item.get("matchLabelKeys"), labels
            )
        except InvalidLabelSelectorError:
            selector = LabelSelector.nothing()
        max_skew = item.get("maxSkew")
        min_domains = item.get("minDomains")
        constraints.append(
            SpreadConstraint(
                max_skew=max_skew if isinstance(max_skew, int) and max_skew > 0 else 1,
                topology_key=str(item.get("topologyKey") or ""),
                hard=item.get("whenUnsatisfiable", "DoNotSchedule") == "DoNotSchedule",
                selector=selector,
                min_domains=min_domains if isinstance(min_domains, int) and min_domains > 0 else 1,
                honor_node_affinity=item.get("nodeAffinityPolicy", "Honor") == "Honor",
                honor_taints=item.get("nodeTaintsPolicy", "Ignore") == "Honor",
            )
        )
    return tuple(constraints)
