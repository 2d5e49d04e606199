"""Translate OpenAPI schema nodes into :mod:`engenho.schema.model` records."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from engenho.schema.codegen.documents import Document, ref_name
from engenho.schema.codegen.naming import module_for, snake_case
from engenho.schema.errors import SpecError
from engenho.schema.model import Definition, FieldSchema, GroupVersionKind, TypeKind, TypeSpec

__all__ = ["INT_OR_STRING", "QUANTITY", "translate"]

QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"
INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
_SCALARS = {
    "string": TypeKind.STRING,
    "integer": TypeKind.INTEGER,
    "number": TypeKind.NUMBER,
    "boolean": TypeKind.BOOLEAN,
}
_FIELD_KEYS = {
    "description", "type", "default", "allOf", "$ref", "items", "format", "enum",
    "additionalProperties", "x-kubernetes-list-type", "x-kubernetes-patch-strategy",
    "x-kubernetes-patch-merge-key", "x-kubernetes-list-map-keys", "x-kubernetes-map-type",
}  # fmt: skip
_DEFINITION_KEYS = {
    "type", "description", "properties", "required", "x-kubernetes-group-version-kind",
    "x-kubernetes-map-type", "format", "oneOf", "x-kubernetes-unions",
}  # fmt: skip


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _definition_kind(name: str, schema: Mapping[str, Any]) -> TypeKind:
    if name == QUANTITY:
        return TypeKind.QUANTITY
    if name == INT_OR_STRING:
        return TypeKind.INT_OR_STRING
    if "properties" in schema:
        return TypeKind.OBJECT
    kind = schema.get("type")
    if kind == "object":
        return TypeKind.ANY
    if kind in _SCALARS:
        return _SCALARS[kind]
    raise SpecError(f"{name}: unsupported definition shape {sorted(schema)}")


def _type(node: Mapping[str, Any], kinds: Mapping[str, TypeKind], where: str) -> TypeSpec:
    default_json = _json(node["default"]) if "default" in node else ""
    ref = ref_name(node)
    if ref is not None:
        if ref not in kinds:
            raise SpecError(f"{where}: $ref to unknown definition {ref}")
        return TypeSpec(kind=kinds[ref], ref=ref, default_json=default_json)
    kind = node.get("type")
    if kind == "array":
        return TypeSpec(
            kind=TypeKind.ARRAY,
            items=_type(node["items"], kinds, where + "[]"),
            default_json=default_json,
        )
    if kind == "object":
        additional = node.get("additionalProperties")
        if isinstance(additional, dict):
            items = _type(additional, kinds, where + "{}")
            return TypeSpec(kind=TypeKind.MAP, items=items, default_json=default_json)
        return TypeSpec(kind=TypeKind.ANY, default_json=default_json)
    if kind in _SCALARS:
        # Upstream repeats enum values that have deprecated aliases; keep the first of each.
        enum = tuple(dict.fromkeys(node.get("enum", ())))
        return TypeSpec(
            kind=_SCALARS[kind],
            format=node.get("format", ""),
            enum=enum,
            default_json=default_json,
        )
    raise SpecError(f"{where}: unsupported schema {sorted(node)}")


def _field(
    name: str, node: Mapping[str, Any], required: bool, kinds: Mapping[str, TypeKind], where: str
) -> FieldSchema:
    unknown = set(node) - _FIELD_KEYS
    if unknown:
        raise SpecError(f"{where}: unsupported keys {sorted(unknown)}")
    spec = _type(node, kinds, where)
    # The property-level default lives on the field; the TypeSpec keeps element defaults only.
    spec = TypeSpec(
        kind=spec.kind, ref=spec.ref, format=spec.format, items=spec.items, enum=spec.enum
    )
    return FieldSchema(
        name=name,
        attr=snake_case(name),
        type=spec,
        required=required,
        description=node.get("description", ""),
        default_json=_json(node["default"]) if "default" in node else "",
        patch_strategy=node.get("x-kubernetes-patch-strategy", ""),
        patch_merge_key=node.get("x-kubernetes-patch-merge-key", ""),
        list_type=node.get("x-kubernetes-list-type", ""),
        list_map_keys=tuple(node.get("x-kubernetes-list-map-keys", ())),
        map_type=node.get("x-kubernetes-map-type", ""),
    )


def translate(chosen: Mapping[str, tuple[Document, Mapping[str, Any]]]) -> list[Definition]:
    """Translate the authoritative schemas into Definition records, sorted by name."""
    kinds = {name: _definition_kind(name, schema) for name, (_, schema) in chosen.items()}
    definitions = []
    for name, (document, schema) in sorted(chosen.items()):
        unknown = set(schema) - _DEFINITION_KEYS
        if unknown:
            raise SpecError(f"{document.path}: {name}: unsupported keys {sorted(unknown)}")
        required_order = tuple(schema.get("required", ()))
        required = set(required_order)
        properties: Mapping[str, Any] = schema.get("properties", {})
        fields = tuple(
            _field(field, properties[field], field in required, kinds, f"{name}.{field}")
            for field in sorted(properties)
        )
        attrs = [f.attr for f in fields]
        if len(set(attrs)) != len(attrs):
            raise SpecError(f"{name}: two wire names map to one Python attribute: {attrs}")
        kind = kinds[name]
        definitions.append(
            Definition(
                name=name,
                kind=kind,
                module=module_for(name),
                class_name=name.rsplit(".", 1)[1] if kind is TypeKind.OBJECT else "",
                source=document.path,
                description=schema.get("description", ""),
                format=schema.get("format", ""),
                fields=fields,
                required=required_order,
                gvks=tuple(
                    GroupVersionKind(g["group"], g["version"], g["kind"])
                    for g in schema.get("x-kubernetes-group-version-kind", ())
                ),
                map_type=schema.get("x-kubernetes-map-type", ""),
                unions_json=_json(schema["x-kubernetes-unions"])
                if "x-kubernetes-unions" in schema
                else "",
            )
        )
    return definitions
