"""The Deployment controller: a Deployment's pod template rolled out through ReplicaSets.

Each pod template of a Deployment gets a ReplicaSet ``<deployment>-<pod-template-hash>``
(:mod:`revisions`); the controller moves replicas from the old ReplicaSets to the new one as
the strategy says (RollingUpdate within maxSurge and maxUnavailable, or Recreate), resizes them
proportionally when the Deployment is scaled mid-rollout, keeps ``revisionHistoryLimit`` old
revisions, and reports status: counters, the Available condition and the Progressing condition
(the rollout machine, :mod:`engenho.reconcilers.machines.rollout`), which ``kubectl rollout
status`` and ``kubectl wait`` read. A paused Deployment is only resized. Everything a
``kubectl rollout`` subcommand relies on is here: revisions on ReplicaSets (history, undo),
spec.paused (pause, resume), a template annotation starting a new revision (restart).

Per sync (upstream's syncDeployment): claim ReplicaSets by selector and controller reference,
then, in order: a Deployment being deleted only gets its status; a pause or resume is recorded;
a paused Deployment, or one whose size changed, is scaled; otherwise the strategy runs.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from engenho.projections import StoredObject
from engenho.reconcilers.controller import Controller, kube_system_identity, utc_now
from engenho.reconcilers.events import Reference
from engenho.reconcilers.freshness import OwnWrites
from engenho.reconcilers.informer import InformerFactory, object_key
from engenho.reconcilers.ownership import claim, controller_of, deleting, labels_of
from engenho.reconcilers.replicasets import (
    BY_CONTROLLER,
    BY_NAMESPACE,
    PODS,
    by_controller,
    selector_of,
)
from engenho.reconcilers.rollouts import DEPLOYMENTS, REPLICASETS, RolloutSync
from engenho.registry import NotFoundError, Registry
from engenho.selectors import LabelSelector

__all__ = ["DeploymentController"]

_log = logging.getLogger("engenho.reconcilers")
_RECHECK_MARGIN = 0.05


def _by_namespace(stored: StoredObject) -> list[str]:
    return [stored.namespace]


def _selects_everything(obj: dict[str, Any]) -> bool:
    """An empty selector (``{}``), which upstream refuses to act on."""
    selector = (obj.get("spec") or {}).get("selector")
    return isinstance(selector, dict) and not any(selector.values())


class DeploymentController(Controller):
    name = "deployment-controller"
    identity = kube_system_identity("deployment-controller")

    def __init__(
        self,
        registry: Registry,
        informers: InformerFactory | None = None,
        *,
        workers: int = 5,
        resync: float = 0.0,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.clock = clock
        self.own_writes = OwnWrites()
        self._selectors: dict[tuple[str, int], LabelSelector] = {}
        super().__init__(registry, informers, workers=workers, resync=resync)

    def setup(self) -> None:
        self.deployments = self.watch_primary(DEPLOYMENTS)
        self.deployments.add_index(BY_NAMESPACE, _by_namespace)
        self.replicasets = self.informers.get(REPLICASETS)
        self.replicasets.add_index(BY_CONTROLLER, by_controller)
        self.replicasets.add_index(BY_NAMESPACE, _by_namespace)
        self.replicasets.add_handler(self._replica_set_changed)
        self.pods = self.informers.get(PODS)
        self.pods.add_index(BY_CONTROLLER, by_controller)
        self.pods.add_handler(self._pod_changed)
        self.own_writes.follow(self.deployments)
        self.own_writes.follow(self.replicasets)

    # ------------------------------------------------------------------ events

    def _selector(self, deployment: StoredObject) -> LabelSelector:
        cache_key = (deployment.uid, deployment.resource_version)
        selector = self._selectors.get(cache_key)
        if selector is None:
            if len(self._selectors) > 4096:
                self._selectors.clear()
            selector = self._selectors[cache_key] = selector_of(deployment.object)
        return selector

    def _owner(self, child: StoredObject) -> StoredObject | None:
        ref = controller_of(child.object)
        if ref is None or ref.get("kind") != "Deployment":
            return None
        deployment = self.deployments.get(child.namespace, str(ref.get("name", "")))
        return deployment if deployment is not None and deployment.uid == ref.get("uid") else None

    def _queue_owner(self, child: StoredObject) -> None:
        owner = self._owner(child)
        if owner is not None:
            self.queue.add(object_key(owner))

    def _queue_matching(self, rs: StoredObject) -> None:
        """An orphan ReplicaSet: every Deployment that may adopt it looks at it."""
        labels = labels_of(rs.object)
        for deployment in self.deployments.by_index(BY_NAMESPACE, rs.namespace):
            if _selects_everything(deployment.object):
                continue
            if self._selector(deployment).matches(labels):
                self.queue.add(object_key(deployment))

    def _replica_set_changed(
        self, event: str, old: StoredObject | None, new: StoredObject | None
    ) -> None:
        if new is None or deleting(new):
            gone = new if new is not None else old
            if gone is not None:
                self._queue_owner(gone)
            return
        ref = controller_of(new.object)
        if event == "ADDED" or old is None:
            if ref is None:
                self._queue_matching(new)
            else:
                self._queue_owner(new)
            return
        old_ref = controller_of(old.object)
        if old_ref is not None and old_ref != ref:
            self._queue_owner(old)
        if ref is not None:
            self._queue_owner(new)
        elif labels_of(old.object) != labels_of(new.object) or old_ref is not None:
            self._queue_matching(new)

    def _pod_changed(self, event: str, old: StoredObject | None, new: StoredObject | None) -> None:
        """A Recreate Deployment waits for its old pods to go: look again when one does."""
        if new is not None and not deleting(new):
            return
        gone = new if new is not None else old
        ref = controller_of(gone.object) if gone is not None else None
        if gone is None or ref is None or ref.get("kind") != "ReplicaSet":
            return
        rs = self.replicasets.get(gone.namespace, str(ref.get("name", "")))
        if rs is None or rs.uid != ref.get("uid"):
            return
        owner = self._owner(rs)
        if owner is None:
            return
        strategy = (owner.object.get("spec") or {}).get("strategy") or {}
        if strategy.get("type") == "Recreate":
            self.queue.add(object_key(owner))

    # ------------------------------------------------------------------ reconciling

    async def reconcile(self, key: str) -> None:
        await self.own_writes.caught_up()
        namespace, _, name = key.partition("/")
        deployment = self.deployments.get(namespace, name)
        if deployment is None:
            return
        obj = deployment.object
        if _selects_everything(obj):
            await self._selecting_everything(deployment)
            return
        candidates = self.replicasets.by_index(BY_NAMESPACE, namespace)
        replica_sets = await claim(
            self, DEPLOYMENTS, deployment, self._selector(deployment), REPLICASETS, candidates
        )
        sync = RolloutSync(self, deployment, replica_sets, self.clock())
        spec = obj.get("spec") or {}
        if deleting(deployment):
            await sync.status_only()
        else:
            sync.report.check_paused()
            if spec.get("paused") or await sync.is_scaling_event():
                await sync.scale_only()
            elif (spec.get("strategy") or {}).get("type") == "Recreate":
                await sync.recreate()
            else:
                await sync.rolling()
        await sync.flush()
        if sync.report.recheck is not None:
            self.queue.add_after(key, sync.report.recheck + _RECHECK_MARGIN)

    async def _selecting_everything(self, deployment: StoredObject) -> None:
        self.events.emit(
            Reference.to(deployment),
            "Warning",
            "SelectingAll",
            "This deployment is selecting all pods. A non-empty selector is required.",
        )
        obj = deployment.object
        generation = obj.get("metadata", {}).get("generation", 0)
        body = copy.deepcopy(obj)
        status = body.setdefault("status", {})
        if status.get("observedGeneration", 0) >= generation:
            return
        status["observedGeneration"] = generation
        try:
            stored, _ = await self.registry.update(
                self.context(),
                DEPLOYMENTS,
                deployment.namespace,
                deployment.name,
                body,
                subresource="status",
            )
        except NotFoundError:
            return
        self.own_writes.wrote(self.deployments, stored)
