"""The scores that rate one node at a time, with upstream's arithmetic.

- ``LeastAllocated`` (upstream's default ``NodeResourcesFit`` strategy) prefers the emptiest
  node, ``MostAllocated`` the fullest (bin packing); both weigh each configured resource by
  its share of the node's allocatable after placing the pod, counting the *non-zero*
  requests of the pods on it (see :mod:`.resources`).
- ``BalancedAllocation`` prefers the node whose resources end up used in the most even
  proportions (1 minus the standard deviation of the fractions), counting actual requests.
- ``NodeAffinityScore`` sums the weights of the preferred node-affinity terms a node matches,
  normalised so that the best node gets 100.
- ``TaintTolerationScore`` prefers nodes with fewer PreferNoSchedule taints the pod does not
  tolerate.

Integer arithmetic truncates as Go's does. A per-node result depends only on the node's state
and the pod's requests, so the resource scores keep it in a snapshot table per pod shape
(valid until the node changes): the next pod of the same shape finds all but the node that
changed ready.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from attrs import frozen

from engenho.reconcilers.scheduling.nodeinfo import NodeInfo, Snapshot
from engenho.reconcilers.scheduling.plugins import MAX_NODE_SCORE, Cycle
from engenho.reconcilers.scheduling.podinfo import PodInfo
from engenho.reconcilers.scheduling.taints import tolerated

__all__ = [
    "DEFAULT_RESOURCES",
    "BalancedAllocation",
    "LeastAllocated",
    "MostAllocated",
    "NodeAffinityScore",
    "TaintTolerationScore",
    "default_normalize",
]

DEFAULT_RESOURCES: tuple[tuple[str, int], ...] = (("cpu", 1), ("memory", 1))
"""(resource, weight) pairs upstream scores by default."""


def default_normalize(scores: list[int], *, reverse: bool = False) -> list[int]:
    """Upstream's ``DefaultNormalizeScore``: scale so the highest is 100 (or, reversed, the
    highest becomes 0 and zero becomes 100)."""
    highest = max(scores, default=0)
    if highest == 0:
        return [MAX_NODE_SCORE] * len(scores) if reverse else scores
    if reverse:
        return [MAX_NODE_SCORE - MAX_NODE_SCORE * s // highest for s in scores]
    return [MAX_NODE_SCORE * s // highest for s in scores]


def _pod_amount(pod: PodInfo, name: str, use_requested: bool) -> int:
    requests = pod.requests
    if name == "cpu":
        return requests.cpu if use_requested else requests.nonzero_cpu
    if name == "memory":
        return requests.memory if use_requested else requests.nonzero_memory
    if name == "ephemeral-storage":
        return requests.ephemeral
    return dict(requests.scalars).get(name, 0)


def _usage(node: NodeInfo, name: str, amount: int, use_requested: bool) -> tuple[int, int]:
    """(allocatable, requested with the pod) of one resource; (0, 0) means "not scored"."""
    if name == "cpu":
        return node.alloc_cpu, (node.req_cpu if use_requested else node.nonzero_cpu) + amount
    if name == "memory":
        used = node.req_memory if use_requested else node.nonzero_memory
        return node.alloc_memory, used + amount
    if name == "ephemeral-storage":
        return node.alloc_ephemeral, node.req_ephemeral + amount
    alloc = node.alloc_scalars.get(name)
    if amount == 0 or alloc is None:
        return 0, 0  # a scalar the pod does not ask for does not count
    return alloc, node.req_scalars.get(name, 0) + amount


_Scorer = Callable[[NodeInfo], int]


def _memoised(
    snapshot: Snapshot, nodes: Sequence[NodeInfo], key: str, scorer: _Scorer
) -> list[int]:
    """``scorer`` over ``nodes``, remembering each node's score until the node changes."""
    table = snapshot.score_table(key)
    scores = []
    for node in nodes:
        packed = table.get(node)
        generation = node.generation
        if packed is not None and packed >> 7 == generation:
            scores.append(packed & 127)
        else:
            score = scorer(node)
            table[node] = generation << 7 | score
            scores.append(score)
    return scores


def _least(requested: int, allocatable: int) -> int:
    if requested > allocatable:
        return 0
    return (allocatable - requested) * MAX_NODE_SCORE // allocatable


def _most(requested: int, allocatable: int) -> int:
    # Non-zero requests can add up to more than the node has.
    return min(requested, allocatable) * MAX_NODE_SCORE // allocatable


@frozen
class _Allocation:
    resources: tuple[tuple[str, int], ...] = DEFAULT_RESOURCES

    def _weighted(
        self, cycle: Cycle, nodes: Sequence[NodeInfo], per_resource: Callable[[int, int], int]
    ) -> list[int]:
        wanted = tuple(
            (name, weight, _pod_amount(cycle.pod, name, False)) for name, weight in self.resources
        )

        def scorer(node: NodeInfo) -> int:
            total = weights = 0
            for name, weight, amount in wanted:
                allocatable, requested = _usage(node, name, amount, False)
                if allocatable:
                    total += per_resource(requested, allocatable) * weight
                    weights += weight
            return total // weights if weights else 0

        return _memoised(cycle.snapshot, nodes, f"{type(self).__name__}{wanted}", scorer)


@frozen
class LeastAllocated(_Allocation):
    name = "NodeResourcesFit"

    def score(self, cycle: Cycle, nodes: Sequence[NodeInfo]) -> list[int] | None:
        return self._weighted(cycle, nodes, _least)


@frozen
class MostAllocated(_Allocation):
    name = "NodeResourcesFit"

    def score(self, cycle: Cycle, nodes: Sequence[NodeInfo]) -> list[int] | None:
        return self._weighted(cycle, nodes, _most)


@frozen
class BalancedAllocation:
    resources: tuple[tuple[str, int], ...] = DEFAULT_RESOURCES
    name = "NodeResourcesBalancedAllocation"

    def score(self, cycle: Cycle, nodes: Sequence[NodeInfo]) -> list[int] | None:
        wanted = tuple((name, _pod_amount(cycle.pod, name, True)) for name, _ in self.resources)

        def scorer(node: NodeInfo) -> int:
            fractions = []
            for name, amount in wanted:
                allocatable, requested = _usage(node, name, amount, True)
                if allocatable:
                    fractions.append(min(requested / allocatable, 1.0))
            if len(fractions) == 2:
                deviation = abs((fractions[0] - fractions[1]) / 2)
            elif len(fractions) > 2:
                mean = sum(fractions) / len(fractions)
                deviation = math.sqrt(sum((f - mean) ** 2 for f in fractions) / len(fractions))
            else:
                deviation = 0.0
            return int((1 - deviation) * MAX_NODE_SCORE)

        return _memoised(cycle.snapshot, nodes, f"{type(self).__name__}{wanted}", scorer)


@frozen
class NodeAffinityScore:
    name = "NodeAffinity"

    def score(self, cycle: Cycle, nodes: Sequence[NodeInfo]) -> list[int] | None:
        preferred = cycle.pod.preferred_affinity
        if not preferred:
            return None
        raw = [
            sum(p.weight for p in preferred if p.term.matches(node.name, node.labels))
            for node in nodes
        ]
        return default_normalize(raw)


@frozen
class TaintTolerationScore:
    name = "TaintToleration"

    def score(self, cycle: Cycle, nodes: Sequence[NodeInfo]) -> list[int] | None:
        if not cycle.snapshot.prefer_tainted:
            return None
        tolerations = tuple(
            t for t in cycle.pod.tolerations if t.effect in ("", "PreferNoSchedule")
        )
        raw = [
            sum(1 for taint in node.prefer_taints if not tolerated(tolerations, taint))
            for node in nodes
        ]
        if not any(raw):
            return None  # every node would get 100
        return default_normalize(raw, reverse=True)
