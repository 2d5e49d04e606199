"""``Informer``: list, then watch, into a :class:`~engenho.client.store.Store`, calling
handlers with every change (client-go's shared informer, for one consumer).

One named task does everything, so the store and the handlers see changes in order: list
(paged), replace the store, call the handlers with an ADDED event per object, mark the
informer synced; then follow a :class:`~engenho.client.watching.Watcher` seeded with the
listed objects, applying each event to the store before calling the handlers. A 410 during
the watch becomes synthetic events that bring the store back to the server's state. Errors
that retrying cannot fix (401, 403, 404) stop the informer: :meth:`Informer.wait_synced`
and leaving ``async with`` raise them.

Handlers are called one at a time and awaited, so a slow handler slows the informer (the
watcher's HTTP stream then applies backpressure to the server). A handler that raises is
logged and the informer goes on: queue work elsewhere, as reconcilers do, and keep handlers
quick.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import TYPE_CHECKING, Generic, TypeVar, cast

from engenho.client.errors import ApiError, GoneError, TransportError
from engenho.client.resources import ResourceRef
from engenho.client.retrying import Backoff
from engenho.client.store import Store
from engenho.client.watching import EventType, Watcher, WatchEvent

if TYPE_CHECKING:
    from engenho.client.base import ClientBase

__all__ = ["Handler", "Informer"]

T = TypeVar("T")
Handler = Callable[[WatchEvent[T]], Awaitable[None] | None]
_log = logging.getLogger("engenho.client")
_TRANSIENT_CODES = frozenset({429, 500, 502, 503, 504})


class Informer(Generic[T]):
    """A cache of the objects of one resource matching a namespace and selectors."""

    def __init__(
        self,
        client: ClientBase,
        resource: ResourceRef,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        page_size: int = 500,
        backoff: Backoff | None = None,
    ) -> None:
        self._client = client
        self._resource = resource
        self._namespace = namespace
        self._label_selector = label_selector
        self._field_selector = field_selector
        self._page_size = page_size
        self._backoff = backoff or Backoff(initial=0.5, cap=30.0)
        self.store: Store[T] = Store()
        self._handlers: list[Handler[T]] = []
        self._lock = asyncio.Lock()
        self._synced = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._failure: BaseException | None = None
        self.watcher: Watcher[T] | None = None
        """The watcher following changes (for diagnostics), once synced."""

    @property
    def synced(self) -> bool:
        return self._synced.is_set()

    # ------------------------------------------------------------------ handlers

    async def add_handler(self, handler: Handler[T]) -> None:
        """Call ``handler`` with every future change; when the informer has already listed,
        first with a synthetic ADDED event per object it holds (no change slips between)."""
        async with self._lock:
            self._handlers.append(handler)
            if self.synced:
                for obj in self.store.list():
                    await self._call(
                        handler,
                        WatchEvent(EventType.ADDED, obj, self.store.resource_version, True),
                    )

    @staticmethod
    async def _call(handler: Handler[T], event: WatchEvent[T]) -> None:
        try:
            result = handler(event)
            if inspect.isawaitable(result):
                await result
        except Exception:
            _log.exception("informer handler %r failed on %s", handler, event.type)

    async def _dispatch(self, event: WatchEvent[T]) -> None:
        self.store.apply(event)
        for handler in list(self._handlers):
            await self._call(handler, event)

    # ------------------------------------------------------------------ running

    def start(self) -> None:
        """Start listing and watching in the background."""
        if self._task is not None:
            raise RuntimeError("the informer is already started")
        self._task = asyncio.create_task(self._run(), name=f"informer {self._resource}")

    async def wait_synced(self) -> None:
        """Return once the first list is in the store; raise what stopped the informer.
        (Bound the wait with ``asyncio.timeout``.)"""
        if self._task is None:
            raise RuntimeError("start the informer first")
        waiter = asyncio.create_task(self._synced.wait(), name="informer wait synced")
        try:
            await asyncio.wait({waiter, self._task}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
            await asyncio.gather(waiter, return_exceptions=True)
        if not self.synced:
            self._raise_failure()

    def _raise_failure(self) -> None:
        if self._failure is not None:
            raise self._failure
        raise RuntimeError("the informer stopped before it synced")

    async def stop(self) -> None:
        """Stop watching (the store keeps its last state); raise what stopped it, if
        anything did before."""
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        if self._failure is not None:
            raise self._failure

    async def __aenter__(self) -> Informer[T]:
        self.start()
        try:
            await self.wait_synced()
        except BaseException:
            await asyncio.gather(self.stop(), return_exceptions=True)
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    async def _run(self) -> None:
        try:
            items, resource_version = await self._list()
            async with self._lock:
                self.store.replace(items, resource_version)
                for obj in items:
                    event = WatchEvent(EventType.ADDED, obj, resource_version, synthetic=True)
                    for handler in list(self._handlers):
                        await self._call(handler, event)
                self._synced.set()
            watcher: Watcher[T] = Watcher(
                self._client,
                self._resource,
                namespace=self._namespace,
                label_selector=self._label_selector,
                field_selector=self._field_selector,
                resource_version=resource_version,
                known=items,
                backoff=self._backoff,
            )
            self.watcher = watcher
            async with watcher:
                async for event in watcher:
                    async with self._lock:
                        await self._dispatch(event)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._failure = exc
            _log.error("informer of %s stopped: %s", self._resource, exc)

    async def _list(self) -> tuple[list[T], str]:
        while True:
            listing = self._client.list(
                self._resource,
                namespace=self._namespace,
                label_selector=self._label_selector,
                field_selector=self._field_selector,
                limit=self._page_size,
            )
            try:
                items = cast(list[T], await listing.collect())
            except (ApiError, TransportError) as exc:
                fatal = isinstance(exc, ApiError) and exc.code not in _TRANSIENT_CODES
                if fatal and not isinstance(exc, GoneError):
                    raise
                delay = self._backoff.next()
                _log.warning(
                    "informer of %s: %s; listing again in %.1f s", self._resource, exc, delay
                )
                await asyncio.sleep(delay)
                continue
            self._backoff.reset()
            return items, listing.resource_version or ""
