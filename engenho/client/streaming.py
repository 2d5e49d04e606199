"""The streaming verbs: container logs and watches, and the informer built on watches."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar, overload

from engenho.client.base import ClientBase
from engenho.client.informer import Informer
from engenho.client.logs import LogStream
from engenho.client.objects import Obj
from engenho.client.options import Selector, selector_text
from engenho.client.resources import ResourceRef, resource_path
from engenho.client.retrying import Backoff
from engenho.client.watching import Watcher
from engenho.schema import ResourceType

__all__ = ["StreamingVerbs"]

T = TypeVar("T")
# Logs are a core/v1 pods subresource on every server: no lookup needed.
_PODS = ResourceType(
    group="", version="v1", kind="Pod", plural="pods", singular="pod", namespaced=True, verbs=()
)


class StreamingVerbs(ClientBase):
    """Logs, watches and informers (part of :class:`~engenho.client.client.KubeClient`)."""

    def _log_path(self, name: str, namespace: str | None) -> str:
        return resource_path(_PODS, namespace or self.namespace, name, "log")

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
        fields = selector_text(field_selector)
        if name is not None:
            fields = ",".join(filter(None, [f"metadata.name={name}", fields]))
        return Watcher(
            self,
            resource,
            namespace=namespace,
            label_selector=selector_text(label_selector),
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
            label_selector=selector_text(label_selector),
            field_selector=selector_text(field_selector),
            backoff=backoff,
        )
