"""The Registry: every read and write any client path makes, in one place.

The apiserver calls it for HTTP requests and in-process controllers call it directly, so both
go through the same decide → propose → apply path under their own identity.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

from engenho.projections import Projections, StoredObject
from engenho.registry.admission import AdmissionSettings
from engenho.registry.allocation import NetworkSettings
from engenho.registry.continuation import TokenCodec
from engenho.registry.matching import Matcher
from engenho.registry.reading import ListResult, Reader
from engenho.registry.requests import DeleteOptions, ListQuery, RequestContext, WatchQuery
from engenho.registry.scaling import scale_of
from engenho.registry.watching import WatchEvent, Watching
from engenho.registry.writing import DeleteResult, Writer
from engenho.replication import Proposer
from engenho.schema import CATALOGUE, ResourceType

__all__ = ["Registry"]


class Registry:
    def __init__(
        self,
        *,
        proposer: Proposer,
        projections: Projections,
        commit_index: Callable[[], int],
        token_key: bytes,
        bookmark_interval: float = 60.0,
        network: NetworkSettings | None = None,
        admission: AdmissionSettings | None = None,
    ) -> None:
        self.projections = projections
        self.network = network or NetworkSettings()
        self.admission = admission or AdmissionSettings()
        self.reader = Reader(projections, commit_index, TokenCodec(token_key))
        self.writer = Writer(proposer, projections, self.network, self.admission)
        self.watching = Watching(projections, self.reader, bookmark_interval=bookmark_interval)

    async def get(
        self, rt: ResourceType, namespace: str, name: str, resource_version: str | None = None
    ) -> StoredObject:
        return await self.reader.get(rt, namespace, name, resource_version)

    async def list(
        self, rt: ResourceType, namespace: str | None, query: ListQuery | None = None
    ) -> ListResult:
        query = query or ListQuery()
        matcher = Matcher.build(rt, query.label_selector, query.field_selector)
        return await self.reader.list(rt, namespace, query, matcher)

    def watch(
        self, rt: ResourceType, namespace: str | None, query: WatchQuery
    ) -> AsyncIterator[WatchEvent]:
        matcher = Matcher.build(rt, query.label_selector, query.field_selector, query.name)
        self.watching.check(query)
        return self.watching.events(rt, namespace, query, matcher)

    async def create(
        self, ctx: RequestContext, rt: ResourceType, namespace: str, body: Any
    ) -> StoredObject:
        return await self.writer.create(ctx, rt, namespace, body)

    async def update(
        self,
        ctx: RequestContext,
        rt: ResourceType,
        namespace: str,
        name: str,
        body: Any,
        *,
        subresource: str | None = None,
    ) -> tuple[StoredObject, bool]:
        return await self.writer.update(ctx, rt, namespace, name, body, subresource=subresource)

    async def patch(
        self,
        ctx: RequestContext,
        rt: ResourceType,
        namespace: str,
        name: str,
        patch_type: str,
        patch: Any,
        *,
        subresource: str | None = None,
    ) -> StoredObject:
        return await self.writer.patch(
            ctx, rt, namespace, name, patch_type, patch, subresource=subresource
        )

    async def apply(
        self,
        ctx: RequestContext,
        rt: ResourceType,
        namespace: str,
        name: str,
        body: Any,
        *,
        force: bool = False,
        subresource: str | None = None,
    ) -> tuple[StoredObject, bool]:
        """Server-side apply; returns the object and whether it was created."""
        return await self.writer.apply(
            ctx, rt, namespace, name, body, force=force, subresource=subresource
        )

    async def bind(self, ctx: RequestContext, namespace: str, binding: Any) -> StoredObject:
        """Assign a pod to a node (``pods/binding``); 409 if it is already assigned."""
        return await self.writer.bind(ctx, CATALOGUE.get("", "v1", "pods"), namespace, binding)

    async def get_scale(self, rt: ResourceType, namespace: str, name: str) -> dict[str, Any]:
        return scale_of(rt, await self.reader.get(rt, namespace, name, None))

    async def scale(
        self,
        ctx: RequestContext,
        rt: ResourceType,
        namespace: str,
        name: str,
        *,
        body: Any = None,
        patch_type: str | None = None,
        patch: Any = None,
    ) -> dict[str, Any]:
        """Write the scale subresource; returns the resulting Scale."""
        stored = await self.writer.scale(
            ctx, rt, namespace, name, body=body, patch_type=patch_type, patch=patch
        )
        return scale_of(rt, stored)

    async def delete(
        self,
        ctx: RequestContext,
        rt: ResourceType,
        namespace: str,
        name: str,
        options: DeleteOptions | None = None,
    ) -> DeleteResult:
        return await self.writer.delete(ctx, rt, namespace, name, options or DeleteOptions())
