"""The CronJob controller: a Job per firing of a schedule, as upstream's CronJob controller v2.

Per sync (upstream's syncCronJob, then cleanupFinishedJobs):

1. reconcile ``status.active`` with the Jobs the CronJob controls: finished ones leave it
   (``SawCompletedJob``), vanished ones too (``MissingJob``), a running one it does not list is
   reported (``UnexpectedJob``); the latest completion of a succeeded Job is
   ``status.lastSuccessfulTime``;
2. unless the CronJob is being deleted or suspended, or its time zone or schedule is bad,
   find the most recent firing not yet acted on (:func:`engenho.reconcilers.cron.most_recent`,
   no earlier than ``startingDeadlineSeconds`` ago); with ``concurrencyPolicy`` Forbid and a
   Job still active, skip it (``JobAlreadyActive``); with Replace, delete the active Jobs
   first; create the Job ``<cronjob>-<firing in minutes since the epoch>`` from
   ``jobTemplate`` (annotated ``batch.kubernetes.io/cronjob-scheduled-timestamp``), add it to
   ``status.active`` and set ``status.lastScheduleTime``;
3. delete the oldest finished Jobs beyond ``successfulJobsHistoryLimit`` and
   ``failedJobsHistoryLimit``, and come back just after the next firing.

The clock is injectable (``clock``), so tests can step through firings without waiting.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from engenho.projections import StoredObject
from engenho.reconcilers.controller import Controller, kube_system_identity, utc_now
from engenho.reconcilers.cron import (
    Missed,
    ScheduleError,
    UnknownTimeZoneError,
    most_recent,
    next_delay,
    parse_schedule,
    zone_of,
)
from engenho.reconcilers.events import Reference
from engenho.reconcilers.freshness import OwnWrites
from engenho.reconcilers.informer import InformerFactory
from engenho.reconcilers.jobs import JOBS
from engenho.reconcilers.machines.jobs import JobPhase, JobState
from engenho.reconcilers.machines.pods import parse_time
from engenho.reconcilers.ownership import controller_of, controller_ref, deleting
from engenho.reconcilers.replicasets import BY_CONTROLLER, by_controller
from engenho.reconcilers.templates import int_field, spec_of
from engenho.registry import (
    AlreadyExistsError,
    DeleteOptions,
    ForbiddenError,
    NotFoundError,
    Registry,
    StatusError,
)
from engenho.registry.naming import format_timestamp
from engenho.schema import CATALOGUE

__all__ = ["CRONJOBS", "SCHEDULED_TIMESTAMP", "CronJobController", "job_name"]

_log = logging.getLogger("engenho.reconcilers")

CRONJOBS = CATALOGUE.get("batch", "v1", "cronjobs")
SCHEDULED_TIMESTAMP = "batch.kubernetes.io/cronjob-scheduled-timestamp"


def job_name(cronjob: str, scheduled: datetime) -> str:
    """``<cronjob>-<scheduled time in minutes since the epoch>`` (getJobName): one name per
    firing, so a firing never makes two Jobs."""
    return f"{cronjob}-{int(scheduled.timestamp()) // 60}"


def _rfc3339(moment: datetime) -> str:
    """Go's time.RFC3339: ``Z`` in UTC, the offset elsewhere."""
    text = moment.replace(microsecond=0).isoformat()
    return text.removesuffix("+00:00") + "Z" if moment.utcoffset() == timedelta(0) else text


def _rfc1123z(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%a, %d %b %Y %H:%M:%S +0000")


def _reference(job: StoredObject) -> dict[str, Any]:
    """The ObjectReference ``status.active`` lists (getRef)."""
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "name": job.name,
        "namespace": job.namespace,
        "resourceVersion": str(job.resource_version),
        "uid": job.uid,
    }


class CronJobController(Controller):
    name = "cronjob"
    identity = kube_system_identity("cronjob-controller")

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
        self.cronjobs = self.watch_primary(CRONJOBS)
        self.jobs = self.informers.get(JOBS)
        self.jobs.add_index(BY_CONTROLLER, by_controller)
        self.jobs.add_handler(self._job_changed)
        self.own_writes.follow(self.cronjobs)
        self.own_writes.follow(self.jobs)

    def _job_changed(self, _event: str, old: StoredObject | None, new: StoredObject | None) -> None:
        for job in (old, new):
            ref = controller_of(job.object) if job is not None else None
            if job is not None and ref is not None and ref.get("kind") == "CronJob":
                self.queue.add(f"{job.namespace}/{ref.get('name', '')}")

    # ------------------------------------------------------------------ reconciling

    async def reconcile(self, key: str) -> None:
        await self.own_writes.caught_up()
        namespace, _, name = key.partition("/")
        cronjob = self.cronjobs.get(namespace, name)
        if cronjob is None:
            return
        jobs = self.jobs.by_index(BY_CONTROLLER, cronjob.uid)
        status = copy.deepcopy(cronjob.object.get("status") or {})
        before = copy.deepcopy(status)
        await self._account(cronjob, jobs, status)
        delay = await self._schedule(cronjob, status)
        if status != before:
            cronjob = await self._write_status(cronjob, status)
            before = copy.deepcopy(status)
        await self._clean_up(cronjob, jobs, status)
        if status != before:
            await self._write_status(cronjob, status)
        if delay is not None:
            self.queue.add_after(key, delay)

    async def _account(
        self, cronjob: StoredObject, jobs: list[StoredObject], status: dict[str, Any]
    ) -> None:
        """Bring ``status.active`` and ``lastSuccessfulTime`` in line with the Jobs."""
        ref = Reference.to(cronjob)
        active = list(status.get("active") or [])
        children = {job.uid for job in jobs}
        for job in jobs:
            listed = any(item.get("uid") == job.uid for item in active)
            state = JobState.of((job.object.get("status") or {}).get("conditions"))
            if not listed and not state.finished:
                self.events.emit(
                    ref,
                    "Warning",
                    "UnexpectedJob",
                    f"Saw a job that the controller did not create or forgot: {job.name}",
                )
            elif listed and state.finished:
                active = [item for item in active if item.get("uid") != job.uid]
                outcome = "Complete" if state.phase is JobPhase.COMPLETE else "Failed"
                self.events.emit(
                    ref,
                    "Normal",
                    "SawCompletedJob",
                    f"Saw completed job: {job.name}, status: {outcome}",
                )
            elif state.phase is JobPhase.COMPLETE:
                completed = (job.object.get("status") or {}).get("completionTime")
                last = parse_time(status.get("lastSuccessfulTime"))
                moment = parse_time(completed)
                if moment is not None and (last is None or moment > last):
                    status["lastSuccessfulTime"] = completed
        for item in list(active):
            if item.get("uid") in children:
                continue
            try:
                # The cache may be behind: ask the registry before calling a Job missing.
                await self.registry.get(JOBS, cronjob.namespace, str(item.get("name", "")))
            except NotFoundError:
                self.events.emit(
                    ref, "Normal", "MissingJob", f"Active job went missing: {item.get('name')}"
                )
                active = [a for a in active if a.get("uid") != item.get("uid")]
        self._set_active(status, active)

    @staticmethod
    def _set_active(status: dict[str, Any], active: list[dict[str, Any]]) -> None:
        if active:
            status["active"] = active
        else:
            status.pop("active", None)

    async def _schedule(self, cronjob: StoredObject, status: dict[str, Any]) -> float | None:
        """Start the Job of the due firing, if any; returns when to look again."""
        obj = cronjob.object
        spec = spec_of(obj)
        ref = Reference.to(cronjob)
        if deleting(cronjob):
            return None
        schedule_text = str(spec.get("schedule") or "")
        time_zone = spec.get("timeZone")
        try:
            zone_of(time_zone)
        except UnknownTimeZoneError as exc:
            self.events.emit(
                ref, "Warning", "UnknownTimeZone", f'invalid timeZone: "{time_zone}": {exc}'
            )
            return None
        if spec.get("suspend") is True:
            return None
        if "TZ" in schedule_text:
            self.events.emit(
                ref,
                "Warning",
                "UnsupportedSchedule",
                f'CRON_TZ or TZ used in schedule "{schedule_text}" is not officially supported, '
                "see https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/ for "
                "more details",
            )
        try:
            schedule = parse_schedule(schedule_text, None if "TZ" in schedule_text else time_zone)
        except ScheduleError as exc:
            self.events.emit(
                ref,
                "Warning",
                "UnparseableSchedule",
                f'unparseable schedule: "{schedule_text}" : {exc}',
            )
            return None
        now = self.clock()
        created = parse_time((obj.get("metadata") or {}).get("creationTimestamp")) or now
        last = parse_time(status.get("lastScheduleTime"))
        earliest = last or created
        deadline = spec.get("startingDeadlineSeconds")
        window = earliest
        if isinstance(deadline, int):
            window = max(earliest, now - timedelta(seconds=deadline))
        try:
            scheduled, missed = most_recent(schedule, window, now)
        except ScheduleError as exc:
            self.events.emit(
                ref, "Warning", "InvalidSchedule", f"invalid schedule: {schedule_text} : {exc}"
            )
            return None
        if missed is Missed.MANY:
            self.events.emit(
                ref,
                "Warning",
                "TooManyMissedTimes",
                "too many missed start times. Set or decrease .spec.startingDeadlineSeconds or "
                "check clock skew",
            )
        if scheduled is None:
            return next_delay(schedule, earliest, now)
        if isinstance(deadline, int) and scheduled + timedelta(seconds=deadline) < now:
            self.events.emit(
                ref,
                "Warning",
                "MissSchedule",
                f"Missed scheduled time to start a job: {_rfc1123z(scheduled)}",
            )
            return next_delay(schedule, earliest, now)
        name = job_name(cronjob.name, scheduled)
        active = list(status.get("active") or [])
        if any(item.get("name") == name for item in active) or last == scheduled:
            return next_delay(schedule, earliest, now)
        policy = spec.get("concurrencyPolicy", "Allow")
        if policy == "Forbid" and active:
            self.events.emit(
                ref,
                "Normal",
                "JobAlreadyActive",
                "Not starting job because prior execution is running and concurrency policy is "
                "Forbid",
            )
            return next_delay(schedule, earliest, now)
        if policy == "Replace":
            for item in active:
                try:
                    job = await self.registry.get(JOBS, cronjob.namespace, str(item.get("name")))
                except NotFoundError:
                    continue
                if await self._delete_job(cronjob, job, status):
                    active = [a for a in active if a.get("uid") != job.uid]
        created_job = await self._create_job(cronjob, schedule.zone, scheduled, status)
        if created_job is None:
            return None
        if not any(item.get("uid") == created_job.uid for item in status.get("active") or []):
            self._set_active(status, [*(status.get("active") or []), _reference(created_job)])
        status["lastScheduleTime"] = format_timestamp(scheduled)
        return next_delay(schedule, scheduled, now)

    async def _create_job(
        self, cronjob: StoredObject, zone: Any, scheduled: datetime, status: dict[str, Any]
    ) -> StoredObject | None:
        """getJobFromTemplate2 and create it; the Job (None when another owns the name)."""
        template = spec_of(cronjob.object).get("jobTemplate") or {}
        meta = template.get("metadata") or {}
        annotations = dict(meta.get("annotations") or {})
        annotations[SCHEDULED_TIMESTAMP] = _rfc3339(scheduled.astimezone(zone))
        body: dict[str, Any] = {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {
                "name": job_name(cronjob.name, scheduled),
                "namespace": cronjob.namespace,
                "annotations": annotations,
                "ownerReferences": [controller_ref(cronjob)],
            },
            "spec": copy.deepcopy(template.get("spec") or {}),
        }
        if meta.get("labels"):
            body["metadata"]["labels"] = dict(meta["labels"])
        ref = Reference.to(cronjob)
        try:
            job = await self.registry.create(self.context(), JOBS, cronjob.namespace, body)
        except AlreadyExistsError:
            # Made by an earlier sync whose status write was lost, or by someone else.
            existing = await self.registry.get(JOBS, cronjob.namespace, body["metadata"]["name"])
            owner = controller_of(existing.object)
            if owner is None or owner.get("uid") != cronjob.uid:
                return None
            return existing
        except ForbiddenError as exc:
            if any(cause.reason == "NamespaceTerminating" for cause in exc.causes):
                return None
            self.events.emit(ref, "Warning", "FailedCreate", f"Error creating job: {exc}")
            raise
        except StatusError as exc:
            self.events.emit(ref, "Warning", "FailedCreate", f"Error creating job: {exc}")
            raise
        self.own_writes.wrote(self.jobs, job)
        self.events.emit(ref, "Normal", "SuccessfulCreate", f"Created job {job.name}")
        return job

    async def _delete_job(
        self, cronjob: StoredObject, job: StoredObject, status: dict[str, Any]
    ) -> bool:
        """deleteJob: delete in the background and drop it from the active list."""
        ref = Reference.to(cronjob)
        try:
            result = await self.registry.delete(
                self.context(),
                JOBS,
                job.namespace,
                job.name,
                DeleteOptions(propagation_policy="Background", precondition_uid=job.uid),
            )
        except NotFoundError:
            result = None
        except StatusError as exc:
            self.events.emit(ref, "Warning", "FailedDelete", f"Deleted job: {exc}")
            return False
        if result is not None:
            self.own_writes.wrote(self.jobs, result.object)
        active = [a for a in status.get("active") or [] if a.get("uid") != job.uid]
        self._set_active(status, active)
        self.events.emit(ref, "Normal", "SuccessfulDelete", f"Deleted job {job.name}")
        return True

    async def _clean_up(
        self, cronjob: StoredObject, jobs: list[StoredObject], status: dict[str, Any]
    ) -> None:
        """cleanupFinishedJobs: keep the newest finished Jobs within the history limits."""
        spec = spec_of(cronjob.object)
        finished: dict[JobPhase, list[StoredObject]] = {JobPhase.COMPLETE: [], JobPhase.FAILED: []}
        for job in jobs:
            phase = JobState.of((job.object.get("status") or {}).get("conditions")).phase
            if phase in finished:
                finished[phase].append(job)
        for phase, field in (
            (JobPhase.COMPLETE, "successfulJobsHistoryLimit"),
            (JobPhase.FAILED, "failedJobsHistoryLimit"),
        ):
            if spec.get(field) is None:
                continue
            candidates = finished[phase]
            excess = len(candidates) - int_field(spec, field, 0)
            if excess <= 0:
                continue

            def started(job: StoredObject) -> tuple[bool, str, str]:
                start = (job.object.get("status") or {}).get("startTime")
                return (start is None, str(start or ""), job.name)

            for job in sorted(candidates, key=started)[:excess]:
                await self._delete_job(cronjob, job, status)

    async def _write_status(self, cronjob: StoredObject, status: dict[str, Any]) -> StoredObject:
        body = copy.deepcopy(cronjob.object)
        body["status"] = status
        try:
            stored, _ = await self.registry.update(
                self.context(),
                CRONJOBS,
                cronjob.namespace,
                cronjob.name,
                body,
                subresource="status",
            )
        except NotFoundError:
            return cronjob
        self.own_writes.wrote(self.cronjobs, stored)
        return stored
