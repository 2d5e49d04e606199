"""A DaemonSet's decisions, as pure functions of its nodes and their daemon pods.

Upstream's DaemonSetsController, with the I/O taken out:

- :func:`node_fit`: whether a node should run the daemon pod, and whether a pod already there
  may keep running (NodeShouldRunDaemonPod): the template's ``nodeName``, its required node
  affinity and ``nodeSelector``, and the node's taints against the template's tolerations plus
  the ones every daemon pod gets (:func:`daemon_tolerations`). An untolerated ``NoSchedule``
  taint stops new pods; only an untolerated ``NoExecute`` one removes running pods.
- :func:`manage`: per node, create the missing pod or delete the ones that should not be there
  (finished pods are replaced; without surge, all but the oldest pod go; with surge, one old and
  one new pod may share a node until the new one is available).
- :func:`rolling_update`: which old pods to delete (``maxSurge`` 0: as many as
  ``maxUnavailable`` allows) or on which nodes to surge a new pod (``maxSurge`` > 0).
- :func:`tally`: the status counters.
- :func:`pin_to_node` and :func:`target_node`: the required node affinity that ties a daemon
  pod to its node (the scheduler binds it), and the node a pod is for.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from attrs import frozen

from engenho.reconcilers.scheduling.nodeaffinity import required_node_affinity
from engenho.reconcilers.scheduling.taints import (
    find_untolerated,
    parse_taints,
    parse_tolerations,
)

__all__ = [
    "DAEMON_TOLERATIONS",
    "DaemonPod",
    "Manage",
    "NodeFit",
    "Tally",
    "daemon_tolerations",
    "manage",
    "node_fit",
    "pin_to_node",
    "rolling_update",
    "tally",
    "target_node",
]

DAEMON_TOLERATIONS: tuple[tuple[str, str], ...] = (
    ("node.kubernetes.io/not-ready", "NoExecute"),
    ("node.kubernetes.io/unreachable", "NoExecute"),
    ("node.kubernetes.io/disk-pressure", "NoSchedule"),
    ("node.kubernetes.io/memory-pressure", "NoSchedule"),
    ("node.kubernetes.io/pid-pressure", "NoSchedule"),
    ("node.kubernetes.io/unschedulable", "NoSchedule"),
)
"""(key, effect) of the tolerations every daemon pod gets (AddOrUpdateDaemonPodTolerations):
node problems must not evict or block it. ``hostNetwork`` pods also tolerate
``node.kubernetes.io/network-unavailable:NoSchedule``."""
_NETWORK_UNAVAILABLE = ("node.kubernetes.io/network-unavailable", "NoSchedule")


def daemon_tolerations(spec: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The pod spec's tolerations with the daemon ones added or replacing a toleration of the
    same key, operator, value and effect (AddOrUpdateTolerationInPodSpec)."""
    tolerations = [dict(t) for t in spec.get("tolerations") or [] if isinstance(t, dict)]
    wanted = list(DAEMON_TOLERATIONS)
    if spec.get("hostNetwork") is True:
        wanted.append(_NETWORK_UNAVAILABLE)
    for key, effect in wanted:
        toleration = {"key": key, "operator": "Exists", "effect": effect}
        for index, old in enumerate(tolerations):
            same = (
                old.get("key", "") == key
                and old.get("operator", "Equal") == "Exists"
                and old.get("value", "") == ""
                and old.get("effect", "") == effect
            )
            if same:
                tolerations[index] = toleration
                break
        else:
            tolerations.append(toleration)
    return tolerations


@frozen
class NodeFit:
    should_run: bool
    """A daemon pod should be created on the node."""
    should_continue: bool
    """A daemon pod already on the node may stay."""


def node_fit(node: Mapping[str, Any], template_spec: Mapping[str, Any]) -> NodeFit:
    """NodeShouldRunDaemonPod for ``node`` and the DaemonSet's pod template spec."""
    meta = node.get("metadata") or {}
    name = str(meta.get("name", ""))
    wanted_node = template_spec.get("nodeName")
    if wanted_node and wanted_node != name:
        return NodeFit(False, False)
    affinity = required_node_affinity(template_spec)
    labels = meta.get("labels") or {}
    if affinity is not None and not affinity.matches(name, labels):
        return NodeFit(False, False)
    taints = parse_taints((node.get("spec") or {}).get("taints"))
    tolerations = parse_tolerations(daemon_tolerations(template_spec))
    if find_untolerated(taints, tolerations, frozenset({"NoSchedule", "NoExecute"})) is None:
        return NodeFit(True, True)
    evicting = find_untolerated(taints, tolerations, frozenset({"NoExecute"}))
    return NodeFit(False, evicting is None)


@frozen
class DaemonPod:
    """A daemon pod as the decisions need it."""

    name: str
    created: str
    """creationTimestamp (RFC 3339 sorts as text)."""
    bound: bool = True
    """``spec.nodeName`` is set (not only the node affinity)."""
    updated: bool = True
    """Made from the current revision."""
    ready: bool = False
    available: bool = False
    terminating: bool = False
    phase: str = "Running"

    def order(self) -> tuple[bool, str, str]:
        """podByCreationTimestampAndPhase: scheduled first, then oldest, then by name."""
        return (not self.bound, self.created, self.name)


@frozen
class Manage:
    create_on: tuple[str, ...]
    delete: tuple[str, ...]
    failed: tuple[tuple[str, str], ...] = ()
    """(node, pod) of failed pods to delete once their node's backoff allows."""
    succeeded: tuple[tuple[str, str], ...] = ()
    """(node, pod) of succeeded pods (deleted, and reported)."""


def manage(
    fits: Mapping[str, NodeFit],
    pods: Mapping[str, Sequence[DaemonPod]],
    *,
    surge: bool,
) -> Manage:
    """Which nodes need a daemon pod and which pods go (upstream's manage and
    podsShouldBeOnNode); ``pods`` are the daemon pods by target node, terminating and finished
    ones included."""
    create_on: list[str] = []
    delete: list[str] = []
    failed: list[tuple[str, str]] = []
    succeeded: list[tuple[str, str]] = []
    for node, fit in fits.items():
        on_node = list(pods.get(node, ()))
        if fit.should_run and not on_node:
            create_on.append(node)
            continue
        if not fit.should_continue:
            delete.extend(p.name for p in on_node if not p.terminating)
            continue
        running: list[DaemonPod] = []
        for pod in on_node:
            if pod.terminating:
                continue
            if pod.phase == "Failed":
                failed.append((node, pod.name))
            elif pod.phase == "Succeeded":
                succeeded.append((node, pod.name))
                delete.append(pod.name)
            else:
                running.append(pod)
        running.sort(key=DaemonPod.order)
        if not surge:
            delete.extend(p.name for p in running[1:])
            continue
        if len(running) <= 1:
            if not running and fit.should_run:
                create_on.append(node)
            continue
        # Surge: one new and one old pod may share the node until the new one is available.
        newest: DaemonPod | None = None
        oldest_old: DaemonPod | None = None
        for pod in running:
            if pod.updated and newest is None:
                newest = pod
            elif not pod.updated and oldest_old is None:
                oldest_old = pod
            else:
                delete.append(pod.name)
        if (
            newest is not None
            and oldest_old is not None
            and (not oldest_old.ready or newest.available)
        ):
            delete.append(oldest_old.name)
    # Pods waiting for a node that no longer exists are never scheduled: delete them.
    for node, waiting in pods.items():
        if node not in fits:
            delete.extend(p.name for p in waiting if not p.bound and not p.terminating)
    return Manage(tuple(create_on), tuple(delete), tuple(failed), tuple(succeeded))


def _updated_and_old(
    on_node: Sequence[DaemonPod],
) -> tuple[DaemonPod | None, DaemonPod | None, bool]:
    """findUpdatedPodsOnNode: the node's new and old pod, or False when it has more than one
    of either (the manage step cleans that up first)."""
    new: DaemonPod | None = None
    old: DaemonPod | None = None
    for pod in on_node:
        if pod.terminating:
            continue
        if pod.updated:
            if new is not None:
                return None, None, False
            new = pod
        else:
            if old is not None:
                return None, None, False
            old = pod
    return new, old, True


def rolling_update(
    fits: Mapping[str, NodeFit],
    pods: Mapping[str, Sequence[DaemonPod]],
    *,
    max_surge: int,
    max_unavailable: int,
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(old pods to delete, nodes to surge a new pod onto): upstream's rollingUpdate over the
    nodes that should run the pod and the nodes with daemon pods, in node name order."""
    nodes = sorted({n for n, f in fits.items() if f.should_run} | set(pods))
    if max_surge == 0:
        unavailable = 0
        replace: list[str] = []
        candidates: list[str] = []
        for node in nodes:
            new, old, ok = _updated_and_old(pods.get(node, ()))
            if not ok:
                unavailable += 1
                continue
            if (old is None) == (new is None):
                unavailable += 1  # nothing there, or the manage step is mid-way
            elif new is not None:
                unavailable += not new.available
            elif old is not None and not old.available:
                replace.append(old.name)
                unavailable += 1
            elif old is not None and unavailable < max_unavailable:
                candidates.append(old.name)
        room = max(0, min(max_unavailable - unavailable, len(candidates)))
        return (*replace, *candidates[:room]), ()
    surged = 0
    to_delete: list[str] = []
    allowed: list[str] = []
    candidates = []
    for node in nodes:
        new, old, ok = _updated_and_old(pods.get(node, ()))
        if not ok:
            surged += 1
            continue
        if old is None:
            continue
        if new is None:
            if not old.available:
                fit = fits.get(node)
                if fit is None or not fit.should_run:
                    to_delete.append(old.name)
                else:
                    allowed.append(node)
            elif surged < max_surge:
                candidates.append(node)
            continue
        if not new.available:
            surged += 1
            continue
        to_delete.append(old.name)
    room = max(0, min(max_surge - surged, len(candidates)))
    return tuple(to_delete), (*allowed, *candidates[:room])


@frozen
class Tally:
    desired: int = 0
    current: int = 0
    misscheduled: int = 0
    ready: int = 0
    available: int = 0
    updated: int = 0


def tally(fits: Mapping[str, NodeFit], pods: Mapping[str, Sequence[DaemonPod]]) -> Tally:
    """updateDaemonSetStatus's counters: per node that should run the pod, whether it has
    one and how its oldest pod stands; per node that should not, whether it has one anyway."""
    desired = current = misscheduled = ready = available = updated = 0
    for node, fit in fits.items():
        on_node = sorted(pods.get(node, ()), key=DaemonPod.order)
        if not fit.should_run:
            misscheduled += bool(on_node)
            continue
        desired += 1
        if not on_node:
            continue
        current += 1
        first = on_node[0]
        if first.ready:
            ready += 1
            available += first.available
        updated += first.updated
    return Tally(desired, current, misscheduled, ready, available, updated)


def target_node(pod: Mapping[str, Any]) -> str:
    """The node a daemon pod is for: ``spec.nodeName``, or before it is bound, the single
    ``metadata.name`` its required node affinity names (upstream's GetTargetNodeName)."""
    spec = pod.get("spec") or {}
    if spec.get("nodeName"):
        return str(spec["nodeName"])
    affinity = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    ) or {}
    for term in affinity.get("nodeSelectorTerms") or []:
        for expression in (term or {}).get("matchFields") or []:
            if expression.get("key") == "metadata.name" and expression.get("operator") == "In":
                values = expression.get("values") or []
                return str(values[0]) if len(values) == 1 else ""
    return ""


def pin_to_node(affinity: Any, node: str) -> dict[str, Any]:
    """The pod's affinity with its required node terms replaced by one that names ``node``
    (ReplaceDaemonSetPodNodeNameNodeAffinity)."""
    result: dict[str, Any] = copy.deepcopy(affinity) if isinstance(affinity, dict) else {}
    node_affinity = result.setdefault("nodeAffinity", {})
    node_affinity["requiredDuringSchedulingIgnoredDuringExecution"] = {
        "nodeSelectorTerms": [
            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}
        ]
    }
    return result
