"""The node lifecycle controller: node health from Leases, readiness taints, taint eviction,
and the pods of nodes that are gone.

Upstream splits this across the node lifecycle controller, the taint eviction controller (the
NoExecute taint manager) and the pod garbage collector's orphan pass; here it is one
controller keyed by node name, because every decision is about one node and its pods.

- **Health.** A node is heard from when its Lease in ``kube-node-lease`` is renewed or its
  Ready condition carries a new heartbeat. One not heard from within
  ``node_monitor_grace_period`` (40 s) gets its Ready, MemoryPressure, DiskPressure and
  PIDPressure conditions set to ``Unknown`` (reason ``NodeStatusUnknown``, "Kubelet stopped
  posting node status."), its pods marked not ready, and a ``NodeNotReady`` event. The
  readiness of every node is a :mod:`~engenho.reconcilers.machines.nodes` state machine, and
  this controller only applies its effects.
- **Taints.** Ready=False gives ``node.kubernetes.io/not-ready``, Ready=Unknown
  ``node.kubernetes.io/unreachable``, each as NoSchedule and NoExecute; Ready=True removes
  them. Pressure conditions and ``spec.unschedulable`` give their NoSchedule taints (upstream's
  TaintNodesByCondition). Taints the controller adds carry ``timeAdded``.
- **Disruption.** As upstream: new NoExecute readiness taints are added at
  ``node_eviction_rate`` nodes per second per zone (a burst of one); a zone in partial
  disruption (more than two and at least 55 % of its nodes not ready) adds none when it is
  small (``large_cluster_size_threshold``) and ``secondary_node_eviction_rate`` otherwise; when
  no node at all is ready the controller assumes it is the one cut off, adds none and removes
  those it added, so a control plane that loses sight of every node evicts nothing.
- **Eviction.** A pod on a node with NoExecute taints it does not tolerate is deleted at once;
  one that tolerates them for ``tolerationSeconds`` is deleted that long after the taint was
  added (the DefaultTolerationSeconds admission gives every pod 300 s for the readiness
  taints); one that tolerates them for ever stays. Before deleting, the pod gets the
  ``DisruptionTarget`` condition (``DeletionByTaintManager``) and a ``TaintManagerEviction``
  event says so; an eviction that stops being due (the node recovered) is announced as
  cancelled. Deletion is graceful, as upstream's, so the pod is Terminating until its node
  finishes it or the node goes.
- **Orphans.** Pods bound to a node that no longer exists (absent for
  ``pod_gc_quarantine`` seconds, 40 s as upstream's pod GC) are marked Failed with
  ``DisruptionTarget`` (``DeletionByPodGC``) and deleted at once.

Time comes from ``clock`` (a callable returning an aware datetime), so tests can run the
grace periods and toleration timers on a clock they move by hand; the controller also looks
at every node each ``node_monitor_period`` seconds, which is how it notices a clock moved.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from attrs import evolve, frozen

from engenho.projections import StoredObject
from engenho.reconcilers.conditions import condition
from engenho.reconcilers.controller import Controller, Requeue, kube_system_identity, utc_now
from engenho.reconcilers.events import Reference
from engenho.reconcilers.informer import Informer, object_key
from engenho.reconcilers.machines import nodes as machine
from engenho.reconcilers.machines.pods import parse_time
from engenho.registry import ConflictError, DeleteOptions, NotFoundError
from engenho.registry.naming import format_timestamp
from engenho.schema import CATALOGUE

__all__ = ["LEASE_NAMESPACE", "Clock", "NodeLifecycleController", "utc_now"]

_log = logging.getLogger("engenho.reconcilers")

Clock = Callable[[], datetime]
LEASE_NAMESPACE = "kube-node-lease"
UNSCHEDULABLE_TAINT = "node.kubernetes.io/unschedulable"
_NO_SCHEDULE = "NoSchedule"
_NO_EXECUTE = "NoExecute"
_BY_NODE = "node-lifecycle/nodeName"
_CONDITION_TAINTS = (
    ("MemoryPressure", "node.kubernetes.io/memory-pressure"),
    ("DiskPressure", "node.kubernetes.io/disk-pressure"),
    ("PIDPressure", "node.kubernetes.io/pid-pressure"),
    ("NetworkUnavailable", "node.kubernetes.io/network-unavailable"),
)
"""Conditions that taint a node NoSchedule while True (upstream's
``nodeConditionToTaintKeyStatusMap`` without Ready, which the state machine handles)."""
_UNKNOWN_CONDITIONS = ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure")
"""What a node not heard from loses (NetworkUnavailable is the network's, not the kubelet's)."""
_KEEP = object()
"""No opinion on readiness taints (a node that never reported)."""
_MIN_DELAY = 0.001


def _zone_key(stored: StoredObject) -> str:
    return machine.zone_key(stored.object.get("metadata", {}).get("labels"))


def _is_ready(stored: StoredObject) -> bool:
    ready = condition((stored.object.get("status") or {}).get("conditions"), "Ready")
    return ready is not None and ready.get("status") == "True"


def _conditions(obj: dict[str, Any]) -> Any:
    return (obj.get("status") or {}).get("conditions")


def _node_of(stored: StoredObject) -> list[str]:
    node = (stored.object.get("spec") or {}).get("nodeName")
    return [node] if isinstance(node, str) and node else []


class _Bucket:
    """A token bucket of burst one, on the controller's clock (upstream's rate limiters)."""

    def __init__(self) -> None:
        self.tokens = 1.0
        self.at: datetime | None = None

    def take(self, rate: float | None, now: datetime) -> float | None:
        """Take a token: 0 when taken, else the seconds until one is due (None: never)."""
        if rate is None:
            return 0.0
        if self.at is not None:
            elapsed = max((now - self.at).total_seconds(), 0.0)
            self.tokens = min(1.0, self.tokens + elapsed * rate)
        self.at = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return None if rate <= 0 else (1.0 - self.tokens) / rate


@frozen
class _Seen:
    """What the controller remembers of a node between reconciles."""

    health: machine.NodeHealth
    heartbeat: str | None = None
    renewed: datetime | None = None


class NodeLifecycleController(Controller):
    name = "node-lifecycle"
    identity = kube_system_identity("node-controller")

    def __init__(
        self,
        *args: Any,
        node_monitor_grace_period: float = 40.0,
        node_startup_grace_period: float = 60.0,
        node_monitor_period: float = 5.0,
        node_eviction_rate: float | None = 0.1,
        secondary_node_eviction_rate: float | None = 0.01,
        large_cluster_size_threshold: int = 50,
        unhealthy_zone_threshold: float = 0.55,
        pod_gc_quarantine: float = 40.0,
        clock: Clock | None = None,
        **kwargs: Any,
    ) -> None:
        """Defaults are kube-controller-manager's; a rate of None means unlimited."""
        self.grace = node_monitor_grace_period
        self.startup_grace = node_startup_grace_period
        self.monitor_period = node_monitor_period
        self.eviction_rate = node_eviction_rate
        self.secondary_eviction_rate = secondary_node_eviction_rate
        self.large_cluster_size_threshold = large_cluster_size_threshold
        self.unhealthy_zone_threshold = unhealthy_zone_threshold
        self.quarantine = pod_gc_quarantine
        self.clock: Clock = clock or utc_now
        self._seen: dict[str, _Seen] = {}
        self._taint_seen: dict[tuple[str, str, str], datetime] = {}
        self._scheduled: dict[str, set[str]] = {}
        self._evicted: dict[str, set[str]] = {}  # node -> uids deleted, until the cache says so
        self._missing_since: dict[str, datetime] = {}
        self._buckets: dict[str, _Bucket] = {}
        super().__init__(*args, **kwargs)

    # ------------------------------------------------------------------ wiring

    def setup(self) -> None:
        self.node_type = CATALOGUE.get("", "v1", "nodes")
        self.pod_type = CATALOGUE.get("", "v1", "pods")
        self.nodes: Informer = self.watch_primary(self.node_type)
        self.pods: Informer = self.informers.get(self.pod_type)
        self.pods.add_index(_BY_NODE, _node_of)
        self.pods.add_handler(self._pod_changed)
        self.leases: Informer = self.informers.get(
            CATALOGUE.get("coordination.k8s.io", "v1", "leases")
        )
        self.leases.add_handler(self._lease_changed)

    def _pod_changed(self, _event: str, old: StoredObject | None, new: StoredObject | None) -> None:
        """A pod matters to its node when the node has NoExecute taints or is gone."""
        for stored in (old, new):
            for node_name in _node_of(stored) if stored is not None else []:
                node = self.nodes.get("", node_name)
                if node is None or any(
                    isinstance(t, dict) and t.get("effect") == _NO_EXECUTE
                    for t in (node.object.get("spec") or {}).get("taints") or []
                ):
                    self.queue.add(node_name)

    def _lease_changed(
        self, _event: str, old: StoredObject | None, new: StoredObject | None
    ) -> None:
        stored = new if new is not None else old
        if stored is not None and stored.namespace == LEASE_NAMESPACE:
            self.queue.add(stored.name)

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            group.create_task(super().run(), name=f"{self.name}-controller")
            group.create_task(self._monitor(), name=f"{self.name}-monitor")

    async def _monitor(self) -> None:
        """Look at every node each monitor period (upstream's nodeMonitorPeriod): a Lease
        goes stale without any event, and a hand-moved test clock says nothing either."""
        await self.informers.wait_synced()
        while True:
            for stored in self.nodes.list():
                self.queue.add(stored.name)
            await asyncio.sleep(self.monitor_period)

    # ------------------------------------------------------------------ reconciling

    async def reconcile(self, key: str) -> None:
        now = self.clock()
        try:
            # Read through the registry: the conditions this controller wrote a moment ago
            # must be what it steps from, not an older cached copy.
            stored = await self.registry.get(self.node_type, "", key)
        except NotFoundError:
            await self._collect_orphans(key, now)
            return
        self._missing_since.pop(key, None)
        seen, effects = self._observe(key, stored, now)
        delays: list[float] = []
        readiness_taint: object = _KEEP
        for effect in effects:
            if isinstance(effect, machine.SetConditionsUnknown):
                stored = await self._conditions_unknown(stored, now)
            elif isinstance(effect, machine.MarkPodsNotReady):
                await self._mark_pods_not_ready(key, now)
            elif isinstance(effect, machine.RecordStatusChange):
                self.events.emit(
                    Reference("v1", "Node", "", key, key),  # upstream's uid for nodes: the name
                    "Normal",
                    effect.status,
                    f"Node {key} status is now: {effect.status}",
                )
            elif isinstance(effect, machine.SetTaints):
                readiness_taint = effect.key
            elif isinstance(effect, machine.RecheckAfter):
                delays.append(effect.seconds)
        stored, wait = await self._set_taints(stored, readiness_taint, now)
        if wait is not None:
            delays.append(wait)
        # Remembered only once its effects are written: a write that fails is redone from
        # the same evidence on the retry.
        self._seen[key] = seen
        wait = await self._evict(key, stored, now)
        if wait is not None:
            delays.append(wait)
        if delays:
            raise Requeue(max(min(delays), _MIN_DELAY), f"node {key}: look again")

    def _observe(
        self, key: str, stored: StoredObject, now: datetime
    ) -> tuple[_Seen, tuple[machine.Effect, ...]]:
        """Step the node's machine with what changed since the last look, then the clock."""
        seen = self._seen.get(key) or _Seen(machine.start(now))
        health = seen.health
        effects: list[machine.Effect] = []
        events: list[machine.Event] = []
        ready = condition(_conditions(stored.object), "Ready")
        heartbeat = seen.heartbeat
        if ready is not None:
            status = ready.get("status")
            status = status if status in ("True", "False") else "Unknown"
            fresh = str(ready.get("lastHeartbeatTime")) != seen.heartbeat
            heartbeat = str(ready.get("lastHeartbeatTime"))
            events.append(machine.ConditionReported(status, now if fresh else None))
        renewed = seen.renewed
        lease = self.leases.get(LEASE_NAMESPACE, key)
        renew_time = (
            parse_time((lease.object.get("spec") or {}).get("renewTime")) if lease else None
        )
        if renew_time is not None and (renewed is None or renew_time > renewed):
            renewed = renew_time
            events.append(machine.LeaseRenewed(now))
        events.append(machine.Checked(now, self.grace, self.startup_grace))
        for event in events:
            health, more = machine.step(health, event)
            effects.extend(more)
        return _Seen(health, heartbeat, renewed), tuple(effects)

    # ------------------------------------------------------------------ health and taints

    async def _conditions_unknown(self, stored: StoredObject, now: datetime) -> StoredObject:
        obj = stored.object
        conditions = [copy.deepcopy(c) for c in _conditions(obj) or [] if isinstance(c, dict)]
        stamp = format_timestamp(now)
        changed = False
        for type_ in _UNKNOWN_CONDITIONS:
            current = condition(conditions, type_)
            if current is None:
                conditions.append(
                    {
                        "type": type_,
                        "status": "Unknown",
                        "lastHeartbeatTime": obj["metadata"].get("creationTimestamp"),
                        "lastTransitionTime": stamp,
                        "reason": "NodeStatusNeverUpdated",
                        "message": "Kubelet never posted node status.",
                    }
                )
                changed = True
            elif current.get("status") != "Unknown":
                current.update(
                    status="Unknown",
                    reason="NodeStatusUnknown",
                    message="Kubelet stopped posting node status.",
                    lastTransitionTime=stamp,
                )
                changed = True
        if not changed:
            return stored
        # The resourceVersion makes a kubelet that reported meanwhile win (409, and a retry).
        patch = {
            "metadata": {"resourceVersion": str(stored.resource_version)},
            "status": {"conditions": conditions},
        }
        return await self.registry.patch(
            self.context(), self.node_type, "", stored.name, "merge", patch, subresource="status"
        )

    def _zones(self, stored: StoredObject, now: datetime) -> dict[str, list[int]]:
        """Ready and not-ready nodes per zone, as of ``now``: a node counts as ready when its
        Ready condition is True and it was heard from within the grace period (so nodes that
        went silent together count as down together, whichever is looked at first). The node
        being reconciled, which wants a readiness taint, counts as not ready."""
        zones: dict[str, list[int]] = {}
        for node in self.nodes.list():
            if node.name == stored.name:
                continue
            seen = self._seen.get(node.name)
            heard = seen is None or (now - seen.health.heard_at).total_seconds() <= self.grace
            ready = _is_ready(node) and heard
            zones.setdefault(_zone_key(node), [0, 0])[0 if ready else 1] += 1
        zones.setdefault(_zone_key(stored), [0, 0])[1] += 1
        return zones

    def _no_execute_allowed(
        self, stored: StoredObject, key: str, present: set[tuple[str, str]], now: datetime
    ) -> tuple[bool, float | None]:
        """Whether the node may carry readiness taint ``key`` as NoExecute, and when to look
        again if not yet (the disruption rules and the zone's rate)."""
        zones = self._zones(stored, now)
        if all(ready == 0 for ready, _ in zones.values()):
            return False, None  # no node is ready: the one cut off is probably this controller
        if any((other, _NO_EXECUTE) in present for other in machine.READINESS_TAINTS):
            return True, None  # kept, or swapped for the other readiness taint at once
        zone = _zone_key(stored)
        ready, not_ready = zones[zone]
        state = machine.zone_state(ready, not_ready, self.unhealthy_zone_threshold)
        rate = self.eviction_rate
        if state is machine.ZoneState.PARTIAL_DISRUPTION:
            large = ready + not_ready > self.large_cluster_size_threshold
            rate = self.secondary_eviction_rate if large else 0.0
        wait = self._buckets.setdefault(zone, _Bucket()).take(rate, now)
        return wait == 0.0, wait or None

    async def _set_taints(
        self, stored: StoredObject, readiness: object, now: datetime
    ) -> tuple[StoredObject, float | None]:
        obj = stored.object
        spec = obj.get("spec") or {}
        current = [t for t in spec.get("taints") or [] if isinstance(t, dict)]
        present = {(str(t.get("key")), str(t.get("effect"))) for t in current}
        conditions = _conditions(obj)
        managed = {(taint, _NO_SCHEDULE) for _, taint in _CONDITION_TAINTS}
        managed.add((UNSCHEDULABLE_TAINT, _NO_SCHEDULE))
        wanted = {
            (taint, _NO_SCHEDULE)
            for type_, taint in _CONDITION_TAINTS
            if (condition(conditions, type_) or {}).get("status") == "True"
        }
        if spec.get("unschedulable"):
            wanted.add((UNSCHEDULABLE_TAINT, _NO_SCHEDULE))
        wait = None
        if readiness is not _KEEP:
            managed |= {
                (k, e) for k in machine.READINESS_TAINTS for e in (_NO_SCHEDULE, _NO_EXECUTE)
            }
            if isinstance(readiness, str):
                wanted.add((readiness, _NO_SCHEDULE))
                allowed, wait = self._no_execute_allowed(stored, readiness, present, now)
                if allowed:
                    wanted.add((readiness, _NO_EXECUTE))
        kept = [
            t
            for t in current
            if (str(t.get("key")), str(t.get("effect"))) not in managed
            or (str(t.get("key")), str(t.get("effect"))) in wanted
        ]
        stamp = format_timestamp(now)
        added = sorted(wanted - present)
        taints = kept + [{"key": k, "effect": e, "timeAdded": stamp} for k, e in added]
        if taints == current:
            return stored, wait
        for k, e in added:
            self._taint_seen[(stored.name, k, e)] = now
        patch = {
            "metadata": {"resourceVersion": str(stored.resource_version)},
            "spec": {"taints": taints or None},
        }
        updated = await self.registry.patch(
            self.context(), self.node_type, "", stored.name, "merge", patch
        )
        return updated, wait

    async def _patch_pod_status(self, pod: StoredObject, status: dict[str, Any]) -> bool:
        """Strategic merge into a pod's status (conditions merge by type); False if gone."""
        try:
            await self.registry.patch(
                self.context(),
                self.pod_type,
                pod.namespace,
                pod.name,
                "strategic",
                {"status": status},
                subresource="status",
            )
        except NotFoundError:
            return False
        return True

    async def _mark_pods_not_ready(self, key: str, now: datetime) -> None:
        """Upstream's ``MarkPodsNotReady``: the kubelet that would say so is gone."""
        for pod in self.pods.by_index(_BY_NODE, key):
            ready = condition(_conditions(pod.object), "Ready")
            if ready is None or ready.get("status") == "False":
                continue
            flipped = {
                "type": "Ready",
                "status": "False",
                "lastTransitionTime": format_timestamp(now),
            }
            if await self._patch_pod_status(pod, {"conditions": [flipped]}):
                self.events.emit(Reference.to(pod), "Warning", "NodeNotReady", "Node is not ready")

    # ------------------------------------------------------------------ eviction

    def heard_at(self, node: str) -> datetime | None:
        """When the controller last heard from ``node``'s kubelet, by its clock (None: it has
        not looked at the node yet)."""
        seen = self._seen.get(node)
        return seen.health.heard_at if seen is not None else None

    def _resolve(
        self, node: str, taints: list[machine.Taint], now: datetime
    ) -> list[machine.Taint]:
        """When each taint was added, as precisely as known: ``timeAdded`` is whole seconds,
        so a taint this controller added counts from the instant it remembers adding it; one
        without ``timeAdded`` counts from when the controller first saw it."""
        keep = {(node, t.key, t.effect) for t in taints}
        for seen in [s for s in self._taint_seen if s[0] == node and s not in keep]:
            del self._taint_seen[seen]
        resolved = []
        for taint in taints:
            remembered = self._taint_seen.get((node, taint.key, taint.effect))
            if taint.added is None:
                remembered = self._taint_seen.setdefault((node, taint.key, taint.effect), now)
            elif remembered is None or remembered.replace(microsecond=0) != taint.added:
                remembered = taint.added
            resolved.append(evolve(taint, added=remembered))
        return resolved

    async def _evict(self, key: str, stored: StoredObject, now: datetime) -> float | None:
        """Delete the pods whose tolerations ran out; the seconds until the next one does."""
        taints = [
            t
            for t in machine.parse_taints((stored.object.get("spec") or {}).get("taints"))
            if t.effect == _NO_EXECUTE
        ]
        taints = self._resolve(key, taints, now)
        scheduled = self._scheduled.pop(key, set())
        pending: set[str] = set()
        soonest: float | None = None
        pods = self.pods.by_index(_BY_NODE, key) if taints else []
        # A pod deleted a moment ago may still look alive in the cache: not twice.
        evicted = self._evicted.pop(key, set()) & {pod.uid for pod in pods}
        due_now: list[StoredObject] = []
        for pod in pods:
            if pod.object.get("metadata", {}).get("deletionTimestamp") or pod.uid in evicted:
                continue
            tolerations = machine.parse_tolerations(
                (pod.object.get("spec") or {}).get("tolerations")
            )
            due = machine.eviction_time(taints, tolerations, now)
            if due is None:
                continue
            pod_key = object_key(pod)
            if due <= now:
                scheduled.discard(pod_key)
                due_now.append(pod)
                continue
            pending.add(pod_key)
            wait = (due - now).total_seconds()
            soonest = wait if soonest is None else min(soonest, wait)
        # All at once, as upstream's taint manager (a worker per due pod): the writes share
        # the log's group commits, rather than a node's pods going one fsync at a time while
        # every other node waits for this controller's single worker. A failure does not cut
        # the others short; it is raised once they are done and remembered (a retry).
        outcomes = await asyncio.gather(
            *(self._evict_pod(pod, now) for pod in due_now), return_exceptions=True
        )
        evicted.update(p.uid for p, o in zip(due_now, outcomes, strict=True) if o is None)
        failures = [o for o in outcomes if isinstance(o, BaseException)]
        for pod_key in sorted(scheduled - pending):
            namespace, _, name = pod_key.partition("/")
            cancelled = self.pods.get(namespace, name)
            if cancelled is not None and not cancelled.object["metadata"].get("deletionTimestamp"):
                self.events.emit(
                    Reference.to(cancelled),
                    "Normal",
                    "TaintManagerEviction",
                    f"Cancelling deletion of Pod {pod_key}",
                )
        if pending:
            self._scheduled[key] = pending
        if evicted:
            self._evicted[key] = evicted
        if failures:
            raise failures[0]
        return soonest

    async def _evict_pod(self, pod: StoredObject, now: datetime) -> None:
        pod_key = object_key(pod)
        self.events.emit(
            Reference.to(pod),
            "Normal",
            "TaintManagerEviction",
            f"Marking for deletion Pod {pod_key}",
        )
        target = {
            "type": "DisruptionTarget",
            "status": "True",
            "reason": "DeletionByTaintManager",
            "message": "Taint manager: deleting due to NoExecute taint",
            "lastTransitionTime": format_timestamp(now),
        }
        if not await self._patch_pod_status(pod, {"conditions": [target]}):
            return
        # Gone already, or another pod of that name now: nothing of ours to delete.
        with contextlib.suppress(NotFoundError, ConflictError):
            await self.registry.delete(
                self.context(),
                self.pod_type,
                pod.namespace,
                pod.name,
                DeleteOptions(precondition_uid=pod.uid),
            )

    # ------------------------------------------------------------------ orphans

    def _forget(self, key: str) -> None:
        self._seen.pop(key, None)
        self._scheduled.pop(key, None)
        self._evicted.pop(key, None)
        self._missing_since.pop(key, None)
        for seen in [s for s in self._taint_seen if s[0] == key]:
            del self._taint_seen[seen]

    async def _collect_orphans(self, key: str, now: datetime) -> None:
        """Upstream pod GC's orphan pass for the pods bound to node ``key``, which is gone."""
        pods = self.pods.by_index(_BY_NODE, key)
        if not pods:
            self._forget(key)
            return
        since = self._missing_since.setdefault(key, now)
        remaining = self.quarantine - (now - since).total_seconds()
        if remaining > 0:
            raise Requeue(remaining, f"node {key} is gone; its pods wait out the quarantine")
        for pod in pods:
            status: dict[str, Any] = {
                "conditions": [
                    {
                        "type": "DisruptionTarget",
                        "status": "True",
                        "reason": "DeletionByPodGC",
                        "message": "PodGC: node no longer exists",
                        "lastTransitionTime": format_timestamp(now),
                    }
                ]
            }
            if (pod.object.get("status") or {}).get("phase") not in ("Succeeded", "Failed"):
                status["phase"] = "Failed"
                if not await self._patch_pod_status(pod, status):
                    continue
            try:
                await self.registry.delete(
                    self.context(),
                    self.pod_type,
                    pod.namespace,
                    pod.name,
                    DeleteOptions(grace_period_seconds=0, precondition_uid=pod.uid),
                )
            except (NotFoundError, ConflictError):
                continue
        self._forget(key)
