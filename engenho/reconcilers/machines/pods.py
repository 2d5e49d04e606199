"""A pod as the workload controllers see it, as a pure state machine.

Controllers never run pods; they need to know whether each pod is active, ready, available
(ready for ``minReadySeconds``), terminating or finished, and how far along it is when choosing
which pods to delete first. That view is this machine's state, and :func:`observe` is the only
way the controllers compute it: it feeds the evidence a pod object carries through
:func:`step`, in lifecycle order, from :data:`START`.

::

    UNSCHEDULED --Bound--> SCHEDULED --Started--> RUNNING --BecameReady--> READY
    READY --Checked--> AVAILABLE            (minReadySeconds have passed since it became ready)
    READY --Checked--> READY + RecheckAfter (not yet; look again when they have)
    UNSCHEDULED..AVAILABLE --DeletionRequested--> TERMINATING
    UNSCHEDULED..AVAILABLE, TERMINATING --Exited--> SUCCEEDED | FAILED   (final)

A snapshot that claims something its earlier steps do not support (running with no node, ready
while not running) is read as the furthest state its evidence does support: a pod no node has
accepted is not counted as ready, whatever its status says.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from attrs import frozen

from engenho.reconcilers.machines.errors import InvalidTransitionError

__all__ = [
    "START",
    "TRANSITIONS",
    "BecameReady",
    "Bound",
    "Checked",
    "DeletionRequested",
    "Event",
    "Exited",
    "PodPhase",
    "PodView",
    "RecheckAfter",
    "Started",
    "observe",
    "parse_time",
    "step",
]


class PodPhase(enum.Enum):
    UNSCHEDULED = "Unscheduled"
    SCHEDULED = "Scheduled"
    RUNNING = "Running"
    READY = "Ready"
    AVAILABLE = "Available"
    TERMINATING = "Terminating"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


_LIVE = (
    PodPhase.UNSCHEDULED,
    PodPhase.SCHEDULED,
    PodPhase.RUNNING,
    PodPhase.READY,
    PodPhase.AVAILABLE,
)
_FINISHED = (PodPhase.SUCCEEDED, PodPhase.FAILED)


@frozen
class PodView:
    """Where a pod stands; ``ready_since`` is when its Ready condition last became True."""

    phase: PodPhase
    ready_since: datetime | None = None

    @property
    def active(self) -> bool:
        """Counts toward a controller's replicas (upstream's ``IsPodActive``)."""
        return self.phase in _LIVE

    @property
    def ready(self) -> bool:
        return self.phase in (PodPhase.READY, PodPhase.AVAILABLE)

    @property
    def available(self) -> bool:
        return self.phase is PodPhase.AVAILABLE

    @property
    def terminating(self) -> bool:
        return self.phase is PodPhase.TERMINATING

    @property
    def finished(self) -> bool:
        return self.phase in _FINISHED

    @property
    def progress(self) -> int:
        """How far along a live pod is: unscheduled 0, pending 1, running 2, ready 3. Pods
        that are less far along are deleted first (upstream's ``ActivePodsWithRanks``: no node,
        then Pending before Running, then not ready before ready)."""
        return {
            PodPhase.UNSCHEDULED: 0,
            PodPhase.SCHEDULED: 1,
            PodPhase.RUNNING: 2,
            PodPhase.READY: 3,
            PodPhase.AVAILABLE: 3,
        }.get(self.phase, 3)


START = PodView(PodPhase.UNSCHEDULED)

# ---------------------------------------------------------------------------- events


@frozen
class Bound:
    """A node accepted the pod (``spec.nodeName`` is set)."""


@frozen
class Started:
    """The node runs the pod (``status.phase`` is Running)."""


@frozen
class BecameReady:
    """The Ready condition is True, since ``since`` (its lastTransitionTime, if it has one)."""

    since: datetime | None


@frozen
class Checked:
    """The clock read ``now``: is a ready pod available under ``min_ready_seconds``?"""

    now: datetime
    min_ready_seconds: int


@frozen
class DeletionRequested:
    """``metadata.deletionTimestamp`` is set."""


@frozen
class Exited:
    """The pod reached a final phase (``Succeeded`` when ``succeeded``, else ``Failed``)."""

    succeeded: bool


Event = Bound | Started | BecameReady | Checked | DeletionRequested | Exited


@frozen
class RecheckAfter:
    """Look at the pod again in ``seconds``: it becomes available then, if still ready."""

    seconds: float


Effects = tuple[RecheckAfter, ...]
_Handler = Callable[[PodView, Any], tuple[PodView, Effects]]

# ---------------------------------------------------------------------------- transitions


def _to(phase: PodPhase) -> _Handler:
    def handler(state: PodView, _event: Any) -> tuple[PodView, Effects]:
        return PodView(phase, state.ready_since if phase is PodPhase.READY else None), ()

    return handler


def _became_ready(_state: PodView, event: BecameReady) -> tuple[PodView, Effects]:
    return PodView(PodPhase.READY, event.since), ()


def _checked(state: PodView, event: Checked) -> tuple[PodView, Effects]:
    # Upstream's IsPodAvailable: minReadySeconds of 0, or a known transition time that many
    # seconds strictly before now; a ready pod with no transition time never becomes available.
    if event.min_ready_seconds <= 0:
        return PodView(PodPhase.AVAILABLE, state.ready_since), ()
    if state.ready_since is None:
        return state, ()
    due = state.ready_since + timedelta(seconds=event.min_ready_seconds)
    if due < event.now:
        return PodView(PodPhase.AVAILABLE, state.ready_since), ()
    return state, (RecheckAfter((due - event.now).total_seconds()),)


def _exited(_state: PodView, event: Exited) -> tuple[PodView, Effects]:
    return PodView(PodPhase.SUCCEEDED if event.succeeded else PodPhase.FAILED), ()


_HANDLERS: dict[tuple[PodPhase, type], _Handler] = {
    (PodPhase.UNSCHEDULED, Bound): _to(PodPhase.SCHEDULED),
    (PodPhase.SCHEDULED, Started): _to(PodPhase.RUNNING),
    (PodPhase.RUNNING, BecameReady): _became_ready,
    (PodPhase.READY, Checked): _checked,
    **{(phase, DeletionRequested): _to(PodPhase.TERMINATING) for phase in _LIVE},
    **{(phase, Exited): _exited for phase in (*_LIVE, PodPhase.TERMINATING)},
}

TRANSITIONS: Mapping[tuple[PodPhase, type], frozenset[PodPhase]] = {
    (PodPhase.UNSCHEDULED, Bound): frozenset({PodPhase.SCHEDULED}),
    (PodPhase.SCHEDULED, Started): frozenset({PodPhase.RUNNING}),
    (PodPhase.RUNNING, BecameReady): frozenset({PodPhase.READY}),
    (PodPhase.READY, Checked): frozenset({PodPhase.READY, PodPhase.AVAILABLE}),
    **{(phase, DeletionRequested): frozenset({PodPhase.TERMINATING}) for phase in _LIVE},
    **{(phase, Exited): frozenset(_FINISHED) for phase in (*_LIVE, PodPhase.TERMINATING)},
}
"""Every (state, event) pair the machine accepts and the states it may lead to; any other pair
raises :class:`InvalidTransitionError`."""


def step(state: PodView, event: Event) -> tuple[PodView, Effects]:
    handler = _HANDLERS.get((state.phase, type(event)))
    if handler is None:
        raise InvalidTransitionError("pod", state.phase.value, type(event).__name__)
    return handler(state, event)


# ---------------------------------------------------------------------------- reading a pod


def parse_time(value: Any) -> datetime | None:
    """An RFC 3339 time as the API writes it (``Z`` or an offset, any precision), or None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _ready_condition(status: Mapping[str, Any]) -> Mapping[str, Any] | None:
    conditions = status.get("conditions")
    for item in conditions if isinstance(conditions, list) else ():
        if isinstance(item, Mapping) and item.get("type") == "Ready":
            return item
    return None


def _section(obj: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = obj.get(name)
    return value if isinstance(value, Mapping) else {}


def observe(
    pod: Mapping[str, Any], now: datetime, min_ready_seconds: int = 0
) -> tuple[PodView, Effects]:
    """The view of ``pod`` at ``now``: its evidence stepped through the machine in order."""
    spec, status, meta = (_section(pod, name) for name in ("spec", "status", "metadata"))
    phase = status.get("phase")
    state: PodView = START
    effects: Effects = ()

    def advance(event: Event) -> None:
        nonlocal state, effects
        state, more = step(state, event)
        effects = (*effects, *more)

    if spec.get("nodeName"):
        advance(Bound())
    if state.phase is PodPhase.SCHEDULED and phase == "Running":
        advance(Started())
    ready = _ready_condition(status)
    if state.phase is PodPhase.RUNNING and ready is not None and ready.get("status") == "True":
        advance(BecameReady(parse_time(ready.get("lastTransitionTime"))))
    deleting = bool(meta.get("deletionTimestamp"))
    exited = phase in ("Succeeded", "Failed")
    # The clock matters only to a pod that stays: one going away will never become available.
    if state.phase is PodPhase.READY and not deleting and not exited:
        advance(Checked(now, min_ready_seconds))
    if deleting:
        advance(DeletionRequested())
    if exited:
        advance(Exited(phase == "Succeeded"))
    return state, effects
