"""The filters that look at one node at a time, with upstream's names and rejection texts.

``NodeReady`` is ours: upstream leaves readiness to the node lifecycle controller, which
taints a node ``node.kubernetes.io/not-ready`` (Ready=False) or ``.../unreachable`` (Ready
Unknown, or its Lease not renewed), and the taint filter refuses it. Here the scheduler
judges readiness itself (see :mod:`.readiness`) and refuses a node that is not ready exactly
as that taint would: with the same text, and not for a pod that tolerates the taint.
"""

from __future__ import annotations

import functools

from attrs import frozen

from engenho.reconcilers.scheduling.nodeinfo import NodeInfo
from engenho.reconcilers.scheduling.plugins import FITS, Cycle, NodeCheck
from engenho.reconcilers.scheduling.taints import (
    NOT_READY,
    UNREACHABLE,
    UNSCHEDULABLE,
    Taint,
    tolerated,
)

__all__ = [
    "NodeAffinity",
    "NodeName",
    "NodePorts",
    "NodeReady",
    "NodeResourcesFit",
    "NodeUnschedulable",
    "TaintToleration",
]

_ANY_IP = "0.0.0.0"  # noqa: S104 - a host port's "every address", not a bind
_UNSCHEDULABLE = ("node(s) were unschedulable",)
_NODE_NAME = ("node(s) didn't match the requested node name",)
_NODE_AFFINITY = ("node(s) didn't match Pod's node affinity/selector",)
_NODE_PORTS = ("node(s) didn't have free ports for the requested pod ports",)
_TOO_MANY_PODS = "Too many pods"


@functools.lru_cache(maxsize=1024)
def _untolerated(taint: Taint) -> tuple[str, ...]:
    return (taint.reason(),)


@frozen
class NodeUnschedulable:
    """Refuses cordoned nodes (``spec.unschedulable``), unless the pod tolerates
    ``node.kubernetes.io/unschedulable:NoSchedule``."""

    name = "NodeUnschedulable"

    def prepare(self, cycle: Cycle) -> NodeCheck | None:
        if not cycle.snapshot.cordoned or tolerated(cycle.pod.tolerations, UNSCHEDULABLE):
            return None
        return lambda node: _UNSCHEDULABLE if node.unschedulable else FITS


@frozen
class NodeName:
    """A pod that names its node fits only there."""

    name = "NodeName"

    def prepare(self, cycle: Cycle) -> NodeCheck | None:
        wanted = cycle.pod.node_name
        if not wanted:
            return None
        return lambda node: FITS if node.name == wanted else _NODE_NAME


@frozen
class NodeReady:
    """Refuses nodes that are not ready, as the not-ready or unreachable taint would."""

    name = "NodeReady"

    def prepare(self, cycle: Cycle) -> NodeCheck | None:
        snapshot = cycle.snapshot
        if not snapshot.not_ready and not snapshot.leased:
            return None  # every node reports Ready and none has a Lease that could be stale
        tolerations = cycle.pod.tolerations
        not_ready_ok = tolerated(tolerations, NOT_READY)
        unreachable_ok = tolerated(tolerations, UNREACHABLE)
        if not_ready_ok and unreachable_ok:
            return None
        not_ready = FITS if not_ready_ok else _untolerated(NOT_READY)
        unreachable = FITS if unreachable_ok else _untolerated(UNREACHABLE)
        now = cycle.now

        def check(node: NodeInfo) -> tuple[str, ...]:
            condition = node.ready_condition
            if condition == "True":
                expires = node.lease_expires
                return FITS if expires is None or now <= expires else unreachable
            # A node that reports no Ready condition yet is a node still registering: the
            # kubelet registers it tainted not-ready.
            return unreachable if condition == "Unknown" else not_ready

        return check


@frozen
class TaintToleration:
    """Refuses a node with a NoSchedule or NoExecute taint the pod does not tolerate; the
    reason names the first such taint."""

    name = "TaintToleration"

    def prepare(self, cycle: Cycle) -> NodeCheck | None:
        if not cycle.snapshot.tainted:
            return None
        tolerations = cycle.pod.tolerations

        def check(node: NodeInfo) -> tuple[str, ...]:
            for taint in node.blocking_taints:
                if not tolerated(tolerations, taint):
                    return _untolerated(taint)
            return FITS

        return check


@frozen
class NodeAffinity:
    """``spec.nodeSelector`` and required node affinity."""

    name = "NodeAffinity"

    def prepare(self, cycle: Cycle) -> NodeCheck | None:
        required = cycle.pod.required_affinity
        if required is None:
            return None
        return lambda node: FITS if required.matches(node.name, node.labels) else _NODE_AFFINITY


@frozen
class NodePorts:
    """Refuses a node where another pod holds one of the pod's host ports (same protocol
    and port, and the same IP or either of them ``0.0.0.0``)."""

    name = "NodePorts"

    def prepare(self, cycle: Cycle) -> NodeCheck | None:
        wanted = cycle.pod.host_ports
        if not wanted:
            return None

        def check(node: NodeInfo) -> tuple[str, ...]:
            used = node.ports
            if not used:
                return FITS
            for ip, protocol, port in wanted:
                held = used.get((protocol, port))
                if held and (ip == _ANY_IP or _ANY_IP in held or ip in held):
                    return _NODE_PORTS
            return FITS

        return check


@frozen
class NodeResourcesFit:
    """Refuses a node without room for the pod's requests beside the requests of the pods
    already on it: ``Too many pods``, ``Insufficient cpu``, ``Insufficient memory``,
    ``Insufficient ephemeral-storage``, ``Insufficient <scalar>`` (several at once, in that
    order). A request that does not parse fits no node."""

    name = "NodeResourcesFit"

    def prepare(self, cycle: Cycle) -> NodeCheck | None:
        requests = cycle.pod.requests
        if requests.unreadable:
            unreadable = tuple(f"Unreadable {name} request" for name in requests.unreadable)
            return lambda _node: unreadable
        cpu, memory, ephemeral = requests.cpu, requests.memory, requests.ephemeral
        scalars = requests.scalars
        empty = requests.empty

        def insufficient(node: NodeInfo) -> tuple[str, ...]:
            reasons = []
            if node.free_pods < 1:
                reasons.append(_TOO_MANY_PODS)
            if empty:
                return tuple(reasons)
            if cpu > 0 and cpu > node.free_cpu:
                reasons.append("Insufficient cpu")
            if memory > 0 and memory > node.free_memory:
                reasons.append("Insufficient memory")
            if ephemeral > 0 and ephemeral > node.free_ephemeral:
                reasons.append("Insufficient ephemeral-storage")
            for name, value in scalars:
                if value > node.alloc_scalars.get(name, 0) - node.req_scalars.get(name, 0):
                    reasons.append(f"Insufficient {name}")
            return tuple(reasons)

        def check(node: NodeInfo) -> tuple[str, ...]:
            # The common case in a few comparisons; anything unusual (including a node
            # already over-committed by pods bound without a scheduler) takes the long way.
            if (
                node.free_pods > 0
                and cpu <= node.free_cpu
                and memory <= node.free_memory
                and ephemeral <= node.free_ephemeral
                and not scalars
            ):
                return FITS
            return insufficient(node)

        return check
