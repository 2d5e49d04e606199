"""A node's readiness as the node lifecycle controller sees it, as a pure state machine, and
the pure decisions that follow from readiness: when a pod on a NoExecute-tainted node must go
(taint eviction) and whether a zone is too disrupted to evict from.

The controller keeps one :class:`NodeHealth` per node, feeds it what it observes and applies
the effects of each :func:`step`; upstream's node lifecycle controller
(``monitorNodeHealth``, ``tryUpdateNodeHealth``, ``processTaintBaseEviction``) decides the same
things the same way.

::

    PENDING    registered; its kubelet never posted a Ready condition
    READY      Ready=True
    NOT_READY  Ready=False (the kubelet says so)
    UNKNOWN    Ready=Unknown: not heard from within the grace period (or the kubelet says so)

    any --ConditionReported(True | False | Unknown)--> READY | NOT_READY | UNKNOWN
    any --LeaseRenewed--> the same state, heard from now
    any --Checked, grace period passed since last heard--> UNKNOWN
                 + SetConditionsUnknown
                 + MarkPodsNotReady, RecordStatusChange("NodeNotReady")   (from READY only)
    any --Checked, within the grace period--> the same state + RecheckAfter(when it runs out)

Every step from a reported state ends with :class:`SetTaints`: the readiness taint the node
must carry now (``not-ready`` for NOT_READY, ``unreachable`` for UNKNOWN, none for READY), with
both the NoSchedule and the NoExecute effect. It is declarative, so a controller that applies
it on every step heals a taint someone removed. A NoExecute taint is what starts the eviction
timers of the pods on the node: :func:`eviction_time` says when each pod must go. PENDING
makes no claim about taints (the kubelet registers with its own ``not-ready`` taint).

"Heard from" is measured by the controller's own clock when it sees a change (a Lease renewal,
a new Ready heartbeat), never by the timestamps the kubelet writes, so clock skew between the
two cannot make a node look alive or dead; a controller that restarts gives every node a full
grace period again, as upstream does.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from attrs import field, frozen

from engenho.reconcilers.machines.errors import InvalidTransitionError
from engenho.reconcilers.machines.pods import parse_time

__all__ = [
    "NOT_READY_TAINT",
    "READINESS_TAINTS",
    "TRANSITIONS",
    "UNREACHABLE_TAINT",
    "Checked",
    "ConditionReported",
    "Effect",
    "Event",
    "LeaseRenewed",
    "MarkPodsNotReady",
    "NodeHealth",
    "Readiness",
    "RecheckAfter",
    "RecordStatusChange",
    "SetConditionsUnknown",
    "SetTaints",
    "Taint",
    "Toleration",
    "ZoneState",
    "eviction_time",
    "parse_taints",
    "parse_tolerations",
    "start",
    "step",
    "zone_key",
    "zone_state",
]

NOT_READY_TAINT = "node.kubernetes.io/not-ready"
UNREACHABLE_TAINT = "node.kubernetes.io/unreachable"
READINESS_TAINTS = (NOT_READY_TAINT, UNREACHABLE_TAINT)


class Readiness(enum.Enum):
    PENDING = "Pending"
    READY = "Ready"
    NOT_READY = "NotReady"
    UNKNOWN = "Unknown"


_TAINT_OF = {
    Readiness.READY: None,
    Readiness.NOT_READY: NOT_READY_TAINT,
    Readiness.UNKNOWN: UNREACHABLE_TAINT,
}
_REPORTED = {"True": Readiness.READY, "False": Readiness.NOT_READY, "Unknown": Readiness.UNKNOWN}


@frozen
class NodeHealth:
    """Where a node stands and when the controller last heard from its kubelet."""

    readiness: Readiness
    heard_at: datetime


def start(now: datetime) -> NodeHealth:
    """A node first seen at ``now``: nothing reported yet, a full grace period ahead."""
    return NodeHealth(Readiness.PENDING, now)


# ---------------------------------------------------------------------------- events


def _status(value: str) -> str:
    if value not in _REPORTED:
        raise ValueError(f"a Ready condition status is True, False or Unknown, not {value!r}")
    return value


@frozen
class ConditionReported:
    """The node's Ready condition reads ``status``; ``at`` is when the controller saw a new
    heartbeat in it (a new ``lastHeartbeatTime``), None when the heartbeat is one it had seen."""

    status: str = field(converter=_status)
    at: datetime | None = None


@frozen
class LeaseRenewed:
    """The controller saw the node's Lease renewed (a newer ``renewTime``) at ``at``."""

    at: datetime


@frozen
class Checked:
    """The controller's clock reads ``now``. ``grace`` is node-monitor-grace-period;
    ``startup_grace`` (node-startup-grace-period) applies to a node that never reported."""

    now: datetime
    grace: float
    startup_grace: float


Event = ConditionReported | LeaseRenewed | Checked

# ---------------------------------------------------------------------------- effects


@frozen
class SetConditionsUnknown:
    """Write the Ready, MemoryPressure, DiskPressure and PIDPressure conditions as Unknown
    (``NodeStatusUnknown``; ``NodeStatusNeverUpdated`` for one the kubelet never posted)."""


@frozen
class SetTaints:
    """The node's readiness taint is ``key`` (NoSchedule and NoExecute) and no other; None: no
    readiness taint at all."""

    key: str | None


@frozen
class MarkPodsNotReady:
    """Set the Ready condition of every pod on the node to False (nobody else will)."""


@frozen
class RecordStatusChange:
    """Record a Normal event ``status`` on the node (``Node x status is now: NodeNotReady``)."""

    status: str


@frozen
class RecheckAfter:
    """Step :class:`Checked` again in ``seconds``: the grace period runs out then."""

    seconds: float


Effect = SetConditionsUnknown | SetTaints | MarkPodsNotReady | RecordStatusChange | RecheckAfter
Effects = tuple[Effect, ...]

# ---------------------------------------------------------------------------- transitions


def _taints(readiness: Readiness) -> Effects:
    if readiness is Readiness.PENDING:
        return ()
    return (SetTaints(_TAINT_OF[readiness]),)


def _reported(state: NodeHealth, event: ConditionReported) -> tuple[NodeHealth, Effects]:
    readiness = _REPORTED[event.status]
    heard = state.heard_at if event.at is None else max(state.heard_at, event.at)
    return NodeHealth(readiness, heard), _taints(readiness)


def _renewed(state: NodeHealth, event: LeaseRenewed) -> tuple[NodeHealth, Effects]:
    # A renewal says the kubelet is alive, not that the node is ready: a node marked Unknown
    # stays so (and tainted) until its kubelet posts its Ready condition again.
    return NodeHealth(state.readiness, max(state.heard_at, event.at)), _taints(state.readiness)


def _checked(state: NodeHealth, event: Checked) -> tuple[NodeHealth, Effects]:
    pending = state.readiness is Readiness.PENDING
    due = state.heard_at + timedelta(seconds=event.startup_grace if pending else event.grace)
    if event.now > due:  # upstream's now.After(probeTimestamp + gracePeriod): strictly later
        effects: Effects = (SetConditionsUnknown(),)
        if state.readiness is Readiness.READY:
            effects = (*effects, MarkPodsNotReady(), RecordStatusChange("NodeNotReady"))
        return NodeHealth(Readiness.UNKNOWN, state.heard_at), (
            *effects,
            SetTaints(UNREACHABLE_TAINT),
        )
    return state, (*_taints(state.readiness), RecheckAfter((due - event.now).total_seconds()))


_Handler = Callable[[NodeHealth, Any], tuple[NodeHealth, Effects]]
_HANDLERS: dict[type, _Handler] = {
    ConditionReported: _reported,
    LeaseRenewed: _renewed,
    Checked: _checked,
}

_REPORTABLE = frozenset({Readiness.READY, Readiness.NOT_READY, Readiness.UNKNOWN})
TRANSITIONS: Mapping[tuple[Readiness, type], frozenset[Readiness]] = {
    **{(state, ConditionReported): _REPORTABLE for state in Readiness},
    **{(state, LeaseRenewed): frozenset({state}) for state in Readiness},
    **{(state, Checked): frozenset({state, Readiness.UNKNOWN}) for state in Readiness},
}
"""Every (state, event) pair the machine accepts and the states it may lead to. PENDING is
only ever a starting point: no event leads back to it."""


def step(state: NodeHealth, event: Event) -> tuple[NodeHealth, Effects]:
    handler = _HANDLERS.get(type(event))
    if handler is None or (state.readiness, type(event)) not in TRANSITIONS:
        raise InvalidTransitionError("node", state.readiness.value, type(event).__name__)
    return handler(state, event)


# ---------------------------------------------------------------------------- taint eviction


@frozen
class Taint:
    key: str
    effect: str
    value: str = ""
    added: datetime | None = None
    """``timeAdded``; None when whoever set the taint did not say."""


@frozen
class Toleration:
    key: str = ""
    operator: str = "Equal"
    value: str = ""
    effect: str = ""
    seconds: int | None = None
    """``tolerationSeconds``: how long a NoExecute taint is tolerated; None: for ever."""

    def tolerates(self, taint: Taint) -> bool:
        """Upstream's ``Toleration.ToleratesTaint``."""
        if self.effect and self.effect != taint.effect:
            return False
        if self.key and self.key != taint.key:
            return False
        if self.operator == "Exists":
            return True
        return self.operator in ("", "Equal") and self.value == taint.value


def _text(item: Mapping[str, Any], name: str) -> str:
    value = item.get(name)
    return value if isinstance(value, str) else ""


def parse_taints(items: Any) -> tuple[Taint, ...]:
    """The taints of a node's ``spec.taints`` (entries that are not objects are skipped)."""
    return tuple(
        Taint(
            _text(item, "key"),
            _text(item, "effect"),
            _text(item, "value"),
            parse_time(item.get("timeAdded")),
        )
        for item in (items if isinstance(items, list) else ())
        if isinstance(item, Mapping)
    )


def parse_tolerations(items: Any) -> tuple[Toleration, ...]:
    """The tolerations of a pod's ``spec.tolerations``."""
    tolerations = []
    for item in items if isinstance(items, list) else ():
        if not isinstance(item, Mapping):
            continue
        seconds = item.get("tolerationSeconds")
        tolerations.append(
            Toleration(
                _text(item, "key"),
                _text(item, "operator") or "Equal",
                _text(item, "value"),
                _text(item, "effect"),
                seconds if isinstance(seconds, int) and not isinstance(seconds, bool) else None,
            )
        )
    return tuple(tolerations)


def eviction_time(
    taints: Iterable[Taint], tolerations: Sequence[Toleration], default_added: datetime
) -> datetime | None:
    """When a pod with ``tolerations`` must leave a node with ``taints``, or None if it may
    stay for ever.

    Only NoExecute taints count. Each is matched by the first toleration that tolerates it, as
    upstream's taint manager does (``getMatchingTolerations``): an untolerated taint evicts at
    once (the time returned is when the taint was added, in the past), a toleration with
    ``tolerationSeconds`` lets the pod stay that long after the taint was added (zero or less:
    not at all), one without keeps it. The earliest deadline over all taints wins. A taint
    without ``timeAdded`` counts from ``default_added``.
    """
    deadline: datetime | None = None
    for taint in taints:
        if taint.effect != "NoExecute":
            continue
        added = taint.added or default_added
        toleration = next((t for t in tolerations if t.tolerates(taint)), None)
        if toleration is None:
            due = added
        elif toleration.seconds is None:
            continue
        else:
            due = added + timedelta(seconds=max(toleration.seconds, 0))
        deadline = due if deadline is None else min(deadline, due)
    return deadline


# ---------------------------------------------------------------------------- disruption


class ZoneState(enum.Enum):
    NORMAL = "Normal"
    PARTIAL_DISRUPTION = "PartialDisruption"
    FULL_DISRUPTION = "FullDisruption"


def zone_state(ready: int, not_ready: int, unhealthy_threshold: float = 0.55) -> ZoneState:
    """Upstream's ``ComputeZoneState``: no ready node in a zone that has nodes is a full
    disruption; more than two not-ready nodes making up at least ``unhealthy_threshold`` of the
    zone is a partial one."""
    if ready == 0 and not_ready > 0:
        return ZoneState.FULL_DISRUPTION
    if not_ready > 2 and not_ready / (not_ready + ready) >= unhealthy_threshold:
        return ZoneState.PARTIAL_DISRUPTION
    return ZoneState.NORMAL


def zone_key(labels: Any) -> str:
    """Upstream's ``GetZoneKey``: region and zone from a node's topology labels (or their
    deprecated beta names); nodes with neither share the zone ``""``."""
    labels = labels if isinstance(labels, Mapping) else {}

    def label(name: str) -> str:
        value = labels.get(f"topology.kubernetes.io/{name}") or labels.get(
            f"failure-domain.beta.kubernetes.io/{name}"
        )
        return value if isinstance(value, str) else ""

    region, zone = label("region"), label("zone")
    return f"{region}:\x00:{zone}" if region or zone else ""
