"""The namespace controller: empties a terminating namespace, then lets it go.

A deleted namespace stays ``Terminating`` while ``spec.finalizers`` holds ``kubernetes``. This
controller deletes every namespaced object in it (objects with their own finalizers may take
longer; it comes back until they are gone) and then removes the ``kubernetes`` finalizer
through ``namespaces/{name}/finalize``, which removes the namespace.
"""

from __future__ import annotations

from typing import Any

from engenho.reconcilers.controller import Controller, Requeue, Source, kube_system_identity
from engenho.registry import DeleteOptions, NotFoundError
from engenho.schema import CATALOGUE, ResourceType

__all__ = ["NamespaceController"]

_FINALIZER = "kubernetes"


def _namespaced_kinds() -> list[ResourceType]:
    """One version of every namespaced resource that can be listed and deleted."""
    chosen: dict[tuple[str, str], ResourceType] = {}
    for rt in CATALOGUE:
        if rt.namespaced and "list" in rt.verbs and "delete" in rt.verbs:
            chosen.setdefault((rt.group, rt.plural), rt)
    return list(chosen.values())


class NamespaceController(Controller):
    name = "namespace-controller"
    identity = kube_system_identity("namespace-controller")

    def __init__(self, *args: Any, retry_after: float = 1.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.namespaces = CATALOGUE.get("", "v1", "namespaces")
        self.contents = _namespaced_kinds()
        self.retry_after = retry_after

    def sources(self) -> list[Source]:
        return [Source(self.namespaces, lambda event: [event.object.name] if event.object else [])]

    async def reconcile(self, key: str) -> None:
        try:
            namespace = await self.registry.get(self.namespaces, "", key)
        except NotFoundError:
            return
        obj = namespace.object
        if not obj.get("metadata", {}).get("deletionTimestamp"):
            return
        if _FINALIZER not in (obj.get("spec") or {}).get("finalizers", []):
            return
        remaining = 0
        ctx = self.context()
        for rt in self.contents:
            listed = await self.registry.list(rt, key)
            for item in listed.items:
                remaining += 1
                if item.object.get("metadata", {}).get("deletionTimestamp"):
                    continue  # already going; its own finalizers decide when
                try:
                    await self.registry.delete(
                        ctx, rt, key, item.name, DeleteOptions(propagation_policy="Background")
                    )
                except NotFoundError:
                    remaining -= 1
                    continue
                if (
                    await self.registry.projections.get(rt.group, rt.plural, key, item.name)
                ) is None:
                    remaining -= 1
        if remaining:
            raise Requeue(self.retry_after, f"{remaining} object(s) remain in namespace {key}")
        finalizers = [f for f in obj["spec"]["finalizers"] if f != _FINALIZER]
        body = {**obj, "spec": {**obj["spec"], "finalizers": finalizers}}
        await self.registry.update(ctx, self.namespaces, "", key, body, subresource="finalize")
