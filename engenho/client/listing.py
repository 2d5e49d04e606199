"""Lists: pages of ``limit`` items followed through ``continue`` tokens (contract §7).

Every page of one listing is read at the first page's snapshot, so
:attr:`Listing.resource_version` is the point a watch should start from to see every
change after the listing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Generic, TypeVar

from attrs import frozen

from engenho.client.errors import ExpiredError

__all__ = ["Listing", "Page"]

T = TypeVar("T")


@frozen
class Page(Generic[T]):
    """One page of a list."""

    items: tuple[T, ...]
    resource_version: str
    continue_token: str = ""
    remaining_item_count: int | None = None


class Listing(Generic[T]):
    """An async iterator over every item of a list, fetching pages as it goes.

    ``async for item in client.list(...)`` yields items; :meth:`pages` yields whole pages;
    :meth:`collect` returns everything, starting over once if the server expired the
    continue token meanwhile (nothing has been handed out yet, so that is safe; iterating
    raises :class:`~engenho.client.errors.ExpiredError` instead).
    """

    def __init__(self, fetch: Callable[[str], Awaitable[Page[T]]]) -> None:
        self._fetch = fetch
        self.resource_version: str | None = None
        """The snapshot the pages are read at; set once the first page arrives."""

    async def pages(self) -> AsyncIterator[Page[T]]:
        token = ""
        while True:
            page = await self._fetch(token)
            if self.resource_version is None or not token:
                self.resource_version = page.resource_version
            yield page
            token = page.continue_token
            if not token:
                return

    def __aiter__(self) -> AsyncIterator[T]:
        return self._items()

    async def _items(self) -> AsyncIterator[T]:
        async for page in self.pages():
            for item in page.items:
                yield item

    async def collect(self) -> list[T]:
        """Every item, in the server's order."""
        for attempt in range(2):
            items: list[T] = []
            try:
                async for page in self.pages():
                    items.extend(page.items)
            except ExpiredError:
                if attempt:
                    raise
                self.resource_version = None
                continue
            return items
        raise AssertionError("unreachable")  # pragma: no cover
