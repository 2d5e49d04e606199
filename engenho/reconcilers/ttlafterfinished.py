"""The TTL-after-finished controller: a finished Job with ``ttlSecondsAfterFinished`` is
deleted that many seconds after it finished (upstream's ttlafterfinished controller).

A Job finished when its Complete or Failed condition turned True (the condition's
``lastTransitionTime``). When the time comes, the Job is read afresh (its TTL may have
changed) and deleted in the foreground, with its uid as a precondition, so its pods go first
and a newer Job of the same name is never touched. Until then the key is looked at again when
the TTL runs out. The clock is injectable.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from engenho.projections import StoredObject
from engenho.reconcilers.controller import Controller, kube_system_identity, utc_now
from engenho.reconcilers.informer import InformerFactory
from engenho.reconcilers.jobs import JOBS
from engenho.reconcilers.machines.pods import parse_time
from engenho.reconcilers.ownership import deleting
from engenho.reconcilers.templates import spec_of
from engenho.registry import ConflictError, DeleteOptions, NotFoundError, Registry

__all__ = ["TTLAfterFinishedController", "finish_time", "time_left"]

_log = logging.getLogger("engenho.reconcilers")


def finish_time(job: StoredObject) -> datetime | None:
    """When the Job's Complete or Failed condition became True (None if it has not)."""
    for condition in (job.object.get("status") or {}).get("conditions") or []:
        if condition.get("type") in ("Complete", "Failed") and condition.get("status") == "True":
            return parse_time(condition.get("lastTransitionTime"))
    return None


def time_left(job: StoredObject, now: datetime) -> float | None:
    """Seconds until the Job expires (zero or less: now); None when it never does (no TTL,
    not finished, or already being deleted)."""
    ttl = spec_of(job.object).get("ttlSecondsAfterFinished")
    if not isinstance(ttl, int) or deleting(job):
        return None
    finished = finish_time(job)
    if finished is None:
        return None
    if finished > now:
        _log.warning("job %s/%s finished in the future: clock skew?", job.namespace, job.name)
    return ttl - (now - finished).total_seconds()


class TTLAfterFinishedController(Controller):
    name = "ttl-after-finished"
    identity = kube_system_identity("ttl-after-finished-controller")

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
        super().__init__(registry, informers, workers=workers, resync=resync)

    def setup(self) -> None:
        self.jobs = self.watch_primary(JOBS)

    async def reconcile(self, key: str) -> None:
        namespace, _, name = key.partition("/")
        job = self.jobs.get(namespace, name)
        if job is None:
            return
        left = time_left(job, self.clock())
        if left is None:
            return
        if left > 0:
            self.queue.add_after(key, left)
            return
        try:
            fresh = await self.registry.get(JOBS, namespace, name)
        except NotFoundError:
            return
        left = time_left(fresh, self.clock())
        if left is None:
            return
        if left > 0:
            self.queue.add_after(key, left)
            return
        try:
            await self.registry.delete(
                self.context(),
                JOBS,
                namespace,
                name,
                DeleteOptions(propagation_policy="Foreground", precondition_uid=fresh.uid),
            )
        except (NotFoundError, ConflictError):
            return  # gone already, or replaced by a newer Job of that name
        _log.debug("job %s expired after finishing and was deleted", key)
