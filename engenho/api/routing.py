"""One parser for every resource URL shape (contract §2).

``/api/v1/...`` and ``/apis/{group}/{version}/...`` followed by one of: ``{plural}``,
``{plural}/{name}``, ``{plural}/{name}/{subresource}``, ``namespaces/{ns}/{plural}``,
``namespaces/{ns}/{plural}/{name}`` and ``namespaces/{ns}/{plural}/{name}/{subresource}``.
``namespaces/{ns}/{x}`` is ambiguous; the catalogue decides: a namespaced resource ``x`` is a
collection in ``ns``, anything else is a subresource of namespace ``ns``.
"""

from __future__ import annotations

from attrs import frozen

from engenho.registry import NotFoundError
from engenho.schema import Catalogue, ResourceType

__all__ = ["NOT_FOUND_MESSAGE", "Target", "parse_target"]

NOT_FOUND_MESSAGE = "the server could not find the requested resource"


@frozen
class Target:
    resource: ResourceType
    namespace: str | None
    """The URL's namespace; None for cluster-scoped resources and cross-namespace lists."""
    name: str | None
    subresource: str | None

    @property
    def is_collection(self) -> bool:
        return self.name is None


def _not_found() -> NotFoundError:
    return NotFoundError(NOT_FOUND_MESSAGE)


def parse_target(catalogue: Catalogue, group: str, version: str, rest: list[str]) -> Target:
    """Resolve the segments after the group-version; 404 when no resource serves them."""
    if not rest or any(not segment for segment in rest):
        raise _not_found()
    namespace: str | None = None
    if rest[0] == "namespaces" and len(rest) >= 3:
        candidate = catalogue.find(group, version, rest[2])
        if candidate is not None and candidate.namespaced:
            namespace, rest = rest[1], rest[2:]
    plural, tail = rest[0], rest[1:]
    resource = catalogue.find(group, version, plural)
    if resource is None or len(tail) > 2:
        raise _not_found()
    if resource.namespaced != (namespace is not None) and (tail or namespace is not None):
        # A namespaced object needs its namespace; a cluster-scoped one cannot have one.
        raise _not_found()
    name = tail[0] if tail else None
    subresource = tail[1] if len(tail) == 2 else None
    if subresource is not None and resource.subresource(subresource) is None:
        raise _not_found()
    return Target(resource, namespace, name, subresource)
