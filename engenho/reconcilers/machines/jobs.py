"""A Job's lifecycle as a pure state machine, and the pure arithmetic its controller runs on.

The lifecycle lives in the Job's conditions (upstream 1.29), which :meth:`JobState.of` reads::

    RUNNING   --Suspend-->          SUSPENDED   (Suspended=True, JobSuspended)
    SUSPENDED --Resume-->           RUNNING     (Suspended=False, JobResumed; startTime reset)
    RUNNING | SUSPENDED --Target--> FAILING     (FailureTarget=True: a pod failure policy
                                                 FailJob rule matched; pods are being cleaned)
    RUNNING | SUSPENDED | FAILING --Fail--> FAILED    (Failed=True: BackoffLimitExceeded,
                                                       DeadlineExceeded, PodFailurePolicy)
    RUNNING | SUSPENDED --Complete-->       COMPLETE  (Complete=True; completionTime)

COMPLETE and FAILED are final: they accept nothing. Each transition's effects are the conditions
to write, the events to record and the times to set; :data:`TRANSITIONS` lists every pair.

Besides the machine: completed-index sets in upstream's text form (``1,2,4-7``), the indexes an
Indexed Job creates next, how many pods should be active, the pod-failure back-off record
(10 s doubling, capped at 6 min, by default) and pod failure policy matching.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from attrs import frozen

from engenho.reconcilers.machines.errors import InvalidTransitionError

__all__ = [
    "DEFAULT_BACKOFF",
    "MAX_BACKOFF",
    "TRANSITIONS",
    "BackoffRecord",
    "Complete",
    "Effect",
    "Event",
    "Fail",
    "JobPhase",
    "JobState",
    "RecordEvent",
    "Resume",
    "SetCompletionTime",
    "SetCondition",
    "SetStartTime",
    "Suspend",
    "Target",
    "first_pending_indexes",
    "format_indexes",
    "match_pod_failure_policy",
    "next_backoff",
    "parse_indexes",
    "remaining_backoff",
    "step",
    "wanted_active",
]

DEFAULT_BACKOFF = 10.0
"""Seconds before the first retry after a pod failure (upstream's DefaultJobPodFailureBackOff)."""
MAX_BACKOFF = 360.0
"""The back-off doubles per failure up to this (MaxJobPodFailureBackOff, 6 minutes)."""


class JobPhase(enum.Enum):
    RUNNING = "Running"
    SUSPENDED = "Suspended"
    FAILING = "Failing"
    COMPLETE = "Complete"
    FAILED = "Failed"


def _true(conditions: Any, type_: str) -> Mapping[str, Any] | None:
    for item in conditions if isinstance(conditions, list) else ():
        if isinstance(item, Mapping) and item.get("type") == type_ and item.get("status") == "True":
            return item
    return None


@frozen
class JobState:
    phase: JobPhase
    reason: str = ""
    """The failure reason carried by FAILING and FAILED."""
    message: str = ""

    @classmethod
    def of(cls, conditions: Any) -> JobState:
        """The state a Job's ``status.conditions`` say it is in."""
        if _true(conditions, "Complete") is not None:
            return cls(JobPhase.COMPLETE)
        for type_, phase in (("Failed", JobPhase.FAILED), ("FailureTarget", JobPhase.FAILING)):
            found = _true(conditions, type_)
            if found is not None:
                return cls(phase, str(found.get("reason") or ""), str(found.get("message") or ""))
        if _true(conditions, "Suspended") is not None:
            return cls(JobPhase.SUSPENDED)
        return cls(JobPhase.RUNNING)

    @property
    def finished(self) -> bool:
        return self.phase in (JobPhase.COMPLETE, JobPhase.FAILED)


# ---------------------------------------------------------------------------- events


@frozen
class Suspend:
    """``spec.suspend`` is true (and the pods were deleted)."""


@frozen
class Resume:
    """``spec.suspend`` turned false."""


@frozen
class Target:
    """A FailJob rule of the pod failure policy matched: the Job will fail once its pods are
    accounted for."""

    reason: str
    message: str


@frozen
class Fail:
    reason: str
    message: str


@frozen
class Complete:
    """Enough pods succeeded and none is active."""


Event = Suspend | Resume | Target | Fail | Complete

# ---------------------------------------------------------------------------- effects


@frozen
class SetCondition:
    type: str
    status: str
    reason: str = ""
    message: str = ""


@frozen
class RecordEvent:
    type: str
    reason: str
    message: str


@frozen
class SetStartTime:
    """Set ``status.startTime`` to now (a resumed Job's deadline counts from its resumption)."""


@frozen
class SetCompletionTime:
    """Set ``status.completionTime`` to now."""


Effect = SetCondition | RecordEvent | SetStartTime | SetCompletionTime
Effects = tuple[Effect, ...]
_Handler = Callable[[JobState, Any], tuple[JobState, Effects]]


def _suspend(_state: JobState, _event: Suspend) -> tuple[JobState, Effects]:
    return JobState(JobPhase.SUSPENDED), (
        SetCondition("Suspended", "True", "JobSuspended", "Job suspended"),
        RecordEvent("Normal", "Suspended", "Job suspended"),
    )


def _resume(_state: JobState, _event: Resume) -> tuple[JobState, Effects]:
    return JobState(JobPhase.RUNNING), (
        SetCondition("Suspended", "False", "JobResumed", "Job resumed"),
        SetStartTime(),
        RecordEvent("Normal", "Resumed", "Job resumed"),
    )


def _target(_state: JobState, event: Target) -> tuple[JobState, Effects]:
    return JobState(JobPhase.FAILING, event.reason, event.message), (
        SetCondition("FailureTarget", "True", event.reason, event.message),
    )


def _fail(_state: JobState, event: Fail) -> tuple[JobState, Effects]:
    return JobState(JobPhase.FAILED, event.reason, event.message), (
        SetCondition("Failed", "True", event.reason, event.message),
        RecordEvent("Warning", event.reason, event.message),
    )


def _complete(_state: JobState, _event: Complete) -> tuple[JobState, Effects]:
    return JobState(JobPhase.COMPLETE), (
        SetCondition("Complete", "True"),
        SetCompletionTime(),
        RecordEvent("Normal", "Completed", "Job completed"),
    )


_P = JobPhase
_HANDLERS: dict[tuple[JobPhase, type], _Handler] = {
    (_P.RUNNING, Suspend): _suspend,
    (_P.SUSPENDED, Resume): _resume,
    (_P.RUNNING, Target): _target,
    (_P.SUSPENDED, Target): _target,
    (_P.RUNNING, Fail): _fail,
    (_P.SUSPENDED, Fail): _fail,
    (_P.FAILING, Fail): _fail,
    (_P.RUNNING, Complete): _complete,
    (_P.SUSPENDED, Complete): _complete,
}

TRANSITIONS: Mapping[tuple[JobPhase, type], JobPhase] = {
    (_P.RUNNING, Suspend): _P.SUSPENDED,
    (_P.SUSPENDED, Resume): _P.RUNNING,
    (_P.RUNNING, Target): _P.FAILING,
    (_P.SUSPENDED, Target): _P.FAILING,
    (_P.RUNNING, Fail): _P.FAILED,
    (_P.SUSPENDED, Fail): _P.FAILED,
    (_P.FAILING, Fail): _P.FAILED,
    (_P.RUNNING, Complete): _P.COMPLETE,
    (_P.SUSPENDED, Complete): _P.COMPLETE,
}
"""Every (state, event) pair the machine accepts and the phase it leads to; any other pair
raises :class:`InvalidTransitionError`."""


def step(state: JobState, event: Event) -> tuple[JobState, Effects]:
    handler = _HANDLERS.get((state.phase, type(event)))
    if handler is None:
        raise InvalidTransitionError("job", state.phase.value, type(event).__name__)
    return handler(state, event)


# ---------------------------------------------------------------------------- indexes


def parse_indexes(text: Any, completions: int) -> set[int]:
    """``status.completedIndexes`` (``1,3-5``) as a set, ignoring what does not parse and
    indexes at or above ``completions`` (parseIndexesFromString)."""
    found: set[int] = set()
    if not isinstance(text, str):
        return found
    for part in text.split(","):
        first, _, last = part.strip().partition("-")
        try:
            low = int(first)
            high = int(last) if last else low
        except ValueError:
            continue
        found.update(i for i in range(max(low, 0), min(high, completions - 1) + 1))
    return found


def format_indexes(indexes: Iterable[int]) -> str:
    """Upstream's text form: runs of three or more as ``a-b``, pairs as ``a,b``."""
    ordered = sorted(set(indexes))
    parts: list[str] = []
    start = 0
    while start < len(ordered):
        end = start
        while end + 1 < len(ordered) and ordered[end + 1] == ordered[end] + 1:
            end += 1
        first, last = ordered[start], ordered[end]
        if last == first:
            parts.append(str(first))
        elif last == first + 1:
            parts.append(f"{first},{last}")
        else:
            parts.append(f"{first}-{last}")
        start = end + 1
    return ",".join(parts)


def first_pending_indexes(
    succeeded: Iterable[int], active: Iterable[int], count: int, completions: int
) -> list[int]:
    """The lowest ``count`` indexes below ``completions`` neither succeeded nor held by an
    active pod (firstPendingIndexes)."""
    taken = set(succeeded) | set(active)
    pending = (i for i in range(completions) if i not in taken)
    return [index for _, index in zip(range(max(count, 0)), pending, strict=False)]


def wanted_active(completions: int | None, parallelism: int, succeeded: int, active: int) -> int:
    """How many pods should be active (manageJob): ``parallelism``, never more than the
    completions still missing; a Job without completions stops adding pods after a success."""
    if completions is None:
        return active if succeeded > 0 else parallelism
    return max(0, min(completions - succeeded, parallelism))


# ---------------------------------------------------------------------------- back-off


@frozen
class BackoffRecord:
    """Failures since the last success, and when the latest of them finished."""

    failures: int = 0
    last_failure: datetime | None = None


def next_backoff(
    record: BackoffRecord,
    succeeded: Sequence[datetime],
    failed: Sequence[datetime],
) -> BackoffRecord:
    """The record after pods newly finished at those times (newBackoffRecord): a success
    resets it, counting only failures that finished after the last success."""
    failed = sorted(failed)
    if not succeeded:
        if not failed:
            return record
        return BackoffRecord(record.failures + len(failed), failed[-1])
    last_success = max(succeeded)
    later = [t for t in failed if t > last_success]
    return BackoffRecord(len(later), later[-1] if later else None)


def remaining_backoff(
    record: BackoffRecord,
    now: datetime,
    base: float = DEFAULT_BACKOFF,
    maximum: float = MAX_BACKOFF,
) -> float:
    """Seconds to wait before creating pods again: ``base`` doubling per failure after the
    first, capped at ``maximum``, counted from the last failure."""
    if record.failures == 0 or record.last_failure is None:
        return 0.0
    delay = base
    for _ in range(1, record.failures):
        delay *= 2
        if delay >= maximum:
            delay = maximum
            break
    elapsed = (now - record.last_failure) / timedelta(seconds=1)
    return max(0.0, delay - elapsed)


# ---------------------------------------------------------------------------- pod failure policy


def _exit_code_match(statuses: Any, requirement: Mapping[str, Any]) -> Mapping[str, Any] | None:
    container = requirement.get("containerName")
    operator = requirement.get("operator")
    values = set(requirement.get("values") or [])
    for status in statuses if isinstance(statuses, list) else ():
        terminated = ((status or {}).get("state") or {}).get("terminated")
        if not isinstance(terminated, Mapping):
            continue  # still terminating: no exit code to match
        if container and container != status.get("name"):
            continue
        code = terminated.get("exitCode", 0)
        if code == 0:
            continue
        if (operator == "In" and code in values) or (operator == "NotIn" and code not in values):
            return status  # type: ignore[no-any-return]
    return None


def match_pod_failure_policy(
    policy: Any, pod: Mapping[str, Any]
) -> tuple[str | None, bool, str | None]:
    """(FailJob message, whether the failure counts toward the back-off limit, the matching
    rule's action) for a failed pod (matchPodFailurePolicy). Without a policy, or when no rule
    matches, the failure counts."""
    if not isinstance(policy, Mapping):
        return None, True, None
    meta = pod.get("metadata") or {}
    where = f"{meta.get('namespace', '')}/{meta.get('name', '')}"
    status = pod.get("status") or {}
    for index, rule in enumerate(policy.get("rules") or []):
        if not isinstance(rule, Mapping):
            continue
        action = str(rule.get("action") or "")
        detail: str | None = None
        on_exit = rule.get("onExitCodes")
        if isinstance(on_exit, Mapping):
            matched = _exit_code_match(status.get("containerStatuses"), on_exit) or (
                _exit_code_match(status.get("initContainerStatuses"), on_exit)
            )
            if matched is not None:
                code = matched["state"]["terminated"].get("exitCode")
                detail = (
                    f"Container {matched.get('name')} for pod {where} failed with exit code "
                    f"{code} matching {action} rule at index {index}"
                )
        else:
            for pattern in rule.get("onPodConditions") or []:
                found = next(
                    (
                        c
                        for c in status.get("conditions") or []
                        if c.get("type") == pattern.get("type")
                        and c.get("status") == pattern.get("status", "True")
                    ),
                    None,
                )
                if found is not None:
                    detail = (
                        f"Pod {where} has condition {found.get('type')} matching {action} "
                        f"rule at index {index}"
                    )
                    break
        if detail is None:
            continue
        if action == "Ignore":
            return None, False, action
        if action == "Count":
            return None, True, action
        if action == "FailJob":
            return detail, True, action
    return None, True, None
