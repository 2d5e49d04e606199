"""``KubeClient``: the Kubernetes REST verbs over one :class:`~engenho.client.transport.Transport`.

Results are wire dicts, or generated models when the resource is addressed by its model
class (``client.get(core_v1.Pod, "web")``) or the object written is a model
(``client.create(core_v1.ConfigMap(...))``). Namespaced calls that name no namespace use the
object's, else the client's default (the kubeconfig context's); collection calls take
:data:`ALL_NAMESPACES` to span every namespace.
"""

from __future__ import annotations

import builtins
import enum
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar, cast, overload

import httpx
import orjson
from attrs import frozen

from engenho.client.config import ClientConfig, in_cluster_config, load_config
from engenho.client.discovery import Discovery
from engenho.client.errors import UnexpectedResponseError
from engenho.client.informer import Informer
from engenho.client.listing import Listing, Page
from engenho.client.logs import LogStream
from engenho.client.objects import Obj, decode, encode, name_of, namespace_of
from engenho.client.resources import ResourceRef, Resources, resource_path
from engenho.client.retrying import Backoff, RetryPolicy
from engenho.client.transport import DEFAULT_TIMEOUT, Params, Transport
from engenho.client.watching import Watcher
from engenho.schema import CATALOGUE, Catalogue, ResourceType
from engenho.schema.generated.models import autoscaling_v1, meta_v1

__all__ = [
    "ALL_NAMESPACES",
    "DEFAULT_FIELD_MANAGER",
    "KubeClient",
    "PatchType",
    "Preconditions",
    "Propagation",
]

ALL_NAMESPACES = "*"
"""Pass as ``namespace`` to list, watch or delete across every namespace."""
DEFAULT_FIELD_MANAGER = "engenho-client"
"""The field manager of server-side apply when neither the call nor the client names one."""

T = TypeVar("T")
Selector = str | Mapping[str, str] | None


class PatchType(enum.StrEnum):
    """The four patch formats, by their Content-Type."""

    JSON = "application/json-patch+json"
    MERGE = "application/merge-patch+json"
    STRATEGIC = "application/strategic-merge-patch+json"
    APPLY = "application/apply-patch+yaml"


class Propagation(enum.StrEnum):
    """``propagationPolicy`` of a delete: what happens to the object's dependents."""

    ORPHAN = "Orphan"
    BACKGROUND = "Background"
    FOREGROUND = "Foreground"


@frozen
class Preconditions:
    """A delete happens only if the object still has this uid and/or resourceVersion
    (else :class:`~engenho.client.errors.ConflictError`)."""

    uid: str | None = None
    resource_version: str | None = None


def _selector(value: Selector) -> str | None:
    if value is None or isinstance(value, str):
        return value or None
    return ",".join(f"{key}={text}" for key, text in value.items())


def _json(response: httpx.Response) -> Any:
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError as exc:
        raise UnexpectedResponseError(
            f"{response.request.method} {response.request.url.path}: the answer is not JSON",
            code=response.status_code,
            body=response.content[:1024],
        ) from exc


class KubeClient:
    """An async client of one Kubernetes API server.

    ``async with KubeClient(load_config()) as client: ...`` (or :meth:`from_kubeconfig`,
    :meth:`in_cluster`); :meth:`aclose` when not used as a context manager. One client is
    meant to be shared by every task of a process: it pools connections.
    """

    def __init__(
        self,
        config: ClientConfig,
        *,
        catalogue: Catalogue = CATALOGUE,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        retry: RetryPolicy = RetryPolicy(),  # noqa: B008 - frozen, shared safely
        field_manager: str | None = None,
        discovery_ttl: float = 600.0,
        http_transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.config = config
        self.namespace = config.namespace
        self.field_manager = field_manager
        self.transport = Transport(
            config, timeout=timeout, retry=retry, http_transport=http_transport
        )
        self.discovery = Discovery(self.transport, ttl=discovery_ttl)
        self.resources = Resources(catalogue, self.discovery)

    @classmethod
    def from_kubeconfig(
        cls,
        path: Path | str | None = None,
        *,
        context: str | None = None,
        namespace: str | None = None,
        **options: Any,
    ) -> KubeClient:
        """A client for a kubeconfig context (see :func:`~engenho.client.config.load_config`)."""
        return cls(load_config(path, context=context, namespace=namespace), **options)

    @classmethod
    def in_cluster(cls, **options: Any) -> KubeClient:
        """A client for the pod this runs in, as its service account."""
        return cls(in_cluster_config(), **options)

    async def __aenter__(self) -> KubeClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self.transport.aclose()

    # ------------------------------------------------------------------ plumbing

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        body: Any = None,
        content_type: str = "application/json",
    ) -> Any:
        """Any request, its JSON answer decoded (for paths the verbs do not cover)."""
        content = None if body is None else orjson.dumps(body)
        response = await self.transport.request(
            method,
            path,
            params=params,
            body=content,
            content_type=content_type if content is not None else None,
        )
        return _json(response) if response.content else None

    async def version(self) -> Obj:
        """The server's ``/version`` (served to anonymous callers too)."""
        result: Obj = await self.request("GET", "/version")
        return result

    async def _target(self, resource: ResourceRef) -> tuple[ResourceType, type[Any] | None]:
        rt = await self.resources.resolve(resource)
        return rt, resource if isinstance(resource, type) else None

    async def _target_of(self, obj: Any) -> tuple[ResourceType, type[Any] | None, Obj]:
        """The resource, result class and wire body of an object to write."""
        body = encode(obj)
        if isinstance(obj, Mapping):
            api_version, kind = body.get("apiVersion"), body.get("kind")
            if not api_version or not kind:
                raise ValueError("an object written as a dict needs its apiVersion and kind")
            return await self.resources.for_kind(str(api_version), str(kind)), None, body
        rt = self.resources.for_model(type(obj))
        body.setdefault("apiVersion", rt.api_version)
        body.setdefault("kind", rt.kind)
        return rt, type(obj), body

    def _namespace(
        self, rt: ResourceType, namespace: str | None, obj: Any = None, *, collection: bool = False
    ) -> str | None:
        if not rt.namespaced:
            return None
        if namespace == ALL_NAMESPACES:
            if not collection:
                raise ValueError("ALL_NAMESPACES names no single namespace")
            return None
        return namespace or (namespace_of(obj) if obj is not None else "") or self.namespace

    def _write_params(
        self,
        dry_run: bool,
        field_manager: str | None,
        field_validation: str | None,
    ) -> dict[str, Any]:
        return {
            "dryRun": "All" if dry_run else None,
            "fieldManager": field_manager or self.field_manager,
            "fieldValidation": field_validation,
        }

    async def _call(
        self,
        method: str,
        path: str,
        params: Params | None = None,
        body: Any = None,
        content_type: str = "application/json",
    ) -> Obj:
        result = await self.request(
            method, path, params=params, body=body, content_type=content_type
        )
        if not isinstance(result, dict):
            raise UnexpectedResponseError(f"{method} {path}: the answer is not an object", code=200)
        return result

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

    @overload
    def list(
        self,
        resource: type[T],
        *,
        namespace: str | None = None,
        label_selector: Selector = None,
        field_selector: Selector = None,
        limit: int | None = 500,
        resource_version: str | None = None,
        resource_version_match: str | None = None,
    ) -> Listing[T]: ...

    @overload
    def list(
        self,
        resource: str | ResourceType,
        *,
        namespace: str | None = None,
        label_selector: Selector = None,
        field_selector: Selector = None,
        limit: int | None = 500,
        resource_version: str | None = None,
        resource_version_match: str | None = None,
    ) -> Listing[Obj]: ...

    def list(
        self,
        resource: ResourceRef,
        *,
        namespace: str | None = None,
        label_selector: Selector = None,
        field_selector: Selector = None,
        limit: int | None = 500,
        resource_version: str | None = None,
        resource_version_match: str | None = None,
    ) -> Listing[Any]:
        """Every matching object, ``limit`` per request, as an async iterator
        (:class:`~engenho.client.listing.Listing`); ``limit=None`` asks for one page."""
        base: dict[str, Any] = {
            "labelSelector": _selector(label_selector),
            "fieldSelector": _selector(field_selector),
            "limit": limit or None,
        }

        async def fetch(token: str) -> Page[Any]:
            rt, cls = await self._target(resource)
            path = resource_path(rt, self._namespace(rt, namespace, collection=True))
            params = dict(base)
            if token:
                params["continue"] = token
            else:
                params["resourceVersion"] = resource_version
                params["resourceVersionMatch"] = resource_version_match
            return self._page(rt, cls, await self._call("GET", path, params))

        return Listing(fetch)

    @staticmethod
    def _page(rt: ResourceType, cls: type[Any] | None, data: Obj) -> Page[Any]:
        api_version = data.get("apiVersion") or rt.api_version
        items = []
        for item in data.get("items") or ():
            # Upstream leaves apiVersion and kind out of list items; put them back.
            whole = item if "kind" in item else {"apiVersion": api_version, "kind": rt.kind, **item}
            items.append(decode(whole, cls))
        meta = data.get("metadata") or {}
        remaining = meta.get("remainingItemCount")
        return Page(
            tuple(items),
            str(meta.get("resourceVersion") or ""),
            str(meta.get("continue") or ""),
            remaining if isinstance(remaining, int) else None,
        )

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

    @staticmethod
    def _delete_options(
        grace_period_seconds: int | None,
        propagation_policy: Propagation | str | None,
        preconditions: Preconditions | None,
        dry_run: bool,
    ) -> Obj:
        options: Obj = {"apiVersion": "v1", "kind": "DeleteOptions"}
        if grace_period_seconds is not None:
            options["gracePeriodSeconds"] = grace_period_seconds
        if propagation_policy is not None:
            options["propagationPolicy"] = str(propagation_policy)
        if preconditions is not None:
            options["preconditions"] = {
                key: value
                for key, value in (
                    ("uid", preconditions.uid),
                    ("resourceVersion", preconditions.resource_version),
                )
                if value is not None
            }
        if dry_run:
            options["dryRun"] = ["All"]
        return options

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
        options = self._delete_options(
            grace_period_seconds, propagation_policy, preconditions, dry_run
        )
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
            "labelSelector": _selector(label_selector),
            "fieldSelector": _selector(field_selector),
        }
        options = self._delete_options(grace_period_seconds, propagation_policy, None, dry_run)
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

    def _log_path(self, name: str, namespace: str | None) -> str:
        pods = ResourceType(
            group="",
            version="v1",
            kind="Pod",
            plural="pods",
            singular="pod",
            namespaced=True,
            verbs=(),
        )
        return resource_path(pods, namespace or self.namespace, name, "log")

    def log(
        self,
        name: str,
        *,
        namespace: str | None = None,
        container: str | None = None,
        follow: bool = False,
        previous: bool = False,
        since_seconds: int | None = None,
        tail_lines: int | None = None,
        timestamps: bool = False,
        limit_bytes: int | None = None,
    ) -> LogStream:
        """A pod's log as lines: ``async with client.log("web", follow=True) as lines:``."""
        params = {
            "container": container,
            "follow": follow or None,
            "previous": previous or None,
            "sinceSeconds": since_seconds,
            "tailLines": tail_lines,
            "timestamps": timestamps or None,
            "limitBytes": limit_bytes,
        }
        return LogStream(self.transport, self._log_path(name, namespace), params)

    async def read_log(
        self,
        name: str,
        *,
        namespace: str | None = None,
        container: str | None = None,
        previous: bool = False,
        tail_lines: int | None = None,
    ) -> str:
        """A pod's log so far, as one string."""
        params = {"container": container, "previous": previous or None, "tailLines": tail_lines}
        response = await self.transport.request(
            "GET", self._log_path(name, namespace), params=params, accept="*/*"
        )
        return response.text

    # ------------------------------------------------------------------ watching

    @overload
    def watch(
        self,
        resource: type[T],
        *,
        namespace: str | None = None,
        name: str | None = None,
        label_selector: Selector = None,
        field_selector: Selector = None,
        resource_version: str | None = None,
        known: Iterable[T] | None = None,
        timeout_seconds: int | None = None,
        backoff: Backoff | None = None,
    ) -> Watcher[T]: ...

    @overload
    def watch(
        self,
        resource: str | ResourceType,
        *,
        namespace: str | None = None,
        name: str | None = None,
        label_selector: Selector = None,
        field_selector: Selector = None,
        resource_version: str | None = None,
        known: Iterable[Obj] | None = None,
        timeout_seconds: int | None = None,
        backoff: Backoff | None = None,
    ) -> Watcher[Obj]: ...

    def watch(
        self,
        resource: ResourceRef,
        *,
        namespace: str | None = None,
        name: str | None = None,
        label_selector: Selector = None,
        field_selector: Selector = None,
        resource_version: str | None = None,
        known: Iterable[Any] | None = None,
        timeout_seconds: int | None = None,
        backoff: Backoff | None = None,
    ) -> Watcher[Any]:
        """Changes to matching objects as typed events (see
        :class:`~engenho.client.watching.Watcher`); ``name`` watches one object."""
        fields = _selector(field_selector)
        if name is not None:
            fields = ",".join(filter(None, [f"metadata.name={name}", fields]))
        return Watcher(
            self,
            resource,
            namespace=namespace,
            label_selector=_selector(label_selector),
            field_selector=fields,
            resource_version=resource_version,
            known=known,
            timeout_seconds=timeout_seconds,
            backoff=backoff,
        )

    @overload
    def informer(
        self,
        resource: type[T],
        *,
        namespace: str | None = None,
        label_selector: Selector = None,
        field_selector: Selector = None,
        backoff: Backoff | None = None,
    ) -> Informer[T]: ...

    @overload
    def informer(
        self,
        resource: str | ResourceType,
        *,
        namespace: str | None = None,
        label_selector: Selector = None,
        field_selector: Selector = None,
        backoff: Backoff | None = None,
    ) -> Informer[Obj]: ...

    def informer(
        self,
        resource: ResourceRef,
        *,
        namespace: str | None = None,
        label_selector: Selector = None,
        field_selector: Selector = None,
        backoff: Backoff | None = None,
    ) -> Informer[Any]:
        """A list-and-watch cache of matching objects (see
        :class:`~engenho.client.informer.Informer`)."""
        return Informer(
            self,
            resource,
            namespace=namespace,
            label_selector=_selector(label_selector),
            field_selector=_selector(field_selector),
            backoff=backoff,
        )

    # ------------------------------------------------------------------ for the watcher

    async def _watch_target(
        self, resource: ResourceRef, namespace: str | None
    ) -> tuple[ResourceType, type[Any] | None, str]:
        rt, cls = await self._target(resource)
        return rt, cls, resource_path(rt, self._namespace(rt, namespace, collection=True))
