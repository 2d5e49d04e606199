"""Taints and tolerations, matched as ``v1.Toleration.ToleratesTaint`` matches them.

A toleration with an empty effect matches every effect; an empty key with ``Exists`` matches
every key; an empty operator means ``Equal``; any other operator matches nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from attrs import frozen

__all__ = [
    "DO_NOT_SCHEDULE",
    "NOT_READY",
    "UNREACHABLE",
    "UNSCHEDULABLE",
    "Taint",
    "Toleration",
    "find_untolerated",
    "parse_taints",
    "parse_tolerations",
    "tolerated",
]

DO_NOT_SCHEDULE = frozenset({"NoSchedule", "NoExecute"})
"""The effects the filter enforces (``PreferNoSchedule`` only lowers a node's score)."""


@frozen
class Taint:
    key: str
    value: str
    effect: str

    def reason(self) -> str:
        """The filter's rejection text, upstream's ``{key: value}`` spelling."""
        return f"node(s) had untolerated taint {{{self.key}: {self.value}}}"


@frozen
class Toleration:
    key: str = ""
    operator: str = ""
    value: str = ""
    effect: str = ""

    def tolerates(self, taint: Taint) -> bool:
        if self.effect and self.effect != taint.effect:
            return False
        if self.key and self.key != taint.key:
            return False
        if self.operator in ("", "Equal"):
            return self.value == taint.value
        return self.operator == "Exists"


NOT_READY = Taint("node.kubernetes.io/not-ready", "", "NoSchedule")
"""What the node lifecycle controller puts on a node whose Ready condition is False."""
UNREACHABLE = Taint("node.kubernetes.io/unreachable", "", "NoSchedule")
"""... and on a node whose Ready condition is Unknown (its kubelet stopped renewing)."""
UNSCHEDULABLE = Taint("node.kubernetes.io/unschedulable", "", "NoSchedule")
"""A pod that tolerates this taint also tolerates ``spec.unschedulable``."""


def tolerated(tolerations: Iterable[Toleration], taint: Taint) -> bool:
    return any(toleration.tolerates(taint) for toleration in tolerations)


def find_untolerated(
    taints: Iterable[Taint], tolerations: tuple[Toleration, ...], effects: frozenset[str]
) -> Taint | None:
    """The first taint with one of ``effects`` that no toleration tolerates, in node order."""
    for taint in taints:
        if taint.effect in effects and not tolerated(tolerations, taint):
            return taint
    return None


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def parse_taints(items: Any) -> tuple[Taint, ...]:
    """``spec.taints`` of a Node (entries that are not objects are skipped)."""
    if not isinstance(items, list):
        return ()
    return tuple(
        Taint(_text(item.get("key")), _text(item.get("value")), _text(item.get("effect")))
        for item in items
        if isinstance(item, dict)
    )


def parse_tolerations(items: Any) -> tuple[Toleration, ...]:
    """``spec.tolerations`` of a Pod."""
    if not isinstance(items, list):
        return ()
    return tuple(
        Toleration(
            _text(item.get("key")),
            _text(item.get("operator")),
            _text(item.get("value")),
            _text(item.get("effect")),
        )
        for item in items
        if isinstance(item, dict)
    )
