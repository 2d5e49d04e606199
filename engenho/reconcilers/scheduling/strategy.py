"""A scheduling strategy (filters, weighted scores, a binder) and the profiles that select one
by ``spec.schedulerName``.

The default strategy is upstream's default profile, in upstream's plugin order, with
``NodeReady`` before the taint filter (where upstream's not-ready taint would be judged):

- filters: NodeUnschedulable, NodeName, NodeReady, TaintToleration, NodeAffinity, NodePorts,
  NodeResourcesFit, PodTopologySpread, InterPodAffinity;
- scores (weight): TaintToleration (3), NodeAffinity (2), NodeResourcesFit least-allocated
  (1), PodTopologySpread (2), NodeResourcesBalancedAllocation (1).

:func:`bin_packing` swaps least-allocated for most-allocated. Not implemented from upstream's
defaults: volume filters, ImageLocality, preferred inter-pod affinity scores, preemption.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from attrs import evolve, field, frozen

from engenho.projections import StoredObject
from engenho.reconcilers.scheduling.decisions import Decision, decide
from engenho.reconcilers.scheduling.filters import (
    NodeAffinity,
    NodeName,
    NodePorts,
    NodeReady,
    NodeResourcesFit,
    NodeUnschedulable,
    TaintToleration,
)
from engenho.reconcilers.scheduling.interpod import InterPodAffinity
from engenho.reconcilers.scheduling.nodeinfo import Snapshot
from engenho.reconcilers.scheduling.plugins import FilterPlugin, ScorePlugin
from engenho.reconcilers.scheduling.podinfo import DEFAULT_SCHEDULER, PodInfo
from engenho.reconcilers.scheduling.scores import (
    BalancedAllocation,
    LeastAllocated,
    MostAllocated,
    NodeAffinityScore,
    TaintTolerationScore,
)
from engenho.reconcilers.scheduling.spreading import PodTopologySpread, PodTopologySpreadScore
from engenho.registry import Registry, RequestContext

__all__ = [
    "Binder",
    "DefaultBinder",
    "SchedulerProfile",
    "SchedulingStrategy",
    "bin_packing",
    "default_filters",
    "default_scores",
]


class Binder(Protocol):
    async def bind(
        self, registry: Registry, ctx: RequestContext, pod: StoredObject, node: str
    ) -> None:
        """Assign ``pod`` to ``node``; raise ConflictError if it is already assigned."""


@frozen
class DefaultBinder:
    """POSTs a Binding to ``pods/binding`` (at most once: the registry refuses a second
    binding with 409), with the pod's uid as a precondition so a pod deleted and created again
    under the same name is not bound by mistake."""

    name = "DefaultBinder"

    async def bind(
        self, registry: Registry, ctx: RequestContext, pod: StoredObject, node: str
    ) -> None:
        binding = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": pod.name, "namespace": pod.namespace, "uid": pod.uid},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node},
        }
        await registry.bind(ctx, pod.namespace, binding)


def default_filters() -> tuple[FilterPlugin, ...]:
    return (
        NodeUnschedulable(),
        NodeName(),
        NodeReady(),
        TaintToleration(),
        NodeAffinity(),
        NodePorts(),
        NodeResourcesFit(),
        PodTopologySpread(),
        InterPodAffinity(),
    )


def default_scores() -> tuple[tuple[ScorePlugin, int], ...]:
    return (
        (TaintTolerationScore(), 3),
        (NodeAffinityScore(), 2),
        (LeastAllocated(), 1),
        (PodTopologySpreadScore(), 2),
        (BalancedAllocation(), 1),
    )


@frozen
class SchedulingStrategy:
    filters: tuple[FilterPlugin, ...] = field(factory=default_filters)
    scores: tuple[tuple[ScorePlugin, int], ...] = field(factory=default_scores)
    """(plugin, weight) pairs."""
    binder: Binder = field(factory=DefaultBinder)
    percentage_of_nodes_to_score: int | None = None
    """None (or 0) is upstream's adaptive share; 100 scores every feasible node."""
    seed: int = 0
    """Breaks ties between equally scored nodes (see :mod:`.decisions`)."""

    def decide(self, pod: PodInfo, snapshot: Snapshot, *, now: float, start: int = 0) -> Decision:
        return decide(
            pod,
            snapshot,
            self.filters,
            self.scores,
            now=now,
            start=start,
            seed=self.seed,
            percentage=self.percentage_of_nodes_to_score,
        )


def bin_packing(strategy: SchedulingStrategy | None = None) -> SchedulingStrategy:
    """``strategy`` (default: the default one) scoring most-allocated instead of
    least-allocated: fill nodes before starting new ones."""
    strategy = strategy or SchedulingStrategy()
    scores: Sequence[tuple[ScorePlugin, int]] = [
        (MostAllocated(plugin.resources), weight)
        if isinstance(plugin, LeastAllocated)
        else (plugin, weight)
        for plugin, weight in strategy.scores
    ]
    return evolve(strategy, scores=tuple(scores))


@frozen
class SchedulerProfile:
    """The strategy used for pods whose ``spec.schedulerName`` is ``scheduler_name``."""

    scheduler_name: str = DEFAULT_SCHEDULER
    strategy: SchedulingStrategy = field(factory=SchedulingStrategy)
