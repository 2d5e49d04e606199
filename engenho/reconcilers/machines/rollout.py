"""A Deployment's rollout progress, as a pure state machine over its Progressing condition.

Upstream keeps a rollout's progress in the Deployment's ``Progressing`` condition: its reason
says where the rollout stands and its ``lastUpdateTime`` when progress was last seen, which
``progressDeadlineSeconds`` is measured from. The deployment controller reads the state from
the condition (:meth:`Progress.from_condition`), steps it with what a sync did and saw, and
writes the condition back from the effects; the rules are upstream's (``getNewReplicaSet``,
``checkPausedConditions``, ``syncRolloutStatus``, ``DeploymentTimedOut``).

::

    phase        condition (status, reason)
    NEW          none yet (or no progress deadline)
    PROGRESSING  True NewReplicaSetCreated | FoundNewReplicaSet | ReplicaSetUpdated,
                 Unknown DeploymentResumed
    COMPLETE     True NewReplicaSetAvailable
    FAILING      False ReplicaSetCreateError
    STALLED      False ProgressDeadlineExceeded
    PAUSED       Unknown DeploymentPaused

Events: ReplicaSetCreated, ReplicaSetFound, ReplicaSetCreateFailed, Paused, Resumed, Observed
(the status a sync computed: complete? progressed? all replicas updated?) and DeadlineRemoved.
:data:`TRANSITIONS` lists every accepted pair; any other raises.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from attrs import frozen

from engenho.reconcilers.machines.errors import InvalidTransitionError
from engenho.reconcilers.machines.pods import parse_time

__all__ = [
    "START",
    "TRANSITIONS",
    "DeadlineRemoved",
    "Effect",
    "Event",
    "Observed",
    "Paused",
    "Progress",
    "RecheckAfter",
    "RemoveCondition",
    "ReplicaSetCreateFailed",
    "ReplicaSetCreated",
    "ReplicaSetFound",
    "Resumed",
    "RolloutPhase",
    "SetCondition",
    "step",
]

NEW_RS_CREATED = "NewReplicaSetCreated"
FOUND_NEW_RS = "FoundNewReplicaSet"
RS_UPDATED = "ReplicaSetUpdated"
NEW_RS_AVAILABLE = "NewReplicaSetAvailable"
FAILED_RS_CREATE = "ReplicaSetCreateError"
TIMED_OUT = "ProgressDeadlineExceeded"
PAUSED = "DeploymentPaused"
RESUMED = "DeploymentResumed"


class RolloutPhase(enum.Enum):
    NEW = "New"
    PROGRESSING = "Progressing"
    COMPLETE = "Complete"
    FAILING = "Failing"
    STALLED = "Stalled"
    PAUSED = "Paused"


_PHASE_OF_REASON = {
    NEW_RS_CREATED: RolloutPhase.PROGRESSING,
    FOUND_NEW_RS: RolloutPhase.PROGRESSING,
    RS_UPDATED: RolloutPhase.PROGRESSING,
    RESUMED: RolloutPhase.PROGRESSING,
    NEW_RS_AVAILABLE: RolloutPhase.COMPLETE,
    FAILED_RS_CREATE: RolloutPhase.FAILING,
    TIMED_OUT: RolloutPhase.STALLED,
    PAUSED: RolloutPhase.PAUSED,
}


def _format(moment: datetime | None) -> str | None:
    return None if moment is None else moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@frozen
class Progress:
    """The Progressing condition as a state (``phase`` follows from ``reason``)."""

    phase: RolloutPhase
    status: str = ""
    reason: str = ""
    message: str = ""
    last_update: datetime | None = None
    last_transition: datetime | None = None

    @classmethod
    def from_condition(cls, condition: Mapping[str, Any] | None) -> Progress:
        if not condition:
            return START
        reason = str(condition.get("reason") or "")
        return cls(
            # A reason we do not know (written by another tool) is progress in some form.
            phase=_PHASE_OF_REASON.get(reason, RolloutPhase.PROGRESSING),
            status=str(condition.get("status") or ""),
            reason=reason,
            message=str(condition.get("message") or ""),
            last_update=parse_time(condition.get("lastUpdateTime")),
            last_transition=parse_time(condition.get("lastTransitionTime")),
        )

    def to_condition(self) -> dict[str, Any]:
        fields = {
            "lastUpdateTime": _format(self.last_update),
            "lastTransitionTime": _format(self.last_transition),
            "reason": self.reason,
            "message": self.message,
        }
        return {
            "type": "Progressing",
            "status": self.status,
            **{key: value for key, value in fields.items() if value},
        }


START = Progress(RolloutPhase.NEW)

# ---------------------------------------------------------------------------- events


@frozen
class ReplicaSetCreated:
    """The controller created the new ReplicaSet ``replica_set``."""

    replica_set: str
    now: datetime


@frozen
class ReplicaSetFound:
    """The new ReplicaSet ``replica_set`` already exists."""

    replica_set: str
    now: datetime


@frozen
class ReplicaSetCreateFailed:
    """Creating the new ReplicaSet failed; ``message`` says why."""

    message: str
    now: datetime


@frozen
class Paused:
    """``spec.paused`` is true and the condition does not say so yet."""

    now: datetime


@frozen
class Resumed:
    """``spec.paused`` is false and the condition still says paused."""

    now: datetime


@frozen
class Observed:
    """A sync computed the Deployment's new status.

    ``complete``: every replica is updated and available and the generation observed;
    ``progressed``: more updated, ready or available replicas, or fewer old ones, than the
    stored status said; ``all_updated``: status.replicas equals status.updatedReplicas.
    """

    now: datetime
    deployment: str
    replica_set: str | None
    deadline_seconds: int
    complete: bool
    progressed: bool
    all_updated: bool


@frozen
class DeadlineRemoved:
    """The Deployment has no progress deadline (any more): it keeps no Progressing condition."""


Event = (
    ReplicaSetCreated
    | ReplicaSetFound
    | ReplicaSetCreateFailed
    | Paused
    | Resumed
    | Observed
    | DeadlineRemoved
)

# ---------------------------------------------------------------------------- effects


@frozen
class SetCondition:
    """Write ``progress`` as the Progressing condition."""

    progress: Progress


@frozen
class RemoveCondition:
    """Remove the Progressing condition."""


@frozen
class RecheckAfter:
    """Sync again in ``seconds``: the deadline may have passed by then."""

    seconds: float


Effect = SetCondition | RemoveCondition | RecheckAfter
Effects = tuple[Effect, ...]
_Handler = Callable[[Progress, Any], tuple[Progress, Effects]]

# ---------------------------------------------------------------------------- transitions


def _set(state: Progress, status: str, reason: str, message: str, now: datetime) -> Progress:
    """Upstream's SetDeploymentCondition: the same status and reason change nothing (not even
    the message); a new status moves lastTransitionTime."""
    if state.phase is not RolloutPhase.NEW and (state.status, state.reason) == (status, reason):
        return state
    keep = state.phase is not RolloutPhase.NEW and state.status == status
    return Progress(
        phase=_PHASE_OF_REASON[reason],
        status=status,
        reason=reason,
        message=message,
        last_update=now,
        last_transition=state.last_transition if keep else now,
    )


def _result(old: Progress, new: Progress, *more: Effect) -> tuple[Progress, Effects]:
    return new, ((SetCondition(new),) if new != old else ()) + more


def _created(state: Progress, event: ReplicaSetCreated) -> tuple[Progress, Effects]:
    message = f'Created new replica set "{event.replica_set}"'
    return _result(state, _set(state, "True", NEW_RS_CREATED, message, event.now))


def _found(state: Progress, event: ReplicaSetFound) -> tuple[Progress, Effects]:
    # Only a rollout with no condition yet records that its ReplicaSet was found.
    if state.phase is not RolloutPhase.NEW:
        return state, ()
    message = f'Found new replica set "{event.replica_set}"'
    return _result(state, _set(state, "True", FOUND_NEW_RS, message, event.now))


def _create_failed(state: Progress, event: ReplicaSetCreateFailed) -> tuple[Progress, Effects]:
    return _result(state, _set(state, "False", FAILED_RS_CREATE, event.message, event.now))


def _paused(state: Progress, event: Paused) -> tuple[Progress, Effects]:
    # A rollout reported as timed out stays so: pausing does not hide the failure.
    if state.phase is RolloutPhase.STALLED:
        return state, ()
    return _result(state, _set(state, "Unknown", PAUSED, "Deployment is paused", event.now))


def _resumed(state: Progress, event: Resumed) -> tuple[Progress, Effects]:
    return _result(state, _set(state, "Unknown", RESUMED, "Deployment is resumed", event.now))


def _timed_out(state: Progress, event: Observed) -> bool:
    if state.phase in (RolloutPhase.NEW, RolloutPhase.COMPLETE):
        return False
    if state.phase is RolloutPhase.STALLED:
        return True
    if state.last_update is None:
        return False
    return state.last_update + timedelta(seconds=event.deadline_seconds) < event.now


def _observed(state: Progress, event: Observed) -> tuple[Progress, Effects]:
    # A completed rollout with every replica updated is a resync, not a rollout: no estimate.
    if state.phase is RolloutPhase.COMPLETE and event.all_updated:
        return state, ()
    subject = (
        f'ReplicaSet "{event.replica_set}"'
        if event.replica_set is not None
        else f'Deployment "{event.deployment}"'
    )
    if event.complete:
        message = f"{subject} has successfully progressed."
        return _result(state, _set(state, "True", NEW_RS_AVAILABLE, message, event.now))
    if event.progressed:
        # Progress refreshes lastUpdateTime (and the message) even with an unchanged reason:
        # the deadline counts from the last progress seen.
        new = Progress(
            phase=RolloutPhase.PROGRESSING,
            status="True",
            reason=RS_UPDATED,
            message=f"{subject} is progressing.",
            last_update=event.now,
            last_transition=(
                state.last_transition
                if state.phase is not RolloutPhase.NEW and state.status == "True"
                else event.now
            ),
        )
        return _result(state, new, *_recheck(new, event))
    if _timed_out(state, event):
        message = f"{subject} has timed out progressing."
        return _result(state, _set(state, "False", TIMED_OUT, message, event.now))
    return state, _recheck(state, event)


def _recheck(state: Progress, event: Observed) -> tuple[RecheckAfter, ...]:
    """When to look again for a rollout that has not finished (upstream's
    requeueStuckDeployment): a second after its deadline would pass."""
    if state.phase in (RolloutPhase.NEW, RolloutPhase.COMPLETE, RolloutPhase.STALLED):
        return ()
    if state.last_update is None:
        return ()
    due = state.last_update + timedelta(seconds=event.deadline_seconds)
    return (RecheckAfter(max(0.0, (due - event.now).total_seconds()) + 1.0),)


def _removed(_state: Progress, _event: DeadlineRemoved) -> tuple[Progress, Effects]:
    return START, (RemoveCondition(),)


_ANY = tuple(RolloutPhase)
_UNPAUSED = tuple(p for p in RolloutPhase if p is not RolloutPhase.PAUSED)
_P = RolloutPhase

_HANDLERS: dict[tuple[RolloutPhase, type], _Handler] = {
    **{(phase, ReplicaSetCreated): _created for phase in _UNPAUSED},
    **{(phase, ReplicaSetFound): _found for phase in _ANY},
    **{(phase, ReplicaSetCreateFailed): _create_failed for phase in _UNPAUSED},
    **{(phase, Paused): _paused for phase in _UNPAUSED},
    (RolloutPhase.PAUSED, Resumed): _resumed,
    **{(phase, Observed): _observed for phase in _UNPAUSED},
    **{(phase, DeadlineRemoved): _removed for phase in _ANY if phase is not RolloutPhase.NEW},
}

_AFTER_OBSERVED = frozenset({_P.COMPLETE, _P.PROGRESSING})
TRANSITIONS: Mapping[tuple[RolloutPhase, type], frozenset[RolloutPhase]] = {
    **{(phase, ReplicaSetCreated): frozenset({_P.PROGRESSING}) for phase in _UNPAUSED},
    (_P.NEW, ReplicaSetFound): frozenset({_P.PROGRESSING}),
    **{(phase, ReplicaSetFound): frozenset({phase}) for phase in _ANY if phase is not _P.NEW},
    **{(phase, ReplicaSetCreateFailed): frozenset({_P.FAILING}) for phase in _UNPAUSED},
    **{(phase, Paused): frozenset({_P.PAUSED}) for phase in _UNPAUSED if phase is not _P.STALLED},
    (_P.STALLED, Paused): frozenset({_P.STALLED}),
    (_P.PAUSED, Resumed): frozenset({_P.PROGRESSING}),
    (_P.NEW, Observed): _AFTER_OBSERVED | {_P.NEW},
    (_P.PROGRESSING, Observed): _AFTER_OBSERVED | {_P.STALLED},
    (_P.COMPLETE, Observed): _AFTER_OBSERVED,
    (_P.FAILING, Observed): _AFTER_OBSERVED | {_P.FAILING, _P.STALLED},
    (_P.STALLED, Observed): _AFTER_OBSERVED | {_P.STALLED},
    **{(phase, DeadlineRemoved): frozenset({_P.NEW}) for phase in _ANY if phase is not _P.NEW},
}
"""Every (state, event) pair the machine accepts and the phases it may lead to; any other pair
raises :class:`InvalidTransitionError`."""


def step(state: Progress, event: Event) -> tuple[Progress, Effects]:
    handler = _HANDLERS.get((state.phase, type(event)))
    if handler is None:
        raise InvalidTransitionError("rollout", state.phase.value, type(event).__name__)
    return handler(state, event)
