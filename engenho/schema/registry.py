"""Lookups over the generated schema: definitions by name or kind, fields by path.

These are what strategic merge patch, server-side apply and OpenAPI re-emission read:
``field_schema("io.k8s.api.core.v1.Pod", "spec.containers")`` gives the merge strategy,
merge key, list type and map keys of that field.
"""

from __future__ import annotations

from collections.abc import Sequence

from engenho.schema.catalogue import Catalogue
from engenho.schema.errors import UnknownResourceError
from engenho.schema.generated.catalogue import RESOURCES
from engenho.schema.generated.schemas import DEFINITIONS
from engenho.schema.model import Definition, FieldSchema, TypeKind, TypeSpec

__all__ = [
    "CATALOGUE",
    "DEFINITIONS",
    "definition",
    "definition_for",
    "field_schema",
    "split_path",
]

CATALOGUE = Catalogue(RESOURCES)

_BY_KIND: dict[tuple[str, str], Definition] = {}
for _definition in DEFINITIONS.values():
    for _gvk in _definition.gvks:
        _BY_KIND.setdefault((_gvk.api_version, _gvk.kind), _definition)


def definition(name: str) -> Definition:
    """The definition named ``name`` (``io.k8s.api.core.v1.Pod``)."""
    found = DEFINITIONS.get(name)
    if found is None:
        raise UnknownResourceError(f"no schema definition named {name}")
    return found


def definition_for(api_version: str, kind: str) -> Definition:
    """The definition of ``kind`` in ``api_version``; raise when none is registered."""
    found = _BY_KIND.get((api_version, kind))
    if found is None:
        raise UnknownResourceError(f'no kind "{kind}" is registered for version "{api_version}"')
    return found


def split_path(path: str) -> list[str]:
    """``spec.containers[0].ports`` -> ``["spec", "containers", "ports"]`` (indices dropped)."""
    segments: list[str] = []
    for part in path.split("."):
        name = part.split("[", 1)[0]
        if name:
            segments.append(name)
    return segments


def field_schema(root: str | Definition, path: str | Sequence[str]) -> FieldSchema | None:
    """The field at ``path`` below definition ``root``; arrays and maps are stepped through.

    ``field_schema("io.k8s.api.apps.v1.Deployment", "spec.template.spec.containers")`` is the
    containers field of PodSpec. Returns None when the path leaves the schema.
    """
    current = definition(root) if isinstance(root, str) else root
    segments = split_path(path) if isinstance(path, str) else list(path)
    found: FieldSchema | None = None
    for index, segment in enumerate(segments):
        found = current.field(segment)
        if found is None:
            return None
        if index == len(segments) - 1:
            break
        target = _element(found.type)
        if target.kind is not TypeKind.OBJECT:
            return None
        current = DEFINITIONS[target.ref]
    return found


def _element(spec: TypeSpec) -> TypeSpec:
    while spec.kind in (TypeKind.ARRAY, TypeKind.MAP) and spec.items is not None:
        spec = spec.items
    return spec
