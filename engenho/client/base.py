"""The client's plumbing: configuration, transport, discovery and addressing, the JSON
request helpers and the decoding of list pages. The verbs are in ``client.py`` and
``streaming.py``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar, overload

import httpx
import orjson

from engenho.client.config import ClientConfig, in_cluster_config, load_config
from engenho.client.discovery import Discovery
from engenho.client.errors import UnexpectedResponseError
from engenho.client.listing import Listing, Page
from engenho.client.objects import Obj, decode, encode, namespace_of
from engenho.client.options import ALL_NAMESPACES, Selector, selector_text
from engenho.client.resources import ResourceRef, Resources, resource_path
from engenho.client.retrying import RetryPolicy
from engenho.client.transport import DEFAULT_TIMEOUT, Params, Transport
from engenho.schema import CATALOGUE, Catalogue, ResourceType

__all__ = ["ClientBase"]

T = TypeVar("T")


def _json(response: httpx.Response) -> Any:
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError as exc:
        raise UnexpectedResponseError(
            f"{response.request.method} {response.request.url.path}: the answer is not JSON",
            code=response.status_code,
            body=response.content[:1024],
        ) from exc


class ClientBase:
    """What every verb needs: configuration, transport, addressing and the JSON plumbing.

    :class:`~engenho.client.client.KubeClient` is the class to use; this base keeps the
    verbs' module short and is what watchers and informers need of a client.
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
    ) -> Self:
        """A client for a kubeconfig context (see :func:`~engenho.client.config.load_config`)."""
        return cls(load_config(path, context=context, namespace=namespace), **options)

    @classmethod
    def in_cluster(cls, **options: Any) -> Self:
        """A client for the pod this runs in, as its service account."""
        return cls(in_cluster_config(), **options)

    async def __aenter__(self) -> Self:
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

    # ------------------------------------------------------------------ lists

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
            "labelSelector": selector_text(label_selector),
            "fieldSelector": selector_text(field_selector),
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

    async def collection_target(
        self, resource: ResourceRef, namespace: str | None
    ) -> tuple[ResourceType, type[Any] | None, str]:
        rt, cls = await self._target(resource)
        return rt, cls, resource_path(rt, self._namespace(rt, namespace, collection=True))
