"""The arithmetic of a Deployment's rollout (upstream's deployment util), on plain objects.

- ``maxSurge`` / ``maxUnavailable`` are absolute numbers or percentages of ``spec.replicas``;
  surge rounds up, unavailability down, and when both come to zero unavailability is one
  (upstream's ResolveFenceposts).
- How far the new ReplicaSet may grow, how old ones shrink proportionally when the Deployment
  is resized mid-rollout, and the Deployment's status summed over its ReplicaSets.

Everything here is a pure function of the objects it is given.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from engenho.projections import StoredObject
from engenho.reconcilers.machines.pods import parse_time
from engenho.reconcilers.revisions import MAX_REPLICAS, annotations_of

__all__ = [
    "active",
    "available_count",
    "by_creation",
    "calculate_status",
    "complete",
    "fenceposts",
    "max_surge",
    "max_unavailable",
    "new_replicas",
    "progressed",
    "proportion",
    "replicas_of",
    "rolling",
    "scaled_value",
    "spec_count",
    "status_count",
]

_PERCENT = re.compile(r"^(\d+)%$")


def replicas_of(obj: Mapping[str, Any]) -> int:
    """``spec.replicas`` (1 when absent, as defaulting would make it)."""
    value = (obj.get("spec") or {}).get("replicas", 1)
    return value if isinstance(value, int) and not isinstance(value, bool) else 1


def _status(obj: Mapping[str, Any], field: str) -> int:
    value = (obj.get("status") or {}).get(field, 0)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def spec_count(replica_sets: Iterable[StoredObject | None]) -> int:
    """Sum of ``spec.replicas`` (GetReplicaCountForReplicaSets)."""
    return sum(replicas_of(rs.object) for rs in replica_sets if rs is not None)


def status_count(replica_sets: Iterable[StoredObject | None], field: str = "replicas") -> int:
    """Sum of a status counter (GetActualReplicaCountForReplicaSets and friends)."""
    return sum(_status(rs.object, field) for rs in replica_sets if rs is not None)


def available_count(replica_sets: Iterable[StoredObject | None]) -> int:
    """Available pods that will stay: a ReplicaSet's available pods beyond its spec are about
    to be deleted, so at most ``spec.replicas`` of them count toward minimum availability."""
    return sum(
        min(_status(rs.object, "availableReplicas"), replicas_of(rs.object))
        for rs in replica_sets
        if rs is not None
    )


def active(replica_sets: Iterable[StoredObject | None]) -> list[StoredObject]:
    """ReplicaSets asked for pods (FilterActiveReplicaSets)."""
    return [rs for rs in replica_sets if rs is not None and replicas_of(rs.object) > 0]


def by_creation(replica_sets: Iterable[StoredObject]) -> list[StoredObject]:
    """Oldest first, names breaking ties (ReplicaSetsByCreationTimestamp)."""

    def key(rs: StoredObject) -> tuple[float, str]:
        created = parse_time(rs.object.get("metadata", {}).get("creationTimestamp"))
        return (created.timestamp() if created else 0.0, rs.name)

    return sorted(replica_sets, key=key)


def rolling(deployment: Mapping[str, Any]) -> bool:
    strategy = (deployment.get("spec") or {}).get("strategy") or {}
    return bool(strategy.get("type", "RollingUpdate") == "RollingUpdate")


def scaled_value(value: Any, total: int, *, round_up: bool) -> int:
    """An IntOrString as a number: an int as is, ``"N%"`` as N percent of ``total``."""
    if value is None:
        return 0
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    match = _PERCENT.match(str(value))
    if match is None:
        raise ValueError(f"invalid value for IntOrString: {value!r} is not a percentage")
    exact = int(match.group(1)) * total / 100
    return math.ceil(exact) if round_up else math.floor(exact)


def fenceposts(deployment: Mapping[str, Any]) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) as numbers (ResolveFenceposts)."""
    spec = deployment.get("spec") or {}
    update = (spec.get("strategy") or {}).get("rollingUpdate") or {}
    desired = replicas_of(deployment)
    surge = scaled_value(update.get("maxSurge", "25%"), desired, round_up=True)
    unavailable = scaled_value(update.get("maxUnavailable", "25%"), desired, round_up=False)
    if surge == 0 and unavailable == 0:
        # Rounding down may make both zero, which would block the rollout: allow one.
        unavailable = 1
    return surge, unavailable


def max_surge(deployment: Mapping[str, Any]) -> int:
    return fenceposts(deployment)[0] if rolling(deployment) else 0


def max_unavailable(deployment: Mapping[str, Any]) -> int:
    desired = replicas_of(deployment)
    if not rolling(deployment) or desired == 0:
        return 0
    return min(fenceposts(deployment)[1], desired)


def new_replicas(
    deployment: Mapping[str, Any], all_sets: Sequence[StoredObject], new: StoredObject | None
) -> int:
    """What the new ReplicaSet may be scaled to now (NewRSNewReplicas).

    Surge is counted on the larger of each ReplicaSet's spec and its reported pods: a pod an
    old ReplicaSet has been told to drop still runs until its controller deletes it.
    """
    desired = replicas_of(deployment)
    current = 0 if new is None else replicas_of(new.object)
    if not rolling(deployment):
        return desired
    pods = sum(max(replicas_of(rs.object), _status(rs.object, "replicas")) for rs in all_sets)
    allowed = desired + max_surge(deployment)
    if pods >= allowed:
        return current
    return current + min(allowed - pods, desired - current)


def _fraction(rs: StoredObject, deployment: Mapping[str, Any]) -> int:
    """How many replicas ``rs`` gains (or loses) when its Deployment is resized."""
    desired = replicas_of(deployment)
    if desired == 0:
        return -replicas_of(rs.object)
    target = desired + max_surge(deployment)
    try:
        before = int(annotations_of(rs.object)[MAX_REPLICAS])
    except (KeyError, ValueError):
        # Without the annotation, assume it was sized for what the Deployment has now.
        before = _status(deployment, "replicas")
    if before == 0:
        return 0
    size = replicas_of(rs.object) * target / before
    return int(math.copysign(math.floor(abs(size) + 0.5), size)) - replicas_of(rs.object)


def proportion(rs: StoredObject, deployment: Mapping[str, Any], to_add: int, added: int) -> int:
    """The share of ``to_add`` replicas ``rs`` takes (GetReplicaSetProportion)."""
    if replicas_of(rs.object) == 0 or to_add in (0, added):
        return 0
    fraction = _fraction(rs, deployment)
    allowed = to_add - added
    return min(fraction, allowed) if to_add > 0 else max(fraction, allowed)


def complete(deployment: Mapping[str, Any], status: Mapping[str, Any]) -> bool:
    """Every replica updated and available, and the latest generation observed."""
    desired = replicas_of(deployment)
    return bool(
        status.get("updatedReplicas", 0) == desired
        and status.get("replicas", 0) == desired
        and status.get("availableReplicas", 0) == desired
        and status.get("observedGeneration", 0)
        >= deployment.get("metadata", {}).get("generation", 0)
    )


def progressed(deployment: Mapping[str, Any], status: Mapping[str, Any]) -> bool:
    """Whether ``status`` shows progress over the stored one (DeploymentProgressing)."""
    old = deployment.get("status") or {}

    def get(s: Mapping[str, Any], field: str) -> int:
        value = s.get(field, 0)
        return value if isinstance(value, int) else 0

    old_old = get(old, "replicas") - get(old, "updatedReplicas")
    new_old = get(status, "replicas") - get(status, "updatedReplicas")
    return (
        get(status, "updatedReplicas") > get(old, "updatedReplicas")
        or new_old < old_old
        or get(status, "readyReplicas") > get(old, "readyReplicas")
        or get(status, "availableReplicas") > get(old, "availableReplicas")
    )


def calculate_status(
    deployment: Mapping[str, Any], all_sets: Sequence[StoredObject], new: StoredObject | None
) -> dict[str, Any]:
    """The counters of a Deployment's status summed over its ReplicaSets (calculateStatus,
    without the conditions); zero counters are left out, as upstream's omitempty does."""
    available = status_count(all_sets, "availableReplicas")
    unavailable = max(spec_count(all_sets) - available, 0)
    counters = {
        "observedGeneration": deployment.get("metadata", {}).get("generation", 0),
        "replicas": status_count(all_sets),
        "updatedReplicas": status_count([new]),
        "readyReplicas": status_count(all_sets, "readyReplicas"),
        "availableReplicas": available,
        "unavailableReplicas": unavailable,
    }
    return {field: value for field, value in counters.items() if value}
