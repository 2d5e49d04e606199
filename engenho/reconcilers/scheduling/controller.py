"""The scheduler controller: pending pods in, bindings, conditions and events out.

It follows pods, nodes, node Leases and namespaces through shared informers into its
:class:`.SchedulerCache`, and queues the key of every pod it is responsible for: no
``spec.nodeName``, a ``spec.schedulerName`` one of its profiles serves, not being deleted, not
finished. For each key a worker:

1. decides (synchronously: no other decision or cache update can interleave) with the
   profile's strategy over the cache's snapshot;
2. on a node: assumes the pod there, binds it through ``pods/binding`` (at most once: a 409
   means someone bound it first, and the informer will say where), and emits ``Scheduled``
   (``Successfully assigned ns/pod to node``). Many bindings are in flight at once (one per
   worker), so their log appends share fsyncs;
3. on no node: writes ``PodScheduled=False``, reason ``Unschedulable``, with upstream's
   message through ``pods/status`` (only when it changed), emits a ``FailedScheduling``
   Warning with the same message, and retries the pod after a backoff (1 s doubling to 60 s
   by default). Sooner, level-triggered: a node that appears or changes what it offers, a
   bound pod that goes away, a Lease that comes back to life retry every unschedulable pod.

A pod with ``spec.schedulingGates`` is not scheduled; it gets ``PodScheduled=False``, reason
``SchedulingGated``, until its gates are removed, as upstream does.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from attrs import define, evolve, frozen

from engenho.log import Actor
from engenho.projections import StoredObject
from engenho.reconcilers.conditions import condition, set_condition
from engenho.reconcilers.controller import Controller, Requeue
from engenho.reconcilers.events import Reference
from engenho.reconcilers.informer import InformerFactory, object_key
from engenho.reconcilers.scheduling.cache import SchedulerCache
from engenho.reconcilers.scheduling.decisions import Unschedulable
from engenho.reconcilers.scheduling.podinfo import pod_info
from engenho.reconcilers.scheduling.readiness import NodeReadiness
from engenho.reconcilers.scheduling.strategy import SchedulerProfile
from engenho.registry import ConflictError, NotFoundError, Registry, RequestContext
from engenho.registry.naming import format_timestamp
from engenho.schema import CATALOGUE

__all__ = ["RetryPolicy", "Scheduler", "SchedulerStats"]

_log = logging.getLogger("engenho.reconcilers.scheduling")
_GATED_MESSAGE = "Scheduling is blocked due to non-empty scheduling gates"


@frozen
class RetryPolicy:
    """How long an unschedulable pod waits before it is tried again without a trigger."""

    initial: float = 1.0
    maximum: float = 60.0

    def delay(self, attempts: int) -> float:
        return float(min(self.initial * 2.0 ** max(attempts - 1, 0), self.maximum))


@define
class SchedulerStats:
    """Counters for benchmarks and debugging (seconds are summed over calls)."""

    attempts: int = 0
    bound: int = 0
    unschedulable: int = 0
    conflicts: int = 0
    deciding: float = 0.0
    """Time spent in the decision core (filters and scores), which is synchronous."""
    binding: float = 0.0
    """Latency of the binding writes, summed (they overlap: this exceeds their wall time)."""


def _spec_or_labels_changed(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """A pending pod's update that may change where it fits (not our own status writes)."""
    old_meta, new_meta = old.get("metadata") or {}, new.get("metadata") or {}
    return (
        old.get("spec") != new.get("spec")
        or old_meta.get("labels") != new_meta.get("labels")
        or old_meta.get("deletionTimestamp") != new_meta.get("deletionTimestamp")
    )


class Scheduler(Controller):
    name = "default-scheduler"
    identity = Actor("system:kube-scheduler", ("system:authenticated",))

    def __init__(
        self,
        registry: Registry,
        informers: InformerFactory | None = None,
        *,
        profiles: Iterable[SchedulerProfile] = (SchedulerProfile(),),
        readiness: NodeReadiness | None = None,
        retry: RetryPolicy | None = None,
        workers: int = 64,
        resync: float = 0.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``workers`` is how many bindings may be in flight (decisions are made one at a
        time whatever it is); ``resync`` (seconds, 0 for never) queues every pod again, to
        heal anything missed."""
        self.profiles = {profile.scheduler_name: profile for profile in profiles}
        self.cache = SchedulerCache(readiness)
        self.retry = retry or RetryPolicy()
        self.clock = clock
        self.stats = SchedulerStats()
        self._pods_rt = CATALOGUE.get("", "v1", "pods")
        self._unschedulable: dict[str, int] = {}
        """Keys of pods that did not fit, with how many attempts failed in a row."""
        self._next_start = 0
        super().__init__(registry, informers, workers=workers, resync=resync)

    def context(self) -> RequestContext:
        # Events say "default-scheduler" (the profile, as upstream's); writes are owned by the
        # component, as upstream's managedFields show.
        return evolve(super().context(), field_manager="kube-scheduler")

    # ------------------------------------------------------------------ following the cluster

    def setup(self) -> None:
        self._pods = self.informers.get(self._pods_rt)
        self._pods.add_handler(self._on_pod)
        # The resync walks the pods (not watch_primary: most pod changes are not ours to act on).
        self._primary = self._pods
        self.informers.get(CATALOGUE.get("", "v1", "nodes")).add_handler(self._on_node)
        leases = CATALOGUE.get("coordination.k8s.io", "v1", "leases")
        self.informers.get(leases).add_handler(self._on_lease)
        self.informers.get(CATALOGUE.get("", "v1", "namespaces")).add_handler(self._on_namespace)

    def _responsible(self, obj: Mapping[str, Any]) -> bool:
        spec = obj.get("spec") or {}
        return (
            not spec.get("nodeName")
            and spec.get("schedulerName", "default-scheduler") in self.profiles
            and not (obj.get("metadata") or {}).get("deletionTimestamp")
            and (obj.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
        )

    def _on_pod(self, _event: str, old: StoredObject | None, new: StoredObject | None) -> None:
        if new is None:
            assert old is not None
            self._unschedulable.pop(object_key(old), None)
            if self.cache.remove_pod(old.uid):
                self._wake()
            return
        obj = new.object
        node_name = (obj.get("spec") or {}).get("nodeName")
        if node_name:
            self._unschedulable.pop(object_key(new), None)
            if old is not None and old.uid != new.uid:
                self.cache.remove_pod(old.uid)
            elif old is not None and self.cache.confirm(new.uid, node_name, old.resource_version):
                return  # our binding, and nothing else changed: the assumption stands
            pod = pod_info(obj)
            if pod.terminal:
                if self.cache.remove_pod(pod.uid):
                    self._wake()
            else:
                self.cache.add_pod(pod)
            return
        if old is not None and old.uid == new.uid and not _spec_or_labels_changed(old.object, obj):
            return  # a status change (ours, most likely): nothing new to decide on
        if self._responsible(obj):
            self.queue.add(object_key(new))

    def _on_node(self, _event: str, old: StoredObject | None, new: StoredObject | None) -> None:
        if new is None:
            assert old is not None
            self.cache.remove_node(old.name)
        elif self.cache.set_node(new.object):
            self._wake()

    def _on_lease(self, _event: str, old: StoredObject | None, new: StoredObject | None) -> None:
        lease = new if new is not None else old
        assert lease is not None
        if lease.namespace != self.cache.readiness.lease_namespace:
            return
        now = self.clock()
        if new is None:
            helped = self.cache.remove_lease(lease.name, now)
        else:
            helped = self.cache.set_lease(lease.name, new.object, now)
        if helped:
            self._wake()

    def _on_namespace(
        self, _event: str, old: StoredObject | None, new: StoredObject | None
    ) -> None:
        labels = self.cache.snapshot.namespace_labels
        if new is None:
            assert old is not None
            labels.pop(old.name, None)
        else:
            labels[new.name] = dict((new.object.get("metadata") or {}).get("labels") or {})

    def _wake(self) -> None:
        """Retry every unschedulable pod now: the cluster changed in a way that may help."""
        for key in self._unschedulable:
            self.queue.add(key)

    # ------------------------------------------------------------------ scheduling

    async def reconcile(self, key: str) -> None:
        namespace, _, name = key.partition("/")
        stored = self._pods.get(namespace, name)
        if stored is None or not self._responsible(stored.object):
            self._unschedulable.pop(key, None)
            return
        if self.cache.is_placed(stored.uid):
            return  # ours, bound or being bound; the informer has not caught up yet
        obj = stored.object
        profile = self.profiles[(obj.get("spec") or {}).get("schedulerName", "default-scheduler")]
        pod = pod_info(obj)
        if pod.gated:
            await self._set_condition(stored, "SchedulingGated", _GATED_MESSAGE)
            return
        self.stats.attempts += 1
        started = time.perf_counter()
        decision = profile.strategy.decide(
            pod, self.cache.snapshot, now=self.clock(), start=self._next_start
        )
        self.stats.deciding += time.perf_counter() - started
        self._next_start = decision.next_start
        if isinstance(decision, Unschedulable):
            await self._unschedulable_pod(key, stored, decision.message)
            return
        self.cache.assume(pod, decision.node, stored.resource_version)
        self._unschedulable.pop(key, None)
        started = time.perf_counter()
        try:
            await profile.strategy.binder.bind(self.registry, self.context(), stored, decision.node)
        except (ConflictError, NotFoundError) as exc:
            # Bound by someone else, deleted, or replaced under the same name: the informer
            # shows what happened and queues the key again if there is anything left to do.
            self.cache.forget(pod.uid)
            self.stats.conflicts += 1
            _log.debug("%s: binding %s refused: %s", self.name, key, exc)
            return
        except BaseException:
            self.cache.forget(pod.uid)
            raise
        finally:
            self.stats.binding += time.perf_counter() - started
        self.stats.bound += 1
        self.events.emit(
            Reference.to(stored),
            "Normal",
            "Scheduled",
            f"Successfully assigned {namespace}/{name} to {decision.node}",
        )

    async def _unschedulable_pod(self, key: str, stored: StoredObject, message: str) -> None:
        self.stats.unschedulable += 1
        attempts = self._unschedulable.get(key, 0) + 1
        self._unschedulable[key] = attempts
        self.events.emit(Reference.to(stored), "Warning", "FailedScheduling", message)
        await self._set_condition(stored, "Unschedulable", message)
        raise Requeue(self.retry.delay(attempts), message)

    async def _set_condition(self, stored: StoredObject, reason: str, message: str) -> None:
        """``PodScheduled=False`` with ``reason`` and ``message``, unless already so."""
        obj = stored.object
        status = obj.get("status") or {}
        current = condition(status.get("conditions"), "PodScheduled")
        if current is not None and (
            current.get("status"),
            current.get("reason"),
            current.get("message"),
        ) == ("False", reason, message):
            return
        ctx = self.context()
        conditions = set_condition(
            status.get("conditions"),
            "PodScheduled",
            "False",
            reason=reason,
            message=message,
            now=format_timestamp(ctx.now),
            probe_time=True,
        )
        body = {**copy.copy(obj), "status": {**status, "conditions": conditions}}
        try:
            await self.registry.update(
                ctx, self._pods_rt, stored.namespace, stored.name, body, subresource="status"
            )
        except NotFoundError:
            return  # deleted meanwhile
