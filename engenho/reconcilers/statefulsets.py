"""The StatefulSet controller: pods with stable names and storage, made and replaced in order.

Per sync, level-triggered, as upstream's StatefulSetController does:

1. **claim** the set's ControllerRevisions and pods (orphans are adopted only if their name
   says they belong to this set: ``<set>-<ordinal>``);
2. find the **revisions** (:mod:`history`): the update revision is the one holding the set's
   template (created, or an earlier one re-numbered on a rollback, the collision count bumped
   on a hash collision); the current revision is ``status.currentRevision`` (the update
   revision the first time);
3. bring each pod's claims' ownerReferences in line with
   ``persistentVolumeClaimRetentionPolicy`` and its identity labels with its name;
4. run the **ordered rollout** (:func:`engenho.reconcilers.machines.statefulsets.plan`) and
   carry out its creates and deletes. A pod ``<set>-<ordinal>`` gets the labels
   ``statefulset.kubernetes.io/pod-name``, ``apps.kubernetes.io/pod-index`` and
   ``controller-revision-hash`` (its revision's name), ``hostname: <pod>``, ``subdomain:
   <serviceName>``, and a volume per ``volumeClaimTemplates`` entry bound to the claim
   ``<claim>-<set>-<ordinal>``, created before the pod (a claim still being deleted holds the
   pod back);
5. write **status** (replicas, readyReplicas, currentReplicas, updatedReplicas,
   availableReplicas, currentRevision, updateRevision, collisionCount, observedGeneration),
   completing a rolling update once every pod is updated and ready, and delete revisions
   beyond ``revisionHistoryLimit`` that no pod uses.

Events are upstream's: ``SuccessfulCreate`` ``create Pod web-0 in StatefulSet web
successful``, ``create Claim www-web-0 Pod web-0 in StatefulSet web success``,
``SuccessfulDelete`` ``delete Pod web-1 in StatefulSet web successful``, ``RecreatingFailedPod``.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from engenho.projections import StoredObject
from engenho.reconcilers.controller import Controller, Requeue, kube_system_identity, utc_now
from engenho.reconcilers.events import Reference
from engenho.reconcilers.freshness import OwnWrites
from engenho.reconcilers.history import (
    CONTROLLER_REVISIONS,
    POD_REVISION_LABEL,
    create_revision,
    delete_revisions,
    next_revision,
    revision_data,
    sort_revisions,
)
from engenho.reconcilers.informer import Informer, InformerFactory, object_key
from engenho.reconcilers.machines.statefulsets import (
    Counts,
    Create,
    Delete,
    DeleteReason,
    EnsureClaims,
    SetSpec,
    Slot,
    counts,
    plan,
)
from engenho.reconcilers.ownership import claim, controller_of, deleting, labels_of
from engenho.reconcilers.replicasets import (
    BY_CONTROLLER,
    BY_NAMESPACE,
    PODS,
    by_controller,
    selector_of,
)
from engenho.reconcilers.statefulpods import (
    POD_INDEX_LABEL,
    POD_NAME_LABEL,
    claim_owners,
    claims_for,
    parent_and_ordinal,
    retention,
    slot_of,
    stateful_pod,
)
from engenho.reconcilers.templates import int_field, spec_of, template_of
from engenho.registry import (
    AlreadyExistsError,
    ConflictError,
    DeleteOptions,
    NotFoundError,
    Registry,
    StatusError,
)
from engenho.schema import CATALOGUE, ResourceType
from engenho.selectors import LabelSelector

__all__ = ["STATEFULSETS", "StatefulSetController"]

_log = logging.getLogger("engenho.reconcilers")

STATEFULSETS = CATALOGUE.get("apps", "v1", "statefulsets")
CLAIMS = CATALOGUE.get("", "v1", "persistentvolumeclaims")
_ORPHANS = "statefulsets/orphans"
_STALE_CLAIM_RETRY = 1.0
_RECHECK_MARGIN = 0.05


def _orphan_namespace(stored: StoredObject) -> list[str]:
    return [] if controller_of(stored.object) is not None else [stored.namespace]


class StatefulSetController(Controller):
    name = "statefulset"
    identity = kube_system_identity("statefulset-controller")

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
        super().__init__(registry, informers, workers=workers, resync=resync)

    def setup(self) -> None:
        self.sets = self.watch_primary(STATEFULSETS)
        self.sets.add_index(BY_NAMESPACE, lambda stored: [stored.namespace])
        self.pods = self.informers.get(PODS)
        self.pods.add_index(BY_CONTROLLER, by_controller)
        self.pods.add_index(_ORPHANS, _orphan_namespace)
        self.pods.add_handler(self._child_changed)
        self.revisions = self.informers.get(CONTROLLER_REVISIONS)
        self.revisions.add_index(BY_CONTROLLER, by_controller)
        self.revisions.add_index(_ORPHANS, _orphan_namespace)
        self.revisions.add_handler(self._child_changed)
        self.claims = self.informers.get(CLAIMS)
        for informer in (self.sets, self.pods, self.revisions):
            self.own_writes.follow(informer)

    # ------------------------------------------------------------------ events

    def _child_changed(
        self, _event: str, old: StoredObject | None, new: StoredObject | None
    ) -> None:
        for child in (old, new):
            if child is None:
                continue
            ref = controller_of(child.object)
            if ref is not None:
                if ref.get("kind") == "StatefulSet":
                    self.queue.add(f"{child.namespace}/{ref.get('name', '')}")
                continue
            labels = labels_of(child.object)
            for stored in self.sets.by_index(BY_NAMESPACE, child.namespace):
                if selector_of(stored.object).matches(labels):
                    self.queue.add(object_key(stored))

    # ------------------------------------------------------------------ reconciling

    async def reconcile(self, key: str) -> None:
        await self.own_writes.caught_up()
        namespace, _, name = key.partition("/")
        sts = self.sets.get(namespace, name)
        if sts is None:
            return
        selector = selector_of(sts.object)
        revisions = await self._claim(sts, selector, self.revisions, CONTROLLER_REVISIONS)
        pods = await self._claim(sts, selector, self.pods, PODS, members_only=True)
        current, update, collisions = await self._revisions(sts, revisions)
        spec = spec_of(sts.object)
        now = self.clock()
        min_ready = int_field(spec, "minReadySeconds", 0)
        slots: dict[int, Slot] = {}
        by_ordinal: dict[int, StoredObject] = {}
        rechecks: list[float] = []
        for pod in pods:
            parent, ordinal = parent_and_ordinal(pod.name)
            if parent != sts.name or ordinal < 0:
                continue  # not one of ours by name: upstream ignores it
            slots[ordinal], recheck = slot_of(pod.object, now, min_ready)
            by_ordinal[ordinal] = pod
            if recheck is not None:
                rechecks.append(recheck)
        set_spec = self._set_spec(sts, current.name, update.name)
        error: Exception | None = None
        try:
            if not deleting(sts):
                await self._tend(sts, set_spec, by_ordinal)
                await self._carry_out(sts, set_spec, slots, by_ordinal, current, update)
        except (StatusError, Requeue) as exc:
            error = exc
        tally = counts(set_spec, slots)
        await self._write_status(sts, set_spec, tally, collisions)
        await self._truncate_history(sts, revisions, pods, current, update)
        if min_ready > 0 and tally.ready != tally.available:
            rechecks.append(float(min_ready))
        if rechecks:
            self.queue.add_after(key, min(rechecks) + _RECHECK_MARGIN)
        if error is not None:
            raise error

    def _set_spec(self, sts: StoredObject, current: str, update: str) -> SetSpec:
        spec = spec_of(sts.object)
        strategy = spec.get("updateStrategy") or {}
        rolling = strategy.get("rollingUpdate") or {}
        return SetSpec(
            replicas=int_field(spec, "replicas", 1),
            current_revision=current,
            update_revision=update,
            start=int_field(spec.get("ordinals"), "start", 0),
            parallel=spec.get("podManagementPolicy") == "Parallel",
            on_delete=strategy.get("type") == "OnDelete",
            partition=int_field(rolling, "partition", 0),
            deleting=deleting(sts),
        )

    async def _claim(
        self,
        sts: StoredObject,
        selector: LabelSelector,
        informer: Informer,
        rt: ResourceType,
        *,
        members_only: bool = False,
    ) -> list[StoredObject]:
        owned = informer.by_index(BY_CONTROLLER, sts.uid)
        orphans = [
            o
            for o in informer.by_index(_ORPHANS, sts.namespace)
            if not members_only or parent_and_ordinal(o.name)[0] == sts.name
        ]
        claimed: list[StoredObject] = await claim(
            self, STATEFULSETS, sts, selector, rt, [*owned, *orphans]
        )
        return claimed

    # ------------------------------------------------------------------ revisions

    async def _revisions(
        self, sts: StoredObject, revisions: list[StoredObject]
    ) -> tuple[StoredObject, StoredObject, int]:
        """(current, update, collision count), as upstream's getStatefulSetRevisions."""
        ordered = sort_revisions(revisions)
        status = sts.object.get("status") or {}
        collisions = int_field(status, "collisionCount", 0)
        data = revision_data(template_of(sts.object))
        number = next_revision(ordered)
        equal = [r for r in ordered if r.object.get("data") == data]
        if equal and equal[-1].name == ordered[-1].name:
            update = ordered[-1]
        elif equal:
            # A rollback to an earlier template: that revision becomes the newest.
            body = copy.deepcopy(equal[-1].object)
            body["revision"] = number
            update, _ = await self.registry.update(
                self.context(), CONTROLLER_REVISIONS, sts.namespace, equal[-1].name, body
            )
            self.own_writes.wrote(self.revisions, update)
        else:
            labels = (template_of(sts.object).get("metadata") or {}).get("labels") or {}
            annotations = (sts.object.get("metadata") or {}).get("annotations") or {}
            update, collisions = await create_revision(
                self, sts, data, number, labels, annotations, collisions
            )
            self.own_writes.wrote(self.revisions, update)
        current = next(
            (r for r in ordered if r.name == status.get("currentRevision")),
            update,
        )
        return current, update, collisions

    async def _truncate_history(
        self,
        sts: StoredObject,
        revisions: list[StoredObject],
        pods: list[StoredObject],
        current: StoredObject,
        update: StoredObject,
    ) -> None:
        live = {current.name, update.name}
        live.update(str(labels_of(pod.object).get(POD_REVISION_LABEL, "")) for pod in pods)
        history = [r for r in sort_revisions(revisions) if r.name not in live]
        limit = int_field(spec_of(sts.object), "revisionHistoryLimit", 10)
        await delete_revisions(self, history[: max(len(history) - limit, 0)])

    # ------------------------------------------------------------------ claims and identity

    async def _ensure_claims(self, sts: StoredObject, pod_name: str, ordinal: int) -> None:
        """Create the pod's missing claims (createPersistentVolumeClaims); a claim being
        deleted holds the pod back until it is gone."""
        stale = []
        for _volume, claim_body in claims_for(sts, ordinal):
            name = claim_body["metadata"]["name"]
            existing = self.claims.get(sts.namespace, name)
            if existing is not None:
                if deleting(existing):
                    stale.append(name)
                continue
            try:
                await self.registry.create(self.context(), CLAIMS, sts.namespace, claim_body)
            except AlreadyExistsError:
                continue
            except StatusError as exc:
                self.events.emit(
                    Reference.to(sts),
                    "Warning",
                    "FailedCreate",
                    f"create Claim {name} for Pod {pod_name} in StatefulSet {sts.name} "
                    f"failed error: {exc}",
                )
                raise
            self.events.emit(
                Reference.to(sts),
                "Normal",
                "SuccessfulCreate",
                f"create Claim {name} Pod {pod_name} in StatefulSet {sts.name} success",
            )
        if stale:
            raise Requeue(_STALE_CLAIM_RETRY, f"pvc {stale[0]} is being deleted")

    async def _tend(
        self, sts: StoredObject, set_spec: SetSpec, by_ordinal: dict[int, StoredObject]
    ) -> None:
        """Identity labels of each pod, and its claims' owners as the retention policy says
        (updateClaimOwnerRefForSetAndPod)."""
        when_deleted, when_scaled = retention(sts.object)
        for ordinal, pod in sorted(by_ordinal.items()):
            if deleting(pod):
                continue
            labels = labels_of(pod.object)
            wanted = {POD_NAME_LABEL: pod.name, POD_INDEX_LABEL: str(ordinal)}
            if any(labels.get(k) != v for k, v in wanted.items()):
                patch = {"metadata": {"labels": wanted, "uid": pod.uid}}
                try:
                    updated = await self.registry.patch(
                        self.context(), PODS, pod.namespace, pod.name, "merge", patch
                    )
                except (NotFoundError, ConflictError):
                    continue
                self.own_writes.wrote(self.pods, updated)
            scaled_down = ordinal not in set_spec.ordinals
            for _volume, claim_body in claims_for(sts, ordinal):
                existing = self.claims.get(sts.namespace, claim_body["metadata"]["name"])
                if existing is None or deleting(existing):
                    continue
                owned_by_set = when_deleted and not (when_scaled and scaled_down)
                owned_by_pod = when_scaled and scaled_down
                await self._claim_owners(existing, sts, pod, owned_by_set, owned_by_pod)

    async def _claim_owners(
        self,
        claim_obj: StoredObject,
        sts: StoredObject,
        pod: StoredObject,
        by_set: bool,
        by_pod: bool,
    ) -> None:
        wanted = claim_owners(claim_obj, sts, pod, by_set, by_pod)
        if wanted is None:
            return
        body = copy.deepcopy(claim_obj.object)
        if wanted:
            body["metadata"]["ownerReferences"] = wanted
        else:
            body["metadata"].pop("ownerReferences", None)
        try:
            await self.registry.update(
                self.context(), CLAIMS, claim_obj.namespace, claim_obj.name, body
            )
        except (NotFoundError, ConflictError):
            return  # changed meanwhile: the next sync looks again

    # ------------------------------------------------------------------ pods

    async def _carry_out(
        self,
        sts: StoredObject,
        set_spec: SetSpec,
        slots: dict[int, Slot],
        by_ordinal: dict[int, StoredObject],
        current: StoredObject,
        update: StoredObject,
    ) -> None:
        decided = plan(set_spec, slots)
        ref = Reference.to(sts)
        for effect in decided.effects:
            if isinstance(effect, EnsureClaims):
                await self._ensure_claims(sts, f"{sts.name}-{effect.ordinal}", effect.ordinal)
            elif isinstance(effect, Delete):
                pod = by_ordinal[effect.ordinal]
                if effect.reason is DeleteReason.FAILED:
                    self.events.emit(
                        ref,
                        "Warning",
                        "RecreatingFailedPod",
                        f"StatefulSet {sts.namespace}/{sts.name} is recreating failed Pod "
                        f"{pod.name}",
                    )
                elif effect.reason is DeleteReason.SUCCEEDED:
                    self.events.emit(
                        ref,
                        "Normal",
                        "RecreatingTerminatedPod",
                        f"StatefulSet {sts.namespace}/{sts.name} is recreating terminated Pod "
                        f"{pod.name}",
                    )
                await self._delete_pod(sts, pod)
            elif isinstance(effect, Create):
                revision = current if effect.revision == current.name else update
                name = f"{sts.name}-{effect.ordinal}"
                await self._ensure_claims(sts, name, effect.ordinal)
                await self._create_pod(sts, stateful_pod(sts, effect.ordinal, revision))

    async def _create_pod(self, sts: StoredObject, body: dict[str, Any]) -> None:
        name = body["metadata"]["name"]
        try:
            created = await self.registry.create(self.context(), PODS, sts.namespace, body)
        except AlreadyExistsError:
            return  # our cache is behind: the pod is there, the next sync sees it
        except StatusError as exc:
            self.events.emit(
                Reference.to(sts),
                "Warning",
                "FailedCreate",
                f"create Pod {name} in StatefulSet {sts.name} failed error: {exc}",
            )
            raise
        self.own_writes.wrote(self.pods, created)
        self.events.emit(
            Reference.to(sts),
            "Normal",
            "SuccessfulCreate",
            f"create Pod {name} in StatefulSet {sts.name} successful",
        )

    async def _delete_pod(self, sts: StoredObject, pod: StoredObject) -> None:
        try:
            result = await self.registry.delete(
                self.context(),
                PODS,
                pod.namespace,
                pod.name,
                DeleteOptions(precondition_uid=pod.uid),
            )
        except (NotFoundError, ConflictError):
            return  # gone already
        except StatusError as exc:
            self.events.emit(
                Reference.to(sts),
                "Warning",
                "FailedDelete",
                f"delete Pod {pod.name} in StatefulSet {sts.name} failed error: {exc}",
            )
            raise
        self.own_writes.wrote(self.pods, result.object)
        self.events.emit(
            Reference.to(sts),
            "Normal",
            "SuccessfulDelete",
            f"delete Pod {pod.name} in StatefulSet {sts.name} successful",
        )

    # ------------------------------------------------------------------ status

    async def _write_status(
        self, sts: StoredObject, set_spec: SetSpec, tally: Counts, collisions: int
    ) -> None:
        obj = sts.object
        old = obj.get("status") or {}
        current_revision, current = set_spec.current_revision, tally.current
        rolling = not set_spec.on_delete
        if rolling and tally.updated == tally.replicas and tally.ready == tally.replicas:
            # completeRollingUpdate: every pod is at the update revision and ready.
            current_revision, current = set_spec.update_revision, tally.updated
        status: dict[str, Any] = {
            k: v for k, v in old.items() if k == "conditions"
        }  # conditions are not ours to drop
        status["replicas"] = tally.replicas
        status["availableReplicas"] = tally.available
        optional = {
            "observedGeneration": (obj.get("metadata") or {}).get("generation", 0),
            "readyReplicas": tally.ready,
            "currentReplicas": current,
            "updatedReplicas": tally.updated,
            "currentRevision": current_revision,
            "updateRevision": set_spec.update_revision,
        }
        status.update({field: value for field, value in optional.items() if value})
        status["collisionCount"] = collisions
        if status == old:
            return
        body = copy.deepcopy(obj)
        body["status"] = status
        try:
            stored, _ = await self.registry.update(
                self.context(), STATEFULSETS, sts.namespace, sts.name, body, subresource="status"
            )
        except NotFoundError:
            return
        self.own_writes.wrote(self.sets, stored)
        _log.debug("statefulset %s/%s status %s", sts.namespace, sts.name, status)
