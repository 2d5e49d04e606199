"""What the server serves, from its discovery documents, cached.

Aggregated discovery (``APIGroupDiscoveryList``, two requests) is asked for first; a server
that answers with the legacy documents is read the legacy way (``/api``, ``/apis``, then one
``APIResourceList`` per group-version, fetched concurrently). A group-version whose list
fails (an unavailable aggregated API) is left out rather than failing the rest, as kubectl
does. Resources come back as :class:`engenho.schema.ResourceType` rows, each group's
preferred version first.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import orjson

from engenho.client.errors import ApiError, UnexpectedResponseError
from engenho.client.transport import Transport
from engenho.schema import GroupVersionKind, ResourceType, Subresource

__all__ = ["AGGREGATED_DISCOVERY", "Discovery", "version_priority"]

AGGREGATED_DISCOVERY = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
_log = logging.getLogger("engenho.client")
_VERSION = re.compile(r"v(\d+)(?:(alpha|beta)(\d+))?\Z")


def version_priority(version: str) -> tuple[int, int, int, str]:
    """Kubernetes version order as a sort key: GA, then beta, then alpha, higher first."""
    match = _VERSION.match(version)
    if not match:
        return (3, 0, 0, version)
    major, stage, minor = match.groups()
    rank = {None: 0, "beta": 1, "alpha": 2}[stage]
    return (rank, -int(major), -int(minor or 0), version)


class Discovery:
    """The server's resources, fetched on first use and again after ``ttl`` seconds or on
    :meth:`refresh`."""

    def __init__(
        self, transport: Transport, *, ttl: float = 600.0, miss_interval: float = 1.0
    ) -> None:
        self._transport = transport
        self.ttl = ttl
        self.miss_interval = miss_interval
        """A lookup that finds nothing fetches again, but not more often than this."""
        self._resources: tuple[ResourceType, ...] | None = None
        self._fetched_at = 0.0
        self._lock = asyncio.Lock()
        self.fetches = 0
        """How many times the documents were fetched (for diagnostics and tests)."""

    @property
    def age(self) -> float | None:
        """Seconds since the last fetch; None before the first."""
        return None if self._resources is None else time.monotonic() - self._fetched_at

    async def resources(self) -> tuple[ResourceType, ...]:
        """Every served resource (cached)."""
        age = self.age
        if self._resources is not None and age is not None and age < self.ttl:
            return self._resources
        return await self.refresh(older_than=self.ttl)

    async def refresh(self, *, older_than: float = 0.0) -> tuple[ResourceType, ...]:
        """Fetch again unless a fetch finished less than ``older_than`` seconds ago
        (concurrent callers share one fetch)."""
        async with self._lock:
            age = self.age
            if self._resources is not None and age is not None and age < older_than:
                return self._resources
            self.fetches += 1
            self._resources = tuple(await self._fetch())
            self._fetched_at = time.monotonic()
            return self._resources

    async def _get(self, path: str, accept: str = "application/json") -> tuple[Any, str]:
        response = await self._transport.request("GET", path, accept=accept)
        try:
            return orjson.loads(response.content), response.headers.get("content-type", "")
        except orjson.JSONDecodeError as exc:
            raise UnexpectedResponseError(
                f"GET {path}: the discovery document is not JSON", code=response.status_code
            ) from exc

    async def _fetch(self) -> list[ResourceType]:
        accept = f"{AGGREGATED_DISCOVERY},application/json"
        found: list[ResourceType] = []
        for root in ("/api", "/apis"):
            document, _ = await self._get(root, accept)
            if isinstance(document, Mapping) and document.get("kind") == "APIGroupDiscoveryList":
                found.extend(_from_aggregated(document, core=root == "/api"))
            else:
                found.extend(await self._legacy(root, document))
        return found

    async def _legacy(self, root: str, document: Any) -> list[ResourceType]:
        paths: list[tuple[str, str, str]] = []
        if root == "/api":
            versions = document.get("versions") or [] if isinstance(document, Mapping) else []
            paths = [("", v, f"/api/{v}") for v in versions if isinstance(v, str)]
        elif isinstance(document, Mapping):
            for group in document.get("groups") or []:
                name = group.get("name", "")
                preferred = (group.get("preferredVersion") or {}).get("version")
                versions = [v.get("version") for v in group.get("versions") or []]
                ordered = sorted(
                    (v for v in versions if isinstance(v, str)),
                    key=_preferring(preferred),
                )
                paths.extend((name, v, f"/apis/{name}/{v}") for v in ordered)
        lists: list[asyncio.Task[Any]] = []
        async with asyncio.TaskGroup() as group:
            for name, version, path in paths:
                lists.append(
                    group.create_task(
                        self._resource_list(path), name=f"discovery {name or 'core'}/{version}"
                    )
                )
        found: list[ResourceType] = []
        for (name, version, _), task in zip(paths, lists, strict=True):
            found.extend(_from_resource_list(name, version, task.result()))
        return found

    async def _resource_list(self, path: str) -> Any:
        try:
            document, _ = await self._get(path)
        except (ApiError, UnexpectedResponseError) as exc:
            _log.warning("discovery: %s is unavailable and left out: %s", path, exc)
            return None
        return document


def _preferring(preferred: str | None) -> Callable[[str], tuple[bool, tuple[int, int, int, str]]]:
    """A sort key putting ``preferred`` first, then by version priority."""
    return lambda version: (version != preferred, version_priority(version))


def _from_resource_list(group: str, version: str, document: Any) -> list[ResourceType]:
    if not isinstance(document, Mapping):
        return []
    rows = [row for row in document.get("resources") or [] if isinstance(row, Mapping)]
    subresources: dict[str, list[Subresource]] = {}
    for row in rows:
        name = str(row.get("name", ""))
        if "/" in name:
            parent, _, sub = name.partition("/")
            gvk = GroupVersionKind(
                str(row.get("group", group)), str(row.get("version", version)), row.get("kind", "")
            )
            subresources.setdefault(parent, []).append(
                Subresource(sub, gvk, tuple(row.get("verbs") or ()))
            )
    found = []
    for row in rows:
        name = str(row.get("name", ""))
        if "/" in name or not name:
            continue
        found.append(
            _resource(
                group,
                version,
                kind=str(row.get("kind", "")),
                plural=name,
                singular=str(row.get("singularName") or ""),
                namespaced=bool(row.get("namespaced")),
                verbs=row.get("verbs") or (),
                short_names=row.get("shortNames") or (),
                categories=row.get("categories") or (),
                subresources=subresources.get(name, ()),
            )
        )
    return found


def _from_aggregated(document: Mapping[str, Any], *, core: bool) -> list[ResourceType]:
    found: list[ResourceType] = []
    for item in document.get("items") or []:
        group = "" if core else str((item.get("metadata") or {}).get("name", ""))
        # Versions come in the server's preference order: keep it.
        for entry in item.get("versions") or []:
            version = str(entry.get("version", ""))
            for row in entry.get("resources") or []:
                kind = (row.get("responseKind") or {}).get("kind", "")
                subresources = [
                    Subresource(
                        str(sub.get("subresource", "")),
                        GroupVersionKind(
                            str((sub.get("responseKind") or {}).get("group", group)),
                            str((sub.get("responseKind") or {}).get("version", version)),
                            str((sub.get("responseKind") or {}).get("kind", "")),
                        ),
                        tuple(sub.get("verbs") or ()),
                    )
                    for sub in row.get("subresources") or []
                ]
                found.append(
                    _resource(
                        group,
                        version,
                        kind=str(kind),
                        plural=str(row.get("resource", "")),
                        singular=str(row.get("singularResource") or ""),
                        namespaced=row.get("scope") == "Namespaced",
                        verbs=row.get("verbs") or (),
                        short_names=row.get("shortNames") or (),
                        categories=row.get("categories") or (),
                        subresources=subresources,
                    )
                )
    return found


def _resource(
    group: str,
    version: str,
    *,
    kind: str,
    plural: str,
    singular: str,
    namespaced: bool,
    verbs: Sequence[str],
    short_names: Sequence[str],
    categories: Sequence[str],
    subresources: Sequence[Subresource],
) -> ResourceType:
    return ResourceType(
        group=group,
        version=version,
        kind=kind,
        plural=plural,
        singular=singular or kind.lower(),
        namespaced=namespaced,
        verbs=tuple(verbs),
        short_names=tuple(short_names),
        categories=tuple(categories),
        subresources=tuple(subresources),
        list_kind=f"{kind}List" if "list" in verbs else "",
    )
