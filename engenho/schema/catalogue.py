"""The resource catalogue: every served resource, how to address it and how to advertise it.

Rows are generated from the paths of the upstream OpenAPI documents (plural, scope, verbs,
subresources) plus a small curated overlay (short names, categories) the documents lack;
see ``engenho/schema/codegen/overlay.py``. The apiserver routes, builds discovery and
resolves ``kubectl get <type>`` from this one table, so what is advertised is routable.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from attrs import frozen

from engenho.schema.errors import UnknownResourceError
from engenho.schema.model import GroupVersionKind

__all__ = ["Catalogue", "ResourceType", "Subresource"]


@frozen
class Subresource:
    """``pods/status``, ``deployments/scale``, ``pods/log``, ``pods/binding``, ..."""

    name: str
    kind: GroupVersionKind  # the request/response kind (``autoscaling/v1 Scale`` for scale)
    verbs: tuple[str, ...]


@frozen
class ResourceType:
    """One resource of one group-version, as discovery and routing see it."""

    group: str
    version: str
    kind: str
    plural: str
    singular: str
    namespaced: bool
    verbs: tuple[str, ...]
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: tuple[Subresource, ...] = ()
    definition: str = ""  # the schema definition of the kind (``io.k8s.api.core.v1.Pod``)
    list_kind: str = ""  # ``PodList``; empty for resources that cannot be listed

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def gvk(self) -> GroupVersionKind:
        return GroupVersionKind(self.group, self.version, self.kind)

    @property
    def group_version(self) -> tuple[str, str]:
        return (self.group, self.version)

    @property
    def qualified_name(self) -> str:
        """``pods`` for core, ``deployments.apps`` otherwise (as in error messages)."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def subresource(self, name: str) -> Subresource | None:
        for sub in self.subresources:
            if sub.name == name:
                return sub
        return None

    def api_resources(self) -> list[dict[str, Any]]:
        """The ``APIResourceList.resources`` rows for this resource and its subresources."""
        row: dict[str, Any] = {
            "name": self.plural,
            "singularName": self.singular,
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": list(self.verbs),
        }
        if self.short_names:
            row["shortNames"] = list(self.short_names)
        if self.categories:
            row["categories"] = list(self.categories)
        rows = [row]
        for sub in self.subresources:
            sub_row: dict[str, Any] = {
                "name": f"{self.plural}/{sub.name}",
                "singularName": "",
                "namespaced": self.namespaced,
            }
            if (sub.kind.group, sub.kind.version) != (self.group, self.version):
                sub_row["group"] = sub.kind.group
                sub_row["version"] = sub.kind.version
            sub_row["kind"] = sub.kind.kind
            sub_row["verbs"] = list(sub.verbs)
            rows.append(sub_row)
        return rows


class Catalogue:
    """Lookups over a fixed set of resource types; build once, share freely (read-only)."""

    def __init__(self, resources: Iterable[ResourceType]) -> None:
        self._resources = tuple(sorted(resources, key=lambda r: (r.group, r.version, r.plural)))
        self._by_gvr: dict[tuple[str, str, str], ResourceType] = {}
        self._by_gvk: dict[tuple[str, str, str], ResourceType] = {}
        self._by_name: dict[str, list[ResourceType]] = {}
        for resource in self._resources:
            key = (resource.group, resource.version, resource.plural)
            if key in self._by_gvr:
                raise ValueError(f"duplicate resource {resource.qualified_name}")
            self._by_gvr[key] = resource
            self._by_gvk.setdefault((resource.group, resource.version, resource.kind), resource)
            names = {resource.plural, resource.singular, resource.kind.lower()}
            names.update(resource.short_names)
            for name in names:
                self._by_name.setdefault(name, []).append(resource)

    def __iter__(self) -> Iterator[ResourceType]:
        return iter(self._resources)

    def __len__(self) -> int:
        return len(self._resources)

    def find(self, group: str, version: str, plural: str) -> ResourceType | None:
        """The resource at ``/api(s)/{group}/{version}/{plural}``, or None."""
        return self._by_gvr.get((group, version, plural))

    def get(self, group: str, version: str, plural: str) -> ResourceType:
        resource = self._by_gvr.get((group, version, plural))
        if resource is None:
            where = f"{group}/{version}" if group else version
            raise UnknownResourceError(
                f'the server doesn\'t have a resource type "{plural}" in {where}'
            )
        return resource

    def for_kind(self, api_version: str, kind: str) -> ResourceType:
        """The resource serving ``kind`` in ``api_version`` (``apps/v1``, ``v1``)."""
        group, _, version = api_version.rpartition("/")
        resource = self._by_gvk.get((group, version, kind))
        if resource is None:
            raise UnknownResourceError(
                f'no resource serves kind "{kind}" in version "{api_version}"'
            )
        return resource

    def resolve(self, name: str) -> list[ResourceType]:
        """Resolve what a user typed (``po``, ``pod``, ``pods``, ``deploy``, ``deployments.apps``).

        Matches plural, singular, short names and the lower-cased kind, case-insensitively; a
        ``name.group`` form narrows to that group. Results are sorted by group and version.
        """
        key = name.lower()
        found = self._by_name.get(key)
        if found is None and "." in key:
            resource_name, _, group = key.partition(".")
            found = [r for r in self._by_name.get(resource_name, []) if r.group == group]
        return sorted(found or [], key=lambda r: (r.group, r.version))

    def group_versions(self) -> list[tuple[str, str]]:
        """Every served (group, version), core first, then by group name."""
        return sorted({r.group_version for r in self._resources})

    def resources_in(self, group: str, version: str) -> list[ResourceType]:
        return [r for r in self._resources if r.group_version == (group, version)]

    def api_resource_list(self, group: str, version: str) -> dict[str, Any]:
        """The ``APIResourceList`` document served at ``/api/v1`` or ``/apis/{g}/{v}``."""
        resources = self.resources_in(group, version)
        if not resources:
            where = f"{group}/{version}" if group else version
            raise UnknownResourceError(
                f"the server could not find the requested resource ({where})"
            )
        rows = [row for resource in resources for row in resource.api_resources()]
        rows.sort(key=lambda row: row["name"])
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": f"{group}/{version}" if group else version,
            "resources": rows,
        }
