"""Events: what controllers tell users about objects (``kubectl describe`` shows them).

A recorder writes core/v1 Events through the registry under its controller's identity, from
bounded queues drained by its own tasks, so reconciling never waits on an event (upstream's
broadcaster does the same; when a queue is full, events are dropped and counted, never
blocking). Events are sharded over several writers by what they say about which object, so
a burst (a scheduler binding thousands of pods) is written in parallel while repeats of one
event stay in order. Repeats of the same event for the same object within ten minutes update
the first one's ``count`` and ``lastTimestamp`` instead of creating another, as upstream's
correlator does.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from typing import Any

from attrs import frozen

from engenho.log import Actor
from engenho.projections import StoredObject
from engenho.registry import NotFoundError, Registry, RequestContext, StatusError
from engenho.registry.naming import format_timestamp
from engenho.schema import CATALOGUE

__all__ = ["EventRecorder", "Reference"]

_log = logging.getLogger("engenho.reconcilers")
_AGGREGATION_SECONDS = 600
_CACHE_LIMIT = 4096
_WRITERS = 8
_QUEUE_PER_WRITER = 1024


@frozen
class Reference:
    """The object an event is about (an ObjectReference)."""

    api_version: str
    kind: str
    namespace: str
    name: str
    uid: str
    resource_version: str = ""
    field_path: str = ""

    @classmethod
    def to(cls, stored: StoredObject, field_path: str = "") -> Reference:
        obj = stored.object
        return cls(
            api_version=str(obj.get("apiVersion", "")),
            kind=str(obj.get("kind", "")),
            namespace=stored.namespace,
            name=stored.name,
            uid=stored.uid,
            resource_version=str(stored.resource_version),
            field_path=field_path,
        )

    def to_json(self) -> dict[str, str]:
        ref = {
            "apiVersion": self.api_version,
            "kind": self.kind,
            "name": self.name,
            "uid": self.uid,
        }
        if self.namespace:
            ref["namespace"] = self.namespace
        if self.resource_version:
            ref["resourceVersion"] = self.resource_version
        if self.field_path:
            ref["fieldPath"] = self.field_path
        return ref


@frozen
class _Pending:
    reference: Reference
    type: str
    reason: str
    message: str
    at: datetime


class EventRecorder:
    def __init__(
        self, registry: Registry, component: str, identity: Actor, *, host: str = ""
    ) -> None:
        self.registry = registry
        self.component = component
        self.identity = identity
        self.host = host
        self.dropped = 0
        self._queues: list[asyncio.Queue[_Pending]] = [
            asyncio.Queue(maxsize=_QUEUE_PER_WRITER) for _ in range(_WRITERS)
        ]
        self._seen: dict[tuple[str, str, str, str], tuple[str, int, float]] = {}
        self._events = CATALOGUE.get("", "v1", "events")

    def emit(self, reference: Reference, type_: str, reason: str, message: str) -> None:
        """Queue an event (``Normal`` or ``Warning``); never waits."""
        shard = hash((reference.uid, type_, reason, message)) % _WRITERS
        try:
            self._queues[shard].put_nowait(
                _Pending(reference, type_, reason, message, datetime.now(UTC))
            )
        except asyncio.QueueFull:
            self.dropped += 1

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            for number, queue in enumerate(self._queues):
                group.create_task(self._drain(queue), name=f"{self.component}-events-{number}")

    async def _drain(self, queue: asyncio.Queue[_Pending]) -> None:
        while True:
            pending = await queue.get()
            try:
                await self._write(pending)
            except StatusError as exc:
                _log.debug("%s: event %s not recorded: %s", self.component, pending.reason, exc)

    def _context(self, at: datetime) -> RequestContext:
        return RequestContext(
            actor=self.identity,
            request_id=f"{self.component}-event-{at.timestamp():.6f}",
            now=at,
            field_manager=self.component,
        )

    async def _write(self, pending: _Pending) -> None:
        ref = pending.reference
        namespace = ref.namespace or "default"
        correlation = (ref.uid, pending.type, pending.reason, pending.message)
        stamp = format_timestamp(pending.at)
        seen = self._seen.get(correlation)
        if seen is not None and time.monotonic() - seen[2] < _AGGREGATION_SECONDS:
            name, count, first = seen
            try:
                await self.registry.patch(
                    self._context(pending.at),
                    self._events,
                    namespace,
                    name,
                    "merge",
                    {"count": count + 1, "lastTimestamp": stamp},
                )
            except NotFoundError:
                pass  # expired or deleted: write a new one
            else:
                self._seen[correlation] = (name, count + 1, first)
                return
        name = f"{ref.name}.{time.time_ns():x}"
        body: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": name, "namespace": namespace},
            "involvedObject": ref.to_json(),
            "reason": pending.reason,
            "message": pending.message,
            "type": pending.type,
            "source": {"component": self.component, **({"host": self.host} if self.host else {})},
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
            "reportingComponent": self.component,
            "reportingInstance": self.host or self.component,
        }
        await self.registry.create(self._context(pending.at), self._events, namespace, body)
        if len(self._seen) >= _CACHE_LIMIT:
            self._seen.clear()
        self._seen[correlation] = (name, 1, time.monotonic())
