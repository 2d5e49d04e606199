"""``Watcher``: the changes to a set of objects, as an async iterator that survives
disconnects, server restarts and expired history (contract §8, client-go's reflector).

- **Start.** Without a ``resource_version`` (or with ``"0"``) the watcher lists first and
  yields an ADDED event per object, then watches from the list's resourceVersion. With one,
  it watches from there; pass the objects you hold as ``known`` so that an expired history
  (below) can be reconciled exactly.
- **Resume.** The watcher remembers the resourceVersion of the last event, and of the last
  BOOKMARK (asked for with ``allowWatchBookmarks``; bookmarks are consumed, not yielded).
  When the stream ends (the server's ``timeoutSeconds``, a restart, a dropped connection),
  it reconnects from there: no event is lost or repeated.
- **410 Gone/Expired**, in band (an ERROR event) or as the answer: the position is gone from
  the server's history. The watcher lists again and yields the difference between what it
  had seen and the new list as synthetic events (ADDED for new objects, MODIFIED for changed
  resourceVersions, DELETED with the last known object for vanished ones), so a cache fed
  only by its events stays exact; then it watches from the new list.
- **Backoff.** Reconnects after failures wait a jittered, growing delay (a 429's
  ``Retry-After`` when given), reset by the next delivered event. Errors that retrying cannot
  fix (401, 403, 404, 400) are raised to the consumer.
- **Cancellation.** Cancel the consuming task, ``break``, or leave ``async with``: the HTTP
  stream is closed at once and no task is left behind.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import random
import time
from collections.abc import AsyncIterator, Iterable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

import httpx
import orjson
from attrs import frozen

from engenho.client.errors import (
    ApiError,
    GoneError,
    TransportError,
    UnexpectedResponseError,
    error_for_status,
)
from engenho.client.objects import decode, name_of, namespace_of, resource_version_of
from engenho.client.resources import ResourceRef
from engenho.client.retrying import NO_RETRIES, Backoff
from engenho.schema import ResourceType

if TYPE_CHECKING:
    from engenho.client.base import ClientBase

__all__ = ["EventType", "WatchEvent", "Watcher"]

T = TypeVar("T")
_log = logging.getLogger("engenho.client")
_TRANSIENT_CODES = frozenset({429, 500, 502, 503, 504})
_SHORT_STREAM_SECONDS = 1.0


class EventType(enum.StrEnum):
    ADDED = "ADDED"
    MODIFIED = "MODIFIED"
    DELETED = "DELETED"


@frozen
class WatchEvent(Generic[T]):
    """One change. ``synthetic`` events were made by the watcher from a list (the initial
    one, or a re-list after 410), not sent by the server."""

    type: EventType
    object: T
    resource_version: str
    synthetic: bool = False

    @property
    def key(self) -> tuple[str, str]:
        """``(namespace, name)`` of the object (namespace empty when cluster-scoped)."""
        return namespace_of(self.object), name_of(self.object)


class _ExpiredPositionError(Exception):
    """The watch position expired: list again."""


class _StreamEndedError(Exception):
    """The stream ended or failed: connect again after ``delay`` seconds."""

    def __init__(self, delay: float) -> None:
        super().__init__(delay)
        self.delay = delay


class Watcher(Generic[T]):
    """Events for the objects of one resource matching a namespace and selectors.

    Made by :meth:`KubeClient.watch <engenho.client.client.KubeClient.watch>`; iterate it
    once (``async for event in watcher``), preferably inside ``async with watcher:``.
    """

    def __init__(
        self,
        client: ClientBase,
        resource: ResourceRef,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        resource_version: str | None = None,
        known: Iterable[T] | None = None,
        timeout_seconds: int | None = None,
        backoff: Backoff | None = None,
        page_size: int = 500,
    ) -> None:
        self._client = client
        self._resource = resource
        self._namespace = namespace
        self._label_selector = label_selector
        self._field_selector = field_selector
        self._rv = resource_version if resource_version not in (None, "", "0") else None
        self._known: dict[tuple[str, str], T] = {}
        for obj in known or ():
            self._known[(namespace_of(obj), name_of(obj))] = obj
        self._timeout_seconds = timeout_seconds
        self._backoff = backoff or Backoff(initial=0.5, cap=30.0)
        self._page_size = page_size
        self._iterator: AsyncIterator[WatchEvent[T]] | None = None
        self.connections = 0
        """How many watch requests were answered (diagnostics and tests)."""
        self.relists = 0
        """How many times the watcher listed (the initial list included)."""

    @property
    def resource_version(self) -> str | None:
        """Where the watch stands: the resourceVersion of the last event or bookmark."""
        return self._rv

    @property
    def known(self) -> dict[tuple[str, str], T]:
        """The last state of every object seen and not deleted, by (namespace, name)."""
        return dict(self._known)

    # ------------------------------------------------------------------ iteration

    def __aiter__(self) -> AsyncIterator[WatchEvent[T]]:
        if self._iterator is not None:
            raise RuntimeError("a Watcher can be iterated only once")
        self._iterator = self._run()
        return self._iterator

    async def __aenter__(self) -> Watcher[T]:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the stream (when iteration is not finished, it then ends)."""
        iterator = self._iterator
        if iterator is not None:
            await iterator.aclose()  # type: ignore[attr-defined]

    async def _run(self) -> AsyncIterator[WatchEvent[T]]:
        rt, cls, path = await self._client.collection_target(self._resource, self._namespace)
        if self._rv is None:
            for event in await self._relist(rt, cls):
                yield event
        while True:
            try:
                async for event in self._stream(rt, cls, path):
                    yield event
            except _ExpiredPositionError:
                for event in await self._relist(rt, cls):
                    yield event
            except _StreamEndedError as reconnect:
                await asyncio.sleep(reconnect.delay)

    # ------------------------------------------------------------------ listing

    async def _relist(self, rt: ResourceType, cls: type[Any] | None) -> list[WatchEvent[T]]:
        """List (retrying transient failures) and turn the difference into events."""
        while True:
            listing = self._client.list(
                rt,
                namespace=self._namespace,
                label_selector=self._label_selector,
                field_selector=self._field_selector,
                limit=self._page_size,
            )
            try:
                items = await listing.collect()
            except (ApiError, TransportError) as exc:
                await asyncio.sleep(self._failure_delay(exc))
                continue
            break
        self.relists += 1
        listed_at = listing.resource_version or ""
        events: list[WatchEvent[T]] = []
        fresh: dict[tuple[str, str], T] = {}
        for item in items:
            obj = cast(T, decode(item, cls))
            key = (namespace_of(obj), name_of(obj))
            fresh[key] = obj
            before = self._known.get(key)
            rv = resource_version_of(obj)
            if before is None:
                events.append(WatchEvent(EventType.ADDED, obj, rv, synthetic=True))
            elif resource_version_of(before) != rv:
                events.append(WatchEvent(EventType.MODIFIED, obj, rv, synthetic=True))
        events.extend(
            WatchEvent(EventType.DELETED, self._known[key], listed_at, synthetic=True)
            for key in sorted(self._known.keys() - fresh.keys())
        )
        self._known = fresh
        self._rv = listed_at
        return events

    def _failure_delay(self, exc: Exception) -> float:
        """How long to wait after ``exc``; re-raise what waiting cannot fix. (A 410 here
        came from a re-list whose continue token expired twice: list once more.)"""
        if isinstance(exc, ApiError):
            if exc.code not in _TRANSIENT_CODES and not isinstance(exc, GoneError):
                raise exc
            if exc.retry_after is not None:
                self._backoff.next()
                return exc.retry_after
        delay = self._backoff.next()
        _log.warning("watch of %s: %s; retrying in %.1f s", self._resource, exc, delay)
        return delay

    # ------------------------------------------------------------------ one stream

    async def _stream(
        self, rt: ResourceType, cls: type[Any] | None, path: str
    ) -> AsyncIterator[WatchEvent[T]]:
        timeout = self._timeout_seconds or random.randint(300, 600)
        params = {
            "watch": "1",
            "resourceVersion": self._rv,
            "allowWatchBookmarks": True,
            "timeoutSeconds": timeout,
            "labelSelector": self._label_selector,
            "fieldSelector": self._field_selector,
        }
        started, delivered = time.monotonic(), 0
        # The server ends the stream after timeoutSeconds; silence well past that means a
        # dead connection.
        limits = httpx.Timeout(30.0, read=timeout + 60.0)
        transport = self._client.transport
        try:
            async with transport.stream(
                "GET", path, params=params, http_timeout=limits, retry=NO_RETRIES
            ) as response:
                self.connections += 1
                async for line in _lines(response):
                    event = self._event(line, cls)
                    if event is not None:
                        delivered += 1
                        self._backoff.reset()
                        yield event
        except GoneError as exc:
            raise _ExpiredPositionError from exc
        except (ApiError, TransportError) as exc:
            raise _StreamEndedError(self._failure_delay(exc)) from exc
        except httpx.TransportError as exc:
            raise _StreamEndedError(self._failure_delay(TransportError(str(exc)))) from exc
        if not delivered and time.monotonic() - started < _SHORT_STREAM_SECONDS:
            # Closed at once without a word: do not reconnect in a tight loop.
            raise _StreamEndedError(self._backoff.next())
        raise _StreamEndedError(0.0)

    def _event(self, line: bytes, cls: type[Any] | None) -> WatchEvent[T] | None:
        try:
            document = orjson.loads(line)
            kind, obj = document["type"], document["object"]
        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
            raise UnexpectedResponseError(
                f"watch of {self._resource}: not a watch event: {line[:200]!r}", code=200
            ) from exc
        if kind == "ERROR":
            raise error_for_status(obj)
        rv = str((obj.get("metadata") or {}).get("resourceVersion") or "")
        if kind == "BOOKMARK":
            if rv:
                self._rv = rv
            return None
        try:
            event_type = EventType(kind)
        except ValueError:
            _log.warning("watch of %s: unknown event type %r skipped", self._resource, kind)
            return None
        meta = obj.get("metadata") or {}
        key = (meta.get("namespace") or "", meta.get("name") or "")
        value = cast(T, decode(obj, cls))
        if event_type is EventType.DELETED:
            self._known.pop(key, None)
        else:
            self._known[key] = value
        if rv:
            self._rv = rv
        return WatchEvent(event_type, value, rv)


async def _lines(response: httpx.Response) -> AsyncIterator[bytes]:
    pending = b""
    async for chunk in response.aiter_bytes():
        pending += chunk
        if b"\n" not in chunk:
            continue
        *lines, pending = pending.split(b"\n")
        for line in lines:
            if line.strip():
                yield line
    # A clean end leaves nothing pending; a partial line (a cut connection) is dropped and
    # the watch resumes from the last whole event.
