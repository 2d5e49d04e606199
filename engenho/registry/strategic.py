"""Kubernetes strategic merge patch, driven by the generated schema metadata.

Like a JSON merge patch (maps merge recursively, ``null`` deletes a key) except for lists,
whose handling each field declares in ``x-kubernetes-patch-strategy``:

- ``merge`` with ``x-kubernetes-patch-merge-key``: elements are matched by that key and merged
  (containers by ``name``, ports by ``containerPort``, conditions by ``type``); new ones are
  appended;
- ``merge`` without a key (a list of scalars, e.g. finalizers): the union, in order;
- anything else: the patch's list replaces the original (atomic lists: args, tolerations).

Directives (apimachinery ``strategicpatch``): ``$patch: replace | merge | delete`` on a map or
a list element, ``$retainKeys`` on a map, ``$deleteFromPrimitiveList/<field>`` and
``$setElementOrder/<field>`` beside a list field. A malformed directive or an element without
its merge key is refused (400) and nothing is written.
"""

from __future__ import annotations

import copy
from typing import Any

from engenho.registry.errors import BadRequestError
from engenho.schema import (
    Definition,
    FieldSchema,
    TypeKind,
    TypeSpec,
    UnknownResourceError,
    definition,
)

__all__ = ["strategic_merge"]

_DELETE = object()
_PATCH = "$patch"
_RETAIN = "$retainKeys"
_DELETE_FROM = "$deleteFromPrimitiveList/"
_ORDER = "$setElementOrder/"


def _refuse(message: str) -> BadRequestError:
    return BadRequestError(f"invalid strategic merge patch: {message}")


def strategic_merge(original: dict[str, Any], patch: Any, definition: Definition) -> dict[str, Any]:
    """The result of applying ``patch`` to ``original`` (neither is modified)."""
    if not isinstance(patch, dict):
        raise _refuse("the patch must be a JSON object")
    merged = _merge_map(original, patch, definition)
    if merged is _DELETE:
        raise _refuse("a patch may not delete the whole object")
    assert isinstance(merged, dict)
    return merged


def _field(schema: Definition | TypeSpec | None, name: str) -> FieldSchema | TypeSpec | None:
    """The schema of ``name`` inside an object definition, or the value type of a map."""
    if isinstance(schema, Definition):
        return schema.field(name)
    if isinstance(schema, TypeSpec) and schema.kind is TypeKind.MAP:
        return schema.items
    return None


def _definition(spec: TypeSpec | None) -> Definition | TypeSpec | None:
    """What a nested map is described by: an object definition or a map's TypeSpec."""
    if spec is None:
        return None
    if spec.kind is TypeKind.OBJECT and spec.ref:
        try:
            return definition(spec.ref)
        except UnknownResourceError:
            return None
    if spec.kind is TypeKind.MAP:
        return spec
    return None


def _strip(value: Any) -> Any:
    """A new value as the patch gives it, without directives."""
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if not k.startswith("$")}
    if isinstance(value, list):
        return [_strip(v) for v in value if not (isinstance(v, dict) and v.get(_PATCH))]
    return value


def _merge_map(
    original: Any, patch: dict[str, Any], schema: Definition | TypeSpec | None
) -> dict[str, Any] | object:
    directive = patch.get(_PATCH)
    if directive == "replace":
        replaced: dict[str, Any] = _strip(patch)
        return replaced
    if directive == "delete":
        return _DELETE
    if directive not in (None, "merge"):
        raise _refuse(f"unknown patch type: {directive} in map: {patch}")
    result: dict[str, Any] = copy.deepcopy(original) if isinstance(original, dict) else {}
    orders: dict[str, Any] = {}
    for key, value in patch.items():
        if key in (_PATCH, _RETAIN):
            continue
        if key.startswith(_DELETE_FROM):
            field = key[len(_DELETE_FROM) :]
            if not isinstance(value, list):
                raise _refuse(f"{key} must be a list")
            current = result.get(field)
            if isinstance(current, list):
                result[field] = [item for item in current if item not in value]
            continue
        if key.startswith(_ORDER):
            orders[key[len(_ORDER) :]] = value
            continue
        if key.startswith("$"):
            raise _refuse(f"unknown directive {key}")
        if value is None:
            result.pop(key, None)
            continue
        merged = _merge_value(result.get(key), value, _field(schema, key))
        if merged is _DELETE:
            result.pop(key, None)
        else:
            result[key] = merged
    retain = patch.get(_RETAIN)
    if retain is not None:
        if not isinstance(retain, list):
            raise _refuse("$retainKeys must be a list")
        result = {k: v for k, v in result.items() if k in retain}
    for field, order in orders.items():
        schema_field = _field(schema, field)
        merge_key = schema_field.patch_merge_key if isinstance(schema_field, FieldSchema) else ""
        if isinstance(result.get(field), list) and isinstance(order, list):
            result[field] = _reorder(result[field], order, merge_key)
    return result


def _merge_value(original: Any, patch: Any, field: FieldSchema | TypeSpec | None) -> Any:
    spec = field.type if isinstance(field, FieldSchema) else field
    if isinstance(patch, dict):
        if isinstance(spec, TypeSpec) and spec.kind is TypeKind.ARRAY:
            raise _refuse("a list field was given an object")
        if spec is None or spec.kind in (TypeKind.OBJECT, TypeKind.MAP, TypeKind.ANY):
            target = (
                _definition(spec) if spec is not None and spec.kind is not TypeKind.ANY else None
            )
            return _merge_map(original, patch, target)
        return _strip(patch)
    merges = (
        isinstance(patch, list)
        and isinstance(field, FieldSchema)
        and spec is not None
        and spec.kind is TypeKind.ARRAY
        and "merge" in field.patch_strategy.split(",")
    )
    if merges:
        assert isinstance(field, FieldSchema)
        assert spec is not None
        if field.patch_merge_key:
            return _merge_keyed_list(
                original, patch, field.patch_merge_key, _definition(spec.items)
            )
        return _merge_primitive_list(original, patch)
    return _strip(patch)


def _merge_primitive_list(original: Any, patch: list[Any]) -> list[Any]:
    result = list(original) if isinstance(original, list) else []
    for item in patch:
        if isinstance(item, dict):
            raise _refuse("a list of scalars was given an object element")
        if item not in result:
            result.append(item)
    return result


def _merge_keyed_list(
    original: Any, patch: list[Any], merge_key: str, item_schema: Definition | TypeSpec | None
) -> list[Any]:
    if any(isinstance(item, dict) and item.get(_PATCH) == "replace" for item in patch):
        return [_strip(item) for item in patch if not (isinstance(item, dict) and item.get(_PATCH))]
    result: list[Any] = copy.deepcopy(original) if isinstance(original, list) else []
    for item in patch:
        if not isinstance(item, dict):
            raise _refuse(f"list elements merged by {merge_key} must be objects, got {item!r}")
        if merge_key not in item:
            raise _refuse(f"map: {item} does not contain declared merge key: {merge_key}")
        position = next(
            (
                i
                for i, existing in enumerate(result)
                if isinstance(existing, dict) and existing.get(merge_key) == item[merge_key]
            ),
            None,
        )
        if item.get(_PATCH) == "delete":
            if position is not None:
                del result[position]
            continue
        merged = _merge_map(result[position] if position is not None else {}, item, item_schema)
        if merged is _DELETE:
            if position is not None:
                del result[position]
        elif position is None:
            result.append(merged)
        else:
            result[position] = merged
    return result


def _reorder(items: list[Any], order: list[Any], merge_key: str) -> list[Any]:
    """``$setElementOrder``: the listed elements first, in that order; the rest after."""

    def identity(item: Any) -> Any:
        return item.get(merge_key) if merge_key and isinstance(item, dict) else item

    wanted = [identity(entry) for entry in order]
    rank = {key: i for i, key in enumerate(wanted) if isinstance(key, str | int | float | bool)}
    listed = [item for item in items if identity(item) in rank]
    listed.sort(key=lambda item: rank[identity(item)])
    return listed + [item for item in items if identity(item) not in rank]
