"""The pods of a Job as its controller reads and makes them (upstream's job controller
utilities): which are active, finished, failed or still tracked by the
``batch.kubernetes.io/job-tracking`` finalizer, their completion indexes and finish times, the
order extra pods are deleted in, the pod made from the template, the status counters moved
once finalizers are gone, and :class:`JobView`, what one sync knows.
"""

from __future__ import annotations

import copy
from collections import defaultdict
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from engenho.projections import StoredObject
from engenho.reconcilers.machines.jobs import Complete, Fail, SetCondition, Target
from engenho.reconcilers.machines.pods import observe, parse_time
from engenho.reconcilers.ownership import deleting
from engenho.reconcilers.templates import int_field, pod_from_template, spec_of, template_of

__all__ = [
    "COMPLETION_INDEX",
    "MAX_PER_SYNC",
    "MAX_UNCOUNTED",
    "TRACKING_FINALIZER",
    "JobView",
    "active",
    "apply_condition",
    "completion_index",
    "count_released",
    "finished_time",
    "has_finalizer",
    "job_pod",
    "past_restart_limit",
    "phase_of",
    "ready",
    "removal_order",
    "set_count",
    "terminal",
]

TRACKING_FINALIZER = "batch.kubernetes.io/job-tracking"
COMPLETION_INDEX = "batch.kubernetes.io/job-completion-index"
_INDEX_ENV = "JOB_COMPLETION_INDEX"
MAX_UNCOUNTED = 500
"""The most pods one sync records in uncountedTerminatedPods (upstream's MaxUncountedPods)."""
MAX_PER_SYNC = 500
"""The most pods one sync creates or deletes (MaxPodCreateDeletePerSync)."""
_MAX_GENERATED_PREFIX = 58


def has_finalizer(pod: StoredObject) -> bool:
    return TRACKING_FINALIZER in ((pod.object.get("metadata") or {}).get("finalizers") or [])


def phase_of(pod: StoredObject) -> str:
    return str((pod.object.get("status") or {}).get("phase") or "")


def terminal(pod: StoredObject) -> bool:
    return phase_of(pod) in ("Succeeded", "Failed")


def active(pod: StoredObject) -> bool:
    """Counts toward ``status.active`` (FilterActivePods): not finished, not being deleted."""
    return not terminal(pod) and not deleting(pod)


def ready(pod: StoredObject) -> bool:
    conditions = (pod.object.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def completion_index(pod: Mapping[str, Any]) -> int | None:
    """The pod's completion index annotation as a number (None when absent or invalid)."""
    value = ((pod.get("metadata") or {}).get("annotations") or {}).get(COMPLETION_INDEX)
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def finished_time(pod: Mapping[str, Any]) -> datetime:
    """When a pod finished (getFinishedTime): its last container's termination, else when it
    stopped being ready, else its deletion, else its creation."""
    status = pod.get("status") or {}
    ends = [
        parse_time(((c.get("state") or {}).get("terminated") or {}).get("finishedAt"))
        for field in ("containerStatuses", "initContainerStatuses")
        for c in status.get(field) or []
        if isinstance(c, dict)
    ]
    known = [t for t in ends if t is not None]
    if known:
        return max(known)
    for condition in status.get("conditions") or []:
        if condition.get("type") == "Ready" and condition.get("status") == "False":
            moment = parse_time(condition.get("lastTransitionTime"))
            if moment is not None:
                return moment
    meta = pod.get("metadata") or {}
    for field in ("deletionTimestamp", "creationTimestamp"):
        moment = parse_time(meta.get(field))
        if moment is not None:
            return moment
    return datetime.fromtimestamp(0, UTC)


def apply_condition(
    conditions: list[dict[str, Any]], wanted: SetCondition, stamp: str
) -> list[dict[str, Any]]:
    """ensureJobConditionStatus: add the condition, or update it when its status, reason or
    message changed (lastTransitionTime moves with the status)."""
    result = [dict(c) for c in conditions]
    for existing in result:
        if existing.get("type") != wanted.type:
            continue
        same = (existing.get("status"), existing.get("reason", ""), existing.get("message", ""))
        if same == (wanted.status, wanted.reason, wanted.message):
            return result
        if existing.get("status") != wanted.status:
            existing["lastTransitionTime"] = stamp
        existing["status"] = wanted.status
        existing["lastProbeTime"] = stamp
        for field, value in (("reason", wanted.reason), ("message", wanted.message)):
            if value:
                existing[field] = value
            else:
                existing.pop(field, None)
        return result
    condition: dict[str, Any] = {
        "type": wanted.type,
        "status": wanted.status,
        "lastProbeTime": stamp,
        "lastTransitionTime": stamp,
    }
    if wanted.reason:
        condition["reason"] = wanted.reason
    if wanted.message:
        condition["message"] = wanted.message
    result.append(condition)
    return result


def _index_env(container: dict[str, Any]) -> None:
    env = container.setdefault("env", [])
    if any(item.get("name") == _INDEX_ENV for item in env):
        return
    env.append(
        {
            "name": _INDEX_ENV,
            "valueFrom": {
                "fieldRef": {
                    "apiVersion": "v1",
                    "fieldPath": f"metadata.annotations['{COMPLETION_INDEX}']",
                }
            },
        }
    )


def _generate_name(job: str, index: int) -> str:
    """``<job>-<index>-``, the job name cut so a generated name fits (podGenerateNameWithIndex)."""
    suffix = f"-{index}-"
    prefix = job + suffix
    if len(prefix) > _MAX_GENERATED_PREFIX:
        prefix = prefix[: _MAX_GENERATED_PREFIX - len(suffix)] + suffix
    return prefix


class JobView:
    """What one sync of a Job knows and has decided (upstream's syncJobCtx)."""

    def __init__(self, job: StoredObject, pods: list[StoredObject], expected: set[str]) -> None:
        self.job = job
        self.pods = pods
        self.expected = expected
        """Pods whose finalizer this controller removed but the cache still shows."""
        spec = spec_of(job.object)
        self.spec = spec
        self.status: dict[str, Any] = copy.deepcopy(job.object.get("status") or {})
        completions = spec.get("completions")
        self.completions: int | None = (
            completions
            if isinstance(completions, int) and not isinstance(completions, bool)
            else None
        )
        self.indexed = spec.get("completionMode") == "Indexed" and self.completions is not None
        self.parallelism = int_field(spec, "parallelism", 1)
        self.policy = spec.get("podFailurePolicy")
        self.only_failed = spec.get("podReplacementPolicy") == "Failed" or self.policy is not None
        self.suspended = spec.get("suspend") is True
        uncounted = self.status.get("uncountedTerminatedPods") or {}
        self.uncounted_succeeded: set[str] = set(uncounted.get("succeeded") or [])
        self.uncounted_failed: set[str] = set(uncounted.get("failed") or [])
        self.active_pods = [p for p in pods if active(p)]
        self.finished: Target | Fail | Complete | None = None
        self.prev_indexes: set[int] = set()
        self.succeeded_indexes: set[int] = set()

    def failed(self, pod: StoredObject) -> bool:
        """isPodFailed: Failed, or (replacing terminating pods) being deleted unfinished."""
        if phase_of(pod) == "Failed":
            return True
        if self.only_failed:
            return False
        return deleting(pod) and phase_of(pod) != "Succeeded"

    def valid_index(self, pod: StoredObject) -> bool:
        if not self.indexed:
            return True
        index = completion_index(pod.object)
        return index is not None and self.completions is not None and index < self.completions

    def unaccounted(self, pod: StoredObject, uncounted: set[str]) -> bool:
        """Carries the finalizer, is not yet recorded, and has a valid index."""
        return (
            has_finalizer(pod)
            and pod.uid not in uncounted
            and pod.uid not in self.expected
            and self.valid_index(pod)
        )


def past_restart_limit(view: JobView) -> bool:
    """pastBackoffLimitOnFailure: under restartPolicy OnFailure, restarts of running and
    pending pods count against the back-off limit."""
    template_spec = spec_of(template_of(view.job.object))
    if template_spec.get("restartPolicy") != "OnFailure":
        return False
    restarts = 0
    for pod in view.pods:
        if phase_of(pod) not in ("Running", "Pending"):
            continue
        status = pod.object.get("status") or {}
        for field in ("initContainerStatuses", "containerStatuses"):
            restarts += sum(int(c.get("restartCount") or 0) for c in status.get(field) or [])
    limit = int_field(view.spec, "backoffLimit", 6)
    return restarts > 0 if limit == 0 else restarts >= limit


def removal_order(view: JobView, at_least: int, now: datetime) -> list[StoredObject]:
    """activePodsForRemoval: an Indexed Job's pods with a bad or repeated index first, then
    the least advanced pods (not scheduled, pending, not ready, newest)."""
    chosen: list[StoredObject] = []
    left = list(view.active_pods)

    def rank(pod: StoredObject) -> tuple[int, str]:
        view, _ = observe(pod.object, now)
        created = str((pod.object.get("metadata") or {}).get("creationTimestamp") or "")
        # Less advanced first; among equals, the newest first (inverted text order).
        return view.progress, "".join(chr(0x10FFFF - ord(c)) for c in created)

    if view.indexed:
        by_index: dict[int | None, list[StoredObject]] = defaultdict(list)
        for pod in left:
            by_index[completion_index(pod.object)].append(pod)
        left = []
        for index, group in by_index.items():
            if index is None or not view.valid_index(group[0]):
                chosen.extend(group)
                continue
            group.sort(key=rank)
            chosen.extend(group[:-1])  # a repeated index keeps its most advanced pod
            left.append(group[-1])
    if len(chosen) < at_least:
        left.sort(key=rank)
        chosen.extend(left[: at_least - len(chosen)])
    return chosen


def job_pod(job: StoredObject, index: int | None) -> dict[str, Any]:
    template = copy.deepcopy(template_of(job.object))
    meta = template.setdefault("metadata", {})
    finalizers = meta.setdefault("finalizers", [])
    if TRACKING_FINALIZER not in finalizers:
        finalizers.append(TRACKING_FINALIZER)
    if index is None:
        return pod_from_template(template, job)
    spec = template.setdefault("spec", {})
    for field in ("initContainers", "containers"):
        for container in spec.get(field) or []:
            _index_env(container)
    meta.setdefault("annotations", {})[COMPLETION_INDEX] = str(index)
    meta.setdefault("labels", {})[COMPLETION_INDEX] = str(index)
    spec["hostname"] = f"{job.name}-{index}"
    return pod_from_template(template, job, generate_name=_generate_name(job.name, index))


def set_count(status: dict[str, Any], field: str, value: int) -> None:
    if value:
        status[field] = value
    else:
        status.pop(field, None)


def count_released(status: dict[str, Any], with_finalizer: set[str]) -> bool:
    """cleanUncountedPodsWithoutFinalizers: uncounted pods whose finalizer is gone are
    added to ``succeeded``/``failed``; whether anything moved."""
    uncounted = status.get("uncountedTerminatedPods") or {}
    moved = False
    kept: dict[str, list[str]] = {}
    for field in ("succeeded", "failed"):
        uids = list(uncounted.get(field) or [])
        still = [uid for uid in uids if uid in with_finalizer]
        if len(still) != len(uids):
            moved = True
            set_count(status, field, int_field(status, field, 0) + len(uids) - len(still))
        if still:
            kept[field] = still
    status["uncountedTerminatedPods"] = kept
    return moved
