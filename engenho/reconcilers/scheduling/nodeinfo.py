"""Nodes with the pods bound to them, and the snapshot the decision core reads.

A :class:`NodeInfo` keeps what the filters and scores need as plain attributes (sums of the
requests of its pods, the host ports they hold, how many of them carry required
anti-affinity), updated as pods come and go, so a filter costs a few comparisons. A
:class:`Snapshot` holds every NodeInfo: the nodes that exist, in name order (the order the
decision core walks), and *ghosts*, pods bound to a node not (or no longer) known, kept so
that their requests count as soon as the Node appears, as upstream's cache does.

NodeInfos change in place; ``generation`` counts their changes, which is what the snapshot's
score tables check, and ``memo`` (cleared on every change) keeps other per-node results (pods
a spread selector matches) between decisions.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping
from typing import Any

from engenho.reconcilers.scheduling.podinfo import PodInfo, pod_info
from engenho.reconcilers.scheduling.resources import node_allocatable
from engenho.reconcilers.scheduling.taints import DO_NOT_SCHEDULE, Taint, parse_taints
from engenho.selectors import LabelSelector

__all__ = ["DomainCounts", "NodeInfo", "Snapshot", "ready_condition"]

_DOMAIN_TABLES = 128
_SCORE_TABLES = 64


def ready_condition(status: Any) -> str:
    """The status of the node's ``Ready`` condition (``True``, ``False``, ``Unknown``), or
    ``""`` when it reports none."""
    conditions = status.get("conditions") if isinstance(status, dict) else None
    for item in conditions if isinstance(conditions, list) else []:
        if isinstance(item, dict) and item.get("type") == "Ready":
            return str(item.get("status") or "")
    return ""


class NodeInfo:
    """A node and the pods on it. Hashable by identity (score tables are keyed by it)."""

    __slots__ = (
        "alloc_cpu",
        "alloc_ephemeral",
        "alloc_memory",
        "alloc_pods",
        "alloc_scalars",
        "anti_affinity_pods",
        "blocking_taints",
        "exists",
        "free_cpu",
        "free_ephemeral",
        "free_memory",
        "free_pods",
        "generation",
        "labels",
        "lease_expires",
        "memo",
        "name",
        "nonzero_cpu",
        "nonzero_memory",
        "pod_count",
        "pods",
        "ports",
        "prefer_taints",
        "ready_condition",
        "req_cpu",
        "req_ephemeral",
        "req_memory",
        "req_scalars",
        "taints",
        "unschedulable",
    )

    def __init__(self, name: str) -> None:
        self.name = name
        self.exists = False
        self.labels: dict[str, str] = {}
        self.taints: tuple[Taint, ...] = ()
        self.blocking_taints: tuple[Taint, ...] = ()
        """NoSchedule and NoExecute taints, which the filter enforces."""
        self.prefer_taints: tuple[Taint, ...] = ()
        self.unschedulable = False
        self.ready_condition = ""
        self.lease_expires: float | None = None
        """When the node's Lease runs out (seconds since the epoch), or None without one."""
        self.alloc_cpu = self.alloc_memory = self.alloc_ephemeral = self.alloc_pods = 0
        self.alloc_scalars: dict[str, int] = {}
        self.req_cpu = self.req_memory = self.req_ephemeral = 0
        self.req_scalars: dict[str, int] = {}
        self.nonzero_cpu = self.nonzero_memory = 0
        self.pods: dict[str, PodInfo] = {}
        """By uid."""
        # Allocatable minus requested, kept beside the sums: the fit filter reads these for
        # hundreds of nodes per decision, and fewer objects touched is what makes it fast.
        self.pod_count = 0
        self.free_cpu = self.free_memory = self.free_ephemeral = self.free_pods = 0
        self.ports: dict[tuple[str, int], dict[str, int]] = {}
        """(protocol, port) -> host IP -> how many pods hold it."""
        self.anti_affinity_pods = 0
        self.generation = 0
        self.memo: dict[Any, Any] = {}

    def __repr__(self) -> str:
        return f"NodeInfo({self.name!r}, pods={len(self.pods)})"

    def _changed(self) -> None:
        self.generation += 1
        self.memo.clear()
        self.pod_count = len(self.pods)
        self.free_cpu = self.alloc_cpu - self.req_cpu
        self.free_memory = self.alloc_memory - self.req_memory
        self.free_ephemeral = self.alloc_ephemeral - self.req_ephemeral
        self.free_pods = self.alloc_pods - self.pod_count

    # ------------------------------------------------------------------ the node

    def set_node(self, obj: Mapping[str, Any]) -> None:
        spec = obj.get("spec") or {}
        status = obj.get("status") or {}
        labels = (obj.get("metadata") or {}).get("labels")
        self.exists = True
        self.labels = (
            {str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {}
        )
        self.taints = parse_taints(spec.get("taints"))
        self.blocking_taints = tuple(t for t in self.taints if t.effect in DO_NOT_SCHEDULE)
        self.prefer_taints = tuple(t for t in self.taints if t.effect == "PreferNoSchedule")
        self.unschedulable = bool(spec.get("unschedulable"))
        self.ready_condition = ready_condition(status)
        allocatable = node_allocatable(status)
        self.alloc_cpu = allocatable.cpu
        self.alloc_memory = allocatable.memory
        self.alloc_ephemeral = allocatable.ephemeral
        self.alloc_pods = allocatable.pods
        self.alloc_scalars = dict(allocatable.scalars)
        self._changed()

    def clear_node(self) -> None:
        """The Node is gone; its pods (if any) stay until they go too."""
        self.exists = False
        self._changed()

    def set_lease(self, expires: float | None) -> None:
        if expires != self.lease_expires:
            self.lease_expires = expires
            self._changed()

    def traits(self) -> tuple[bool, bool, bool, bool, bool]:
        """(cordoned, has NoSchedule/NoExecute taints, has PreferNoSchedule taints, Ready is
        not True, has a Lease): the snapshot counts nodes per trait so a filter or score can
        tell, before looking at any node, that none of them has anything for it to refuse."""
        return (
            self.unschedulable,
            bool(self.blocking_taints),
            bool(self.prefer_taints),
            self.ready_condition != "True",
            self.lease_expires is not None,
        )

    def signature(self) -> tuple[Any, ...]:
        """What decides whether a pod fits (besides its pods and the Lease): a change here
        may make an unschedulable pod schedulable."""
        return (
            self.exists,
            self.labels,
            self.taints,
            self.unschedulable,
            self.ready_condition,
            self.alloc_cpu,
            self.alloc_memory,
            self.alloc_ephemeral,
            self.alloc_pods,
            self.alloc_scalars,
        )

    # ------------------------------------------------------------------ its pods

    def add_pod(self, pod: PodInfo) -> None:
        previous = self.pods.get(pod.uid)
        if previous is not None:
            self.remove_pod(pod.uid)
        self.pods[pod.uid] = pod
        self._account(pod, 1)

    def remove_pod(self, uid: str) -> PodInfo | None:
        pod = self.pods.pop(uid, None)
        if pod is not None:
            self._account(pod, -1)
        return pod

    def _account(self, pod: PodInfo, sign: int) -> None:
        requests = pod.requests
        self.req_cpu += sign * requests.cpu
        self.req_memory += sign * requests.memory
        self.req_ephemeral += sign * requests.ephemeral
        for name, value in requests.scalars:
            left = self.req_scalars.get(name, 0) + sign * value
            if left:
                self.req_scalars[name] = left
            else:
                self.req_scalars.pop(name, None)
        self.nonzero_cpu += sign * requests.nonzero_cpu
        self.nonzero_memory += sign * requests.nonzero_memory
        for ip, protocol, port in pod.host_ports:
            held = self.ports.setdefault((protocol, port), {})
            count = held.get(ip, 0) + sign
            if count > 0:
                held[ip] = count
            else:
                held.pop(ip, None)
                if not held:
                    del self.ports[(protocol, port)]
        if pod.anti_affinity_terms:
            self.anti_affinity_pods += sign
        self._changed()


class DomainCounts:
    """Pods in ``namespace`` (not being deleted) matched by ``selector``, per value of
    ``key``, over the nodes that carry every one of ``keys``; every such value is present,
    zero included. Kept up to date pod by pod by the snapshot that made it."""

    __slots__ = ("counts", "key", "keys", "namespace", "selector")

    def __init__(
        self, selector: LabelSelector, namespace: str, key: str, keys: tuple[str, ...]
    ) -> None:
        self.selector = selector
        self.namespace = namespace
        self.key = key
        self.keys = keys
        self.counts: dict[str, int] = {}

    def _counts(self, pod: PodInfo) -> bool:
        # An empty selector counts nothing here (upstream's countPodsMatchSelector).
        return (
            not self.selector.empty
            and pod.namespace == self.namespace
            and not pod.deleting
            and self.selector.matches(pod.labels)
        )

    def _carries(self, info: NodeInfo) -> bool:
        labels = info.labels
        return all(key in labels for key in self.keys)

    def fill(self, nodes: Iterable[NodeInfo]) -> None:
        counts = self.counts
        for info in nodes:
            if self._carries(info):
                value = info.labels[self.key]
                found = sum(1 for pod in info.pods.values() if self._counts(pod))
                counts[value] = counts.get(value, 0) + found

    def update(self, info: NodeInfo, pod: PodInfo, sign: int) -> None:
        if info.exists and self._counts(pod) and self._carries(info):
            value = info.labels[self.key]
            self.counts[value] = self.counts.get(value, 0) + sign


class Snapshot:
    """Every NodeInfo, the existing nodes in name order, and the namespaces' labels."""

    def __init__(self) -> None:
        self.infos: dict[str, NodeInfo] = {}
        self.nodes: list[NodeInfo] = []
        """The nodes that exist, sorted by name."""
        self._names: list[str] = []
        self.namespace_labels: dict[str, Mapping[str, str]] = {}
        self._with_anti_affinity: set[str] = set()
        self._traits = [0, 0, 0, 0, 0]
        self._domains: dict[str, DomainCounts] = {}
        """Recently asked-for domain counts, oldest first (see :meth:`domain_counts`)."""
        self._score_tables: dict[str, dict[NodeInfo, int]] = {}
        """Recently used score tables, oldest first (see :meth:`score_table`)."""

    # How many existing nodes have each trait (see NodeInfo.traits).

    @property
    def cordoned(self) -> int:
        return self._traits[0]

    @property
    def tainted(self) -> int:
        return self._traits[1]

    @property
    def prefer_tainted(self) -> int:
        return self._traits[2]

    @property
    def not_ready(self) -> int:
        return self._traits[3]

    @property
    def leased(self) -> int:
        return self._traits[4]

    def _count(self, info: NodeInfo, sign: int) -> None:
        for i, has in enumerate(info.traits()):
            if has:
                self._traits[i] += sign

    @classmethod
    def build(
        cls,
        nodes: Iterable[Mapping[str, Any]],
        pods: Iterable[Mapping[str, Any]] = (),
        *,
        namespace_labels: Mapping[str, Mapping[str, str]] | None = None,
    ) -> Snapshot:
        """A snapshot of Node objects and the (bound) Pod objects on them."""
        snapshot = cls()
        for node in nodes:
            snapshot.set_node(node)
        for obj in pods:
            pod = pod_info(obj)
            if pod.node_name and not pod.terminal:
                snapshot.add_pod(pod, pod.node_name)
        snapshot.namespace_labels.update(namespace_labels or {})
        return snapshot

    def __len__(self) -> int:
        return len(self.nodes)

    def node(self, name: str) -> NodeInfo | None:
        info = self.infos.get(name)
        return info if info is not None and info.exists else None

    def _info(self, name: str) -> NodeInfo:
        info = self.infos.get(name)
        if info is None:
            info = self.infos[name] = NodeInfo(name)
        return info

    def set_node(self, obj: Mapping[str, Any]) -> NodeInfo:
        name = str((obj.get("metadata") or {}).get("name") or "")
        info = self._info(name)
        existed = info.exists
        labels = info.labels
        if existed:
            self._count(info, -1)
        info.set_node(obj)
        if not existed or info.labels != labels:
            self._domains.clear()  # domains are made of node labels
        self._count(info, 1)
        if not existed:
            position = bisect.bisect_left(self._names, name)
            self._names.insert(position, name)
            self.nodes.insert(position, info)
            if info.anti_affinity_pods:
                self._with_anti_affinity.add(name)
        return info

    def remove_node(self, name: str) -> None:
        info = self.infos.get(name)
        if info is None or not info.exists:
            return
        self._count(info, -1)
        self._domains.clear()
        for table in self._score_tables.values():
            table.pop(info, None)
        info.clear_node()
        position = bisect.bisect_left(self._names, name)
        del self._names[position]
        del self.nodes[position]
        self._with_anti_affinity.discard(name)
        if not info.pods:
            del self.infos[name]

    def set_lease(self, name: str, expires: float | None) -> None:
        """When the node's Lease runs out (None: it has none)."""
        info = self.node(name)
        if info is not None:
            self._count(info, -1)
            info.set_lease(expires)
            self._count(info, 1)

    def add_pod(self, pod: PodInfo, node_name: str) -> None:
        info = self._info(node_name)
        if pod.uid in info.pods:
            self.remove_pod(pod.uid, node_name)
            info = self._info(node_name)
        info.add_pod(pod)
        for table in self._domains.values():
            table.update(info, pod, 1)
        if info.anti_affinity_pods and info.exists:
            self._with_anti_affinity.add(node_name)

    def remove_pod(self, uid: str, node_name: str) -> PodInfo | None:
        info = self.infos.get(node_name)
        if info is None:
            return None
        pod = info.remove_pod(uid)
        if pod is not None:
            for table in self._domains.values():
                table.update(info, pod, -1)
        if not info.anti_affinity_pods:
            self._with_anti_affinity.discard(node_name)
        if not info.exists and not info.pods:
            del self.infos[node_name]
        return pod

    def domain_counts(
        self, selector: LabelSelector, namespace: str, key: str, keys: tuple[str, ...]
    ) -> dict[str, int]:
        """Matching pods per value of ``key`` (see :class:`DomainCounts`). The table is kept
        up to date as pods come and go, so the pods of one workload, spread over zones, cost
        one walk over the nodes between node changes, not one each."""
        memo = f"{namespace}\0{key}\0{keys}\0{selector}"
        table = self._domains.pop(memo, None)
        if table is None:
            table = DomainCounts(selector, namespace, key, keys)
            table.fill(self.nodes)
            if len(self._domains) >= _DOMAIN_TABLES:
                del self._domains[next(iter(self._domains))]
        self._domains[memo] = table  # most recently used last
        return table.counts

    def score_table(self, key: str) -> dict[NodeInfo, int]:
        """A table for one score of one pod shape: node -> ``generation << 7 | score``
        (a score is 0 to 100), valid while the node's generation is unchanged. One table per
        shape rather than a dict per node, because looking up a few hundred nodes in one
        table touches far less memory than in a few hundred dicts."""
        table = self._score_tables.pop(key, None)
        if table is None:
            table = {}
            if len(self._score_tables) >= _SCORE_TABLES:
                del self._score_tables[next(iter(self._score_tables))]
        self._score_tables[key] = table  # most recently used last
        return table

    def nodes_with_anti_affinity(self) -> list[NodeInfo]:
        """Existing nodes holding a pod with required anti-affinity terms."""
        return [self.infos[name] for name in sorted(self._with_anti_affinity)]
