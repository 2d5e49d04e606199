"""The shape every reconciler has: watch, queue keys, reconcile each key to the desired state.

Controllers are level-triggered (DESIGN.md rule 7): a change only says *which* key to look at;
``reconcile`` reads the current state and acts on it, so missed or repeated events, restarts
and lost races (409) do no harm. Each controller writes through the registry under its own
identity, which the log records with every command it proposes.

A controller gets its view of the cluster either from shared :class:`Informer` caches (the
usual way: ``informers`` in the constructor, handlers added in :meth:`setup`) or from plain
watches (:meth:`sources`, for controllers that need nothing cached). Every ``resync`` seconds
all keys of its primary resource are queued again, so a missed event is healed.
"""

from __future__ import annotations

import abc
import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import ClassVar

from attrs import frozen

from engenho.log import Actor
from engenho.reconcilers.events import EventRecorder
from engenho.reconcilers.informer import Informer, InformerFactory, object_key
from engenho.reconcilers.queue import WorkQueue
from engenho.registry import (
    ConflictError,
    Registry,
    RequestContext,
    StatusError,
    WatchEvent,
    WatchQuery,
)
from engenho.schema import ResourceType

__all__ = ["Controller", "Requeue", "Source", "kube_system_identity", "utc_now"]

_log = logging.getLogger("engenho.reconcilers")


def utc_now() -> datetime:
    """The controllers' default clock (tests pass their own)."""
    return datetime.now(UTC)


def kube_system_identity(account: str) -> Actor:
    """The identity kube-controller-manager gives a controller: the service account
    ``kube-system/<account>``, with the groups upstream's token authenticator adds."""
    return Actor(
        f"system:serviceaccount:kube-system:{account}",
        ("system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"),
    )


class Requeue(Exception):  # noqa: N818 - a signal, not an error
    """Reconcile this key again after ``after`` seconds (the work is not done yet)."""

    def __init__(self, after: float, reason: str = "") -> None:
        super().__init__(reason or f"requeue after {after}s")
        self.after = after


@frozen
class Source:
    """A resource to watch, and how its events map to keys of the controller's queue."""

    resource: ResourceType
    keys: Callable[[WatchEvent], list[str]]


class Controller(abc.ABC):
    name: ClassVar[str]
    identity: ClassVar[Actor]

    def __init__(
        self,
        registry: Registry,
        informers: InformerFactory | None = None,
        *,
        workers: int = 2,
        resync: float = 0.0,
    ) -> None:
        self.registry = registry
        self.informers = informers or InformerFactory(registry)
        self.queue = WorkQueue()
        self.workers = workers
        self.resync = resync
        self.events = EventRecorder(registry, self.name, self.identity)
        self._primary: Informer | None = None
        self.setup()

    # ------------------------------------------------------------------ to implement

    def setup(self) -> None:  # noqa: B027 - an optional hook
        """Take informers and add handlers (called once, from the constructor)."""

    def sources(self) -> list[Source]:
        """Plain watches that feed the queue (for controllers without informers)."""
        return []

    @abc.abstractmethod
    async def reconcile(self, key: str) -> None:
        """Bring ``key`` to its desired state; raise :class:`Requeue` to look again later."""

    # ------------------------------------------------------------------ helpers

    def watch_primary(self, resource: ResourceType) -> Informer:
        """The informer of the resource this controller reconciles; its keys are queued on
        every change and on every resync."""
        informer = self.informers.get(resource)
        informer.add_handler(
            lambda _event, old, new: self.queue.add(object_key(new if new is not None else old))  # type: ignore[arg-type]
        )
        self._primary = informer
        return informer

    def context(self) -> RequestContext:
        now = datetime.now(UTC)
        return RequestContext(
            actor=self.identity,
            request_id=f"{self.name}-{now.timestamp():.6f}",
            now=now,
            field_manager=self.name,
        )

    # ------------------------------------------------------------------ running

    async def run(self) -> None:
        """Watch and work until cancelled (the informers run in the manager)."""
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self.events.run(), name=f"{self.name}-events")
                for source in self.sources():
                    group.create_task(
                        self._watch(source), name=f"{self.name}-watch-{source.resource.plural}"
                    )
                await self.informers.wait_synced()
                for number in range(self.workers):
                    group.create_task(self._work(), name=f"{self.name}-worker-{number}")
                if self.resync and self._primary is not None:
                    group.create_task(self._resync(), name=f"{self.name}-resync")
        finally:
            self.queue.close()

    async def _resync(self) -> None:
        assert self._primary is not None
        while True:
            await asyncio.sleep(self.resync)
            for stored in self._primary.list():
                self.queue.add(object_key(stored))

    async def _watch(self, source: Source) -> None:
        """Feed the queue from a watch, resuming where it stopped (relisting after a 410)."""
        resource_version: str | None = None
        while True:
            try:
                query = WatchQuery(resource_version=resource_version, allow_bookmarks=True)
                async for event in self.registry.watch(source.resource, None, query):
                    if event.type == "ERROR":
                        resource_version = None  # history is gone: list again
                        break
                    if event.type == "BOOKMARK":
                        resource_version = str(event.index)
                        continue
                    assert event.object is not None
                    for key in source.keys(event):
                        self.queue.add(key)
                    resource_version = str(event.object.resource_version)
            except StatusError as exc:
                _log.warning("%s: watch of %s failed: %s", self.name, source.resource.plural, exc)
                await asyncio.sleep(1)

    async def _work(self) -> None:
        while (key := await self.queue.get()) is not None:
            try:
                await self.reconcile(key)
                self.queue.forget(key)
            except Requeue as requeue:
                self.queue.add_after(key, requeue.after)
            except ConflictError:
                self.queue.retry(key)  # someone else wrote first: read again and redo
            except Exception:
                delay = self.queue.retry(key)
                _log.exception(
                    "%s: reconciling %s failed; retrying in %.2fs", self.name, key, delay
                )
            finally:
                self.queue.done(key)
