"""Events about pods and the node, posted as ``core/v1`` Events the way the kubelet does.

``EventRecorder.record`` never blocks the caller: events go to bounded queues (full queues
drop, with a log line, as client-go's broadcaster does) served by a few tasks. A repeat of an
event already posted (same source, object, type, reason and message) is not a new object:
like client-go's ``EventCorrelator`` the recorder patches the existing Event's ``count`` and
``lastTimestamp`` (a new one is created if it has gone). Events of one object always go
through the same task, so its creates and patches keep their order.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
import zlib
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from attrs import frozen

from engenho.client import ApiError, KubeClient, NotFoundError, PatchType, TransportError

__all__ = ["EventRecorder", "ObjectReference"]

_log = logging.getLogger("engenho.node_agent")
_CACHE_ENTRIES = 4096  # client-go's maxLruCacheEntries


@frozen
class ObjectReference:
    """``involvedObject`` of an Event."""

    kind: str
    name: str
    namespace: str = ""
    uid: str = ""
    api_version: str = "v1"
    resource_version: str = ""
    field_path: str = ""

    @classmethod
    def of_pod(cls, pod: Mapping[str, Any], container: str | None = None) -> ObjectReference:
        meta = pod.get("metadata") or {}
        field_path = ""
        if container is not None:
            spec = pod.get("spec") or {}
            init = {c.get("name") for c in spec.get("initContainers") or []}
            where = "initContainers" if container in init else "containers"
            field_path = f"spec.{where}{{{container}}}"
        return cls(
            kind="Pod",
            name=str(meta.get("name") or ""),
            namespace=str(meta.get("namespace") or ""),
            uid=str(meta.get("uid") or ""),
            resource_version=str(meta.get("resourceVersion") or ""),
            field_path=field_path,
        )

    def wire(self) -> dict[str, str]:
        optional = {
            "namespace": self.namespace,
            "uid": self.uid,
            "resourceVersion": self.resource_version,
            "fieldPath": self.field_path,
        }
        wire = {"kind": self.kind, "name": self.name, "apiVersion": self.api_version}
        return wire | {key: value for key, value in optional.items() if value}


@frozen
class _Pending:
    involved: ObjectReference
    host: str
    type: str
    reason: str
    message: str
    at: datetime

    @property
    def key(self) -> tuple[str, ...]:
        ref = self.involved
        return (
            self.host,
            ref.kind,
            ref.namespace,
            ref.name,
            ref.uid,
            ref.field_path,
            self.type,
            self.reason,
            self.message,
        )


@frozen
class _Posted:
    name: str
    namespace: str
    count: int


def _time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class EventRecorder:
    """Posts Events from ``component`` (``kubelet``) on nodes named per call (one recorder
    can serve many simulated nodes). Run :meth:`run` in a task; :meth:`record` from anywhere
    in the same event loop."""

    def __init__(
        self,
        client: KubeClient,
        *,
        component: str = "kubelet",
        workers: int = 4,
        capacity: int = 1000,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._client = client
        self._component = component
        self._clock = clock or (lambda: datetime.now(UTC))
        self._queues: list[asyncio.Queue[_Pending]] = [
            asyncio.Queue(capacity) for _ in range(max(1, workers))
        ]
        self._posted: collections.OrderedDict[tuple[str, ...], _Posted] = collections.OrderedDict()
        self._dropped = 0
        self.posted = 0
        """How many creates and patches went through (for tests and metrics)."""

    def record(
        self,
        involved: ObjectReference,
        host: str,
        type_: str,
        reason: str,
        message: str,
    ) -> None:
        pending = _Pending(involved, host, type_, reason, message, self._clock())
        queue = self._queues[
            zlib.crc32(involved.uid.encode() or involved.name.encode()) % len(self._queues)
        ]
        try:
            queue.put_nowait(pending)
        except asyncio.QueueFull:
            self._dropped += 1
            if self._dropped == 1 or self._dropped % 1000 == 0:
                _log.warning("event queue full: %d events dropped so far", self._dropped)

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            for index, queue in enumerate(self._queues):
                group.create_task(self._serve(queue), name=f"events {index}")

    async def drain(self) -> None:
        """Wait until every queued event has been posted (tests, shutdown)."""
        for queue in self._queues:
            await queue.join()

    async def _serve(self, queue: asyncio.Queue[_Pending]) -> None:
        while True:
            pending = await queue.get()
            try:
                await self._post(pending)
            except (ApiError, TransportError) as exc:
                _log.warning(
                    "event %s %s for %s/%s not posted: %s",
                    pending.type,
                    pending.reason,
                    pending.involved.namespace,
                    pending.involved.name,
                    exc,
                )
            except Exception:
                _log.exception("event %s not posted", pending.reason)
            finally:
                queue.task_done()

    async def _post(self, pending: _Pending) -> None:
        key = pending.key
        posted = self._posted.get(key)
        if posted is not None:
            count = posted.count + 1
            try:
                await self._client.patch(
                    "events",
                    posted.name,
                    {"count": count, "lastTimestamp": _time(pending.at)},
                    patch_type=PatchType.STRATEGIC,
                    namespace=posted.namespace,
                )
            except NotFoundError:
                pass  # it expired or was deleted: post it anew
            else:
                self._remember(key, _Posted(posted.name, posted.namespace, count))
                self.posted += 1
                return
        ref = pending.involved
        namespace = ref.namespace or "default"
        name = f"{ref.name}.{time.time_ns():x}"
        await self._client.create(
            {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"name": name, "namespace": namespace},
                "involvedObject": ref.wire(),
                "reason": pending.reason,
                "message": pending.message,
                "type": pending.type,
                "source": {"component": self._component, "host": pending.host},
                "firstTimestamp": _time(pending.at),
                "lastTimestamp": _time(pending.at),
                "count": 1,
                "reportingComponent": self._component,
                "reportingInstance": pending.host,
            },
            namespace=namespace,
        )
        self._remember(key, _Posted(name, namespace, 1))
        self.posted += 1

    def _remember(self, key: tuple[str, ...], posted: _Posted) -> None:
        self._posted[key] = posted
        self._posted.move_to_end(key)
        while len(self._posted) > _CACHE_ENTRIES:
            self._posted.popitem(last=False)
