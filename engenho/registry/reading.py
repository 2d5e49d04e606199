"""Reads: GET and LIST with Kubernetes resourceVersion semantics (contract §6, §7).

| request | served as |
|---|---|
| unset | most recent: wait until the commit index seen at the start is applied |
| ``0`` | any: the projection as it is |
| N (GET, LIST without limit) | not older than N: wait (bounded) until N is applied, else 504 |
| N with ``limit`` (or ``resourceVersionMatch=Exact``) | exactly the state at N |
| continue token | the token's snapshot index, after its last key |
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from attrs import frozen

from engenho.projections import HistoryExpired, NotYetApplied, Page, Projections, StoredObject
from engenho.registry import refusals
from engenho.registry.continuation import ContinueToken, TokenCodec
from engenho.registry.errors import BadRequestError
from engenho.registry.matching import Matcher
from engenho.registry.requests import ListQuery
from engenho.schema import ResourceType

__all__ = ["ListResult", "Reader", "parse_resource_version"]

RESOURCE_VERSION_WAIT = 3.0
"""How long a read waits for a resourceVersion the projection has not reached (upstream ~3 s)."""

_CHUNK = 500


def parse_resource_version(text: str | None) -> int | None:
    """None for unset or empty; the number otherwise; 400 for anything else."""
    if text is None or text == "":
        return None
    if not text.isdigit():
        raise BadRequestError(f"invalid resource version: {text!r}")
    return int(text)


@frozen
class ListResult:
    items: list[StoredObject]
    resource_version: int
    continue_token: str = ""
    remaining_item_count: int | None = None
    """Items after this page (only when unfiltered, as upstream: with selectors it is not
    known without reading them all)."""


class Reader:
    def __init__(
        self,
        projections: Projections,
        commit_index: Callable[[], int],
        tokens: TokenCodec,
    ) -> None:
        self._projections = projections
        self._commit_index = commit_index
        self._tokens = tokens

    async def most_recent(self) -> None:
        """Wait until everything committed when the request arrived is applied."""
        await self.not_older_than(self._commit_index())

    async def not_older_than(self, index: int) -> None:
        try:
            await self._projections.wait_for(index, timeout=RESOURCE_VERSION_WAIT)
        except TimeoutError as exc:
            raise refusals.too_large_resource_version(
                index, self._projections.applied_index
            ) from exc

    async def _at(self, resource_version: str | None) -> None:
        index = parse_resource_version(resource_version)
        if index is None:
            await self.most_recent()
        elif index:
            await self.not_older_than(index)

    async def get(
        self, rt: ResourceType, namespace: str, name: str, resource_version: str | None
    ) -> StoredObject:
        await self._at(resource_version)
        found = await self._projections.get(rt.group, rt.plural, namespace, name)
        if found is None:
            raise refusals.not_found(rt, name)
        return found

    async def _page(
        self,
        rt: ResourceType,
        namespace: str | None,
        at: int | None,
        after: tuple[str, str] | None,
        limit: int | None,
    ) -> Page:
        try:
            return await self._projections.list(
                rt.group, rt.plural, namespace, at=at, after=after, limit=limit
            )
        except HistoryExpired as exc:
            raise refusals.too_old_resource_version(exc.requested, exc.floor) from exc
        except NotYetApplied as exc:
            raise refusals.too_large_resource_version(
                exc.requested, self._projections.applied_index
            ) from exc

    async def _start(self, query: ListQuery) -> tuple[int | None, tuple[str, str] | None]:
        """The snapshot index to read at (None = current) and the key to continue after."""
        rv = parse_resource_version(query.resource_version)
        match = query.resource_version_match
        if match not in (None, "", "Exact", "NotOlderThan"):
            raise BadRequestError(f"invalid resourceVersionMatch: {match!r}")
        if query.continue_token:
            if rv not in (None, 0) or match:
                raise BadRequestError(
                    "specifying resource version is not allowed when using continue"
                )
            token = self._tokens.decode(query.continue_token)
            if token.index and token.index < self._projections.floor:
                fresh = self._tokens.encode(ContinueToken(0, token.namespace, token.name))
                raise refusals.continue_expired(fresh)
            return (token.index or None), (token.namespace, token.name)
        if match and rv is None:
            raise BadRequestError(
                "resourceVersionMatch is forbidden unless resourceVersion is provided"
            )
        if match == "Exact":
            if not rv:
                raise BadRequestError(
                    'resourceVersionMatch "Exact" is forbidden for resourceVersion "0"'
                )
            await self._exact_reachable(rv)
            return rv, None
        if rv is None:
            await self.most_recent()
            return None, None
        if rv == 0:
            return None, None
        if query.limit and not match:
            await self._exact_reachable(rv)
            return rv, None
        await self.not_older_than(rv)
        return None, None

    async def _exact_reachable(self, index: int) -> None:
        try:
            await self._projections.wait_for(index, timeout=RESOURCE_VERSION_WAIT)
        except TimeoutError as exc:
            raise refusals.too_large_resource_version(
                index, self._projections.applied_index
            ) from exc

    async def list(
        self, rt: ResourceType, namespace: str | None, query: ListQuery, matcher: Matcher
    ) -> ListResult:
        at, after = await self._start(query)
        limit = query.limit or None
        if matcher.everything:
            page = await self._page(rt, namespace, at, after, limit)
            if page.more and page.items:
                last = page.items[-1]
                token = self._tokens.encode(ContinueToken(page.index, last.namespace, last.name))
                return ListResult(page.items, page.index, token, page.remaining)
            return ListResult(page.items, page.index)
        # With selectors, read in chunks at one snapshot until `limit` items match.
        items: list[StoredObject] = []
        snapshot: int | None = at
        while True:
            chunk = max(limit or _CHUNK, _CHUNK)
            page = await self._page(rt, namespace, snapshot, after, chunk)
            snapshot = page.index
            for position, item in enumerate(page.items):
                if not matcher.matches(item):
                    continue
                items.append(item)
                if limit and len(items) == limit:
                    more = page.more or position < len(page.items) - 1
                    token = (
                        self._tokens.encode(ContinueToken(page.index, item.namespace, item.name))
                        if more
                        else ""
                    )
                    return ListResult(items, page.index, token)
            if not page.more or not page.items:
                return ListResult(items, page.index, "")
            last = page.items[-1]
            after = (last.namespace, last.name)
            await asyncio.sleep(0)  # long scans yield to other requests between chunks
