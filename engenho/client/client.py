"""``KubeClient``: the Kubernetes REST verbs over one :class:`~engenho.client.transport.Transport`.

Results are wire dicts, or generated models when the resource is addressed by its model
class (``client.get(core_v1.Pod, "web")``) or the object written is a model
(``client.create(core_v1.ConfigMap(...))``). Namespaced calls that name no namespace use the
object's, else the client's default (the kubeconfig context's); collection calls take
:data:`ALL_NAMESPACES` to span every namespace.
"""

from __future__ import annotations

import builtins
from typing import Any, TypeVar, cast, overload

from engenho.client.objects import Obj, decode, encode, name_of
from engenho.client.options import (
    ALL_NAMESPACES,
    DEFAULT_FIELD_MANAGER,
    PatchType,
    Preconditions,
    Propagation,
    Selector,
    delete_options,
    selector_text,
)
from engenho.client.resources import ResourceRef, resource_path
from engenho.client.streaming import StreamingVerbs
from engenho.schema import ResourceType
from engenho.schema.generated.models import autoscaling_v1, meta_v1

__all__ = [
    "ALL_NAMESPACES",
    "DEFAULT_FIELD_MANAGER",
    "KubeClient",
    "PatchType",
    "Preconditions",
    "Propagation",
]

T = TypeVar("T")


class KubeClient(StreamingVerbs):
    """An async client of one Kubernetes API server.

    ``async with KubeClient(load_config()) as client: ...`` (or :meth:`from_kubeconfig`,
    :meth:`in_cluster`); :meth:`aclose` when not used as a context manager. One client is
    meant to be shared by every task of a process: it pools connections. The verbs are
    below; logs, watches and informers come from
    :class:`~engenho.client.streaming.StreamingVerbs`.
    """

    # ------------------------------------------------------------------ reads

    @overload
    async def get(
        self,
        resource: type[T],
        name: str,
        *,
        namespace: str | None = None,
        resource_version: str | None = None,
        subresource: str | None = None,
    ) -> T: ...

    @overload
    async def get(
        self,
        resource: str | ResourceType,
        name: str,
        *,
        namespace: str | None = None,
        resource_version: str | None = None,
        subresource: str | None = None,
    ) -> Obj: ...

    async def get(
        self,
        resource: ResourceRef,
        name: str,
        *,
        namespace: str | None = None,
        resource_version: str | None = None,
        subresource: str | None = None,
    ) -> Any:
        """One object (or its ``status`` subresource); ``resource_version="0"`` allows a
        possibly stale read."""
        rt, cls = await self._target(resource)
        path = resource_path(rt, self._namespace(rt, namespace), name, subresource)
        data = await self._call("GET", path, {"resourceVersion": resource_version})
        return decode(data, cls)

    # ------------------------------------------------------------------ writes

    async def create(
        self,
        obj: T,
        *,
        namespace: str | None = None,
        dry_run: bool = False,
        field_manager: str | None = None,
        field_validation: str | None = None,
    ) -> T:
        """Create ``obj``; returns what the server stored (same form as ``obj``)."""
        rt, cls, body = await self._target_of(obj)
        path = resource_path(rt, self._namespace(rt, namespace, body))
        params = self._write_params(dry_run, field_manager, field_validation)
        return cast(T, decode(await self._call("POST", path, params, body), cls))

    async def replace(
        self,
        obj: T,
        *,
        namespace: str | None = None,
        subresource: str | None = None,
        dry_run: bool = False,
        field_manager: str | None = None,
        field_validation: str | None = None,
    ) -> T:
        """Replace (PUT) the object ``obj`` names; its ``metadata.resourceVersion``, when set,
        makes this a compare-and-swap (:class:`~engenho.client.errors.ConflictError`)."""
        rt, cls, body = await self._target_of(obj)
        path = resource_path(rt, self._namespace(rt, namespace, body), name_of(body), subresource)
        params = self._write_params(dry_run, field_manager, field_validation)
        return cast(T, decode(await self._call("PUT", path, params, body), cls))

    @overload
    async def patch(
        self,
        resource: type[T],
        name: str,
        patch: Any,
        *,
        patch_type: PatchType = PatchType.MERGE,
        namespace: str | None = None,
        subresource: str | None = None,
        force: bool | None = None,
        dry_run: bool = False,
        field_manager: str | None = None,
        field_validation: str | None = None,
    ) -> T: ...

    @overload
    async def patch(
        self,
        resource: str | ResourceType,
        name: str,
        patch: Any,
        *,
        patch_type: PatchType = PatchType.MERGE,
        namespace: str | None = None,
        subresource: str | None = None,
        force: bool | None = None,
        dry_run: bool = False,
        field_manager: str | None = None,
        field_validation: str | None = None,
    ) -> Obj: ...

    async def patch(
        self,
        resource: ResourceRef,
        name: str,
        patch: Any,
        *,
        patch_type: PatchType = PatchType.MERGE,
        namespace: str | None = None,
        subresource: str | None = None,
        force: bool | None = None,
        dry_run: bool = False,
        field_manager: str | None = None,
        field_validation: str | None = None,
    ) -> Any:
        """Patch one object: ``patch`` is a list of operations for :attr:`PatchType.JSON`,
        else a (partial) object. Merge patch is the default because every server accepts
        it, custom resources included; strategic merge is for built-in kinds."""
        rt, cls = await self._target(resource)
        path = resource_path(rt, self._namespace(rt, namespace), name, subresource)
        body = patch if isinstance(patch, list) else encode(patch)
        manager = field_manager
        if patch_type is PatchType.APPLY:
            manager = manager or self.field_manager or DEFAULT_FIELD_MANAGER
        params = self._write_params(dry_run, manager, field_validation)
        params["force"] = force
        data = await self._call("PATCH", path, params, body, content_type=patch_type.value)
        return decode(data, cls)

    async def apply(
        self,
        obj: T,
        *,
        field_manager: str | None = None,
        force: bool = False,
        namespace: str | None = None,
        subresource: str | None = None,
        dry_run: bool = False,
        field_validation: str | None = None,
    ) -> T:
        """Server-side apply ``obj`` (it names itself) as ``field_manager``; ``force`` takes
        over fields other managers own instead of failing with a Conflict."""
        rt, cls, body = await self._target_of(obj)
        path = resource_path(rt, self._namespace(rt, namespace, body), name_of(body), subresource)
        manager = field_manager or self.field_manager or DEFAULT_FIELD_MANAGER
        params = self._write_params(dry_run, manager, field_validation)
        params["force"] = force or None
        data = await self._call("PATCH", path, params, body, content_type=PatchType.APPLY.value)
        return cast(T, decode(data, cls))

    @overload
    async def delete(
        self,
        resource: type[T],
        name: str,
        *,
        namespace: str | None = None,
        grace_period_seconds: int | None = None,
        propagation_policy: Propagation | str | None = None,
        preconditions: Preconditions | None = None,
        dry_run: bool = False,
    ) -> T | meta_v1.Status: ...

    @overload
    async def delete(
        self,
        resource: str | ResourceType,
        name: str,
        *,
        namespace: str | None = None,
        grace_period_seconds: int | None = None,
        propagation_policy: Propagation | str | None = None,
        preconditions: Preconditions | None = None,
        dry_run: bool = False,
    ) -> Obj: ...

    async def delete(
        self,
        resource: ResourceRef,
        name: str,
        *,
        namespace: str | None = None,
        grace_period_seconds: int | None = None,
        propagation_policy: Propagation | str | None = None,
        preconditions: Preconditions | None = None,
        dry_run: bool = False,
    ) -> Any:
        """Delete one object. The answer is the object (still there when finalizers or a
        grace period keep it, now with a deletionTimestamp) or a Success Status."""
        rt, cls = await self._target(resource)
        path = resource_path(rt, self._namespace(rt, namespace), name)
        options = delete_options(grace_period_seconds, propagation_policy, preconditions, dry_run)
        data = await self._call("DELETE", path, None, options)
        if data.get("kind") == "Status":
            return decode(data, meta_v1.Status if cls is not None else None)
        return decode(data, cls)

    @overload
    async def delete_collection(
        self,
        resource: type[T],
        *,
        namespace: str | None = None,
        label_selector: Selector = None,
        field_selector: Selector = None,
        grace_period_seconds: int | None = None,
        propagation_policy: Propagation | str | None = None,
        dry_run: bool = False,
    ) -> builtins.list[T]: ...

    @overload
    async def delete_collection(
        self,
        resource: str | ResourceType,
        *,
        namespace: str | None = None,
        label_selector: Selector = None,
        field_selector: Selector = None,
        grace_period_seconds: int | None = None,
        propagation_policy: Propagation | str | None = None,
        dry_run: bool = False,
    ) -> builtins.list[Obj]: ...

    async def delete_collection(
        self,
        resource: ResourceRef,
        *,
        namespace: str | None = None,
        label_selector: Selector = None,
        field_selector: Selector = None,
        grace_period_seconds: int | None = None,
        propagation_policy: Propagation | str | None = None,
        dry_run: bool = False,
    ) -> builtins.list[Any]:
        """Delete every matching object; returns those the server reports deleted."""
        rt, cls = await self._target(resource)
        path = resource_path(rt, self._namespace(rt, namespace, collection=True))
        params = {
            "labelSelector": selector_text(label_selector),
            "fieldSelector": selector_text(field_selector),
        }
        options = delete_options(grace_period_seconds, propagation_policy, None, dry_run)
        data = await self._call("DELETE", path, params, options)
        if data.get("kind") == "Status":
            return []
        return list(self._page(rt, cls, data).items)

    # ------------------------------------------------------------------ subresources

    @overload
    async def get_scale(
        self, resource: type[Any], name: str, *, namespace: str | None = None
    ) -> autoscaling_v1.Scale: ...

    @overload
    async def get_scale(
        self, resource: str | ResourceType, name: str, *, namespace: str | None = None
    ) -> Obj: ...

    async def get_scale(
        self, resource: ResourceRef, name: str, *, namespace: str | None = None
    ) -> Any:
        """The ``scale`` subresource (an autoscaling/v1 Scale)."""
        rt, cls = await self._target(resource)
        path = resource_path(rt, self._namespace(rt, namespace), name, "scale")
        data = await self._call("GET", path)
        return decode(data, autoscaling_v1.Scale if cls is not None else None)

    @overload
    async def set_scale(
        self, resource: type[Any], name: str, replicas: int, *, namespace: str | None = None
    ) -> autoscaling_v1.Scale: ...

    @overload
    async def set_scale(
        self,
        resource: str | ResourceType,
        name: str,
        replicas: int,
        *,
        namespace: str | None = None,
    ) -> Obj: ...

    async def set_scale(
        self, resource: ResourceRef, name: str, replicas: int, *, namespace: str | None = None
    ) -> Any:
        """Set ``spec.replicas`` through the ``scale`` subresource."""
        rt, cls = await self._target(resource)
        path = resource_path(rt, self._namespace(rt, namespace), name, "scale")
        data = await self._call(
            "PATCH",
            path,
            None,
            {"spec": {"replicas": replicas}},
            content_type=PatchType.MERGE.value,
        )
        return decode(data, autoscaling_v1.Scale if cls is not None else None)
