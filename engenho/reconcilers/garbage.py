"""The garbage collector: ownerReferences as a graph, and the three propagation policies.

It watches every resource that can be listed and keeps a graph of who owns whom (by uid). For
each object it looks at (level-triggered: on any change to it, and when one of its owners
goes), it does what upstream's garbage collector does (contract §14.3, §14.4):

- **Background**: an object all of whose owners are gone is deleted; references to owners that
  are gone (or were replaced by another object of the same name) are dropped from an object
  that still has a live owner.
- **Foreground**: an owner held by ``foregroundDeletion`` has its dependents deleted (in the
  foreground too); once no dependent that blocks owner deletion remains, the finalizer is
  removed, which removes the owner.
- **Orphan**: an owner held by ``orphan`` has its reference removed from every dependent, then
  the finalizer.
"""

from __future__ import annotations

import copy
from collections import defaultdict
from typing import Any

from attrs import frozen

from engenho.projections import StoredObject
from engenho.reconcilers.controller import Controller, Requeue, Source, kube_system_identity
from engenho.registry import ConflictError, DeleteOptions, NotFoundError, WatchEvent
from engenho.schema import CATALOGUE, ResourceType, UnknownResourceError

__all__ = ["GarbageCollector"]

_ORPHAN = "orphan"
_FOREGROUND = "foregroundDeletion"


@frozen
class _Node:
    resource: ResourceType
    namespace: str
    name: str
    owners: tuple[tuple[str, bool], ...]
    """(owner uid, blockOwnerDeletion) per ownerReference."""


def _collectable() -> list[ResourceType]:
    """One version of every resource the collector can list, watch and delete."""
    chosen: dict[tuple[str, str], ResourceType] = {}
    for rt in CATALOGUE:
        if {"list", "watch", "delete"} <= set(rt.verbs):
            chosen.setdefault((rt.group, rt.plural), rt)
    return list(chosen.values())


def _owner_refs(obj: dict[str, Any]) -> list[dict[str, Any]]:
    refs = obj.get("metadata", {}).get("ownerReferences") or []
    return [ref for ref in refs if isinstance(ref, dict) and ref.get("uid")]


class GarbageCollector(Controller):
    name = "garbage-collector"
    identity = kube_system_identity("generic-garbage-collector")

    def __init__(self, *args: Any, retry_after: float = 1.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.retry_after = retry_after
        self.resources = _collectable()
        self._by_plural = {(rt.group, rt.plural): rt for rt in self.resources}
        self._nodes: dict[str, _Node] = {}
        self._dependents: dict[str, set[str]] = defaultdict(set)

    def sources(self) -> list[Source]:
        return [Source(rt, self._observe) for rt in self.resources]

    # ------------------------------------------------------------------ the graph

    def _observe(self, event: WatchEvent) -> list[str]:
        stored = event.object
        if stored is None:
            return []
        uid = stored.uid
        previous = self._nodes.pop(uid, None)
        if previous is not None:
            for owner, _ in previous.owners:
                self._dependents[owner].discard(uid)
        if event.type == "DELETED":
            # Its dependents may now be orphans; its owners may be waiting for it to go.
            waiting = [owner for owner, _ in previous.owners] if previous is not None else []
            return [*self._dependents.get(uid, ()), *waiting]
        rt = self._by_plural[(stored.group, stored.resource)]
        refs = tuple(
            (str(ref["uid"]), bool(ref.get("blockOwnerDeletion")))
            for ref in _owner_refs(stored.object)
        )
        self._nodes[uid] = _Node(rt, stored.namespace, stored.name, refs)
        for owner, _ in refs:
            self._dependents[owner].add(uid)
        meta = stored.object.get("metadata", {})
        wanted = bool(refs) or bool(meta.get("deletionTimestamp"))
        return [uid] if wanted else []

    # ------------------------------------------------------------------ reconciling

    async def _read(self, uid: str) -> StoredObject | None:
        node = self._nodes.get(uid)
        if node is None:
            return None
        try:
            stored = await self.registry.get(node.resource, node.namespace, node.name)
        except NotFoundError:
            return None
        return stored if stored.uid == uid else None

    async def _owner_alive(self, ref: dict[str, Any], namespace: str) -> bool:
        """Whether the owner a reference names exists with that uid, read live (the graph is
        fed by one watch per resource, so an owner's event can arrive after its dependent's)."""
        try:
            rt = CATALOGUE.for_kind(str(ref.get("apiVersion", "")), str(ref.get("kind", "")))
        except UnknownResourceError:
            return True  # a kind we do not serve: never collect on a guess
        try:
            owner = await self.registry.get(
                rt, namespace if rt.namespaced else "", str(ref.get("name", ""))
            )
        except NotFoundError:
            return False
        return bool(owner.uid == ref["uid"])

    async def reconcile(self, key: str) -> None:
        stored = await self._read(key)
        if stored is None:
            return
        obj = stored.object
        finalizers = obj.get("metadata", {}).get("finalizers") or []
        if obj.get("metadata", {}).get("deletionTimestamp"):
            if _ORPHAN in finalizers:
                await self._orphan_dependents(stored)
            elif _FOREGROUND in finalizers:
                await self._delete_dependents(stored)
            return
        refs = _owner_refs(obj)
        if not refs:
            return
        alive = [ref for ref in refs if await self._owner_alive(ref, stored.namespace)]
        if not alive:
            await self._delete(stored, "Background")
        elif len(alive) < len(refs):
            await self._set_owner_refs(stored, alive)

    async def _delete(self, stored: StoredObject, policy: str) -> None:
        node = self._nodes[stored.uid]
        try:
            await self.registry.delete(
                self.context(),
                node.resource,
                stored.namespace,
                stored.name,
                DeleteOptions(propagation_policy=policy, precondition_uid=stored.uid),
            )
        except (NotFoundError, ConflictError):
            return  # gone already, or a new object of that name: nothing of ours to delete

    async def _set_owner_refs(self, stored: StoredObject, refs: list[dict[str, Any]]) -> None:
        node = self._nodes[stored.uid]
        body = copy.deepcopy(stored.object)
        if refs:
            body["metadata"]["ownerReferences"] = refs
        else:
            body["metadata"].pop("ownerReferences", None)
        await self.registry.update(
            self.context(), node.resource, stored.namespace, stored.name, body
        )

    async def _remove_finalizer(self, stored: StoredObject, finalizer: str) -> None:
        node = self._nodes[stored.uid]
        body = copy.deepcopy(stored.object)
        body["metadata"]["finalizers"] = [
            f for f in body["metadata"].get("finalizers", []) if f != finalizer
        ]
        await self.registry.update(
            self.context(), node.resource, stored.namespace, stored.name, body
        )

    async def _orphan_dependents(self, owner: StoredObject) -> None:
        for uid in list(self._dependents.get(owner.uid, ())):
            dependent = await self._read(uid)
            if dependent is None:
                continue
            kept = [ref for ref in _owner_refs(dependent.object) if ref["uid"] != owner.uid]
            await self._set_owner_refs(dependent, kept)
        await self._remove_finalizer(owner, _ORPHAN)

    async def _delete_dependents(self, owner: StoredObject) -> None:
        for uid in list(self._dependents.get(owner.uid, ())):
            dependent = await self._read(uid)
            if dependent is not None and not dependent.object["metadata"].get("deletionTimestamp"):
                await self._delete(dependent, "Foreground")
        blocking = 0
        for uid in list(self._dependents.get(owner.uid, ())):
            dependent = await self._read(uid)
            if dependent is not None and any(
                ref["uid"] == owner.uid and ref.get("blockOwnerDeletion")
                for ref in _owner_refs(dependent.object)
            ):
                blocking += 1
        if blocking:
            raise Requeue(self.retry_after, f"{blocking} dependent(s) still block {owner.name}")
        await self._remove_finalizer(owner, _FOREGROUND)
