"""Which pods a ReplicaSet deletes first when it has too many (upstream's getPodsToDelete).

The order is upstream's ``ActivePodsWithRanks`` with LogarithmicScaleDown (on by default):
the least far along first (no node, then pending, then running but not ready: the pod machine's
``progress``), then the lower ``controller.kubernetes.io/pod-deletion-cost``, then pods sharing
their node with more pods of the same owner, then the most recently ready, then the most
restarted, then the newest. Times are compared in powers-of-two buckets of their age, ties
broken by uid, so that scale-down does not always pick exactly the youngest pods.
"""

from __future__ import annotations

import functools
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from attrs import frozen

from engenho.projections import StoredObject
from engenho.reconcilers.machines.pods import PodView, parse_time

__all__ = ["DELETION_COST", "pods_to_delete"]

DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"


@frozen
class _Ranked:
    pod: StoredObject
    view: PodView
    cost: int
    colocated: int
    restarts: tuple[int, int]
    created: datetime | None


def _cost(obj: Mapping[str, Any]) -> int:
    annotations = obj.get("metadata", {}).get("annotations") or {}
    try:
        cost = int(str(annotations.get(DELETION_COST, "0")))
    except ValueError:
        return 0
    return cost if -(2**31) <= cost < 2**31 else 0


def _restarts(obj: Mapping[str, Any]) -> tuple[int, int]:
    """The most restarts of a regular container, then of an init (sidecar) container."""
    status = obj.get("status") or {}

    def most(field: str) -> int:
        rows = status.get(field)
        counts = [
            int(row.get("restartCount") or 0)
            for row in (rows if isinstance(rows, list) else ())
            if isinstance(row, dict)
        ]
        return max(counts, default=0)

    return most("containerStatuses"), most("initContainerStatuses")


def _bucket(moment: datetime, now: datetime) -> int:
    nanoseconds = (now - moment).total_seconds() * 1e9
    return int(math.log2(nanoseconds)) if nanoseconds > 0 else -1


def _by_age(
    first: datetime | None, second: datetime | None, a: _Ranked, b: _Ranked, now: datetime
) -> bool:
    """Upstream's afterOrZero with logarithmic buckets: no time first, then younger first."""
    if first is None or second is None:
        return first is None
    difference = _bucket(first, now) - _bucket(second, now)
    if difference == 0:
        return a.pod.uid < b.pod.uid
    return difference < 0


def _less(a: _Ranked, b: _Ranked, now: datetime) -> bool:
    if a.view.progress != b.view.progress:
        return a.view.progress < b.view.progress
    if a.cost != b.cost:
        return a.cost < b.cost
    if a.colocated != b.colocated:
        return a.colocated > b.colocated
    if a.view.ready and b.view.ready and a.view.ready_since != b.view.ready_since:
        return _by_age(a.view.ready_since, b.view.ready_since, a, b, now)
    if a.restarts != b.restarts:
        return a.restarts > b.restarts
    if a.created != b.created:
        return _by_age(a.created, b.created, a, b, now)
    return False


def _node(stored: StoredObject) -> str:
    return str((stored.object.get("spec") or {}).get("nodeName") or "")


def pods_to_delete(
    pods: Sequence[tuple[StoredObject, PodView]],
    related: Sequence[tuple[StoredObject, PodView]],
    count: int,
    now: datetime,
) -> list[StoredObject]:
    """The ``count`` pods to delete first; ``related`` are the active and inactive pods of
    every ReplicaSet with the same owner (for the colocation rank)."""
    if count >= len(pods):
        return [pod for pod, _ in pods][:count]
    per_node = Counter(_node(pod) for pod, view in related if view.active)
    ranked = [
        _Ranked(
            pod=pod,
            view=view,
            cost=_cost(pod.object),
            colocated=per_node[_node(pod)],
            restarts=_restarts(pod.object),
            created=parse_time(pod.object.get("metadata", {}).get("creationTimestamp")),
        )
        for pod, view in pods
    ]

    def compare(a: _Ranked, b: _Ranked) -> int:
        if _less(a, b, now):
            return -1
        return 1 if _less(b, a, now) else 0

    ranked.sort(key=functools.cmp_to_key(compare))
    return [entry.pod for entry in ranked[:count]]
