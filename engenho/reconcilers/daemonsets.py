"""The DaemonSet controller: one daemon pod on every node that should run it.

Per sync, level-triggered, as upstream's DaemonSetsController does:

1. **claim** the set's ControllerRevisions and pods; find the current revision (the one whose
   data is the set's template, created as ``<ds>-<hash>`` when missing, re-numbered when an old
   one comes back) and its hash;
2. decide per node (:mod:`engenho.reconcilers.machines.daemonsets`) which nodes need a pod and
   which pods go: nodes that no longer fit (labels, affinity, an untolerated ``NoExecute``
   taint), finished pods (failed ones after a per-node backoff), extra pods;
3. with its **expectations** met (its last creates and deletes are visible in the cache),
   **RollingUpdate** replaces old pods within ``maxUnavailable``, or surges new ones within
   ``maxSurge``; ``OnDelete`` leaves that to the user;
4. delete revisions beyond ``revisionHistoryLimit`` no pod uses, and write **status**
   (desiredNumberScheduled, currentNumberScheduled, numberReady, numberAvailable,
   numberUnavailable, updatedNumberScheduled, numberMisscheduled, observedGeneration).

Pods are not placed by this controller: each gets a required node affinity on
``metadata.name`` for its node (upstream's way since 1.12) and the scheduler binds it. They
carry ``controller-revision-hash`` (and ``pod-template-generation`` when the set has the
``deprecated.daemonset.template.generation`` annotation) and the daemon tolerations.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from typing import Any

from engenho.projections import StoredObject
from engenho.reconcilers.controller import Controller, kube_system_identity, utc_now
from engenho.reconcilers.events import Reference
from engenho.reconcilers.expectations import Expectations
from engenho.reconcilers.freshness import OwnWrites
from engenho.reconcilers.history import (
    CONTROLLER_REVISIONS,
    POD_REVISION_LABEL,
    daemon_revision,
    delete_revisions,
    revision_data,
    revision_number,
    sort_revisions,
)
from engenho.reconcilers.informer import InformerFactory, object_key
from engenho.reconcilers.machines.daemonsets import (
    DaemonPod,
    NodeFit,
    daemon_tolerations,
    manage,
    node_fit,
    pin_to_node,
    rolling_update,
    tally,
    target_node,
)
from engenho.reconcilers.machines.pods import observe
from engenho.reconcilers.ownership import claim, controller_of, deleting, labels_of
from engenho.reconcilers.replicasets import (
    BY_CONTROLLER,
    BY_NAMESPACE,
    PODS,
    by_controller,
    selector_of,
)
from engenho.reconcilers.rolling import scaled_value
from engenho.reconcilers.templates import int_field, pod_from_template, spec_of, template_of
from engenho.registry import (
    AlreadyExistsError,
    ForbiddenError,
    NotFoundError,
    Registry,
    StatusError,
)
from engenho.schema import CATALOGUE

__all__ = [
    "DAEMONSETS",
    "TEMPLATE_GENERATION_ANNOTATION",
    "TEMPLATE_GENERATION_LABEL",
    "DaemonSetController",
    "FailureBackoff",
]

_log = logging.getLogger("engenho.reconcilers")

DAEMONSETS = CATALOGUE.get("apps", "v1", "daemonsets")
NODES = CATALOGUE.get("", "v1", "nodes")
TEMPLATE_GENERATION_LABEL = "pod-template-generation"
TEMPLATE_GENERATION_ANNOTATION = "deprecated.daemonset.template.generation"
BURST_REPLICAS = 250
"""The most pods one sync creates or deletes (upstream's DaemonSet burstReplicas)."""
_ORPHANS = "daemonsets/orphans"
_RECHECK_MARGIN = 0.05


def _orphan_namespace(stored: StoredObject) -> list[str]:
    return [] if controller_of(stored.object) is not None else [stored.namespace]


def _allows_surge(ds: StoredObject) -> bool:
    """Whether ``maxSurge`` is not zero (upstream's AllowsSurge: SurgeCount against one node)."""
    strategy = spec_of(ds.object).get("updateStrategy") or {}
    if strategy.get("type", "RollingUpdate") != "RollingUpdate":
        return False
    rolling = strategy.get("rollingUpdate") or {}
    try:
        return scaled_value(rolling.get("maxSurge", 0), 1, round_up=True) != 0
    except ValueError:
        return False


class FailureBackoff:
    """How long to wait before deleting the next failed pod on a node (upstream's
    failedPodsBackoff: 1 s doubling to 15 min), so a kubelet that keeps rejecting a pod is not
    fought in a hot loop."""

    def __init__(self, initial: float = 1.0, maximum: float = 900.0) -> None:
        self.initial = initial
        self.maximum = maximum
        self._entries: dict[str, tuple[float, float]] = {}

    def remaining(self, key: str, now: float) -> float:
        entry = self._entries.get(key)
        if entry is None:
            return 0.0
        delay, updated = entry
        return max(0.0, delay - (now - updated))

    def next(self, key: str, now: float) -> None:
        entry = self._entries.get(key)
        if entry is None or now - entry[1] > 2 * self.maximum:
            self._entries[key] = (self.initial, now)
        else:
            self._entries[key] = (min(entry[0] * 2, self.maximum), now)


class DaemonSetController(Controller):
    name = "daemonset"
    identity = kube_system_identity("daemon-set-controller")

    def __init__(
        self,
        registry: Registry,
        informers: InformerFactory | None = None,
        *,
        workers: int = 2,
        resync: float = 0.0,
        clock: Callable[[], datetime] = utc_now,
        burst: int = BURST_REPLICAS,
        failure_backoff: FailureBackoff | None = None,
    ) -> None:
        self.clock = clock
        self.burst = burst
        self.failure_backoff = failure_backoff or FailureBackoff()
        self.creations = Expectations()
        self.deletions = Expectations()
        self.own_writes = OwnWrites()
        super().__init__(registry, informers, workers=workers, resync=resync)

    def setup(self) -> None:
        self.daemonsets = self.watch_primary(DAEMONSETS)
        self.daemonsets.add_index(BY_NAMESPACE, lambda stored: [stored.namespace])
        self.pods = self.informers.get(PODS)
        self.pods.add_index(BY_CONTROLLER, by_controller)
        self.pods.add_index(_ORPHANS, _orphan_namespace)
        self.pods.add_handler(self._pod_changed)
        self.nodes = self.informers.get(NODES)
        self.nodes.add_handler(self._node_changed)
        self.revisions = self.informers.get(CONTROLLER_REVISIONS)
        self.revisions.add_index(BY_CONTROLLER, by_controller)
        self.revisions.add_index(_ORPHANS, _orphan_namespace)
        self.revisions.add_handler(self._revision_changed)
        for informer in (self.daemonsets, self.pods, self.revisions):
            self.own_writes.follow(informer)

    # ------------------------------------------------------------------ events

    def _owner_key(self, child: StoredObject) -> str | None:
        ref = controller_of(child.object)
        if ref is None or ref.get("kind") != "DaemonSet":
            return None
        return f"{child.namespace}/{ref.get('name', '')}"

    def _queue_matching(self, child: StoredObject) -> None:
        labels = labels_of(child.object)
        for ds in self.daemonsets.by_index(BY_NAMESPACE, child.namespace):
            if selector_of(ds.object).matches(labels):
                self.queue.add(object_key(ds))

    def _pod_changed(self, event: str, old: StoredObject | None, new: StoredObject | None) -> None:
        current = new if new is not None else old
        assert current is not None
        key = self._owner_key(current)
        if key is None:
            if new is not None:
                self._queue_matching(new)
            return
        if new is None or deleting(new):
            self.deletions.deletion_observed(key, object_key(current))
        elif event == "ADDED":
            self.creations.creation_observed(key)
        self.queue.add(key)
        if old is not None and new is not None:
            previous = self._owner_key(old)
            if previous is not None and previous != key:
                self.queue.add(previous)

    def _revision_changed(
        self, _event: str, old: StoredObject | None, new: StoredObject | None
    ) -> None:
        for child in (old, new):
            if child is not None and (key := self._owner_key(child)) is not None:
                self.queue.add(key)

    def _node_changed(self, event: str, old: StoredObject | None, new: StoredObject | None) -> None:
        if old is not None and new is not None:
            before, after = old.object, new.object
            same = labels_of(before) == labels_of(after) and (before.get("spec") or {}) == (
                after.get("spec") or {}
            )
            if same:
                return  # a heartbeat: nothing a DaemonSet decides on changed
        for ds in self.daemonsets.list():
            self.queue.add(object_key(ds))

    # ------------------------------------------------------------------ reconciling

    def _expectations_met(self, key: str) -> bool:
        return self.creations.satisfied(key) and self.deletions.satisfied(key)

    async def reconcile(self, key: str) -> None:
        await self.own_writes.caught_up()
        namespace, _, name = key.partition("/")
        ds = self.daemonsets.get(namespace, name)
        if ds is None:
            self.creations.forget(key)
            self.deletions.forget(key)
            return
        selector = (spec_of(ds.object).get("selector")) or {}
        if isinstance(selector, dict) and not any(selector.values()):
            self.events.emit(
                Reference.to(ds),
                "Warning",
                "SelectingAll",
                "This daemon set is selecting all pods. A non-empty selector is required.",
            )
            return
        if deleting(ds):
            return
        revisions = await claim(
            self,
            DAEMONSETS,
            ds,
            selector_of(ds.object),
            CONTROLLER_REVISIONS,
            [
                *self.revisions.by_index(BY_CONTROLLER, ds.uid),
                *self.revisions.by_index(_ORPHANS, ds.namespace),
            ],
        )
        current, old = await self._history(ds, revisions)
        hash_ = str(labels_of(current.object).get(POD_REVISION_LABEL, ""))
        pods = await claim(
            self,
            DAEMONSETS,
            ds,
            selector_of(ds.object),
            PODS,
            [*self.pods.by_index(BY_CONTROLLER, ds.uid), *self.pods.by_index(_ORPHANS, namespace)],
        )
        now = self.clock()
        template_spec = spec_of(template_of(ds.object))
        fits = {node.name: node_fit(node.object, template_spec) for node in self.nodes.list()}
        by_node, rechecks = self._by_node(ds, pods, hash_, now)
        error: Exception | None = None
        observed = False
        if self._expectations_met(key):
            observed = True
            error = await self._update(key, ds, fits, by_node, hash_, now)
            await self._clean_history(ds, old, pods)
        await self._write_status(ds, fits, by_node, observed)
        min_ready = int_field(spec_of(ds.object), "minReadySeconds", 0)
        counted = tally(fits, by_node)
        if min_ready > 0 and counted.ready != counted.available:
            rechecks.append(float(min_ready))
        if rechecks:
            self.queue.add_after(key, min(rechecks) + _RECHECK_MARGIN)
        if error is not None:
            raise error

    def _by_node(
        self, ds: StoredObject, pods: list[StoredObject], hash_: str, now: datetime
    ) -> tuple[dict[str, list[DaemonPod]], list[float]]:
        """The daemon pods by target node (pods both finished and being deleted are left out,
        as upstream's getNodesToDaemonPods does), and when to look again for availability."""
        generation = self._template_generation(ds)
        min_ready = int_field(spec_of(ds.object), "minReadySeconds", 0)
        by_node: dict[str, list[DaemonPod]] = defaultdict(list)
        rechecks: list[float] = []
        for pod in pods:
            obj = pod.object
            meta = obj.get("metadata") or {}
            phase = str((obj.get("status") or {}).get("phase") or "Pending")
            terminating = bool(meta.get("deletionTimestamp"))
            if terminating and phase in ("Succeeded", "Failed"):
                continue
            node = target_node(obj)
            if not node:
                continue
            probe = {**obj, "metadata": {k: v for k, v in meta.items() if k != "deletionTimestamp"}}
            view, effects = observe(probe, now, min_ready)
            rechecks.extend(effect.seconds for effect in effects)
            labels = meta.get("labels") or {}
            updated = bool(hash_) and labels.get(POD_REVISION_LABEL) == hash_
            if generation is not None and labels.get(TEMPLATE_GENERATION_LABEL) == generation:
                updated = True
            by_node[node].append(
                DaemonPod(
                    name=pod.name,
                    created=str(meta.get("creationTimestamp") or ""),
                    bound=bool((obj.get("spec") or {}).get("nodeName")),
                    updated=updated,
                    ready=view.ready,
                    available=view.available,
                    terminating=terminating,
                    phase=phase,
                )
            )
        return dict(by_node), rechecks

    @staticmethod
    def _template_generation(ds: StoredObject) -> str | None:
        annotations = (ds.object.get("metadata") or {}).get("annotations") or {}
        value = annotations.get(TEMPLATE_GENERATION_ANNOTATION)
        return str(value) if value is not None and str(value).isdigit() else None

    def _rolling(self, ds: StoredObject, desired: int) -> tuple[bool, int, int]:
        """(RollingUpdate?, maxSurge, maxUnavailable) as numbers (upstream rounds both up)."""
        strategy = spec_of(ds.object).get("updateStrategy") or {}
        if strategy.get("type", "RollingUpdate") != "RollingUpdate":
            return False, 0, 0
        rolling = strategy.get("rollingUpdate") or {}
        try:
            surge = scaled_value(rolling.get("maxSurge", 0), desired, round_up=True)
            unavailable = scaled_value(rolling.get("maxUnavailable", 1), desired, round_up=True)
        except ValueError:
            surge, unavailable = 0, 1
        if desired > 0 and surge == 0 and unavailable == 0:
            unavailable = 1
        return True, surge, unavailable

    async def _update(
        self,
        key: str,
        ds: StoredObject,
        fits: dict[str, NodeFit],
        by_node: dict[str, list[DaemonPod]],
        hash_: str,
        now: datetime,
    ) -> Exception | None:
        """manage, then (with nothing in flight) the rolling update."""
        desired = sum(1 for fit in fits.values() if fit.should_run)
        rolling, max_surge, max_unavailable = self._rolling(ds, desired)
        surge_allowed = rolling and _allows_surge(ds)
        decision = manage(fits, by_node, surge=surge_allowed)
        deletes = list(decision.delete)
        clock = now.timestamp()
        ref = Reference.to(ds)
        for node, pod in decision.failed:
            backoff_key = f"{ds.namespace}/{ds.name}/{node}"
            wait = self.failure_backoff.remaining(backoff_key, clock)
            if wait > 0:
                self.queue.add_after(key, wait)
                continue
            self.failure_backoff.next(backoff_key, clock)
            self.events.emit(
                ref,
                "Warning",
                "FailedDaemonPod",
                f"Found failed daemon pod {ds.namespace}/{pod} on node {node}, will try to kill it",
            )
            deletes.append(pod)
        for node, pod in decision.succeeded:
            self.events.emit(
                ref,
                "Normal",
                "SucceededDaemonPod",
                f"Found succeeded daemon pod {ds.namespace}/{pod} on node {node}, "
                "will try to delete it",
            )
        error = await self._sync_nodes(key, ds, deletes, list(decision.create_on), hash_)
        if error is not None or not rolling or not self._expectations_met(key):
            return error
        old_pods, surge_nodes = rolling_update(
            fits, by_node, max_surge=max_surge, max_unavailable=max_unavailable
        )
        return await self._sync_nodes(key, ds, list(old_pods), list(surge_nodes), hash_)

    # ------------------------------------------------------------------ creating and deleting

    def _template(self, ds: StoredObject, hash_: str) -> dict[str, Any]:
        """CreatePodTemplate: the template with the daemon tolerations and revision labels."""
        template = copy.deepcopy(template_of(ds.object))
        spec = template.setdefault("spec", {})
        spec["tolerations"] = daemon_tolerations(spec)
        labels = template.setdefault("metadata", {}).setdefault("labels", {})
        generation = self._template_generation(ds)
        if generation is not None:
            labels[TEMPLATE_GENERATION_LABEL] = generation
        if hash_:
            labels[POD_REVISION_LABEL] = hash_
        return template

    async def _sync_nodes(
        self, key: str, ds: StoredObject, deletes: list[str], creates: list[str], hash_: str
    ) -> Exception | None:
        deletes = deletes[: self.burst]
        creates = creates[: self.burst]
        if not deletes and not creates:
            return None
        self.creations.expect_creations(key, len(creates))
        self.deletions.expect_deletions(key, [f"{ds.namespace}/{name}" for name in deletes])
        template = self._template(ds, hash_)
        error: Exception | None = None
        position, batch = 0, 1
        while position < len(creates):
            chunk = creates[position : position + batch]
            results = await asyncio.gather(*(self._create(ds, template, n) for n in chunk))
            position += len(chunk)
            batch *= 2
            error = next((r for r in results if r is not None), None)
            if error is not None:
                break
        for _skipped in range(len(creates) - position):
            self.creations.creation_observed(key)  # never coming: do not wait for them
        results = await asyncio.gather(*(self._delete(key, ds, name) for name in deletes))
        return error or next((r for r in results if r is not None), None)

    async def _create(
        self, ds: StoredObject, template: dict[str, Any], node: str
    ) -> Exception | None:
        key = object_key(ds)
        body = pod_from_template(template, ds)
        body["spec"]["affinity"] = pin_to_node(body["spec"].get("affinity"), node)
        try:
            pod = await self.registry.create(self.context(), PODS, ds.namespace, body)
        except StatusError as exc:
            self.creations.creation_observed(key)
            if isinstance(exc, ForbiddenError) and any(
                cause.reason == "NamespaceTerminating" for cause in exc.causes
            ):
                return None  # every create here fails now: nothing to report
            self.events.emit(Reference.to(ds), "Warning", "FailedCreate", f"Error creating: {exc}")
            return exc
        self.own_writes.wrote(self.pods, pod)
        self.events.emit(Reference.to(ds), "Normal", "SuccessfulCreate", f"Created pod: {pod.name}")
        return None

    async def _delete(self, key: str, ds: StoredObject, name: str) -> Exception | None:
        try:
            result = await self.registry.delete(self.context(), PODS, ds.namespace, name)
        except NotFoundError:
            self.deletions.deletion_observed(key, f"{ds.namespace}/{name}")
            return None
        except StatusError as exc:
            self.deletions.deletion_observed(key, f"{ds.namespace}/{name}")
            self.events.emit(Reference.to(ds), "Warning", "FailedDelete", f"Error deleting: {exc}")
            return exc
        self.own_writes.wrote(self.pods, result.object)
        self.events.emit(Reference.to(ds), "Normal", "SuccessfulDelete", f"Deleted pod: {name}")
        return None

    # ------------------------------------------------------------------ history

    async def _history(
        self, ds: StoredObject, revisions: list[StoredObject]
    ) -> tuple[StoredObject, list[StoredObject]]:
        """(current revision, old revisions), as upstream's constructHistory."""
        data = revision_data(template_of(ds.object))
        current = [r for r in revisions if r.object.get("data") == data]
        old = [r for r in revisions if r.object.get("data") != data]
        number = max((revision_number(r) for r in old), default=0) + 1
        if not current:
            return await self._snapshot(ds, data, number), old
        ordered = sort_revisions(current)
        kept = ordered[-1]
        # Equal revisions (a lost race): keep the newest, delete the others.
        await delete_revisions(self, ordered[:-1])
        if revision_number(kept) < number:
            body = copy.deepcopy(kept.object)
            body["revision"] = number
            kept, _ = await self.registry.update(
                self.context(), CONTROLLER_REVISIONS, kept.namespace, kept.name, body
            )
            self.own_writes.wrote(self.revisions, kept)
        return kept, old

    async def _snapshot(self, ds: StoredObject, data: dict[str, Any], number: int) -> StoredObject:
        status = ds.object.get("status") or {}
        body = daemon_revision(ds, data, number)
        try:
            created = await self.registry.create(
                self.context(), CONTROLLER_REVISIONS, ds.namespace, body
            )
        except AlreadyExistsError:
            existing = await self.registry.get(
                CONTROLLER_REVISIONS, ds.namespace, body["metadata"]["name"]
            )
            if existing.object.get("data") == data:
                return existing
            # A hash collision: count it, so the next sync hashes differently.
            fresh = await self.registry.get(DAEMONSETS, ds.namespace, ds.name)
            fresh_status = fresh.object.get("status") or {}
            if fresh_status.get("collisionCount") == status.get("collisionCount"):
                body = copy.deepcopy(fresh.object)
                body.setdefault("status", {})["collisionCount"] = (
                    int_field(fresh_status, "collisionCount", 0) + 1
                )
                await self.registry.update(
                    self.context(), DAEMONSETS, ds.namespace, ds.name, body, subresource="status"
                )
            raise
        self.own_writes.wrote(self.revisions, created)
        return created

    async def _clean_history(
        self, ds: StoredObject, old: list[StoredObject], pods: list[StoredObject]
    ) -> None:
        limit = int_field(spec_of(ds.object), "revisionHistoryLimit", 10)
        excess = len(old) - limit
        if excess <= 0:
            return
        live = {labels_of(pod.object).get(POD_REVISION_LABEL) for pod in pods}
        unused = [
            r
            for r in sort_revisions(old)
            if labels_of(r.object).get(POD_REVISION_LABEL) not in live
        ]
        await delete_revisions(self, unused[:excess])

    # ------------------------------------------------------------------ status

    async def _write_status(
        self,
        ds: StoredObject,
        fits: dict[str, NodeFit],
        by_node: dict[str, list[DaemonPod]],
        observed: bool,
    ) -> None:
        counted = tally(fits, by_node)
        obj = ds.object
        old = obj.get("status") or {}
        status: dict[str, Any] = {
            k: v for k, v in old.items() if k in ("conditions", "collisionCount")
        }
        status.update(
            {
                "currentNumberScheduled": counted.current,
                "numberMisscheduled": counted.misscheduled,
                "desiredNumberScheduled": counted.desired,
                "numberReady": counted.ready,
            }
        )
        generation = (obj.get("metadata") or {}).get("generation", 0)
        optional = {
            "observedGeneration": generation if observed else old.get("observedGeneration", 0),
            "updatedNumberScheduled": counted.updated,
            "numberAvailable": counted.available,
            "numberUnavailable": counted.desired - counted.available,
        }
        status.update({field: value for field, value in optional.items() if value})
        if status == old:
            return
        body = copy.deepcopy(obj)
        body["status"] = status
        try:
            stored, _ = await self.registry.update(
                self.context(), DAEMONSETS, ds.namespace, ds.name, body, subresource="status"
            )
        except NotFoundError:
            return
        self.own_writes.wrote(self.daemonsets, stored)
