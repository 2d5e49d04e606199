"""One sync of one Deployment: its ReplicaSets scaled per strategy, its status and revision.

This is upstream's deployment controller sync (``sync.go``, ``rolling.go``, ``recreate.go``)
over the controller's caches, with two changes that only make it safer:

- the Deployment's status and revision annotation are accumulated and written once at the end
  (upstream writes them at several points of a sync with a stale resourceVersion and lets the
  conflict restart the sync);
- surge and availability are counted on what will really run (:mod:`rolling`): a pod an old
  ReplicaSet was told to drop counts toward the surge until its controller has deleted it, and
  no more than ``spec.replicas`` of a ReplicaSet's available pods count as staying.

The status the sync writes is built by :mod:`progress` (counters, conditions, and the rollout
machine behind the Progressing condition).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from engenho.projections import StoredObject
from engenho.reconcilers.controller import Requeue
from engenho.reconcilers.events import Reference
from engenho.reconcilers.machines import rollout
from engenho.reconcilers.machines.pods import observe
from engenho.reconcilers.ownership import controller_of, controller_ref, deleting, labels_of
from engenho.reconcilers.progress import DeploymentStatus
from engenho.reconcilers.replicasets import BY_CONTROLLER, selector_of
from engenho.reconcilers.revisions import (
    DESIRED_REPLICAS,
    REVISION,
    TEMPLATE_HASH,
    annotations_of,
    equal_ignoring_hash,
    max_revision,
    replica_set_annotations,
    replicas_annotations,
    revision_of,
    template_hash,
)
from engenho.reconcilers.rolling import (
    active,
    available_count,
    by_creation,
    complete,
    max_surge,
    max_unavailable,
    new_replicas,
    proportion,
    replicas_of,
    rolling,
    spec_count,
)
from engenho.registry import AlreadyExistsError, NotFoundError, StatusError
from engenho.schema import CATALOGUE

if TYPE_CHECKING:
    from engenho.reconcilers.deployments import DeploymentController

__all__ = ["DEPLOYMENTS", "REPLICASETS", "RolloutSync"]

DEPLOYMENTS = CATALOGUE.get("apps", "v1", "deployments")
REPLICASETS = CATALOGUE.get("apps", "v1", "replicasets")

_Json = dict[str, Any]


def _int_annotation(obj: _Json, key: str) -> int | None:
    try:
        return int(annotations_of(obj)[key])
    except (KeyError, ValueError):
        return None


class RolloutSync:
    """The working state of one sync: the Deployment as last written, its ReplicaSets as last
    written (by uid), and the status and annotations to write at the end."""

    def __init__(
        self,
        controller: DeploymentController,
        deployment: StoredObject,
        replica_sets: Iterable[StoredObject],
        now: datetime,
    ) -> None:
        self.controller = controller
        self.deployment = deployment
        self.d = deployment.object
        self.now = now.replace(microsecond=0)  # conditions keep whole seconds
        self.sets = {rs.uid: rs for rs in replica_sets}
        self.report = DeploymentStatus(self.d, self.now)
        self.annotations = annotations_of(self.d)
        self.desired = replicas_of(self.d)
        self._resolved = False
        self._new_uid: str | None = None

    # ------------------------------------------------------------------ views

    @property
    def new(self) -> StoredObject | None:
        return self.sets.get(self._new_uid) if self._new_uid is not None else None

    @property
    def old(self) -> list[StoredObject]:
        return by_creation(rs for uid, rs in self.sets.items() if uid != self._new_uid)

    @property
    def all(self) -> list[StoredObject]:
        new = self.new
        return [*self.old, *([new] if new is not None else [])]

    def _event(self, type_: str, reason: str, message: str) -> None:
        self.controller.events.emit(Reference.to(self.deployment), type_, reason, message)

    # ------------------------------------------------------------------ writing

    async def _update_rs(self, body: _Json) -> StoredObject:
        meta = body["metadata"]
        stored, _ = await self.controller.registry.update(
            self.controller.context(), REPLICASETS, meta["namespace"], meta["name"], body
        )
        self.controller.own_writes.wrote(self.controller.replicasets, stored)
        self.sets[stored.uid] = stored
        return stored

    async def _scale(
        self, rs: StoredObject, size: int, operation: str | None = None
    ) -> tuple[bool, StoredObject]:
        """Set a ReplicaSet's size and the Deployment size it was scaled for; an event when the
        size changed (scaleReplicaSetAndRecordEvent, or scaleReplicaSet with ``operation``)."""
        current = replicas_of(rs.object)
        if operation is None:
            if current == size:
                return False, rs
            operation = "up" if current < size else "down"
        annotations = annotations_of(rs.object)
        marked = replicas_annotations(annotations, self.desired, self.desired + max_surge(self.d))
        if current == size and not marked:
            return False, rs
        body = copy.deepcopy(rs.object)
        body["spec"]["replicas"] = size
        body["metadata"]["annotations"] = annotations
        stored = await self._update_rs(body)
        if current != size:
            self._event(
                "Normal",
                "ScalingReplicaSet",
                f"Scaled {operation} replica set {rs.name} to {size} from {current}",
            )
        return current != size, stored

    async def flush(self) -> None:
        """Write the revision annotation (the main resource) and the status (the status
        subresource) if they changed."""
        registry, context = self.controller.registry, self.controller.context
        stored = self.deployment
        if self.annotations.get(REVISION) != annotations_of(self.d).get(REVISION):
            patch = {"metadata": {"annotations": {REVISION: self.annotations[REVISION]}}}
            stored = await registry.patch(
                context(), DEPLOYMENTS, stored.namespace, stored.name, "merge", patch
            )
            self.controller.own_writes.wrote(self.controller.deployments, stored)
        if self.report.status != (stored.object.get("status") or {}):
            body = copy.deepcopy(stored.object)
            body["status"] = self.report.status
            stored, _ = await registry.update(
                context(), DEPLOYMENTS, stored.namespace, stored.name, body, subresource="status"
            )
            self.controller.own_writes.wrote(self.controller.deployments, stored)
        self.deployment = stored

    # ------------------------------------------------------------------ new and old ReplicaSets

    async def resolve(self, *, create: bool) -> None:
        """Find the new ReplicaSet (creating it when ``create``), syncing its annotations and
        the Deployment's revision (getAllReplicaSetsAndSyncRevision)."""
        if self._resolved and (self._new_uid is not None or not create):
            return
        self._resolved = True
        template = (self.d.get("spec") or {}).get("template") or {}
        for rs in by_creation(self.sets.values()):
            if equal_ignoring_hash((rs.object.get("spec") or {}).get("template") or {}, template):
                self._new_uid = rs.uid
                break
        new_revision = max_revision(self.old) + 1
        new = self.new
        if new is not None:
            await self._sync_existing(new, new_revision)
        elif create:
            await self._create_new(template, new_revision)

    async def _sync_existing(self, new: StoredObject, new_revision: int) -> None:
        annotations = annotations_of(new.object)
        changed = replica_set_annotations(
            self.d,
            annotations,
            new_revision,
            exists=True,
            desired=self.desired,
            maximum=self.desired + max_surge(self.d),
        )
        min_ready = (self.d.get("spec") or {}).get("minReadySeconds") or 0
        if changed or ((new.object.get("spec") or {}).get("minReadySeconds") or 0) != min_ready:
            body = copy.deepcopy(new.object)
            body["metadata"]["annotations"] = annotations
            if min_ready:
                body["spec"]["minReadySeconds"] = min_ready
            else:
                body["spec"].pop("minReadySeconds", None)
            await self._update_rs(body)
            return  # the Deployment's revision follows on the next sync, as upstream's does
        revision = annotations.get(REVISION)
        if revision is not None:
            self.annotations[REVISION] = revision
        self.report.advance(rollout.ReplicaSetFound(new.name, self.now))

    async def _create_new(self, template: _Json, new_revision: int) -> None:
        collisions = self.report.status.get("collisionCount")
        hash_ = template_hash(template, collisions)
        rs_template = copy.deepcopy(template)
        labels = rs_template.setdefault("metadata", {}).setdefault("labels", {})
        labels[TEMPLATE_HASH] = hash_
        selector = copy.deepcopy((self.d.get("spec") or {}).get("selector") or {})
        selector.setdefault("matchLabels", {})[TEMPLATE_HASH] = hash_
        name = f"{self.deployment.name}-{hash_}"
        size = new_replicas(self.d, self.all, None)
        annotations: dict[str, str] = {}
        replica_set_annotations(
            self.d,
            annotations,
            new_revision,
            exists=False,
            desired=self.desired,
            maximum=self.desired + max_surge(self.d),
        )
        spec: _Json = {"replicas": size, "selector": selector, "template": rs_template}
        min_ready = (self.d.get("spec") or {}).get("minReadySeconds")
        if min_ready:
            spec["minReadySeconds"] = min_ready
        body = {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": name,
                "namespace": self.deployment.namespace,
                "labels": copy.deepcopy(labels),
                "annotations": annotations,
                "ownerReferences": [controller_ref(self.deployment)],
            },
            "spec": spec,
        }
        controller = self.controller
        existed = False
        try:
            created = await controller.registry.create(
                controller.context(), REPLICASETS, self.deployment.namespace, body
            )
        except AlreadyExistsError:
            created = await self._collision(name, template)
            existed = True
        except StatusError as exc:
            if any(cause.reason == "NamespaceTerminating" for cause in exc.causes):
                raise
            message = f'Failed to create new replica set "{name}": {exc}'
            self.report.advance(rollout.ReplicaSetCreateFailed(message, self.now))
            await self.flush()
            self._event("Warning", "ReplicaSetCreateError", message)
            raise
        controller.own_writes.wrote(controller.replicasets, created)
        self.sets[created.uid] = created
        self._new_uid = created.uid
        if not existed and size > 0:
            self._event(
                "Normal",
                "ScalingReplicaSet",
                f"Scaled up replica set {created.name} from 0 to {size}",
            )
        self.annotations[REVISION] = str(new_revision)
        if not existed:
            self.report.advance(rollout.ReplicaSetCreated(created.name, self.now))

    async def _collision(self, name: str, template: _Json) -> StoredObject:
        """The ReplicaSet of that name exists: ours (a cache behind us) or a hash collision, in
        which case the collision count goes up and the sync starts again."""
        controller = self.controller
        try:
            existing = await controller.registry.get(REPLICASETS, self.deployment.namespace, name)
        except NotFoundError:
            raise Requeue(0, f'replica set "{name}" vanished while being created') from None
        ref = controller_of(existing.object)
        rs_template = (existing.object.get("spec") or {}).get("template") or {}
        ours = ref is not None and ref.get("uid") == self.deployment.uid
        if ours and equal_ignoring_hash(rs_template, template):
            return existing
        status = self.report.status
        status["collisionCount"] = (status.get("collisionCount") or 0) + 1
        await self.flush()
        raise Requeue(0, f'replica set "{name}" exists with another template: collision')

    # ------------------------------------------------------------------ strategies

    async def rolling(self) -> None:
        """RollingUpdate (rolloutRolling): grow the new ReplicaSet within maxSurge, shrink old
        ones within maxUnavailable, then clean up history once complete."""
        await self.resolve(create=True)
        if await self._reconcile_new() or await self._reconcile_old():
            self.report.rollout(self.all, self.new)
            return
        if complete(self.d, self.d.get("status") or {}):
            await self.cleanup()
        self.report.rollout(self.all, self.new)

    async def _reconcile_new(self) -> bool:
        new = self.new
        if new is None:
            return False
        current = replicas_of(new.object)
        if current == self.desired:
            return False
        if current > self.desired:
            return (await self._scale(new, self.desired))[0]
        return (await self._scale(new, new_replicas(self.d, self.all, new)))[0]

    async def _reconcile_old(self) -> bool:
        old = active(self.old)
        if spec_count(old) == 0:
            return False
        new = self.new
        min_available = self.desired - max_unavailable(self.d)
        new_unavailable = 0
        if new is not None:
            new_unavailable = replicas_of(new.object) - available_count([new])
        room = spec_count(self.all) - min_available - new_unavailable
        if room <= 0:
            return False
        cleaned = await self._cleanup_unhealthy(old, room)
        scaled = await self._scale_down_old()
        return cleaned + scaled > 0

    async def _cleanup_unhealthy(self, old: list[StoredObject], room: int) -> int:
        """Scale away the unavailable replicas of old ReplicaSets first, oldest first, so that
        they never block the rollout."""
        done = 0
        for stale in by_creation(old):
            if done >= room:
                break
            rs = self.sets[stale.uid]
            size = replicas_of(rs.object)
            unhealthy = size - available_count([rs])
            if size == 0 or unhealthy <= 0:
                continue
            count = min(room - done, unhealthy)
            await self._scale(rs, size - count)
            done += count
        return done

    async def _scale_down_old(self) -> int:
        min_available = self.desired - max_unavailable(self.d)
        available = available_count(self.all)
        if available <= min_available:
            return 0
        total = available - min_available
        done = 0
        for rs in active(self.old):
            if done >= total:
                break
            size = replicas_of(rs.object)
            count = min(size, total - done)
            await self._scale(rs, size - count)
            done += count
        return done

    async def recreate(self) -> None:
        """Recreate (rolloutRecreate): every old pod gone before the new ReplicaSet grows."""
        await self.resolve(create=False)
        scaled = False
        for rs in active(self.old):
            scaled = (await self._scale(rs, 0))[0] or scaled
        if scaled or self._old_pods_running():
            self.report.rollout(self.all, self.new)
            return
        await self.resolve(create=True)
        new = self.new
        if new is not None:
            await self._scale(new, self.desired)
        if complete(self.d, self.d.get("status") or {}):
            await self.cleanup()
        self.report.rollout(self.all, self.new)

    def _old_pods_running(self) -> bool:
        """Whether any pod of an old ReplicaSet is not finished (terminating ones count)."""
        old = self.old
        if sum((rs.object.get("status") or {}).get("replicas", 0) for rs in old):
            return True
        selector = selector_of(self.d)
        pods = self.controller.pods
        for rs in old:
            for pod in pods.by_index(BY_CONTROLLER, rs.uid):
                if not selector.matches(labels_of(pod.object)):
                    continue
                if not observe(pod.object, self.now)[0].finished:
                    return True
        return False

    async def is_scaling_event(self) -> bool:
        """Whether an active ReplicaSet was sized for another Deployment size."""
        await self.resolve(create=False)
        for rs in active(self.all):
            desired = _int_annotation(rs.object, DESIRED_REPLICAS)
            if desired is not None and desired != self.desired:
                return True
        return False

    async def scale_only(self) -> None:
        """A resize or a paused Deployment (sync): scale proportionally, clean up when paused."""
        await self.resolve(create=False)
        await self._proportional_scale()
        if (self.d.get("spec") or {}).get("paused"):
            await self.cleanup()
        self.report.counters(self.all, self.new)

    async def status_only(self) -> None:
        await self.resolve(create=False)
        self.report.counters(self.all, self.new)

    async def _proportional_scale(self) -> None:
        new, old = self.new, self.old
        target = self._active_or_latest(new, old)
        if target is not None:
            if replicas_of(target.object) != self.desired:
                await self._scale(target, self.desired)
            return
        if self._saturated(new):
            for rs in active(old):
                await self._scale(rs, 0)
            return
        if not rolling(self.d):
            return
        sets = active([*old, new])
        allowed = self.desired + max_surge(self.d) if self.desired > 0 else 0
        to_add = allowed - spec_count(sets)
        created_at = {rs.uid: position for position, rs in enumerate(by_creation(sets))}
        operation = ""
        if to_add > 0:
            sets.sort(key=lambda rs: (-replicas_of(rs.object), -created_at[rs.uid]))
            operation = "up"
        elif to_add < 0:
            sets.sort(key=lambda rs: (-replicas_of(rs.object), created_at[rs.uid]))
            operation = "down"
        added = 0
        sizes: dict[str, int] = {}
        for rs in sets:
            share = proportion(rs, self.d, to_add, added) if to_add else 0
            sizes[rs.uid] = replicas_of(rs.object) + share
            added += share
        for position, rs in enumerate(sets):
            if position == 0 and to_add:
                sizes[rs.uid] = max(sizes[rs.uid] + to_add - added, 0)
            await self._scale(self.sets[rs.uid], sizes[rs.uid], operation)

    @staticmethod
    def _active_or_latest(new: StoredObject | None, old: list[StoredObject]) -> StoredObject | None:
        if new is None and not old:
            return None
        newest_first = list(reversed(old))
        running = active([*newest_first, new])
        if not running:
            return new if new is not None else newest_first[0]
        return running[0] if len(running) == 1 else None

    def _saturated(self, rs: StoredObject | None) -> bool:
        if rs is None:
            return False
        return (
            replicas_of(rs.object) == self.desired
            and _int_annotation(rs.object, DESIRED_REPLICAS) == self.desired
            and (rs.object.get("status") or {}).get("availableReplicas", 0) == self.desired
        )

    async def cleanup(self) -> None:
        """Delete the oldest revisions beyond ``revisionHistoryLimit`` that run nothing."""
        limit = (self.d.get("spec") or {}).get("revisionHistoryLimit")
        if not isinstance(limit, int):
            return
        cleanable = [rs for rs in self.old if not deleting(rs)]
        excess = len(cleanable) - limit
        if excess <= 0:
            return
        cleanable.sort(key=lambda rs: revision_of(rs.object) or 0)
        controller = self.controller
        for rs in cleanable[:excess]:
            status = rs.object.get("status") or {}
            generation = rs.object.get("metadata", {}).get("generation", 0)
            if (
                status.get("replicas", 0)
                or replicas_of(rs.object)
                or generation > status.get("observedGeneration", 0)
            ):
                continue
            try:
                result = await controller.registry.delete(
                    controller.context(), REPLICASETS, rs.namespace, rs.name
                )
            except NotFoundError:
                continue
            controller.own_writes.wrote(controller.replicasets, result.object)
