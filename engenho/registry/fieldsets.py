"""Field sets: which fields of an object a manager owns, as server-side apply tracks them.

A field set is a set of paths. A path is a tuple of elements, as in ``FieldsV1``:

- ``("f", name)``: a field of a struct or a key of a map;
- ``("k", '{"name":"app"}')``: an element of an associative list, by its key fields;
- ``("v", '"a"')``: an element of a set-like list, by its value.

The schema decides how each value is seen (:class:`Shape`): structs (fields own themselves
only through their children), granular maps and associative lists (the container, or the
element, is owned itself too: ``.`` in FieldsV1), sets, and atomic values owned whole.
Built-in types declare associative lists through their strategic merge key when they have no
``x-kubernetes-list-type``, as upstream's structured-merge-diff does.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator
from typing import Any

import orjson
from attrs import frozen

from engenho.schema import (
    Definition,
    FieldSchema,
    TypeKind,
    TypeSpec,
    UnknownResourceError,
    definition,
)

__all__ = [
    "SERVER_OWNED",
    "FieldSet",
    "Path",
    "Shape",
    "ShapeKind",
    "decode_fields",
    "element_key",
    "encode_fields",
    "field_set",
    "format_path",
    "root_shape",
    "value_at",
]

Element = tuple[str, str]
Path = tuple[Element, ...]
FieldSet = frozenset[Path]

_MISSING = object()

SERVER_OWNED: frozenset[Path] = frozenset(
    {
        (("f", "apiVersion"),),
        (("f", "kind"),),
        *(
            (("f", "metadata"), ("f", name))
            for name in (
                "name",
                "namespace",
                "uid",
                "resourceVersion",
                "generation",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "managedFields",
                "selfLink",
            )
        ),
    }
)
"""Fields no manager ever owns (identity and server-maintained metadata)."""


class ShapeKind(enum.Enum):
    STRUCT = "struct"
    MAP = "map"
    LIST_MAP = "list-map"
    SET = "set"
    ATOMIC = "atomic"


@frozen
class Shape:
    kind: ShapeKind
    definition: Definition | None = None
    """The struct's definition."""
    item: FieldSchema | TypeSpec | None = None
    """A map's value type, or a list's element type."""
    keys: tuple[str, ...] = ()
    """An associative list's key fields."""

    def field(self, name: str) -> Shape:
        """The shape of a struct field or a map value."""
        if self.kind is ShapeKind.STRUCT and self.definition is not None:
            found = self.definition.field(name)
            return _shape_of(found) if found is not None else _UNTYPED
        if self.kind is ShapeKind.MAP:
            return _shape_of(self.item)
        return _UNTYPED

    def element(self) -> Shape:
        return _shape_of(self.item)


_UNTYPED = Shape(ShapeKind.ATOMIC)


def _definition_shape(name: str) -> Shape:
    try:
        found = definition(name)
    except UnknownResourceError:
        return _UNTYPED
    if found.kind is not TypeKind.OBJECT or found.map_type == "atomic" or not found.fields:
        return _UNTYPED
    return Shape(ShapeKind.STRUCT, definition=found)


def _shape_of(schema: FieldSchema | TypeSpec | None) -> Shape:
    if schema is None:
        return _UNTYPED
    field = schema if isinstance(schema, FieldSchema) else None
    spec = schema.type if isinstance(schema, FieldSchema) else schema
    if spec.kind is TypeKind.OBJECT and spec.ref:
        return _definition_shape(spec.ref)
    if spec.kind is TypeKind.MAP:
        if field is not None and field.map_type == "atomic":
            return _UNTYPED
        return Shape(ShapeKind.MAP, item=spec.items)
    if spec.kind is TypeKind.ARRAY:
        if field is None:
            return _UNTYPED
        strategies = field.patch_strategy.split(",")
        if field.list_type == "map" and field.list_map_keys:
            return Shape(ShapeKind.LIST_MAP, item=spec.items, keys=field.list_map_keys)
        if field.list_type == "set":
            return Shape(ShapeKind.SET, item=spec.items)
        if field.list_type == "atomic":
            return _UNTYPED
        if "merge" in strategies and field.patch_merge_key:
            return Shape(ShapeKind.LIST_MAP, item=spec.items, keys=(field.patch_merge_key,))
        if "merge" in strategies:
            return Shape(ShapeKind.SET, item=spec.items)
    return _UNTYPED


def root_shape(definition_name: str) -> Shape:
    """The shape of a whole object of the kind ``definition_name`` names."""
    return _definition_shape(definition_name)


def _json(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def element_key(element: Any, shape: Shape) -> str:
    """The ``k:`` identity of an associative list element (its key fields, as JSON).

    A key field the element leaves out takes its schema default, as structured-merge-diff
    does: a container port applied as ``{containerPort: 80}`` is the stored
    ``{containerPort: 80, protocol: TCP}``.
    """
    if not isinstance(element, dict):
        return _json({})
    return _json({k: v for k, v in _key_values(element, shape) if v is not None})


def _key_values(element: dict[str, Any], shape: Shape) -> Iterator[tuple[str, Any]]:
    item = shape.element()
    for key in shape.keys:
        if key in element:
            yield key, element[key]
            continue
        field = item.definition.field(key) if item.definition is not None else None
        yield key, field.default if field is not None else None


def _walk(value: Any, shape: Shape, path: Path, out: dict[Path, Any]) -> None:
    """Every path ``value`` sets, with the value there (the first, for a duplicated key)."""
    if shape.kind is ShapeKind.STRUCT and isinstance(value, dict):
        if not value and path:
            out.setdefault(path, value)
        for name, item in value.items():
            _walk(item, shape.field(name), (*path, ("f", name)), out)
        return
    if shape.kind is ShapeKind.MAP and isinstance(value, dict):
        out.setdefault(path, value)
        for name, item in value.items():
            _walk(item, shape.field(name), (*path, ("f", name)), out)
        return
    if shape.kind is ShapeKind.LIST_MAP and isinstance(value, list):
        if not value:
            out.setdefault(path, value)
        element_shape = shape.element()
        for element in value:
            here = (*path, ("k", element_key(element, shape)))
            if here in out:
                continue  # a duplicate key: the first element is the one the path names
            out[here] = element
            if isinstance(element, dict):
                _walk(element, element_shape, here, out)
        return
    if shape.kind is ShapeKind.SET and isinstance(value, list):
        if not value:
            out.setdefault(path, value)
        for element in value:
            out.setdefault((*path, ("v", _json(element))), element)
        return
    out.setdefault(path, value)


def field_values(obj: dict[str, Any], shape: Shape) -> dict[Path, Any]:
    """The paths of :func:`field_set`, each with the value ``obj`` has there (what
    :func:`value_at` would find, read in one walk instead of one walk per path)."""
    out: dict[Path, Any] = {}
    _walk(obj, shape, (), out)
    out.pop((), None)
    out.pop((("f", "metadata"),), None)
    for path in SERVER_OWNED:
        out.pop(path, None)
    return out


def field_set(obj: dict[str, Any], shape: Shape) -> FieldSet:
    """Every path ``obj`` sets, except those no manager owns."""
    return frozenset(field_values(obj, shape))


def _find(items: list[Any], key: str, shape: Shape) -> Any:
    for element in items:
        if isinstance(element, dict) and element_key(element, shape) == key:
            return element
    return _MISSING


def value_at(obj: Any, path: Path, shape: Shape) -> Any:
    """The value ``path`` names in ``obj`` (a sentinel when absent)."""
    current, here = obj, shape
    for kind, name in path:
        if kind == "f":
            if not isinstance(current, dict) or name not in current:
                return _MISSING
            current, here = current[name], here.field(name)
        elif kind == "k":
            if not isinstance(current, list):
                return _MISSING
            current, here = _find(current, name, here), here.element()
            if current is _MISSING:
                return _MISSING
        else:  # "v": a set member is present or not
            if not isinstance(current, list) or orjson.loads(name) not in current:
                return _MISSING
            return orjson.loads(name)
    return current


def is_missing(value: Any) -> bool:
    return value is _MISSING


def format_path(path: Path) -> str:
    """How upstream names a field in conflict messages: ``.spec.containers[name="app"].image``."""
    parts: list[str] = []
    for kind, name in path:
        if kind == "f":
            parts.append(f".{name}")
        elif kind == "k":
            keys = orjson.loads(name)
            parts.append("[" + ",".join(f"{k}={_json(v)}" for k, v in keys.items()) + "]")
        else:
            parts.append(f"[={name}]")
    return "".join(parts)


_PREFIX = {"f": "f:", "k": "k:", "v": "v:"}


def encode_fields(fields: Iterable[Path]) -> dict[str, Any]:
    """FieldsV1: a trie of the paths, with ``.`` where a path is a member and has children."""
    members = set(fields)
    trie: dict[str, Any] = {}
    for path in sorted(members):
        node = trie
        for kind, name in path:
            node = node.setdefault(_PREFIX[kind] + name, {})
    _mark(trie, (), members)
    return trie


def _mark(node: dict[str, Any], path: Path, members: set[Path]) -> None:
    for key, child in node.items():
        if key == ".":
            continue
        kind, name = key[0], key[2:]
        here = (*path, (kind, name))
        if child and here in members:
            child["."] = {}
        _mark(child, here, members)


def decode_fields(fields: Any) -> FieldSet:
    """The paths of a FieldsV1 trie (malformed input yields what can be read)."""
    out: set[Path] = set()

    def walk(node: Any, path: Path) -> None:
        if not isinstance(node, dict):
            return
        if path and (not node or "." in node):
            out.add(path)
        for key, child in node.items():
            if key == "." or len(key) < 2 or key[1] != ":" or key[0] not in "fkv":
                continue
            walk(child, (*path, (key[0], key[2:])))

    walk(fields, ())
    return frozenset(out)


def descendants(fields: Iterable[Path], prefix: Path) -> Iterator[Path]:
    size = len(prefix)
    for path in fields:
        if path[:size] == prefix:
            yield path
