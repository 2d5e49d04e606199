"""The Job controller: run pods until enough succeed, or give up, as upstream 1.29 does.

Per sync, level-triggered (upstream's syncJob):

1. **claim** the Job's pods (its selector, which the registry generates at create:
   ``batch.kubernetes.io/controller-uid``); a finished Job only lets go of its pods (below);
2. **count**: pods that finished since the last sync are recognised by the
   ``batch.kubernetes.io/job-tracking`` finalizer every Job pod is created with; a failed pod
   is one whose phase is Failed or, unless ``podReplacementPolicy: Failed``, one being deleted
   before it succeeded; the pod failure policy may ignore a failure or fail the Job;
3. **decide** (the lifecycle machine, :mod:`engenho.reconcilers.machines.jobs`): fail with
   ``BackoffLimitExceeded`` past ``backoffLimit`` failures (or restarts, under
   ``restartPolicy: OnFailure``), ``DeadlineExceeded`` past ``activeDeadlineSeconds``,
   ``PodFailurePolicy`` through a ``FailureTarget``; else **manage** the pods: delete all of
   a suspended Job's, delete extra ones, or create what is missing up to ``parallelism``
   (Indexed: the lowest pending completion indexes), waiting out the pod-failure back-off
   (10 s doubling to 6 min); complete once ``completions`` pods succeeded and none is active;
4. **track** (trackJobStatusAndRemoveFinalizers): record newly finished pods' uids in
   ``status.uncountedTerminatedPods``, write the status, remove their finalizers, move them to
   ``succeeded``/``failed`` (or ``completedIndexes``), and only then add the final condition.

The lifecycle is kept in conditions (Suspended, FailureTarget, Failed, Complete), with
``startTime``, ``completionTime``, ``active``, ``ready``, ``terminating``. Pods of an Indexed
Job are ``<job>-<index>-<random>`` with hostname ``<job>-<index>``, the
``batch.kubernetes.io/job-completion-index`` annotation and label, and
``JOB_COMPLETION_INDEX`` in every container's environment.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from engenho.projections import StoredObject
from engenho.reconcilers.controller import Controller, kube_system_identity, utc_now
from engenho.reconcilers.events import Reference
from engenho.reconcilers.expectations import Expectations
from engenho.reconcilers.freshness import OwnWrites
from engenho.reconcilers.informer import InformerFactory, object_key
from engenho.reconcilers.jobpods import (
    MAX_PER_SYNC,
    MAX_UNCOUNTED,
    TRACKING_FINALIZER,
    JobView,
    apply_condition,
    completion_index,
    count_released,
    finished_time,
    has_finalizer,
    job_pod,
    past_restart_limit,
    phase_of,
    ready,
    removal_order,
    set_count,
    terminal,
)
from engenho.reconcilers.machines.jobs import (
    BackoffRecord,
    Complete,
    Effect,
    Fail,
    JobPhase,
    JobState,
    RecordEvent,
    Resume,
    SetCompletionTime,
    SetCondition,
    SetStartTime,
    Suspend,
    Target,
    first_pending_indexes,
    format_indexes,
    match_pod_failure_policy,
    next_backoff,
    parse_indexes,
    remaining_backoff,
    step,
    wanted_active,
)
from engenho.reconcilers.machines.pods import parse_time
from engenho.reconcilers.ownership import claim, controller_of, deleting, labels_of
from engenho.reconcilers.replicasets import (
    BY_CONTROLLER,
    BY_NAMESPACE,
    PODS,
    by_controller,
    selector_of,
)
from engenho.reconcilers.templates import int_field
from engenho.registry import (
    ConflictError,
    DeleteOptions,
    ForbiddenError,
    InvalidError,
    NotFoundError,
    Registry,
    StatusError,
)
from engenho.registry.naming import format_timestamp
from engenho.schema import CATALOGUE

__all__ = ["JOBS", "JobController"]

_log = logging.getLogger("engenho.reconcilers")

JOBS = CATALOGUE.get("batch", "v1", "jobs")
_ORPHANS = "jobs/orphans"
_RELEASE = "pod:"
"""Queue keys of pods whose tracking finalizer must go (their Job is gone or finished)."""


def _orphan_namespace(stored: StoredObject) -> list[str]:
    return [] if controller_of(stored.object) is not None else [stored.namespace]


class JobController(Controller):
    name = "job"
    identity = kube_system_identity("job-controller")

    def __init__(
        self,
        registry: Registry,
        informers: InformerFactory | None = None,
        *,
        workers: int = 5,
        resync: float = 0.0,
        clock: Callable[[], datetime] = utc_now,
        backoff_base: float = 10.0,
        backoff_max: float = 360.0,
    ) -> None:
        self.clock = clock
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.creations = Expectations()
        self.deletions = Expectations()
        self.own_writes = OwnWrites()
        self._backoffs: dict[str, BackoffRecord] = {}
        self._released: dict[str, set[str]] = defaultdict(set)
        super().__init__(registry, informers, workers=workers, resync=resync)

    def setup(self) -> None:
        self.jobs = self.watch_primary(JOBS)
        self.jobs.add_index(BY_NAMESPACE, lambda stored: [stored.namespace])
        self.pods = self.informers.get(PODS)
        self.pods.add_index(BY_CONTROLLER, by_controller)
        self.pods.add_index(_ORPHANS, _orphan_namespace)
        self.pods.add_handler(self._pod_changed)
        self.own_writes.follow(self.jobs)
        self.own_writes.follow(self.pods)

    # ------------------------------------------------------------------ events

    def _pod_changed(self, event: str, old: StoredObject | None, new: StoredObject | None) -> None:
        pod = new if new is not None else old
        assert pod is not None
        ref = controller_of(pod.object)
        if ref is None or ref.get("kind") != "Job":
            if new is not None:
                if has_finalizer(new):
                    self.queue.add(_RELEASE + object_key(new))
                labels = labels_of(new.object)
                for job in self.jobs.by_index(BY_NAMESPACE, new.namespace):
                    if selector_of(job.object).matches(labels):
                        self.queue.add(object_key(job))
            return
        key = f"{pod.namespace}/{ref.get('name', '')}"
        if new is None or deleting(new):
            self.deletions.deletion_observed(key, object_key(pod))
        elif event == "ADDED":
            self.creations.creation_observed(key)
        if new is None or not has_finalizer(new):
            self._released[key].discard(pod.uid)
        owner = self.jobs.get(pod.namespace, str(ref.get("name", "")))
        if owner is None or owner.uid != ref.get("uid"):
            if new is not None and has_finalizer(new):
                self.queue.add(_RELEASE + object_key(new))
            return
        self.queue.add(key)

    # ------------------------------------------------------------------ reconciling

    async def reconcile(self, key: str) -> None:
        if key.startswith(_RELEASE):
            await self._release_orphan(key.removeprefix(_RELEASE))
            return
        await self.own_writes.caught_up()
        namespace, _, name = key.partition("/")
        job = self.jobs.get(namespace, name)
        if job is None:
            for memory in (self.creations, self.deletions):
                memory.forget(key)
            self._backoffs.pop(key, None)
            self._released.pop(key, None)
            return
        pods = await claim(
            self,
            JOBS,
            job,
            selector_of(job.object),
            PODS,
            [*self.pods.by_index(BY_CONTROLLER, job.uid), *self.pods.by_index(_ORPHANS, namespace)],
        )
        state = JobState.of((job.object.get("status") or {}).get("conditions"))
        if state.finished:
            # A finished Job keeps no hold on its pods.
            await self._remove_finalizers(key, [p for p in pods if has_finalizer(p)])
            self._backoffs.pop(key, None)
            return
        await self._sync(key, JobView(job, pods, self._released[key]), state)

    def _expectations_met(self, key: str) -> bool:
        return self.creations.satisfied(key) and self.deletions.satisfied(key)

    async def _sync(self, key: str, sync: JobView, state: JobState) -> None:
        now = self.clock()
        stamp = format_timestamp(now)
        job, status = sync.job, sync.status
        original = copy.deepcopy(status)
        active = len(sync.active_pods)
        new_succeeded = [
            p
            for p in sync.pods
            if sync.unaccounted(p, sync.uncounted_succeeded) and phase_of(p) == "Succeeded"
        ]
        new_failed = [
            p for p in sync.pods if sync.unaccounted(p, sync.uncounted_failed) and sync.failed(p)
        ]
        counted_failures = sum(
            1 for p in new_failed if match_pod_failure_policy(sync.policy, p.object)[1]
        )
        succeeded = (
            int_field(status, "succeeded", 0) + len(new_succeeded) + len(sync.uncounted_succeeded)
        )
        failed = int_field(status, "failed", 0) + counted_failures + len(sync.uncounted_failed)
        if not status.get("startTime") and not sync.suspended:
            status["startTime"] = stamp
        record = next_backoff(
            self._backoffs.get(key, BackoffRecord()),
            [finished_time(p.object) for p in new_succeeded],
            [finished_time(p.object) for p in new_failed],
        )
        sync.finished = self._verdict(key, sync, state, failed, now)
        if sync.indexed:
            assert sync.completions is not None
            sync.prev_indexes = parse_indexes(status.get("completedIndexes"), sync.completions)
            sync.succeeded_indexes = sync.prev_indexes | {
                index
                for p in sync.pods
                if phase_of(p) == "Succeeded"
                and has_finalizer(p)
                and sync.valid_index(p)
                and (index := completion_index(p.object)) is not None
            }
            succeeded = len(sync.succeeded_indexes)
        error: Exception | None = None
        if sync.finished is not None:
            deleted, error = await self._delete_pods(key, job, sync.active_pods)
            if deleted != active or not self._expectations_met(key):
                sync.finished = None  # pods or finalizers remain: finish in a later sync
            active -= deleted
        else:
            managed = False
            if self._expectations_met(key) and not deleting(job):
                active, error = await self._manage(key, sync, succeeded, record, now)
                managed = True
            if sync.completions is None:
                complete = succeeded > 0 and active == 0
            else:
                complete = succeeded >= sync.completions and active == 0
            if complete:
                sync.finished = Complete()
            elif managed:
                event: Suspend | Resume | None = None
                if sync.suspended and state.phase is JobPhase.RUNNING:
                    event = Suspend()
                elif not sync.suspended and state.phase is JobPhase.SUSPENDED:
                    event = Resume()
                if event is not None:
                    state, effects = step(state, event)
                    self._enact(job, status, effects, stamp)
        terminating = sum(1 for p in sync.pods if deleting(p) and not terminal(p))
        set_count(status, "active", active)
        status["ready"] = sum(1 for p in sync.active_pods if ready(p))
        status["terminating"] = terminating
        status.setdefault("uncountedTerminatedPods", {})
        await self._track(key, sync, state, record, needs_flush=status != original)
        if error is not None:
            raise error

    def _verdict(
        self, key: str, sync: JobView, state: JobState, failed: int, now: datetime
    ) -> Target | Fail | None:
        """Whether the Job must fail, and why (FailureTarget first, then the back-off limit,
        then the deadline); arranges to look again when the deadline comes."""
        spec, status = sync.spec, sync.status
        if sync.policy is not None:
            if state.phase is JobPhase.FAILING:
                return Fail(state.reason, state.message)
            for pod in sync.pods:
                if sync.failed(pod):
                    message = match_pod_failure_policy(sync.policy, pod.object)[0]
                    if message is not None:
                        return Target("PodFailurePolicy", message)
        if failed > int_field(spec, "backoffLimit", 6) or past_restart_limit(sync):
            return Fail("BackoffLimitExceeded", "Job has reached the specified backoff limit")
        deadline = spec.get("activeDeadlineSeconds")
        started = parse_time(status.get("startTime"))
        if isinstance(deadline, int) and started is not None and not sync.suspended:
            elapsed = (now - started).total_seconds()
            if elapsed >= deadline:
                return Fail("DeadlineExceeded", "Job was active longer than specified deadline")
            self.queue.add_after(key, deadline - elapsed)
        return None

    # ------------------------------------------------------------------ managing pods

    async def _manage(
        self, key: str, sync: JobView, succeeded: int, record: BackoffRecord, now: datetime
    ) -> tuple[int, Exception | None]:
        """manageJob: returns the active count after its creates or deletes."""
        active = len(sync.active_pods)
        job = sync.job
        if sync.suspended:
            deleted, error = await self._delete_pods(
                key, job, removal_order(sync, active, self.clock())
            )
            return active - deleted, error
        want = wanted_active(sync.completions, sync.parallelism, succeeded, active)
        surplus = removal_order(sync, max(active - want, 0), self.clock())[:MAX_PER_SYNC]
        if surplus:
            deleted, error = await self._delete_pods(key, job, surplus)
            return active - deleted, error
        terminating = 0
        if sync.only_failed:
            terminating = sum(1 for p in sync.pods if deleting(p) and not terminal(p))
        missing = min(want - terminating - active, MAX_PER_SYNC)
        if missing <= 0:
            return active, None
        wait = remaining_backoff(record, now, self.backoff_base, self.backoff_max)
        if wait > 0:
            self.queue.add_after(key, wait)
            return active, None
        indexes: list[int | None] = [None] * missing
        if sync.indexed:
            assert sync.completions is not None
            held = [i for p in sync.active_pods if (i := completion_index(p.object)) is not None]
            indexes = list(
                first_pending_indexes(sync.succeeded_indexes, held, missing, sync.completions)
            )
        created, error = await self._create_pods(key, job, indexes)
        return active + created, error

    async def _create_pods(
        self, key: str, job: StoredObject, indexes: Sequence[int | None]
    ) -> tuple[int, Exception | None]:
        """Create a pod per entry, in slow-start batches of 1, 2, 4, ... stopping after a batch
        with a failure; returns how many were created, and the error."""
        self.creations.expect_creations(key, len(indexes))
        created, position, batch = 0, 0, 1
        error: Exception | None = None
        while position < len(indexes) and error is None:
            chunk = indexes[position : position + batch]
            results = await asyncio.gather(*(self._create_one(key, job, i) for i in chunk))
            position += len(chunk)
            batch *= 2
            created += sum(1 for r in results if r is None)
            error = next((r for r in results if r is not None), None)
        for _skipped in range(len(indexes) - position):
            self.creations.creation_observed(key)  # never coming: do not wait for them
        return created, error

    async def _create_one(self, key: str, job: StoredObject, index: int | None) -> Exception | None:
        try:
            pod = await self.registry.create(
                self.context(), PODS, job.namespace, job_pod(job, index)
            )
        except StatusError as exc:
            self.creations.creation_observed(key)
            if isinstance(exc, ForbiddenError) and any(
                cause.reason == "NamespaceTerminating" for cause in exc.causes
            ):
                return exc
            self.events.emit(Reference.to(job), "Warning", "FailedCreate", f"Error creating: {exc}")
            return exc
        self.own_writes.wrote(self.pods, pod)
        self.events.emit(
            Reference.to(job), "Normal", "SuccessfulCreate", f"Created pod: {pod.name}"
        )
        return None

    async def _delete_pods(
        self, key: str, job: StoredObject, pods: Sequence[StoredObject]
    ) -> tuple[int, Exception | None]:
        if not pods:
            return 0, None
        self.deletions.expect_deletions(key, [object_key(p) for p in pods])
        results = await asyncio.gather(*(self._delete_one(key, job, p) for p in pods))
        deleted = sum(1 for r in results if r is None)
        return deleted, next((r for r in results if r is not None), None)

    async def _delete_one(self, key: str, job: StoredObject, pod: StoredObject) -> Exception | None:
        try:
            result = await self.registry.delete(
                self.context(),
                PODS,
                pod.namespace,
                pod.name,
                DeleteOptions(precondition_uid=pod.uid),
            )
        except (NotFoundError, ConflictError):
            self.deletions.deletion_observed(key, object_key(pod))
            return None
        except StatusError as exc:
            self.deletions.deletion_observed(key, object_key(pod))
            self.events.emit(Reference.to(job), "Warning", "FailedDelete", f"Error deleting: {exc}")
            return exc
        self.own_writes.wrote(self.pods, result.object)
        self.events.emit(
            Reference.to(job), "Normal", "SuccessfulDelete", f"Deleted pod: {pod.name}"
        )
        return None

    # ------------------------------------------------------------------ tracking

    async def _track(
        self,
        key: str,
        sync: JobView,
        state: JobState,
        record: BackoffRecord,
        *,
        needs_flush: bool,
    ) -> None:
        """trackJobStatusAndRemoveFinalizers (see the module doc, step 4)."""
        job, status = sync.job, sync.status
        stamp = format_timestamp(self.clock())
        uncounted = copy.deepcopy(status["uncountedTerminatedPods"])
        with_finalizer = {p.uid for p in sync.pods if has_finalizer(p)} | sync.expected
        needs_flush |= count_released(status, with_finalizer)
        succeeded_uids: list[str] = list(status["uncountedTerminatedPods"].get("succeeded") or [])
        failed_uids: list[str] = list(status["uncountedTerminatedPods"].get("failed") or [])
        to_release: list[StoredObject] = []
        new_indexes: list[int] = []
        reached_max = False
        pods = sync.pods
        if sync.indexed:
            pods = sorted(pods, key=lambda p: completion_index(p.object) or 0)
        for pod in pods:
            if not has_finalizer(pod) or pod.uid in sync.expected:
                continue  # counted in an earlier sync
            considered_failed = sync.failed(pod)
            if terminal(pod) or considered_failed or sync.finished is not None or deleting(job):
                to_release.append(pod)
            if phase_of(pod) == "Succeeded" and pod.uid not in sync.uncounted_failed:
                index = completion_index(pod.object)
                if sync.indexed:
                    if (
                        index is not None
                        and sync.valid_index(pod)
                        and index not in sync.prev_indexes
                    ):
                        new_indexes.append(index)
                elif pod.uid not in sync.uncounted_succeeded:
                    succeeded_uids.append(pod.uid)
            elif considered_failed or sync.finished is not None:
                fresh = pod.uid not in sync.uncounted_failed and sync.valid_index(pod)
                if fresh and match_pod_failure_policy(sync.policy, pod.object)[1]:
                    failed_uids.append(pod.uid)
            if len(new_indexes) + len(succeeded_uids) + len(failed_uids) >= MAX_UNCOUNTED:
                reached_max = True
                break
        status["uncountedTerminatedPods"] = {
            k: v for k, v in (("succeeded", succeeded_uids), ("failed", failed_uids)) if v
        }
        needs_flush |= status["uncountedTerminatedPods"] != uncounted
        if sync.indexed:
            indexes = sync.succeeded_indexes | set(new_indexes)
            text = format_indexes(indexes)
            if text != (status.get("completedIndexes") or ""):
                needs_flush = True
            if text:
                status["completedIndexes"] = text
            else:
                status.pop("completedIndexes", None)
            set_count(status, "succeeded", len(indexes))
        final = sync.finished
        if isinstance(final, Target):
            state, effects = step(state, final)
            self._enact(job, status, effects, stamp)
            needs_flush = True
            final = Fail(final.reason, final.message)
        if needs_flush:
            job = await self._write_status(job, status)
            self._backoffs[key] = record
            needs_flush = False
        removed = await self._remove_finalizers(key, to_release)
        if count_released(status, with_finalizer - removed):
            needs_flush = True
        finishing: tuple[Effect, ...] = ()
        if not reached_max and final is not None and not status["uncountedTerminatedPods"]:
            state, finishing = step(state, final)
            self._enact(job, status, finishing, stamp, events=False)
            needs_flush = True
        if needs_flush:
            job = await self._write_status(job, status)
        for effect in finishing:
            if isinstance(effect, RecordEvent):
                self.events.emit(Reference.to(job), effect.type, effect.reason, effect.message)
        completions = sync.completions
        too_many = completions is not None and int_field(status, "succeeded", 0) > completions
        if isinstance(final, Complete) and finishing and too_many:
            self.events.emit(
                Reference.to(job),
                "Warning",
                "TooManySucceededPods",
                "Too many succeeded pods running after completion count reached",
            )

    def _enact(
        self,
        job: StoredObject,
        status: dict[str, Any],
        effects: Sequence[Effect],
        stamp: str,
        *,
        events: bool = True,
    ) -> None:
        for effect in effects:
            if isinstance(effect, SetCondition):
                status["conditions"] = apply_condition(
                    status.get("conditions") or [], effect, stamp
                )
            elif isinstance(effect, SetStartTime):
                status["startTime"] = stamp
            elif isinstance(effect, SetCompletionTime):
                status["completionTime"] = stamp
            elif isinstance(effect, RecordEvent) and events:
                self.events.emit(Reference.to(job), effect.type, effect.reason, effect.message)

    async def _write_status(self, job: StoredObject, status: dict[str, Any]) -> StoredObject:
        body = copy.deepcopy(job.object)
        body["status"] = status
        stored, _ = await self.registry.update(
            self.context(), JOBS, job.namespace, job.name, body, subresource="status"
        )
        self.own_writes.wrote(self.jobs, stored)
        return stored

    async def _remove_finalizers(self, key: str, pods: Sequence[StoredObject]) -> set[str]:
        """Remove the tracking finalizer from ``pods``; the uids it was removed from."""
        results = await asyncio.gather(*(self._release(p) for p in pods))
        removed = {pod.uid for pod, ok in zip(pods, results, strict=True) if ok}
        self._released[key].update(removed)
        return removed

    async def _release(self, pod: StoredObject) -> bool:
        patch = {
            "metadata": {
                "$deleteFromPrimitiveList/finalizers": [TRACKING_FINALIZER],
                "uid": pod.uid,
            }
        }
        try:
            stored = await self.registry.patch(
                self.context(), PODS, pod.namespace, pod.name, "strategic", patch
            )
        except NotFoundError:
            return True  # gone: nothing holds it any more
        except (ConflictError, InvalidError) as exc:
            _log.debug("tracking finalizer of %s/%s kept: %s", pod.namespace, pod.name, exc)
            return False
        self.own_writes.wrote(self.pods, stored)
        return True

    async def _release_orphan(self, pod_key: str) -> None:
        """A pod with the tracking finalizer whose Job is gone or finished lets go."""
        namespace, _, name = pod_key.partition("/")
        pod = self.pods.get(namespace, name)
        if pod is None or not has_finalizer(pod):
            return
        ref = controller_of(pod.object)
        if ref is not None and ref.get("kind") == "Job":
            try:
                job = await self.registry.get(JOBS, namespace, str(ref.get("name", "")))
            except NotFoundError:
                job = None
            if job is not None and job.uid == ref.get("uid"):
                conditions = (job.object.get("status") or {}).get("conditions")
                if not JobState.of(conditions).finished:
                    self.queue.add(object_key(job))  # its Job accounts for it
                    return
        await self._release(pod)
