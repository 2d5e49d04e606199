"""The scheduler's cache: the snapshot the decisions read, kept current from the informers,
plus the pods it has *assumed*.

A pod is assumed onto its node the moment it is decided, before the binding is written, and
counts there from then on, so the next decision cannot give its room away (upstream's
assume/confirm/forget). The informer later shows the pod bound and the assumption is
confirmed; if the binding fails it is forgotten. A pod the informer shows bound to another
node than assumed moves there: the informer is the truth.

The methods that take informer events return whether the change may let a pod that did not
fit before fit now (a node appeared or changed what it offers, a bound pod went away, a Lease
came back to life): the controller then retries the unschedulable pods.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engenho.reconcilers.scheduling.nodeinfo import Snapshot
from engenho.reconcilers.scheduling.podinfo import PodInfo
from engenho.reconcilers.scheduling.readiness import NodeReadiness

__all__ = ["SchedulerCache"]


class SchedulerCache:
    def __init__(self, readiness: NodeReadiness | None = None) -> None:
        self.readiness = readiness or NodeReadiness()
        self.snapshot = Snapshot()
        self._placed: dict[str, tuple[str, bool]] = {}
        """uid -> (node name, assumed)."""
        self._decided_on: dict[str, int] = {}
        """uid of an assumed pod -> resourceVersion of the object it was decided from."""
        self._leases: dict[str, float] = {}
        """Node name -> when its Lease runs out (kept for nodes not seen yet too)."""

    # ------------------------------------------------------------------ nodes

    def set_node(self, obj: Mapping[str, Any]) -> bool:
        name = str((obj.get("metadata") or {}).get("name") or "")
        before = self.snapshot.node(name)
        signature = before.signature() if before is not None else None
        info = self.snapshot.set_node(obj)
        if self.readiness.use_leases:
            self.snapshot.set_lease(name, self._leases.get(name))
        return signature != info.signature()

    def remove_node(self, name: str) -> None:
        self.snapshot.remove_node(name)

    # ------------------------------------------------------------------ leases

    def set_lease(self, name: str, lease: Mapping[str, Any], now: float) -> bool:
        if not self.readiness.use_leases:
            return False
        expires = self.readiness.lease_expiry(lease)
        before = self._leases.get(name)
        self._leases[name] = expires
        self.snapshot.set_lease(name, expires)
        return before is not None and before < now <= expires

    def remove_lease(self, name: str, now: float) -> bool:
        before = self._leases.pop(name, None)
        self.snapshot.set_lease(name, None)
        # Without a Lease the Ready condition alone decides: a stale Lease no longer holds the
        # node back.
        return before is not None and before < now

    # ------------------------------------------------------------------ pods

    def add_pod(self, pod: PodInfo) -> None:
        """A pod the informer shows bound to ``pod.node_name`` (confirms an assumption)."""
        self._unplace(pod.uid)
        self.snapshot.add_pod(pod, pod.node_name)
        self._placed[pod.uid] = (pod.node_name, False)

    def remove_pod(self, uid: str) -> bool:
        """A bound or assumed pod went away (deleted, or finished); True if it held room."""
        return self._unplace(uid)

    def assume(self, pod: PodInfo, node: str, resource_version: int = 0) -> None:
        """Count ``pod`` on ``node`` from now on; ``resource_version`` is that of the object
        it was parsed from (see :meth:`confirm`)."""
        self._unplace(pod.uid)
        self.snapshot.add_pod(pod, node)
        self._placed[pod.uid] = (node, True)
        if resource_version:
            self._decided_on[pod.uid] = resource_version

    def confirm(self, uid: str, node: str, previous_version: int) -> bool:
        """Confirm an assumption without parsing the pod again, when the informer shows it
        bound to the assumed node and its previous version is the one it was decided from (so
        the binding is the only change); False when the caller must :meth:`add_pod`."""
        placed = self._placed.get(uid)
        if placed != (node, True) or self._decided_on.get(uid) != previous_version:
            return False
        self._placed[uid] = (node, False)
        del self._decided_on[uid]
        return True

    def forget(self, uid: str) -> None:
        """Drop an assumption whose binding failed (a confirmed pod stays)."""
        placed = self._placed.get(uid)
        if placed is not None and placed[1]:
            self._unplace(uid)

    def is_placed(self, uid: str) -> bool:
        """Whether the pod is bound or assumed (so must not be scheduled again)."""
        return uid in self._placed

    def is_assumed(self, uid: str) -> bool:
        placed = self._placed.get(uid)
        return placed is not None and placed[1]

    @property
    def assumed(self) -> int:
        return sum(1 for _, assumed in self._placed.values() if assumed)

    def _unplace(self, uid: str) -> bool:
        self._decided_on.pop(uid, None)
        placed = self._placed.pop(uid, None)
        if placed is None:
            return False
        self.snapshot.remove_pod(uid, placed[0])
        return True
