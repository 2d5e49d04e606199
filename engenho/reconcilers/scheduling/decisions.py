"""The decision core: where one pod goes, or why it cannot go anywhere. No I/O, no clock.

The walk is upstream's ``findNodesThatFitPod`` + ``prioritizeNodes`` + ``selectHost``:

1. Nodes are visited in name order starting at ``start`` (the caller passes back
   ``next_start`` so successive pods begin where the last one stopped, giving every node the
   same chance to be examined). Each node is run through the filters in order and refused by
   the first that refuses it.
2. The walk stops once it has found ``nodes_to_find`` feasible nodes (upstream's
   ``percentageOfNodesToScore``: all nodes below 100, else an adaptive share, at least 100),
   so a large cluster is not scored in full for every pod.
3. The feasible nodes are scored; each score plugin's 0-100 result is multiplied by its
   weight and summed. One feasible node needs no scoring.
4. Among the nodes with the highest total, the tie is broken by a hash of the seed and the
   pod's uid, so the same inputs and seed always give the same node, while pods spread over
   equally good nodes (upstream picks at random).

An unschedulable pod gets every node's reasons and upstream's message:
``0/3 nodes are available: 1 node(s) had untolerated taint {k: v}, 2 Insufficient cpu.``
(each distinct reason counted over nodes, the ``<count> <reason>`` strings sorted as strings).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Mapping, Sequence

from attrs import frozen

from engenho.reconcilers.scheduling.nodeinfo import NodeInfo, Snapshot
from engenho.reconcilers.scheduling.plugins import Cycle, FilterPlugin, NodeCheck, ScorePlugin
from engenho.reconcilers.scheduling.podinfo import PodInfo

__all__ = [
    "MIN_FEASIBLE_NODES_TO_FIND",
    "NO_NODES_MESSAGE",
    "Decision",
    "Scheduled",
    "Unschedulable",
    "decide",
    "failure_message",
    "nodes_to_find",
]

MIN_FEASIBLE_NODES_TO_FIND = 100
_MIN_PERCENTAGE = 5
_BASE_PERCENTAGE = 50
NO_NODES_MESSAGE = "no nodes available to schedule pods"


@frozen
class Scheduled:
    node: str
    score: int
    feasible: int
    """How many feasible nodes were found (and scored)."""
    next_start: int


@frozen
class Unschedulable:
    reasons: Mapping[str, tuple[str, ...]]
    """Every node's reasons, by node name."""
    message: str
    next_start: int


Decision = Scheduled | Unschedulable


def nodes_to_find(total: int, percentage: int | None = None) -> int:
    """How many feasible nodes are enough (upstream's ``numFeasibleNodesToFind``)."""
    if total < MIN_FEASIBLE_NODES_TO_FIND:
        return total
    if not percentage:
        percentage = max(_BASE_PERCENTAGE - total // 125, _MIN_PERCENTAGE)
    return max(total * min(percentage, 100) // 100, MIN_FEASIBLE_NODES_TO_FIND)


def failure_message(total: int, reasons: Mapping[str, tuple[str, ...]]) -> str:
    if total == 0:
        return NO_NODES_MESSAGE
    histogram = Counter(reason for found in reasons.values() for reason in found)
    counted = sorted(f"{count} {reason}" for reason, count in histogram.items())
    message = f"0/{total} nodes are available:"
    return f"{message} {', '.join(counted)}." if counted else message


def _tie_break(seed: int, pod: PodInfo) -> int:
    digest = hashlib.blake2b(
        f"{seed}\0{pod.uid or pod.key}".encode(), digest_size=8, person=b"engenho-sched"
    ).digest()
    return int.from_bytes(digest, "big")


def _feasible(
    nodes: Sequence[NodeInfo], checks: list[NodeCheck], start: int, wanted: int
) -> tuple[list[NodeInfo], dict[str, tuple[str, ...]], int]:
    """(feasible nodes in visiting order, reasons of the refused ones, nodes examined)."""
    ordered = [*nodes[start:], *nodes[:start]] if start else nodes
    if not checks:
        return list(ordered[:wanted]), {}, min(wanted, len(ordered))
    feasible: list[NodeInfo] = []
    refused: dict[str, tuple[str, ...]] = {}
    examined = 0
    if len(checks) == 1:
        # The common case once the filters that have nothing to refuse have stepped aside.
        (check,) = checks
        for node in ordered:
            examined += 1
            reasons = check(node)
            if reasons:
                refused[node.name] = reasons
            else:
                feasible.append(node)
                if len(feasible) == wanted:
                    break
        return feasible, refused, examined
    for node in ordered:
        examined += 1
        for check in checks:
            reasons = check(node)
            if reasons:
                refused[node.name] = reasons
                break
        else:
            feasible.append(node)
            if len(feasible) == wanted:
                break
    return feasible, refused, examined


def decide(
    pod: PodInfo,
    snapshot: Snapshot,
    filters: Sequence[FilterPlugin],
    scores: Sequence[tuple[ScorePlugin, int]],
    *,
    now: float,
    start: int = 0,
    seed: int = 0,
    percentage: int | None = None,
) -> Decision:
    """Choose a node for ``pod`` among ``snapshot.nodes`` (see the module docstring)."""
    nodes = snapshot.nodes
    total = len(nodes)
    if total == 0:
        return Unschedulable({}, NO_NODES_MESSAGE, 0)
    start %= total
    cycle = Cycle(pod, snapshot, now)
    checks = [check for check in (f.prepare(cycle) for f in filters) if check is not None]
    feasible, refused, examined = _feasible(nodes, checks, start, nodes_to_find(total, percentage))
    next_start = (start + examined) % total
    if not feasible:
        return Unschedulable(refused, failure_message(total, refused), next_start)
    if len(feasible) == 1:
        return Scheduled(feasible[0].name, 0, 1, next_start)
    totals = [0] * len(feasible)
    for plugin, weight in scores:
        rated = plugin.score(cycle, feasible)
        if rated is not None and weight:
            totals = [t + weight * s for t, s in zip(totals, rated, strict=True)]
    best = max(totals)
    tied = [node for node, score in zip(feasible, totals, strict=True) if score == best]
    chosen = tied[_tie_break(seed, pod) % len(tied)] if len(tied) > 1 else tied[0]
    return Scheduled(chosen.name, best, len(feasible), next_start)
