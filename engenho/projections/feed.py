"""The change feed: every applied change, in index order, to any number of subscribers.

The applier publishes each committed batch's changes synchronously, right after its commit.
A subscription registers for live changes at once (when it is created), then replays the
changes between its ``after`` index and the registration point: from the in-memory ring of
recent changes when the ring still holds them, otherwise from the projection's history in the
database. Live changes are buffered meanwhile and the switch de-duplicates by index, so nothing
is lost or repeated at the boundary (contract §20: ordered, unique, reliable, resumable).

Each subscriber has a bounded buffer. One that fills (its consumer is too slow) is dropped and
ends with :class:`SubscriptionOverflow` naming the last index it delivered, so a slow watcher
never stalls the applier and never silently misses a change (contract §8.6, §21 items 7, 16).
"""

from __future__ import annotations

import asyncio
import bisect
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Self

from engenho.projections.errors import (
    HistoryExpired,
    ProjectionClosed,
    SubscriptionOverflow,
)
from engenho.projections.records import Change

__all__ = ["ChangeFeed", "HistoryReader", "Subscription"]

HistoryReader = Callable[[str, str, str | None, int, int], Awaitable[tuple[list[Change], int]]]
"""``(group, resource, namespace, after, upto)`` → the changes in ``(after, reached]`` and
``reached`` (≤ ``upto``), read from one database snapshot; raises :class:`HistoryExpired`."""


class ChangeFeed:
    def __init__(
        self,
        published: int,
        *,
        ring_size: int,
        history: HistoryReader,
        floor: Callable[[], int],
    ) -> None:
        self.published = published
        """Every change with an index up to this one has been published."""
        self._ring: list[Change] = []
        self._ring_floor = published
        """The ring holds every change with an index above this one."""
        self._ring_size = max(ring_size, 1)
        self._history = history
        self._floor = floor
        self._subscribers: dict[tuple[str, str], set[Subscription]] = {}
        self._error: BaseException | None = None

    def publish(self, changes: Sequence[Change], through: int) -> None:
        """Record the changes of a committed batch ending at index ``through``."""
        ring = self._ring
        ring.extend(changes)
        if len(ring) > 2 * self._ring_size:  # trim in bulk, not per change
            cut = len(ring) - self._ring_size
            self._ring_floor = ring[cut - 1].index
            del ring[:cut]
        subscribers = self._subscribers
        if subscribers and changes:
            # Snapshot each scope's subscribers once per batch: a push may end (unregister) one.
            scopes: dict[tuple[str, str], tuple[Subscription, ...]] = {}
            for change in changes:
                scope = (change.group, change.resource)
                targets = scopes.get(scope)
                if targets is None:
                    targets = scopes[scope] = tuple(subscribers.get(scope, ()))
                for subscription in targets:
                    subscription._push(change)
        self.published = through

    def subscribe(
        self, group: str, resource: str, namespace: str | None, after: int, buffer: int
    ) -> Subscription:
        subscription = Subscription(
            self, group=group, resource=resource, namespace=namespace, after=after, capacity=buffer
        )
        if self._error is not None:
            subscription._end(self._error)
            return subscription
        live_start = self.published
        if after < self._ring_floor:
            subscription._pending_history = (after, live_start)
        elif after < live_start:
            start = bisect.bisect_right(self._ring, after, key=lambda c: c.index)
            subscription._replay.extend(c for c in self._ring[start:] if subscription._matches(c))
        self._subscribers.setdefault((group, resource), set()).add(subscription)
        return subscription

    def close(self, error: BaseException | None = None) -> None:
        """End every subscription: cleanly, or with ``error`` (and refuse new ones)."""
        self._error = error or ProjectionClosed("the projections are closed")
        ending = [s for subscriptions in self._subscribers.values() for s in subscriptions]
        self._subscribers.clear()
        for subscription in ending:
            subscription._end(error)

    def _unregister(self, subscription: Subscription) -> None:
        scope = (subscription.group, subscription.resource)
        subscriptions = self._subscribers.get(scope)
        if subscriptions is not None:
            subscriptions.discard(subscription)
            if not subscriptions:
                del self._subscribers[scope]


class Subscription:
    """An async iterator of :class:`Change` after an index, strictly in index order.

    Ends by raising :class:`SubscriptionOverflow` (resume from its ``last_index``),
    :class:`HistoryExpired` (``after`` is below the history floor), or by stopping when it
    or the projections are closed.
    """

    def __init__(
        self,
        feed: ChangeFeed,
        *,
        group: str,
        resource: str,
        namespace: str | None,
        after: int,
        capacity: int,
    ) -> None:
        self.group = group
        self.resource = resource
        self.namespace = namespace
        self.after = after
        self._feed = feed
        self._capacity = max(capacity, 1)
        self._buffer: deque[Change] = deque()
        self._replay: deque[Change] = deque()
        self._pending_history: tuple[int, int] | None = None
        self._last = after
        self._started = False
        self._stopped = False
        self._error: BaseException | None = None
        self._wake = asyncio.Event()

    @property
    def last_index(self) -> int:
        """The index of the last change delivered (``after`` before the first)."""
        return self._last

    @property
    def position(self) -> int:
        """Every matching change up to this index has been delivered (for bookmarks)."""
        caught_up = not (self._buffer or self._replay or self._pending_history)
        if caught_up and self._started and not self._stopped:
            return max(self._last, self._feed.published)
        return self._last

    def _matches(self, change: Change) -> bool:
        return (
            change.resource == self.resource
            and change.group == self.group
            and (self.namespace is None or change.namespace == self.namespace)
        )

    def _push(self, change: Change) -> None:
        if self._stopped or not self._matches(change):
            return
        if len(self._buffer) >= self._capacity:
            self._end(SubscriptionOverflow(self._last))
            return
        self._buffer.append(change)
        self._wake.set()

    def _end(self, error: BaseException | None) -> None:
        """Stop receiving; the consumer next sees ``error`` (or the end of iteration)."""
        if self._stopped:
            return
        self._stopped = True
        self._error = error
        self._buffer.clear()
        self._replay.clear()
        self._pending_history = None
        self._feed._unregister(self)
        self._wake.set()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Change:
        while True:
            if self._stopped:
                if isinstance(self._error, SubscriptionOverflow):
                    # Whatever was delivered since the overflow is the resume point.
                    raise SubscriptionOverflow(self._last)
                if self._error is not None:
                    raise self._error
                raise StopAsyncIteration
            if not self._started:
                self._started = True
                floor = self._feed._floor()
                if self.after < floor:
                    self._end(HistoryExpired(self.after, floor))
                    continue
            # Replay (ring or history) comes before anything buffered live.
            if self._replay:
                source = self._replay
            elif self._pending_history is not None:
                await self._load_history()
                continue
            else:
                source = self._buffer
            if source:
                change = source.popleft()
                if change.index > self._last:  # de-duplicate across the replay/live boundary
                    self._last = change.index
                    return change
                continue
            self._wake.clear()
            await self._wake.wait()

    async def _load_history(self) -> None:
        assert self._pending_history is not None
        after, upto = self._pending_history
        try:
            changes, reached = await self._feed._history(
                self.group, self.resource, self.namespace, after, upto
            )
        except HistoryExpired as exc:
            self._end(exc)
            return
        if self._stopped:
            return
        self._replay.extend(changes)
        self._pending_history = None if reached >= upto else (reached, upto)

    async def aclose(self) -> None:
        """Stop the subscription and free its buffer."""
        self._end(None)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()
