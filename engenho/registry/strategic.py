"""Kubernetes strategic merge patch, driven by the generated schema metadata.

What the apiserver does for ``application/strategic-merge-patch+json`` (apimachinery
``strategicpatch``, applied with ``IgnoreUnmatchedNulls``), then what its typed decoder makes
of the result.

Maps merge recursively and ``null`` deletes a key. A value whose JSON type differs from the
original's (or a key the original lacks) is taken from the patch as it is, less its nulls and
any map carrying ``$patch``. Lists follow their field's ``x-kubernetes-patch-strategy``:

- ``merge`` with ``x-kubernetes-patch-merge-key`` (containers by ``name``, ports by
  ``containerPort``, conditions by ``type``): an element of the patch merges into the first
  original element with the same key, or is added;
- ``merge`` without a key (a list of scalars, e.g. finalizers): the union without duplicates;
- anything else (args, tolerations): the patch's list replaces the original.
A map field whose strategy is ``replace`` (PodDisruptionBudget ``spec.selector``) is replaced.

Order of a merged list: the elements named by the patch come in the patch's order, and the
original's other elements keep their original order, each placed before the first patch
element that came after it in the original (so a new element comes ahead of the original's
elements that follow the last element the patch shares with them).

Directives:

- ``$patch: replace`` on a map: the map is the patch's; ``$patch: delete``: the map is ``{}``;
  any other value is refused (``merge`` too);
- in a merged list, ``{<key>: v, $patch: delete}`` removes every element with that key,
  ``{$patch: replace}`` makes the list the patch's other elements; ``merge`` or another value
  is refused;
- ``$retainKeys: [...]`` on a map drops the original's keys not listed; the patch may not set
  a key the list lacks;
- ``$deleteFromPrimitiveList/<field>: [...]`` removes those values from a list of scalars;
- ``$setElementOrder/<field>: [...]`` orders the merged list: the elements it names in its
  order, the original's unnamed elements placed by their original position as above. Every
  element of the patch list must appear in it, in the same relative order.

Where upstream's order depends on how Go updates the original list in place (with
``$setElementOrder``, an addition takes the place a deletion freed in the original), or on its
comparator calling an element missing from the order list smaller than any, this follows it.
Where it depends on Go's random map order (a list both extended and reduced with
``$deleteFromPrimitiveList`` in one patch), the patch's key order decides.

Any other ``$``-key is an ordinary (unknown) field, pruned later like one. A malformed patch is
refused with :class:`BadRequestError` (400), except a list of lists (422, as upstream answers);
upstream reports the rest as internal errors (500), which is not worth copying.
"""

from __future__ import annotations

from typing import Any, Final, NamedTuple

from engenho.registry.copying import deep_copy
from engenho.registry.errors import BadRequestError, InvalidError
from engenho.schema import (
    Definition,
    TypeKind,
    TypeSpec,
    UnknownResourceError,
    definition,
)

__all__ = ["strategic_merge"]

_PATCH: Final = "$patch"
_RETAIN_KEYS: Final = "$retainKeys"
_DELETE_FROM: Final = "$deleteFromPrimitiveList"
_SET_ORDER: Final = "$setElementOrder"

_Schema = Definition | TypeSpec | None


class _Marker:
    """A sentinel: a key that is absent, or a value that is dropped."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


_MISSING: Final = _Marker("MISSING")
_DROP: Final = _Marker("DROP")


class _Meta(NamedTuple):
    """What the schema says about one field: its list or map strategy, merge key and type."""

    strategy: str  # "merge", "replace" or "" (retainKeys only steers patch generation)
    merge_key: str
    spec: TypeSpec | None


def _refuse(message: str) -> BadRequestError:
    return BadRequestError(f"invalid strategic merge patch: {message}")


def strategic_merge(original: dict[str, Any], patch: Any, definition: Definition) -> dict[str, Any]:
    """The result of applying ``patch`` to ``original`` (neither is modified)."""
    if not isinstance(patch, dict):
        raise _refuse("the patch must be a JSON object")
    return _merge_map(deep_copy(original), deep_copy(patch), definition)


# Schema lookups


def _meta(schema: _Schema, name: str) -> _Meta:
    if isinstance(schema, Definition):
        field = schema.field(name)
        if field is None:
            return _Meta("", "", None)
        return _Meta(_strategy(field.patch_strategy), field.patch_merge_key, field.type)
    if isinstance(schema, TypeSpec) and schema.kind is TypeKind.MAP:
        return _Meta("", "", schema.items)
    return _Meta("", "", None)


def _strategy(declared: str) -> str:
    parts = declared.split(",")
    if len(parts) == 1:
        return "" if parts[0] == "retainKeys" else parts[0]
    if len(parts) == 2 and "retainKeys" in parts:
        return parts[1] if parts[0] == "retainKeys" else parts[0]
    raise _refuse(f"unexpected patch strategy: {declared}")


def _object_schema(spec: TypeSpec | None) -> _Schema:
    """What describes a map value of this type: an object definition or a map's TypeSpec."""
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


def _item_schema(spec: TypeSpec | None) -> _Schema:
    """What describes the elements of a list of this type."""
    if spec is None or spec.kind is not TypeKind.ARRAY:
        return None
    return _object_schema(spec.items)


# Values taken from the patch


def _decoded(value: Any) -> Any:
    """A value as the typed decoder keeps it: without null members."""
    if isinstance(value, dict):
        return {key: _decoded(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [_decoded(item) for item in value]
    return value


def _without_directives(value: Any) -> Any:
    """A new value from the patch: nulls discarded, maps holding ``$patch`` dropped."""
    if isinstance(value, dict):
        if _PATCH in value:
            return _DROP
        kept = {key: _without_directives(item) for key, item in value.items() if item is not None}
        return {key: item for key, item in kept.items() if item is not _DROP}
    if isinstance(value, list):
        return [kept for item in value if (kept := _without_directives(item)) is not _DROP]
    return value


def _same(left: Any, right: Any) -> bool:
    """JSON equality as Go compares decoded values: 1, 1.0 and true are all different."""
    return type(left) is type(right) and bool(left == right)


def _directive_target(key: str, prefix: str, problem: str) -> str:
    """The field a ``<prefix>/<field>`` key names."""
    head, slash, field = key.partition("/")
    if not slash or head != prefix:
        raise _refuse(problem)
    return field


# Maps


def _merge_map(original: dict[str, Any], patch: dict[str, Any], schema: _Schema) -> dict[str, Any]:
    """Merge ``patch`` into ``original`` (both ours to change) and return the result."""
    if _PATCH in patch:
        directive = patch[_PATCH]
        if directive == "replace":
            replaced: dict[str, Any] = _decoded(patch)
            del replaced[_PATCH]
            return replaced
        if directive == "delete":
            return {}
        raise _refuse(f"unknown patch type: {directive} in map: {patch}")
    _retain_keys(original, patch)
    _set_element_orders(original, patch, schema)
    for key, value in patch.items():
        name, deleting = key, False
        if key.startswith(_DELETE_FROM):
            name = _directive_target(key, _DELETE_FROM, "invalid patch format of primitive list")
            deleting = True
        if value is None:
            original.pop(name, None)
            continue
        current = original.get(name, _MISSING)
        if type(current) is not type(value):
            if not deleting:
                kept = _without_directives(value)
                if kept is _DROP:
                    original.pop(name, None)
                else:
                    original[name] = kept
            continue
        if isinstance(value, dict):
            meta = _meta(schema, name)
            if meta.strategy == "replace":
                original[name] = _decoded(value)
            else:
                original[name] = _merge_map(current, value, _object_schema(meta.spec))
        elif isinstance(value, list):
            original[name] = _merge_list_field(current, value, _meta(schema, name), deleting)
        else:
            original[name] = value
    return original


def _retain_keys(original: dict[str, Any], patch: dict[str, Any]) -> None:
    """``$retainKeys``: drop the original's keys not listed; refuse a patch setting others."""
    if _RETAIN_KEYS not in patch:
        return
    retained = patch.pop(_RETAIN_KEYS)
    if not isinstance(retained, list):
        raise _refuse("invalid patch format of retainKeys: $retainKeys must be a list")
    for key, value in patch.items():
        if value is None or key.startswith((_DELETE_FROM, _SET_ORDER)):
            continue
        if key not in retained:
            raise _refuse(f"invalid patch format of retainKeys: {key} is not in $retainKeys")
    for key in [key for key in original if key not in retained]:
        del original[key]


def _set_element_orders(original: dict[str, Any], patch: dict[str, Any], schema: _Schema) -> None:
    """Merge each list that has a ``$setElementOrder`` and put it in that order."""
    for key in [key for key in patch if key.startswith(_SET_ORDER)]:
        order = patch.pop(key)
        problem = "invalid patch format of setElementOrder list"
        if not isinstance(order, list):
            raise _refuse(f"{problem}: {key} must be a list")
        name = _directive_target(key, _SET_ORDER, problem)
        current = original.get(name, _MISSING)
        given = patch.get(name, _MISSING)
        if current is not _MISSING and not isinstance(current, list):
            raise _refuse(f"{problem}: {name} is not a list")
        if given is not _MISSING and not isinstance(given, list):
            raise _refuse(f"{problem}: {name} in the patch is not a list")
        meta = _meta(schema, name)
        _check_order(given if isinstance(given, list) else [], order, meta.merge_key)
        if isinstance(current, list) and isinstance(given, list):
            merged = _merge_list_field(current, given, meta, deleting=False)
        elif isinstance(current, list):
            merged = current
        elif isinstance(given, list):
            merged = _without_directives(given)
        else:
            continue
        previous = current if isinstance(current, list) else []
        kind = _element_kind(previous, given if isinstance(given, list) else [])
        if kind is not None:
            named, others = _partition(merged, order, meta.merge_key)
            merged = _normalize(named, others, order, previous, meta.merge_key, kind)
        elif isinstance(given, list):
            # Upstream cannot order a list without elements. An empty original list alone is
            # let through: upstream's copy of the object omits empty lists.
            raise _refuse(f"{problem}: no elements in any of the given slices")
        original[name] = merged
        patch.pop(name, None)


def _check_order(given: list[Any], order: list[Any], merge_key: str) -> None:
    """The patch list's elements appear in the order list, in the same relative order."""
    if not given or not order:
        return
    if merge_key:
        for item in given:
            if not isinstance(item, dict):
                raise _refuse(f"list elements merged by {merge_key} must be objects, got {item!r}")
        items = [item for item in given if item.get(_PATCH) != "delete"]
    else:
        items = given
    at, position = 0, 0
    while at < len(items) and position < len(order):
        if isinstance(items[at], dict) and _PATCH in items[at]:
            at += 1
            continue
        if _key_equal(items[at], order[position], merge_key):
            at += 1
        position += 1
    if at < len(items):
        raise _refuse(
            f"the order in the patch list {given} doesn't match the $setElementOrder list {order}"
        )


def _key_equal(left: Any, right: Any, merge_key: str) -> bool:
    if not merge_key:
        return _same(left, right)
    for item in (left, right):
        if not isinstance(item, dict):
            raise _refuse(f"list elements merged by {merge_key} must be objects, got {item!r}")
        if merge_key not in item:
            raise _missing_key(item, merge_key)
    return _same(left[merge_key], right[merge_key])


def _missing_key(item: Any, merge_key: str) -> BadRequestError:
    return _refuse(f"map: {item} does not contain declared merge key: {merge_key}")


# Lists


def _merge_list_field(current: list[Any], given: list[Any], meta: _Meta, deleting: bool) -> Any:
    if meta.strategy == "merge" or deleting:
        return _merge_list(current, given, meta.merge_key, _item_schema(meta.spec), deleting)
    return _decoded(given)


def _merge_list(
    original: list[Any], patch: list[Any], merge_key: str, item_schema: _Schema, deleting: bool
) -> list[Any]:
    """The merged list. Upstream merges in the original's own array, and a caller ordering by
    the original afterwards (``$setElementOrder``) sees what that did to it; ``original``
    plays that array here: deletions shift its elements left, additions fill the places
    freed at its end, and a list of scalars merged with nothing is deduplicated in it."""
    if not original and not patch:
        return original
    kind = _element_kind(original, patch)
    if kind is None:
        return original
    if kind is not dict:
        if deleting:
            return [item for item in original if not _contains(patch, item)]
        # With nothing to add upstream deduplicates the original's own array.
        merged = _unique(original + patch) if patch else original[: _deduplicate_in_place(original)]
        named, others = _partition(merged, patch, merge_key)
        return _normalize(named, others, patch, original, merge_key, kind)
    if not merge_key:
        raise _refuse("cannot merge lists of objects without a merge key")
    kept, length, replace = _list_directives(original, patch, merge_key)
    if replace:
        ordered = _normalize([], kept, [], kept, merge_key, kind)
        return [_decoded(item) for item in ordered]
    remaining = original[:length]
    merged = _merge_by_key(original, length, kept, merge_key, item_schema)
    named, others = _partition(merged, kept, merge_key)
    ordered = _normalize(named, others, kept, remaining, merge_key, kind)
    added = {id(item) for item in kept}
    return [_decoded(item) if id(item) in added else item for item in ordered]


def _element_kind(*lists: list[Any]) -> type | None:
    """The one JSON type of every element (dict for objects); None when there are none."""
    kind: type | None = None
    for items in lists:
        for item in items:
            if kind is None and isinstance(item, list):
                raise InvalidError("lists of lists are not supported")
            if item is None or (kind is not None and type(item) is not kind):
                raise _refuse(f"list element types are not identical: {list(lists)}")
            kind = type(item)
    return kind


def _contains(items: list[Any], wanted: Any) -> bool:
    return any(_same(item, wanted) for item in items)


def _unique(items: list[Any]) -> list[Any]:
    seen: set[tuple[type, Any]] = set()
    kept = []
    for item in items:
        if (type(item), item) not in seen:
            seen.add((type(item), item))
            kept.append(item)
    return kept


def _deduplicate_in_place(items: list[Any]) -> int:
    """Upstream's deduplication: a later duplicate is overwritten by the last element. The
    unique elements end up first; returns their count."""
    last = len(items) - 1
    i = 0
    while i < last:
        j = i + 1
        while j <= last:
            if _same(items[i], items[j]):
                items[j] = items[last]
                last -= 1
                j -= 1
            j += 1
        i += 1
    return last + 1


def _list_directives(
    original: list[Any], patch: list[Any], merge_key: str
) -> tuple[list[Any], int, bool]:
    """Apply the ``$patch`` elements: the others, the original's remaining length (the
    deleted elements' places closed up in ``original``) and whether to replace the list."""
    kept = []
    length = len(original)
    replace = False
    for item in patch:
        if _PATCH not in item:
            kept.append(item)
            continue
        directive = item[_PATCH]
        if directive == "delete":
            if merge_key not in item:
                raise _missing_key(item, merge_key)
            while (position := _find(original[:length], merge_key, item[merge_key])) is not None:
                original[position : length - 1] = original[position + 1 : length]
                length -= 1
        elif directive == "replace":
            replace = True
        elif directive == "merge":
            raise _refuse("merging lists cannot yet be specified in the patch")
        else:
            raise _refuse(f"unknown patch type: {directive} in map: {item}")
    return kept, length, replace


def _merge_by_key(
    original: list[Any], length: int, patch: list[Any], merge_key: str, item_schema: _Schema
) -> list[Any]:
    """Merge each element into the first of ``original[:length]`` with its key, or add it:
    in ``original``'s free places while there are some, then in a new list."""
    merged = original
    for item in patch:
        if merge_key not in item:
            raise _missing_key(item, merge_key)
        position = _find(merged[:length], merge_key, item[merge_key])
        if position is not None:
            merged[position] = _merge_map(merged[position], item, item_schema)
        elif length < len(merged):
            merged[length] = item
            length += 1
        else:
            merged = [*merged[:length], item]
            length += 1
    return merged[:length]


def _find(items: list[Any], merge_key: str, value: Any) -> int | None:
    """The position of the first object whose merge key has ``value``."""
    for position, item in enumerate(items):
        if not isinstance(item, dict):
            raise _refuse(f"list elements merged by {merge_key} must be objects, got {item!r}")
        if merge_key in item and _same(item[merge_key], value):
            return position
    return None


# Order


def _partition(items: list[Any], by: list[Any], merge_key: str) -> tuple[list[Any], list[Any]]:
    """The elements named in ``by`` and the others, each in their order in ``items``."""
    named: list[Any] = []
    others: list[Any] = []
    for item in items:
        if merge_key:
            if not isinstance(item, dict):
                raise _refuse(f"list elements merged by {merge_key} must be objects, got {item!r}")
            if merge_key not in item:
                raise _missing_key(item, merge_key)
            found = _find(by, merge_key, item[merge_key]) is not None
        else:
            found = _contains(by, item)
        (named if found else others).append(item)
    return named, others


def _normalize(
    named: list[Any],
    others: list[Any],
    named_order: list[Any],
    original: list[Any],
    merge_key: str,
    kind: type,
) -> list[Any]:
    """``named`` sorted by ``named_order``, ``others`` by ``original``, then interleaved."""
    sorted_named = _sorted(named, named_order, merge_key, kind)
    sorted_others = _sorted(others, original, merge_key, kind)
    merged: list[Any] = []
    i = j = 0
    while i < len(sorted_others) and j < len(sorted_named):
        left = _index(original, sorted_others[i], merge_key, kind)
        right = _index(original, sorted_named[j], merge_key, kind)
        if 0 <= left < right:
            merged.append(sorted_others[i])
            i += 1
        else:
            merged.append(sorted_named[j])
            j += 1
    return merged + sorted_others[i:] + sorted_named[j:]


def _sorted(items: list[Any], order: list[Any], merge_key: str, kind: type) -> list[Any]:
    """Stably sorted by position in ``order``; ``$patch: delete`` elements last."""
    if kind is dict:
        for item in [*items, *order]:
            if not isinstance(item, dict):
                raise _refuse(f"list elements merged by {merge_key} must be objects, got {item!r}")
            if merge_key not in item:
                raise _missing_key(item, merge_key)
    deleted = [item for item in items if kind is dict and item.get(_PATCH) == "delete"]
    kept = [item for item in items if not (kind is dict and item.get(_PATCH) == "delete")]
    ranked = [(_index(order, item, merge_key, kind), item) for item in kept]
    if all(position >= 0 for position, _ in ranked):
        ranked.sort(key=lambda pair: pair[0])
    else:
        # Upstream's comparator calls an element that ``order`` lacks smaller than any other,
        # and smaller than it; Go's stable sort settles that by insertion sort (exactly so
        # for lists of up to 20 elements, which it sorts in one block).
        for end in range(1, len(ranked)):
            at = end
            while at > 0 and _before(ranked[at][0], ranked[at - 1][0]):
                ranked[at - 1], ranked[at] = ranked[at], ranked[at - 1]
                at -= 1
    return [item for _, item in ranked] + deleted


def _before(left: int, right: int) -> bool:
    return left < right if left >= 0 and right >= 0 else True


def _index(items: list[Any], wanted: Any, merge_key: str, kind: type) -> int:
    """The first position of ``wanted`` in ``items`` (by merge key for objects), or -1."""
    if kind is dict:
        key = wanted.get(merge_key) if isinstance(wanted, dict) else None
        for position, item in enumerate(items):
            if _same(item.get(merge_key) if isinstance(item, dict) else None, key):
                return position
        return -1
    for position, item in enumerate(items):
        if _same(item, wanted):
            return position
    return -1
