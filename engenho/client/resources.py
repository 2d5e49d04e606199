"""Addressing: which resource a name, a kind or a model class means, and its URL.

What the caller may pass as a resource:

- a generated model class (``core_v1.Pod``): its resource in the catalogue; results then
  come back as that class;
- a :class:`engenho.schema.ResourceType`: used as is;
- a string, as kubectl reads it: plural (``deployments``), singular, short name
  (``deploy``), kind (``Deployment``), ``plural.group`` (``deployments.apps``) or
  ``plural.version.group`` (``deployments.v1.apps``).

The generated catalogue is asked first; a name or kind it does not know (a custom resource,
a group engenho does not generate) is looked up in the server's discovery documents,
fetched once and cached (:class:`~engenho.client.discovery.Discovery`), and fetched again
on a miss (at most once a second). When several resources match, the core group wins, then the group
name in order, then the preferred (or highest) version.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

from engenho.client.discovery import Discovery, version_priority
from engenho.client.errors import UnknownResourceTypeError
from engenho.schema import Catalogue, ResourceType, UnknownResourceError, model_for

__all__ = ["ResourceRef", "Resources", "resource_path"]

ResourceRef = str | ResourceType | type[Any]
"""A resource as the caller names it: a string, a catalogue row or a model class."""


def resource_path(
    rt: ResourceType,
    namespace: str | None = None,
    name: str | None = None,
    subresource: str | None = None,
) -> str:
    """The URL path of a collection, an object or a subresource; ``namespace`` None or
    empty on a namespaced resource means all namespaces."""
    prefix = f"/api/{rt.version}" if not rt.group else f"/apis/{rt.group}/{rt.version}"
    if rt.namespaced and namespace:
        prefix = f"{prefix}/namespaces/{quote(namespace, safe='')}"
    path = f"{prefix}/{rt.plural}"
    if name is not None:
        if not name:
            raise ValueError(f"a {rt.kind} name must not be empty")
        path = f"{path}/{quote(name, safe='')}"
    if subresource:
        path = f"{path}/{subresource}"
    return path


def _best(candidates: Iterable[ResourceType]) -> ResourceType | None:
    ordered = sorted(
        candidates, key=lambda r: (r.group != "", r.group, version_priority(r.version))
    )
    return ordered[0] if ordered else None


def _matches(rt: ResourceType, name: str) -> bool:
    return name in (rt.plural, rt.singular, rt.kind.lower(), *rt.short_names)


class Resources:
    """Resolves what callers pass into :class:`ResourceType` rows."""

    def __init__(self, catalogue: Catalogue, discovery: Discovery) -> None:
        self.catalogue = catalogue
        self.discovery = discovery
        self._by_model: dict[type[Any], ResourceType] | None = None
        self._model_of: dict[tuple[str, str, str], type[Any] | None] = {}

    # ------------------------------------------------------------------ models

    def _models(self) -> dict[type[Any], ResourceType]:
        if self._by_model is None:
            by_model: dict[type[Any], ResourceType] = {}
            for rt in self.catalogue:
                try:
                    by_model.setdefault(model_for(rt.api_version, rt.kind), rt)
                except (UnknownResourceError, KeyError):
                    continue
            self._by_model = by_model
        return self._by_model

    def for_model(self, cls: type[Any]) -> ResourceType:
        """The resource whose objects ``cls`` models."""
        rt = self._models().get(cls)
        if rt is None:
            raise UnknownResourceTypeError(f"{cls.__name__} is not the model of a served resource")
        return rt

    def model_of(self, group: str, version: str, kind: str) -> type[Any] | None:
        """The generated model of a kind, or None when there is none."""
        key = (group, version, kind)
        if key not in self._model_of:
            api_version = f"{group}/{version}" if group else version
            try:
                self._model_of[key] = model_for(api_version, kind)
            except (UnknownResourceError, KeyError):
                self._model_of[key] = None
        return self._model_of[key]

    # ------------------------------------------------------------------ resolution

    async def resolve(self, ref: ResourceRef) -> ResourceType:
        """The resource ``ref`` names (see the module docstring)."""
        if isinstance(ref, ResourceType):
            return ref
        if isinstance(ref, type):
            return self.for_model(ref)
        found = _best(self.catalogue.resolve(ref)) or _best(self._qualified(self.catalogue, ref))
        if found is not None:
            return found
        found = await self._discover(lambda rts: self._by_name(rts, ref))
        if found is None:
            raise UnknownResourceTypeError(f'the server doesn\'t have a resource type "{ref}"')
        return found

    async def for_kind(self, api_version: str, kind: str) -> ResourceType:
        """The resource serving ``kind`` in ``api_version`` (``apps/v1``, ``v1``)."""
        try:
            return self.catalogue.for_kind(api_version, kind)
        except UnknownResourceError:
            pass
        group, _, version = api_version.rpartition("/")

        def pick(rts: Iterable[ResourceType]) -> ResourceType | None:
            return _best(r for r in rts if (r.group, r.version, r.kind) == (group, version, kind))

        found = await self._discover(pick)
        if found is None:
            raise UnknownResourceTypeError(
                f'no resource serves kind "{kind}" in version "{api_version}"'
            )
        return found

    async def _discover(self, pick: Any) -> ResourceType | None:
        found: ResourceType | None = pick(await self.discovery.resources())
        if found is None:
            # A resource created since the last fetch (a new CRD): look once more.
            found = pick(await self.discovery.refresh(older_than=self.discovery.miss_interval))
        return found

    @staticmethod
    def _qualified(catalogue: Iterable[ResourceType], ref: str) -> list[ResourceType]:
        """``plural.version.group`` (kubectl's fully qualified form)."""
        head, _, rest = ref.lower().partition(".")
        version, _, group = rest.partition(".")
        if not group:
            return []
        return [
            r for r in catalogue if _matches(r, head) and (r.version, r.group) == (version, group)
        ]

    def _by_name(self, rts: Iterable[ResourceType], ref: str) -> ResourceType | None:
        rts = list(rts)
        name = ref.lower()
        exact = [r for r in rts if _matches(r, name)]
        if exact:
            return _first_preferred(exact)
        head, _, group = name.partition(".")
        in_group = [r for r in rts if _matches(r, head) and r.group == group]
        if in_group:
            return _first_preferred(in_group)
        return _best(self._qualified(rts, ref))


def _first_preferred(rts: list[ResourceType]) -> ResourceType:
    """Discovery lists each group's preferred version first: keep that order per group."""
    first_group = sorted({r.group for r in rts}, key=lambda g: (g != "", g))[0]
    return next(r for r in rts if r.group == first_group)
