"""Pod topology spread constraints (upstream's ``PodTopologySpread``): a filter for
``DoNotSchedule`` constraints and a score for ``ScheduleAnyway`` ones.

Pods are counted per *domain* (a value of the constraint's ``topologyKey``) over the nodes that
carry every constraint's key and, per the node inclusion policies, match the pod's required
node affinity (``nodeAffinityPolicy: Honor``, the default) and tolerate their taints
(``nodeTaintsPolicy: Honor``; default Ignore). A pod counts when it is in the same namespace,
not being deleted, and matched by the constraint's selector (an empty selector counts none).

- Filter: placing the pod in the node's domain must keep ``count + 1 - global minimum`` within
  ``maxSkew`` (the minimum is 0 while fewer than ``minDomains`` domains exist); a node
  without the key is refused with ``(missing required label)``.
- Score: fewer matching pods in the node's domains is better, each constraint weighted by the
  log of its number of domains; nodes without every key score 0.

Constraints upstream adds by default (``defaultingType: System``, derived from the Services
and controllers selecting the pod) are not applied: only the pod's own constraints count.
Per-node counts are kept in the node's ``memo``, so pods of one workload count each node once
between its changes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from attrs import frozen

from engenho.reconcilers.scheduling.nodeinfo import NodeInfo
from engenho.reconcilers.scheduling.plugins import FITS, MAX_NODE_SCORE, Cycle, NodeCheck
from engenho.reconcilers.scheduling.podinfo import PodInfo
from engenho.reconcilers.scheduling.taints import DO_NOT_SCHEDULE, find_untolerated
from engenho.reconcilers.scheduling.terms import SpreadConstraint
from engenho.selectors import LabelSelector

__all__ = ["HOSTNAME_LABEL", "PodTopologySpread", "PodTopologySpreadScore", "matching_pods"]

HOSTNAME_LABEL = "kubernetes.io/hostname"
_NOT_MATCH = "node(s) didn't match pod topology spread constraints"
_SKEW = (_NOT_MATCH,)
_MISSING_LABEL = (f"{_NOT_MATCH} (missing required label)",)


def _memo_key(selector: LabelSelector, namespace: str) -> str:
    # A string caches its hash; the canonical form of a selector identifies it.
    return f"spread\0{namespace}\0{selector}"


def matching_pods(
    node: NodeInfo, selector: LabelSelector, namespace: str, key: str | None = None
) -> int:
    """How many of the node's pods in ``namespace`` (not being deleted) ``selector`` picks
    (``key`` is the memo key, when the caller has it at hand)."""
    if selector.empty or selector.matches_nothing:
        return 0
    key = key or _memo_key(selector, namespace)
    count: int | None = node.memo.get(key)
    if count is None:
        count = node.memo[key] = sum(
            1
            for pod in node.pods.values()
            if pod.namespace == namespace and not pod.deleting and selector.matches(pod.labels)
        )
    return count


def _has_keys(node: NodeInfo, keys: Sequence[str]) -> bool:
    labels = node.labels
    return all(key in labels for key in keys)


def _included(pod: PodInfo, node: NodeInfo, constraint: SpreadConstraint) -> bool:
    """The node inclusion policies."""
    required = pod.required_affinity
    if (
        constraint.honor_node_affinity
        and required is not None
        and not required.matches(node.name, node.labels)
    ):
        return False
    if constraint.honor_taints:
        untolerated = find_untolerated(node.blocking_taints, pod.tolerations, DO_NOT_SCHEDULE)
        if untolerated is not None:
            return False
    return True


def _policies_matter(pod: PodInfo, constraint: SpreadConstraint) -> bool:
    """Whether the inclusion policies can leave any node out for this pod."""
    return constraint.honor_taints or (
        constraint.honor_node_affinity and pod.required_affinity is not None
    )


def _by_value(
    cycle: Cycle, constraint: SpreadConstraint, keys: tuple[str, ...]
) -> Mapping[str, int]:
    """Matching pods per value of the constraint's key, over every node that carries all of
    ``keys`` and passes the inclusion policies (every such value present, zero included)."""
    pod = cycle.pod
    if not _policies_matter(pod, constraint):
        return cycle.snapshot.domain_counts(
            constraint.selector, pod.namespace, constraint.topology_key, keys
        )
    key = constraint.topology_key
    memo_key = _memo_key(constraint.selector, pod.namespace)
    counts: dict[str, int] = {}
    for node in cycle.snapshot.nodes:
        if _has_keys(node, keys) and _included(pod, node, constraint):
            value = node.labels[key]
            found = matching_pods(node, constraint.selector, pod.namespace, memo_key)
            counts[value] = counts.get(value, 0) + found
    return counts


@frozen
class PodTopologySpread:
    """The filter, for ``whenUnsatisfiable: DoNotSchedule`` constraints."""

    name = "PodTopologySpread"

    def prepare(self, cycle: Cycle) -> NodeCheck | None:
        pod = cycle.pod
        hard = tuple(c for c in pod.spread_constraints if c.hard)
        if not hard:
            return None
        keys = tuple(c.topology_key for c in hard)
        limits = []
        for constraint in hard:
            counts = _by_value(cycle, constraint, keys)
            enough_domains = len(counts) >= constraint.min_domains
            floor = min(counts.values(), default=0) if enough_domains else 0
            own = 1 if constraint.selector.matches(pod.labels) else 0
            # A node fits while its domain's count stays within this.
            limits.append((constraint.topology_key, counts, constraint.max_skew + floor - own))

        def check(node: NodeInfo) -> tuple[str, ...]:
            labels = node.labels
            for key, counts, limit in limits:
                value = labels.get(key)
                if value is None:
                    return _MISSING_LABEL
                if counts.get(value, 0) > limit:
                    return _SKEW
            return FITS

        return check


@frozen
class PodTopologySpreadScore:
    """The score, for ``whenUnsatisfiable: ScheduleAnyway`` constraints."""

    name = "PodTopologySpread"

    def score(self, cycle: Cycle, nodes: Sequence[NodeInfo]) -> list[int] | None:
        pod = cycle.pod
        soft = tuple(c for c in pod.spread_constraints if not c.hard)
        if not soft or not nodes:
            return None
        keys = tuple(c.topology_key for c in soft)
        ignored = {node.name for node in nodes if not _has_keys(node, keys)}
        candidates = [node for node in nodes if node.name not in ignored]
        # A domain's size is how many of its values the candidates show; hostnames are one
        # domain per candidate, counted on the node itself.
        sizes = [
            len(candidates) if key == HOSTNAME_LABEL else len({n.labels[key] for n in candidates})
            for key in keys
        ]
        weights = [math.log(size + 2) for size in sizes]
        by_value = [
            {} if key == HOSTNAME_LABEL or not candidates else _by_value(cycle, c, keys)
            for c, key in zip(soft, keys, strict=True)
        ]
        memo_keys = [_memo_key(c.selector, pod.namespace) for c in soft]
        raw: list[int | None] = []
        for node in nodes:
            if node.name in ignored:
                raw.append(None)
                continue
            total = 0.0
            for constraint, key, weight, memo_key, counts in zip(
                soft, keys, weights, memo_keys, by_value, strict=True
            ):
                if key == HOSTNAME_LABEL:
                    count = matching_pods(node, constraint.selector, pod.namespace, memo_key)
                else:
                    count = counts.get(node.labels[key], 0)
                total += count * weight + (constraint.max_skew - 1)
            raw.append(math.floor(total + 0.5))  # Go's math.Round (half away from zero)
        return _normalize(raw)


def _normalize(raw: list[int | None]) -> list[int]:
    scored = [s for s in raw if s is not None]
    if not scored:
        return [0] * len(raw)
    lowest, highest = min(scored), max(scored)
    result = []
    for score in raw:
        if score is None:
            result.append(0)
        elif highest == 0:
            result.append(MAX_NODE_SCORE)
        else:
            result.append(MAX_NODE_SCORE * (highest + lowest - score) // highest)
    return result
