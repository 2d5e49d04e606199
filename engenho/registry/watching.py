"""Watches: the change feed seen through a resource, a namespace and selectors (contract §8).

A watch starts with synthetic ADDED events for the current state (resourceVersion unset or
``0``, or ``sendInitialEvents``), or at exactly the changes after a given resourceVersion. It
then follows the projection's change feed, which replays history and joins live changes with
no gap and no duplicate. Selectors are evaluated before and after each change, so an object
that stops matching is seen DELETED. A watcher that falls behind is ended (the client resumes
from its last resourceVersion); history below the floor ends the stream with a 410 ERROR.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import orjson
from attrs import frozen

from engenho.projections import (
    Change,
    EventType,
    HistoryExpired,
    Projections,
    StoredObject,
    SubscriptionOverflow,
)
from engenho.registry import refusals
from engenho.registry.errors import BadRequestError, StatusError
from engenho.registry.matching import Matcher
from engenho.registry.reading import Reader, parse_resource_version
from engenho.registry.requests import WatchQuery
from engenho.schema import ResourceType

__all__ = ["WatchEvent", "Watching"]


@frozen
class WatchEvent:
    """One event of a watch stream."""

    type: str
    """ADDED, MODIFIED, DELETED, BOOKMARK or ERROR."""
    object: StoredObject | None = None
    index: int = 0
    """The resourceVersion a BOOKMARK promises everything up to."""
    initial_events_end: bool = False
    error: StatusError | None = None


def _restamped(stored: StoredObject, index: int) -> StoredObject:
    """The prior version of an object that left a selector, stamped with the leaving index."""
    obj = dict(stored.object)
    obj["metadata"] = {**obj.get("metadata", {}), "resourceVersion": str(index)}
    return StoredObject(
        group=stored.group,
        resource=stored.resource,
        namespace=stored.namespace,
        name=stored.name,
        uid=stored.uid,
        resource_version=index,
        data=orjson.dumps(obj, option=orjson.OPT_SORT_KEYS),
    )


def _transition(change: Change, matcher: Matcher) -> WatchEvent | None:
    """The event a selected watch sees for ``change`` (contract §8.7)."""
    if change.type is EventType.DELETED:
        last = change.prior or change.object
        return WatchEvent("DELETED", change.object) if matcher.matches(last) else None
    now = matcher.matches(change.object)
    before = change.prior is not None and matcher.matches(change.prior)
    if change.type is EventType.ADDED or not before:
        return WatchEvent("ADDED", change.object) if now else None
    if now:
        return WatchEvent("MODIFIED", change.object)
    assert change.prior is not None
    return WatchEvent("DELETED", _restamped(change.prior, change.index))


class Watching:
    def __init__(
        self, projections: Projections, reader: Reader, *, bookmark_interval: float = 60.0
    ) -> None:
        self._projections = projections
        self._reader = reader
        self.bookmark_interval = bookmark_interval

    @staticmethod
    def check(query: WatchQuery) -> None:
        """Refuse bad watch parameters before the stream starts (they are then a plain 400)."""
        parse_resource_version(query.resource_version)
        if query.send_initial_events and query.resource_version_match != "NotOlderThan":
            raise BadRequestError(
                "sendInitialEvents is forbidden for watch unless resourceVersionMatch is set "
                "to NotOlderThan"
            )
        if query.resource_version_match not in (None, "", "NotOlderThan"):
            raise BadRequestError(
                f"resourceVersionMatch {query.resource_version_match!r} is forbidden for watch"
            )

    async def events(
        self, rt: ResourceType, namespace: str | None, query: WatchQuery, matcher: Matcher
    ) -> AsyncIterator[WatchEvent]:
        rv = parse_resource_version(query.resource_version)
        initial = query.send_initial_events
        if initial is None:
            initial = not rv
        deadline = time.monotonic() + query.timeout_seconds if query.timeout_seconds else None
        if initial:
            if rv is None:
                await self._reader.most_recent()
            elif rv:
                await self._reader.not_older_than(rv)
            page = await self._projections.list(rt.group, rt.plural, namespace)
            after = page.index
            for item in page.items:
                if matcher.matches(item):
                    yield WatchEvent("ADDED", item)
            if query.send_initial_events:
                yield WatchEvent("BOOKMARK", index=after, initial_events_end=True)
        else:
            after = rv or 0
            if after < self._projections.floor:
                yield WatchEvent(
                    "ERROR", error=refusals.too_old_resource_version(after, self._projections.floor)
                )
                return
        async for event in self._follow(rt, namespace, query, matcher, after, deadline):
            yield event

    async def _follow(
        self,
        rt: ResourceType,
        namespace: str | None,
        query: WatchQuery,
        matcher: Matcher,
        after: int,
        deadline: float | None,
    ) -> AsyncIterator[WatchEvent]:
        subscription = self._projections.subscribe(rt.group, rt.plural, namespace, after)
        last_bookmark = after
        next_bookmark = time.monotonic() + self.bookmark_interval
        try:
            while True:
                now = time.monotonic()
                wait = next_bookmark - now if query.allow_bookmarks else None
                if deadline is not None:
                    remaining = deadline - now
                    if remaining <= 0:
                        return
                    wait = remaining if wait is None else min(wait, remaining)
                try:
                    # Cancelling a pending __anext__ is safe: a Subscription holds its place.
                    async with asyncio.timeout(wait):
                        change = await anext(subscription)
                except TimeoutError:
                    if query.allow_bookmarks and time.monotonic() >= next_bookmark:
                        next_bookmark = time.monotonic() + self.bookmark_interval
                        position = subscription.position
                        if position > last_bookmark:
                            last_bookmark = position
                            yield WatchEvent("BOOKMARK", index=position)
                    continue
                except StopAsyncIteration:
                    return
                except HistoryExpired as exc:
                    yield WatchEvent(
                        "ERROR", error=refusals.too_old_resource_version(exc.requested, exc.floor)
                    )
                    return
                except SubscriptionOverflow as exc:
                    # The client resumes from what it saw; a bookmark tells it how far that is.
                    if query.allow_bookmarks and exc.last_index > last_bookmark:
                        yield WatchEvent("BOOKMARK", index=exc.last_index)
                    return
                event = _transition(change, matcher)
                if event is not None:
                    yield event
        finally:
            await subscription.aclose()
