"""An informer: one resource's objects kept in memory from a list+watch, with indexes.

Controllers read their world from informers rather than from the registry, so a reconcile
costs dictionary lookups; the informer also tells them which keys to look at (handlers run on
every add, update and delete, in index order). It follows the watch semantics every client
has: it starts from a full list, resumes from the last resourceVersion it saw (bookmarks
included) when a stream ends, and relists after a 410.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator

from engenho.projections import StoredObject
from engenho.registry import Registry, StatusError, WatchQuery
from engenho.schema import ResourceType

__all__ = ["Handler", "IndexFunction", "Informer", "InformerFactory", "object_key"]

_log = logging.getLogger("engenho.reconcilers")

Handler = Callable[[str, StoredObject | None, StoredObject | None], None]
"""Called with (event type, old object or None, new object or None)."""
IndexFunction = Callable[[StoredObject], Iterable[str]]


def object_key(stored: StoredObject) -> str:
    """``namespace/name``, or ``name`` for cluster-scoped objects (client-go's cache key)."""
    return f"{stored.namespace}/{stored.name}" if stored.namespace else stored.name


class Informer:
    def __init__(self, registry: Registry, resource: ResourceType) -> None:
        self.registry = registry
        self.resource = resource
        self._objects: dict[str, StoredObject] = {}
        self._handlers: list[Handler] = []
        self._index_functions: dict[str, IndexFunction] = {}
        self._indexes: dict[str, dict[str, set[str]]] = {}
        self.synced = asyncio.Event()
        self.resource_version = 0

    # ------------------------------------------------------------------ configuration

    def add_handler(self, handler: Handler) -> None:
        self._handlers.append(handler)

    def add_index(self, name: str, function: IndexFunction) -> None:
        self._index_functions[name] = function
        index: dict[str, set[str]] = defaultdict(set)
        for key, stored in self._objects.items():
            for value in function(stored):
                index[value].add(key)
        self._indexes[name] = index

    # ------------------------------------------------------------------ reading

    def get(self, namespace: str, name: str) -> StoredObject | None:
        return self._objects.get(f"{namespace}/{name}" if namespace else name)

    def list(self, namespace: str | None = None) -> builtins.list[StoredObject]:
        if namespace is None:
            return list(self._objects.values())
        return [o for o in self._objects.values() if o.namespace == namespace]

    def by_index(self, name: str, value: str) -> builtins.list[StoredObject]:
        keys = self._indexes[name].get(value, ())
        return [self._objects[key] for key in keys if key in self._objects]

    def __len__(self) -> int:
        return len(self._objects)

    # ------------------------------------------------------------------ keeping up

    def _index(self, key: str, stored: StoredObject | None, add: bool) -> None:
        if stored is None:
            return
        for name, function in self._index_functions.items():
            index = self._indexes[name]
            for value in function(stored):
                if add:
                    index[value].add(key)
                else:
                    index[value].discard(key)
                    if not index[value]:
                        del index[value]

    def _store(self, event: str, stored: StoredObject) -> None:
        key = object_key(stored)
        old = self._objects.get(key)
        self._index(key, old, add=False)
        if event == "DELETED":
            self._objects.pop(key, None)
            new = None
        else:
            self._objects[key] = stored
            self._index(key, stored, add=True)
            new = stored
            event = "MODIFIED" if old is not None else "ADDED"
        for handler in self._handlers:
            handler(event, old, new)

    def _replace(self, objects: builtins.list[StoredObject]) -> None:
        """A relist: the new state, with deletes for what disappeared meanwhile."""
        seen = {object_key(o) for o in objects}
        for key in [k for k in self._objects if k not in seen]:
            self._store("DELETED", self._objects[key])
        for stored in objects:
            self._store("ADDED", stored)

    async def run(self) -> None:
        """List, then watch, forever (until cancelled)."""
        resource_version: str | None = None
        while True:
            try:
                if resource_version is None:
                    listed = await self.registry.list(self.resource, None)
                    self._replace(listed.items)
                    resource_version = str(listed.resource_version)
                    self.resource_version = listed.resource_version
                    self.synced.set()
                query = WatchQuery(resource_version=resource_version, allow_bookmarks=True)
                async for event in self.registry.watch(self.resource, None, query):
                    if event.type == "ERROR":
                        resource_version = None  # history is gone: relist
                        break
                    if event.type == "BOOKMARK":
                        resource_version = str(event.index)
                        self.resource_version = event.index
                        continue
                    assert event.object is not None
                    self._store(event.type, event.object)
                    resource_version = str(event.object.resource_version)
                    self.resource_version = event.object.resource_version
            except StatusError as exc:
                _log.warning("informer for %s: %s; retrying", self.resource.plural, exc)
                await asyncio.sleep(1)


class InformerFactory:
    """One informer per resource, shared by every controller of a manager."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self._informers: dict[tuple[str, str], Informer] = {}

    def get(self, resource: ResourceType) -> Informer:
        key = (resource.group, resource.plural)
        informer = self._informers.get(key)
        if informer is None:
            informer = self._informers[key] = Informer(self.registry, resource)
        return informer

    def __iter__(self) -> Iterator[Informer]:
        return iter(list(self._informers.values()))

    async def run(self) -> None:
        """Run every informer created so far (create them all before calling this)."""
        async with asyncio.TaskGroup() as group:
            for informer in self:
                group.create_task(informer.run(), name=f"informer-{informer.resource.plural}")

    async def wait_synced(self) -> None:
        await asyncio.gather(*(informer.synced.wait() for informer in self))
