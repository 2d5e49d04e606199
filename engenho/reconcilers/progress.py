"""A Deployment's status as one sync builds it (upstream's calculateStatus, syncRolloutStatus,
syncDeploymentStatus and checkPausedConditions).

The counters are summed over the ReplicaSets; Available follows from the available replicas
and maxUnavailable; ReplicaFailure is copied from the ReplicaSets; and the Progressing condition
is the rollout machine's state (:mod:`engenho.reconcilers.machines.rollout`): it changes only
through the machine's effects.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from engenho.projections import StoredObject
from engenho.reconcilers.conditions import condition
from engenho.reconcilers.machines import rollout
from engenho.reconcilers.rolling import (
    calculate_status,
    complete,
    max_unavailable,
    progressed,
    replicas_of,
)
from engenho.registry.naming import format_timestamp

__all__ = ["DeploymentStatus", "has_deadline"]

_NO_DEADLINE = 2**31 - 1
_COUNTERS = (
    "observedGeneration",
    "replicas",
    "updatedReplicas",
    "readyReplicas",
    "availableReplicas",
    "unavailableReplicas",
)

_Json = dict[str, Any]


def has_deadline(deployment: _Json) -> bool:
    """Whether progress is estimated (upstream's HasProgressDeadline: set, and not MaxInt32)."""
    deadline = (deployment.get("spec") or {}).get("progressDeadlineSeconds")
    return isinstance(deadline, int) and deadline != _NO_DEADLINE


class DeploymentStatus:
    """The status a sync will write, starting from the stored one; ``recheck`` is when the
    rollout machine asked to look again (seconds), if it did."""

    def __init__(self, deployment: _Json, now: datetime) -> None:
        self.d = deployment
        self.now = now
        self.status: _Json = copy.deepcopy(deployment.get("status") or {})
        self.recheck: float | None = None

    # ------------------------------------------------------------------ conditions

    def _put(self, new: _Json) -> None:
        """Replace a condition, moving it last (upstream's SetDeploymentCondition)."""
        kept = [c for c in self.status.get("conditions") or [] if c.get("type") != new["type"]]
        self.status["conditions"] = [*kept, new]

    def _drop(self, type_: str) -> None:
        kept = [c for c in self.status.get("conditions") or [] if c.get("type") != type_]
        if kept:
            self.status["conditions"] = kept
        else:
            self.status.pop("conditions", None)

    def _set(self, type_: str, status: str, reason: str, message: str) -> None:
        """Upstream's SetDeploymentCondition: the same status and reason change nothing;
        lastTransitionTime moves only with the status."""
        current = condition(self.status.get("conditions"), type_)
        if current is not None and (current.get("status"), current.get("reason")) == (
            status,
            reason,
        ):
            return
        stamp = format_timestamp(self.now)
        transition = stamp
        if current is not None and current.get("status") == status:
            transition = current.get("lastTransitionTime", stamp)
        self._put(
            {
                "type": type_,
                "status": status,
                "lastUpdateTime": stamp,
                "lastTransitionTime": transition,
                "reason": reason,
                "message": message,
            }
        )

    # ------------------------------------------------------------------ the rollout machine

    def progress(self) -> rollout.Progress:
        return rollout.Progress.from_condition(
            condition(self.status.get("conditions"), "Progressing")
        )

    def advance(self, event: rollout.Event) -> None:
        """Step the rollout machine from the Progressing condition and apply its effects
        (nothing when the Deployment has no deadline, except removing the condition)."""
        if not has_deadline(self.d) and not isinstance(event, rollout.DeadlineRemoved):
            return
        _, effects = rollout.step(self.progress(), event)
        for effect in effects:
            if isinstance(effect, rollout.SetCondition):
                self._put(effect.progress.to_condition())
            elif isinstance(effect, rollout.RemoveCondition):
                self._drop("Progressing")
            else:
                wait = effect.seconds
                self.recheck = wait if self.recheck is None else min(self.recheck, wait)

    def check_paused(self) -> None:
        """Record a pause or a resume (checkPausedConditions)."""
        if not has_deadline(self.d):
            return
        phase = self.progress().phase
        if (self.d.get("spec") or {}).get("paused"):
            if phase is not rollout.RolloutPhase.PAUSED:
                self.advance(rollout.Paused(self.now))
        elif phase is rollout.RolloutPhase.PAUSED:
            self.advance(rollout.Resumed(self.now))

    # ------------------------------------------------------------------ counters

    def counters(self, all_sets: Sequence[StoredObject], new: StoredObject | None) -> None:
        """The counters and the Available condition (calculateStatus); syncDeploymentStatus
        is just this."""
        for field in _COUNTERS:
            self.status.pop(field, None)
        self.status.update(calculate_status(self.d, all_sets, new))
        available = self.status.get("availableReplicas", 0)
        if available >= replicas_of(self.d) - max_unavailable(self.d):
            self._set(
                "Available",
                "True",
                "MinimumReplicasAvailable",
                "Deployment has minimum availability.",
            )
        else:
            self._set(
                "Available",
                "False",
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.",
            )

    def rollout(self, all_sets: Sequence[StoredObject], new: StoredObject | None) -> None:
        """Counters, progress and replica failures (syncRolloutStatus)."""
        self.counters(all_sets, new)
        if not has_deadline(self.d):
            if condition(self.status.get("conditions"), "Progressing") is not None:
                self.advance(rollout.DeadlineRemoved())
        else:
            self.advance(
                rollout.Observed(
                    now=self.now,
                    deployment=str(self.d.get("metadata", {}).get("name", "")),
                    replica_set=new.name if new is not None else None,
                    deadline_seconds=int(self.d["spec"]["progressDeadlineSeconds"]),
                    complete=complete(self.d, self.status),
                    progressed=progressed(self.d, self.status),
                    all_updated=self.status.get("replicas", 0)
                    == self.status.get("updatedReplicas", 0),
                )
            )
        failure = self._replica_failure(all_sets, new)
        if failure is None:
            self._drop("ReplicaFailure")
        else:
            self._set(
                "ReplicaFailure",
                str(failure.get("status", "True")),
                str(failure.get("reason", "")),
                str(failure.get("message", "")),
            )

    @staticmethod
    def _replica_failure(
        all_sets: Sequence[StoredObject], new: StoredObject | None
    ) -> _Json | None:
        """The new ReplicaSet's ReplicaFailure condition, else an old one's."""
        for rs in [*([new] if new is not None else []), *all_sets]:
            found = condition((rs.object.get("status") or {}).get("conditions"), "ReplicaFailure")
            if found is not None:
                return found
        return None
