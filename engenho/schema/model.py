"""Records describing the generated schema: the metadata the API machinery reads at run time.

The generator (:mod:`engenho.schema.codegen`) builds these from the upstream OpenAPI
documents and writes Python that rebuilds them (``engenho/schema/generated/schemas``).
Everything downstream reads them: structural validation, defaulting, strategic merge patch
and server-side apply (patch strategy, merge keys, list and map types), OpenAPI re-emission.
"""

from __future__ import annotations

import enum
import json
from typing import Any

from attrs import frozen

__all__ = [
    "Definition",
    "FieldSchema",
    "GroupVersionKind",
    "TypeKind",
    "TypeSpec",
]


class TypeKind(enum.StrEnum):
    """What a JSON value must be; formats and refs refine it."""

    STRING = "string"
    INTEGER = "integer"
    NUMBER = "number"
    BOOLEAN = "boolean"
    OBJECT = "object"  # a definition with properties, named by ``TypeSpec.ref``
    ARRAY = "array"  # elements typed by ``TypeSpec.items``
    MAP = "map"  # ``additionalProperties``: string keys, values typed by ``TypeSpec.items``
    INT_OR_STRING = "int-or-string"
    QUANTITY = "quantity"
    ANY = "any"  # free-form JSON (RawExtension, FieldsV1)


@frozen
class GroupVersionKind:
    group: str
    version: str
    kind: str

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def to_json(self) -> dict[str, str]:
        return {"group": self.group, "version": self.version, "kind": self.kind}


@frozen
class TypeSpec:
    """The type of a field or of an array/map element.

    ``ref`` names the definition a ``$ref`` pointed at (also for named scalars such as
    ``meta.v1.Time`` or ``Quantity``); ``default_json`` is an element-level default as
    JSON text, empty when the spec gives none.
    """

    kind: TypeKind
    ref: str = ""
    format: str = ""
    items: TypeSpec | None = None
    enum: tuple[str, ...] = ()
    default_json: str = ""


@frozen
class FieldSchema:
    """One property of a definition, with the Kubernetes extensions that steer patching."""

    name: str  # the wire name, exactly as in the spec (``nonResourceURLs``, ``Port``)
    attr: str  # the attribute name of the generated attrs model (``non_resource_urls``)
    type: TypeSpec
    required: bool = False
    description: str = ""
    default_json: str = ""
    patch_strategy: str = ""
    patch_merge_key: str = ""
    list_type: str = ""
    list_map_keys: tuple[str, ...] = ()
    map_type: str = ""

    @property
    def has_default(self) -> bool:
        return bool(self.default_json)

    @property
    def default(self) -> Any:
        """The spec's default (a fresh copy each call); ``None`` when there is none."""
        return json.loads(self.default_json) if self.default_json else None


@frozen
class Definition:
    """A named schema: an object with fields, or a named scalar (``Time``, ``Quantity``)."""

    name: str  # ``io.k8s.api.core.v1.Pod``
    kind: TypeKind
    module: str  # the generated models module holding its class (``core_v1``)
    class_name: str  # ``Pod``; empty for scalars that map onto Python types
    source: str  # the input document it was taken from (``api/v1.json``)
    description: str = ""
    format: str = ""
    fields: tuple[FieldSchema, ...] = ()
    required: tuple[str, ...] = ()  # wire names, in the spec's order
    gvks: tuple[GroupVersionKind, ...] = ()
    map_type: str = ""
    unions_json: str = ""

    def field(self, name: str) -> FieldSchema | None:
        """The field with wire name ``name``, or None."""
        for candidate in self.fields:
            if candidate.name == name:
                return candidate
        return None
