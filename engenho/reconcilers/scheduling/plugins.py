"""The two kinds of plugin a scheduling strategy is made of, and what they are given.

- A **filter** looks at the pod once (``prepare``, upstream's PreFilter) and returns a check
  to run on each node, or None when it has nothing to say about this pod (upstream's Skip),
  so a pod without host ports never pays for the host-port filter. A check returns the
  reasons a node is refused, in upstream's wording (empty when the node fits); a node is
  refused by the first filter that refuses it.
- A **score** rates the nodes that passed every filter, 0 to 100 each (normalised over
  those nodes where upstream normalises), or returns None when it has nothing to say (every
  node would get the same score, which cannot change the choice).

Both are pure: they read the cycle and the nodes and change nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from attrs import frozen

from engenho.reconcilers.scheduling.nodeinfo import NodeInfo, Snapshot
from engenho.reconcilers.scheduling.podinfo import PodInfo

__all__ = ["FITS", "MAX_NODE_SCORE", "Cycle", "FilterPlugin", "NodeCheck", "ScorePlugin"]

FITS: tuple[str, ...] = ()
"""A check's answer for a node that passes."""
MAX_NODE_SCORE = 100

NodeCheck = Callable[[NodeInfo], tuple[str, ...]]


@frozen
class Cycle:
    """One scheduling attempt: the pod, the cluster as it stands, and the time."""

    pod: PodInfo
    snapshot: Snapshot
    now: float
    """Seconds since the epoch (Lease freshness is judged against it)."""


class FilterPlugin(Protocol):
    @property
    def name(self) -> str: ...

    def prepare(self, cycle: Cycle) -> NodeCheck | None: ...


class ScorePlugin(Protocol):
    @property
    def name(self) -> str: ...

    def score(self, cycle: Cycle, nodes: Sequence[NodeInfo]) -> list[int] | None: ...
