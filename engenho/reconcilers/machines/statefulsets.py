"""A StatefulSet's ordered rollout, as a pure function of where its pods stand.

Upstream's ``updateStatefulSet`` decides, from the pods it finds at each ordinal, what one sync
does; :func:`plan` is that decision with the I/O taken out. The state is the set's spec and one
:class:`Slot` per ordinal that has a pod; the effects are :class:`Create` and :class:`Delete`
(and :class:`EnsureClaims` for a pod still pending), in the order the controller carries them
out, and where the plan stopped (:attr:`Plan.waiting_for`).

Ordinals ``start .. start+replicas-1`` are the set's *replicas*; a pod at any other ordinal is
*condemned*. One sync, in upstream's order:

1. every replica, lowest ordinal first: a finished pod (Succeeded or Failed) is deleted and
   made again; a missing one is created, at the current revision below the partition and at
   the update revision from it; a pending one gets its missing claims. Under ``OrderedReady``
   (*monotonic*) the sync stops at the first replica it created, or that is terminating, not
   running and ready, or not yet available;
2. the condemned, highest ordinal first: deleted once running and ready (or when it is the
   first unhealthy pod of the whole set, or finished); monotonic: one per sync, waiting for
   it to go;
3. with ``RollingUpdate``, from the highest ordinal down to the partition: the first pod not
   at the update revision and not terminating is deleted (it comes back at the update
   revision in a later sync); an unhealthy pod on the way stops the update. ``OnDelete``
   stops before this step.

``Parallel`` (not monotonic) never stops early in steps 1 and 2.

:func:`counts` is upstream's computeReplicaStatus over the same slots.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

from attrs import evolve, frozen

__all__ = [
    "Counts",
    "Create",
    "Delete",
    "DeleteReason",
    "Effect",
    "EnsureClaims",
    "Outcome",
    "Plan",
    "SetSpec",
    "Slot",
    "counts",
    "plan",
]


class Outcome(enum.Enum):
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


@frozen
class Slot:
    """The pod at one ordinal: the revision it was made from and how far along it is."""

    revision: str
    ready: bool = False
    """Running, with its Ready condition True (upstream's isRunningAndReady)."""
    available: bool = False
    """Ready for ``minReadySeconds``."""
    terminating: bool = False
    outcome: Outcome | None = None
    """Set once the pod has finished."""

    @property
    def healthy(self) -> bool:
        """Running and ready, and not going away (upstream's isHealthy)."""
        return self.ready and not self.terminating and self.outcome is None


@frozen
class SetSpec:
    replicas: int
    current_revision: str
    update_revision: str
    start: int = 0
    """``spec.ordinals.start``: the first replica's ordinal."""
    parallel: bool = False
    """``podManagementPolicy: Parallel``."""
    on_delete: bool = False
    """``updateStrategy.type: OnDelete``."""
    partition: int = 0
    """Replicas below ``start + partition`` stay at (and are recreated at) the current
    revision during a rolling update."""
    deleting: bool = False

    @property
    def ordinals(self) -> range:
        return range(self.start, self.start + max(self.replicas, 0))

    def revision_for(self, ordinal: int) -> str:
        """The revision a new pod at ``ordinal`` is made from (newVersionedStatefulSetPod)."""
        if not self.on_delete and ordinal < self.start + self.partition:
            return self.current_revision
        return self.update_revision


class DeleteReason(enum.Enum):
    FAILED = "failed"
    SUCCEEDED = "succeeded"
    SCALE_DOWN = "scale-down"
    UPDATE = "update"


@frozen
class Create:
    ordinal: int
    revision: str


@frozen
class Delete:
    ordinal: int
    reason: DeleteReason


@frozen
class EnsureClaims:
    """The pod at ``ordinal`` is pending: create the claims it mounts that are missing."""

    ordinal: int


Effect = Create | Delete | EnsureClaims


@frozen
class Plan:
    effects: tuple[Effect, ...]
    waiting_for: int | None = None
    """The ordinal whose pod the sync stopped at (None when it ran to the end)."""
    reason: str = ""


def _first_unhealthy(spec: SetSpec, slots: Mapping[int, Slot], condemned: list[int]) -> int | None:
    """The lowest replica without a healthy pod (a missing pod is unhealthy too), else the
    lowest unhealthy condemned ordinal."""
    for ordinal in spec.ordinals:
        slot = slots.get(ordinal)
        if slot is None or not slot.healthy:
            return ordinal
    for ordinal in sorted(condemned):
        if not slots[ordinal].healthy:
            return ordinal
    return None


def plan(spec: SetSpec, slots: Mapping[int, Slot]) -> Plan:
    """What one sync of the set does, given the pod at each ordinal (see the module doc)."""
    if spec.deleting:
        return Plan(())
    monotonic = not spec.parallel
    wanted = spec.ordinals
    condemned = sorted((o for o in slots if o >= 0 and o not in wanted), reverse=True)
    first_unhealthy = _first_unhealthy(spec, slots, condemned)
    effects: list[Effect] = []
    after = dict(slots)  # the slots as this plan leaves them

    def stop(ordinal: int, reason: str) -> Plan:
        return Plan(tuple(effects), ordinal, reason)

    for ordinal in wanted:
        slot = after.get(ordinal)
        if slot is not None and slot.outcome is not None and not slot.terminating:
            reason = (
                DeleteReason.FAILED if slot.outcome is Outcome.FAILED else DeleteReason.SUCCEEDED
            )
            effects.append(Delete(ordinal, reason))
            slot = None
        if slot is None:
            revision = spec.revision_for(ordinal)
            effects.append(Create(ordinal, revision))
            after[ordinal] = Slot(revision)
            if monotonic:
                return stop(ordinal, "created")
            continue
        if not slot.ready and not slot.terminating and slot.outcome is None:
            effects.append(EnsureClaims(ordinal))
        if not monotonic:
            continue
        if slot.terminating or slot.outcome is not None:
            return stop(ordinal, "terminating")
        if not slot.ready:
            return stop(ordinal, "not running and ready")
        if not slot.available:
            return stop(ordinal, "not available")

    for ordinal in condemned:
        slot = after[ordinal]
        if slot.terminating:
            if monotonic:
                return stop(ordinal, "terminating before scale down")
            continue
        # A finished pod never becomes healthy: waiting for it would block the scale-down
        # for good (upstream waits when two condemned pods are unhealthy), so it goes now.
        if monotonic and ordinal != first_unhealthy and slot.outcome is None:
            if not slot.healthy:
                return stop(ordinal, "not running and ready before scale down")
            if not slot.available:
                return stop(ordinal, "not available before scale down")
        effects.append(Delete(ordinal, DeleteReason.SCALE_DOWN))
        after[ordinal] = evolve(slot, terminating=True)
        if monotonic:
            return stop(ordinal, "scaling down")

    if spec.on_delete:
        return Plan(tuple(effects))
    for ordinal in reversed(wanted):
        if ordinal < spec.start + spec.partition:
            break
        slot = after[ordinal]
        if slot.revision != spec.update_revision and not slot.terminating:
            effects.append(Delete(ordinal, DeleteReason.UPDATE))
            return stop(ordinal, "updating")
        if not slot.healthy:
            return stop(ordinal, "waiting for an updated pod")
    return Plan(tuple(effects))


@frozen
class Counts:
    replicas: int = 0
    ready: int = 0
    available: int = 0
    current: int = 0
    updated: int = 0


def counts(spec: SetSpec, slots: Mapping[int, Slot]) -> Counts:
    """The status counters over every pod of the set (upstream's computeReplicaStatus):
    replicas counts every pod that exists; ready and available count running-and-ready pods
    (terminating ones too); current and updated count pods not terminating at each revision."""
    replicas = ready = available = current = updated = 0
    for slot in slots.values():
        replicas += 1
        if slot.ready and slot.outcome is None:
            ready += 1
            available += slot.available
        if not slot.terminating:
            current += slot.revision == spec.current_revision
            updated += slot.revision == spec.update_revision
    return Counts(replicas, ready, available, current, updated)
