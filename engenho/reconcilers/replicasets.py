"""The ReplicaSet controller: keep ``spec.replicas`` pods running for every ReplicaSet.

For each ReplicaSet, level-triggered, as upstream's ReplicaSetController does:

1. **claim** its pods: the active pods it controls and the orphans its selector matches
   (adopted), releasing those whose labels no longer match (:mod:`ownership`);
2. if its **expectations** are met (its last creates and deletes are all visible in the pod
   cache) and it is not being deleted, **create** the missing pods in slow-start batches of
   1, 2, 4, ... (at most 500 per sync), named by the registry from ``generateName: <rs>-``
   before each create is proposed, or **delete** the surplus in upstream's order (:mod:`ranking`);
3. write **status** through the status subresource: replicas, fullyLabeledReplicas,
   readyReplicas, availableReplicas (ready for ``minReadySeconds``), observedGeneration, and a
   ReplicaFailure condition while creating or deleting fails; and come back when a ready pod
   is due to become available.

Whether a pod is active, ready or available is the pod machine's answer
(:func:`engenho.reconcilers.machines.pods.observe`). Events are upstream's pod-control events:
SuccessfulCreate ``Created pod: web-abc12``, SuccessfulDelete ``Deleted pod: web-abc12``,
FailedCreate ``Error creating: ...``, FailedDelete ``Error deleting: ...``.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from engenho.projections import StoredObject
from engenho.reconcilers.conditions import condition, set_condition
from engenho.reconcilers.controller import Controller, kube_system_identity, utc_now
from engenho.reconcilers.events import Reference
from engenho.reconcilers.expectations import Expectations
from engenho.reconcilers.freshness import OwnWrites
from engenho.reconcilers.informer import InformerFactory, object_key
from engenho.reconcilers.machines.pods import PodPhase, PodView, RecheckAfter, observe
from engenho.reconcilers.ownership import (
    claim,
    controller_of,
    controller_ref,
    deleting,
    labels_of,
)
from engenho.reconcilers.ranking import pods_to_delete
from engenho.registry import (
    ConflictError,
    DeleteOptions,
    ForbiddenError,
    NotFoundError,
    Registry,
    StatusError,
)
from engenho.registry.naming import format_timestamp
from engenho.schema import CATALOGUE
from engenho.selectors import LabelSelector, SelectorError, label_selector_from_object

__all__ = [
    "BURST_REPLICAS",
    "BY_CONTROLLER",
    "BY_NAMESPACE",
    "ReplicaSetController",
    "by_controller",
    "pod_from_template",
    "selector_of",
]

_log = logging.getLogger("engenho.reconcilers")

PODS = CATALOGUE.get("", "v1", "pods")
REPLICASETS = CATALOGUE.get("apps", "v1", "replicasets")

BURST_REPLICAS = 500
"""The most pods one sync creates or deletes (upstream's burstReplicas)."""
BY_CONTROLLER = "workloads/controller-uid"
"""Informer index: objects by the uid their controller reference names."""
BY_NAMESPACE = "workloads/namespace"
_ORPHANS = "workloads/orphans"
_RECHECK_MARGIN = 0.05
_VIEW_CACHE = 100_000


def by_controller(stored: StoredObject) -> list[str]:
    ref = controller_of(stored.object)
    return [str(ref["uid"])] if ref is not None else []


def _by_namespace(stored: StoredObject) -> list[str]:
    return [stored.namespace]


def _orphan_namespace(stored: StoredObject) -> list[str]:
    return [] if controller_of(stored.object) is not None else [stored.namespace]


def selector_of(obj: dict[str, Any]) -> LabelSelector:
    """The object's ``spec.selector``; a malformed one selects nothing."""
    try:
        return label_selector_from_object((obj.get("spec") or {}).get("selector"))
    except SelectorError:
        return LabelSelector.nothing()


def pod_from_template(rs: StoredObject) -> dict[str, Any]:
    """A new pod of ``rs`` (upstream's GetPodFromTemplate): the template's labels,
    annotations, finalizers and spec, ``generateName: <rs>-`` and a controller reference."""
    template = (rs.object.get("spec") or {}).get("template") or {}
    template_meta = template.get("metadata") or {}
    meta: dict[str, Any] = {
        "generateName": f"{rs.name}-",
        "namespace": rs.namespace,
        "ownerReferences": [controller_ref(rs)],
    }
    for field in ("labels", "annotations", "finalizers"):
        if template_meta.get(field):
            meta[field] = copy.deepcopy(template_meta[field])
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": copy.deepcopy(template.get("spec") or {}),
    }


def _replicas(obj: dict[str, Any]) -> int:
    replicas = (obj.get("spec") or {}).get("replicas", 1)
    return replicas if isinstance(replicas, int) and not isinstance(replicas, bool) else 1


class _CreateRefused(Exception):  # noqa: N818 - a signal: the namespace is going away
    pass


class ReplicaSetController(Controller):
    name = "replicaset-controller"
    identity = kube_system_identity("replicaset-controller")

    def __init__(
        self,
        registry: Registry,
        informers: InformerFactory | None = None,
        *,
        workers: int = 5,
        resync: float = 0.0,
        burst: int = BURST_REPLICAS,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.burst = burst
        self.clock = clock
        self.expectations = Expectations()
        self.own_writes = OwnWrites()
        self._selectors: dict[tuple[str, int], LabelSelector] = {}
        self._views: dict[str, tuple[tuple[int, int], PodView]] = {}
        super().__init__(registry, informers, workers=workers, resync=resync)

    def setup(self) -> None:
        self.replicasets = self.watch_primary(REPLICASETS)
        self.replicasets.add_index(BY_CONTROLLER, by_controller)
        self.replicasets.add_index(BY_NAMESPACE, _by_namespace)
        self.pods = self.informers.get(PODS)
        self.pods.add_index(BY_CONTROLLER, by_controller)
        self.pods.add_index(_ORPHANS, _orphan_namespace)
        self.pods.add_handler(self._pod_changed)
        self.own_writes.follow(self.replicasets)

    # ------------------------------------------------------------------ pod events

    def _selector(self, rs: StoredObject) -> LabelSelector:
        cache_key = (rs.uid, rs.resource_version)
        selector = self._selectors.get(cache_key)
        if selector is None:
            if len(self._selectors) > 4096:
                self._selectors.clear()
            selector = self._selectors[cache_key] = selector_of(rs.object)
        return selector

    def _owner(self, pod: StoredObject) -> StoredObject | None:
        ref = controller_of(pod.object)
        if ref is None or ref.get("kind") != "ReplicaSet":
            return None
        rs = self.replicasets.get(pod.namespace, str(ref.get("name", "")))
        return rs if rs is not None and rs.uid == ref.get("uid") else None

    def _matching(self, pod: StoredObject) -> Iterable[StoredObject]:
        labels = labels_of(pod.object)
        for rs in self.replicasets.by_index(BY_NAMESPACE, pod.namespace):
            if self._selector(rs).matches(labels):
                yield rs

    def _pod_gone(self, pod: StoredObject) -> None:
        self._views.pop(pod.uid, None)
        rs = self._owner(pod)
        if rs is not None:
            key = object_key(rs)
            self.expectations.deletion_observed(key, object_key(pod))
            self.queue.add(key)

    def _pod_changed(self, event: str, old: StoredObject | None, new: StoredObject | None) -> None:
        if new is None:
            if old is not None:
                self._pod_gone(old)
            return
        if deleting(new):
            # A pod being deleted counts as gone: its replacement may be created now.
            self._pod_gone(new)
            if old is not None and labels_of(old.object) != labels_of(new.object):
                self._pod_gone(old)
            return
        ref = controller_of(new.object)
        if event == "ADDED" or old is None:
            if ref is None:
                self._queue_matching(new)
                return
            rs = self._owner(new)
            if rs is not None:
                key = object_key(rs)
                self.expectations.creation_observed(key)
                self.queue.add(key)
            return
        old_ref = controller_of(old.object)
        if old_ref is not None and old_ref != ref:
            previous = self._owner(old)
            if previous is not None:
                self.queue.add(object_key(previous))
        if ref is not None:
            rs = self._owner(new)
            if rs is not None:
                self.queue.add(object_key(rs))
            return
        if labels_of(old.object) != labels_of(new.object) or old_ref is not None:
            self._queue_matching(new)

    def _queue_matching(self, pod: StoredObject) -> None:
        """An orphan: every ReplicaSet that may adopt it looks at it."""
        for match in self._matching(pod):
            self.queue.add(object_key(match))

    # ------------------------------------------------------------------ reconciling

    async def reconcile(self, key: str) -> None:
        await self.own_writes.caught_up()
        namespace, _, name = key.partition("/")
        rs = self.replicasets.get(namespace, name)
        if rs is None:
            self.expectations.forget(key)
            return
        manage = self.expectations.satisfied(key)
        now = self.clock()
        min_ready = (rs.object.get("spec") or {}).get("minReadySeconds") or 0
        views: dict[str, tuple[PodView, tuple[RecheckAfter, ...]]] = {}
        candidates = []
        for pod in (
            *self.pods.by_index(BY_CONTROLLER, rs.uid),
            *self.pods.by_index(_ORPHANS, namespace),
        ):
            view, effects = self._view(pod, now, min_ready)
            if view.active:
                views[pod.uid] = (view, effects)
                candidates.append(pod)
        pods = await claim(self, REPLICASETS, rs, self._selector(rs), PODS, candidates)
        error: Exception | None = None
        if manage and not deleting(rs):
            error = await self._manage(key, rs, [(pod, views[pod.uid][0]) for pod in pods], now)
        await self._write_status(rs, self._status(rs, pods, views, error, now))
        rechecks = [effect.seconds for pod in pods for effect in views[pod.uid][1]]
        if rechecks:
            self.queue.add_after(key, min(rechecks) + _RECHECK_MARGIN)
        if error is not None:
            raise error

    def _view(
        self, pod: StoredObject, now: datetime, min_ready: int
    ) -> tuple[PodView, tuple[RecheckAfter, ...]]:
        """The pod machine's view of ``pod``, remembered per version: only a ready pod still
        waiting out minReadySeconds depends on the clock, and it is looked at afresh."""
        cached = self._views.get(pod.uid)
        if cached is not None and cached[0] == (pod.resource_version, min_ready):
            return cached[1], ()
        view, effects = observe(pod.object, now, min_ready)
        if view.phase is not PodPhase.READY:
            if len(self._views) > _VIEW_CACHE:
                self._views.clear()
            self._views[pod.uid] = ((pod.resource_version, min_ready), view)
        return view, effects

    # ------------------------------------------------------------------ creating and deleting

    async def _manage(
        self, key: str, rs: StoredObject, pods: list[tuple[StoredObject, PodView]], now: datetime
    ) -> Exception | None:
        diff = len(pods) - _replicas(rs.object)
        if diff < 0:
            count = min(-diff, self.burst)
            self.expectations.expect_creations(key, count)
            created, error = await self._create(rs, count)
            for _ in range(count - created):
                self.expectations.creation_observed(key)  # never coming: do not wait for it
            return error
        if diff > 0:
            count = min(diff, self.burst)
            victims = pods_to_delete(pods, self._related(rs, now), count, now)
            self.expectations.expect_deletions(key, [object_key(pod) for pod in victims])
            errors = await asyncio.gather(*(self._delete(key, rs, pod) for pod in victims))
            return next((error for error in errors if error is not None), None)
        return None

    async def _create(self, rs: StoredObject, count: int) -> tuple[int, Exception | None]:
        """Create ``count`` pods in batches of 1, 2, 4, ... stopping after a batch that had a
        failure (upstream's slowStartBatch); returns how many were created, and the error."""
        created, batch = 0, 1
        remaining = count
        while remaining > 0:
            size = min(batch, remaining)
            results = await asyncio.gather(*(self._create_one(rs) for _ in range(size)))
            created += sum(1 for result in results if result is None)
            error = next((r for r in results if isinstance(r, StatusError)), None)
            if error is not None or any(isinstance(r, _CreateRefused) for r in results):
                return created, error
            remaining -= size
            batch *= 2
        return created, None

    async def _create_one(self, rs: StoredObject) -> Exception | None:
        body = pod_from_template(rs)
        if not body["metadata"].get("labels"):
            refused = StatusError("unable to create pods, no labels")
            self.events.emit(
                Reference.to(rs), "Warning", "FailedCreate", f"Error creating: {refused}"
            )
            return refused
        try:
            pod = await self.registry.create(self.context(), PODS, rs.namespace, body)
        except ForbiddenError as exc:
            if any(cause.reason == "NamespaceTerminating" for cause in exc.causes):
                return _CreateRefused()  # every create here fails now; nothing to report
            self.events.emit(Reference.to(rs), "Warning", "FailedCreate", f"Error creating: {exc}")
            return exc
        except StatusError as exc:
            self.events.emit(Reference.to(rs), "Warning", "FailedCreate", f"Error creating: {exc}")
            return exc
        self.events.emit(Reference.to(rs), "Normal", "SuccessfulCreate", f"Created pod: {pod.name}")
        return None

    async def _delete(self, key: str, rs: StoredObject, pod: StoredObject) -> Exception | None:
        try:
            await self.registry.delete(
                self.context(),
                PODS,
                pod.namespace,
                pod.name,
                DeleteOptions(precondition_uid=pod.uid),
            )
        except (NotFoundError, ConflictError):
            # Gone already, or the name now holds another pod: ours is gone either way.
            self.expectations.deletion_observed(key, object_key(pod))
            return None
        except StatusError as exc:
            self.expectations.deletion_observed(key, object_key(pod))
            self.events.emit(Reference.to(rs), "Warning", "FailedDelete", f"Error deleting: {exc}")
            return exc
        self.events.emit(Reference.to(rs), "Normal", "SuccessfulDelete", f"Deleted pod: {pod.name}")
        return None

    def _related(self, rs: StoredObject, now: datetime) -> list[tuple[StoredObject, PodView]]:
        """The pods of every ReplicaSet with the same controller (upstream's
        getIndirectlyRelatedPods), for ranking pods that share a node."""
        owner = controller_of(rs.object)
        if owner is None:
            return []
        return [
            (pod, observe(pod.object, now)[0])
            for sibling in self.replicasets.by_index(BY_CONTROLLER, str(owner["uid"]))
            for pod in self.pods.by_index(BY_CONTROLLER, sibling.uid)
        ]

    # ------------------------------------------------------------------ status

    def _status(
        self,
        rs: StoredObject,
        pods: list[StoredObject],
        views: dict[str, tuple[PodView, tuple[RecheckAfter, ...]]],
        error: Exception | None,
        now: datetime,
    ) -> dict[str, Any]:
        obj = rs.object
        status = copy.deepcopy(obj.get("status") or {})
        template_labels = (
            ((obj.get("spec") or {}).get("template") or {}).get("metadata") or {}
        ).get("labels") or {}
        fully_labeled = ready = available = 0
        for pod in pods:
            labels = labels_of(pod.object)
            if all(labels.get(k) == v for k, v in template_labels.items()):
                fully_labeled += 1
            view = views[pod.uid][0]
            ready += view.ready
            available += view.available
        failure = condition(status.get("conditions"), "ReplicaFailure")
        if error is not None and failure is None:
            diff = len(pods) - _replicas(obj)
            reason = "FailedCreate" if diff < 0 else "FailedDelete" if diff > 0 else ""
            status["conditions"] = set_condition(
                status.get("conditions"),
                "ReplicaFailure",
                "True",
                reason=reason,
                message=str(error),
                now=format_timestamp(now),
            )
        elif error is None and failure is not None:
            kept = [c for c in status["conditions"] if c.get("type") != "ReplicaFailure"]
            if kept:
                status["conditions"] = kept
            else:
                status.pop("conditions", None)
        status["replicas"] = len(pods)
        for field, value in (
            ("fullyLabeledReplicas", fully_labeled),
            ("readyReplicas", ready),
            ("availableReplicas", available),
            ("observedGeneration", obj.get("metadata", {}).get("generation", 0)),
        ):
            if value:
                status[field] = value
            else:
                status.pop(field, None)
        return status

    async def _write_status(self, rs: StoredObject, status: dict[str, Any]) -> None:
        if status == (rs.object.get("status") or {}):
            return
        body = copy.deepcopy(rs.object)
        body["status"] = status
        try:
            stored, _ = await self.registry.update(
                self.context(), REPLICASETS, rs.namespace, rs.name, body, subresource="status"
            )
        except NotFoundError:
            return  # deleted meanwhile: nothing to report on
        self.own_writes.wrote(self.replicasets, stored)
