"""Resource types and schema metadata generated from the upstream OpenAPI v3 documents.

The public surface the API machinery builds on (see ``docs/schema.md``):

* the catalogue — :data:`CATALOGUE` of :class:`ResourceType` rows (lookup by group, version
  and plural, by kind, by short name; discovery documents);
* the write path on plain dicts — :func:`default`, then :func:`validate` (returning
  :class:`Cause` records with field paths), and :func:`unknown_fields` for fieldValidation;
* schema metadata — :func:`definition`, :func:`definition_for`, :func:`field_schema` (patch
  strategy, merge keys, list and map types for strategic merge patch and server-side apply);
* OpenAPI re-emission — :func:`openapi_v3_document`, :func:`openapi_v2_document`;
* typed models — :func:`from_wire`, :func:`to_wire`, :func:`model_for` and the explicit
  cattrs :data:`CONVERTER`;
* :class:`Quantity`, exact resource quantities.

Names load on first use, so the generator (``engenho.schema.codegen``) runs even when the
generated package is absent or stale.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engenho.schema.catalogue import Catalogue, ResourceType, Subresource
    from engenho.schema.causes import Cause, CauseReason, format_invalid
    from engenho.schema.converter import CONVERTER, from_wire, make_converter, model_for, to_wire
    from engenho.schema.defaulting import default
    from engenho.schema.errors import (
        AttestationError,
        CodegenError,
        DriftError,
        QuantityError,
        SchemaError,
        SpecError,
        UnknownResourceError,
    )
    from engenho.schema.generated import KUBERNETES_VERSION
    from engenho.schema.model import Definition, FieldSchema, GroupVersionKind, TypeKind, TypeSpec
    from engenho.schema.openapi import openapi_v2_document, openapi_v3_document, openapi_v3_paths
    from engenho.schema.quantity import Quantity, QuantityFormat
    from engenho.schema.registry import CATALOGUE, definition, definition_for, field_schema
    from engenho.schema.validation import unknown_fields, validate

__all__ = [
    "CATALOGUE",
    "CONVERTER",
    "KUBERNETES_VERSION",
    "AttestationError",
    "Catalogue",
    "Cause",
    "CauseReason",
    "CodegenError",
    "Definition",
    "DriftError",
    "FieldSchema",
    "GroupVersionKind",
    "Quantity",
    "QuantityError",
    "QuantityFormat",
    "ResourceType",
    "SchemaError",
    "SpecError",
    "Subresource",
    "TypeKind",
    "TypeSpec",
    "UnknownResourceError",
    "default",
    "definition",
    "definition_for",
    "field_schema",
    "format_invalid",
    "from_wire",
    "make_converter",
    "model_for",
    "openapi_v2_document",
    "openapi_v3_document",
    "openapi_v3_paths",
    "to_wire",
    "unknown_fields",
    "validate",
]

_HOMES = {
    "engenho.schema.catalogue": ("Catalogue", "ResourceType", "Subresource"),
    "engenho.schema.causes": ("Cause", "CauseReason", "format_invalid"),
    "engenho.schema.converter": (
        "CONVERTER",
        "from_wire",
        "make_converter",
        "model_for",
        "to_wire",
    ),
    "engenho.schema.defaulting": ("default",),
    "engenho.schema.errors": (
        "AttestationError",
        "CodegenError",
        "DriftError",
        "QuantityError",
        "SchemaError",
        "SpecError",
        "UnknownResourceError",
    ),
    "engenho.schema.generated": ("KUBERNETES_VERSION",),
    "engenho.schema.model": (
        "Definition",
        "FieldSchema",
        "GroupVersionKind",
        "TypeKind",
        "TypeSpec",
    ),
    "engenho.schema.openapi": ("openapi_v2_document", "openapi_v3_document", "openapi_v3_paths"),
    "engenho.schema.quantity": ("Quantity", "QuantityFormat"),
    "engenho.schema.registry": ("CATALOGUE", "definition", "definition_for", "field_schema"),
    "engenho.schema.validation": ("unknown_fields", "validate"),
}
_MODULE_OF = {name: module for module, names in _HOMES.items() for name in names}


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'engenho.schema' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
