"""``metadata.managedFields``: who owns which fields, and server-side apply over it.

Every write records ownership (contract §12):

- an **Update** (create, replace, patch) gives its manager every field it changed or added and
  takes them from everyone else; it never conflicts;
- an **Apply** declares the manager's whole intent: changing a field another manager owns is a
  conflict (409, one cause per field) unless forced, which moves the field; fields the manager
  applied before and no longer applies are removed from the object unless someone else still
  owns them; two managers applying the same value share the field.

Entry times are decided by the proposer (the request's time), so the log holds them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import orjson
from attrs import evolve, frozen

from engenho.registry.copying import deep_copy
from engenho.registry.errors import ConflictError, StatusCause
from engenho.registry.fieldsets import (
    FieldSet,
    Path,
    Shape,
    ShapeKind,
    decode_fields,
    element_key,
    encode_fields,
    field_set,
    field_values,
    format_path,
    is_missing,
    value_at,
)

__all__ = ["ManagedEntry", "apply_intent", "read_entries", "record_update", "write_entries"]

_Json = dict[str, Any]


@frozen
class ManagedEntry:
    manager: str
    operation: str
    """``Apply`` or ``Update``."""
    api_version: str
    time: str
    fields: FieldSet
    subresource: str = ""

    def to_json(self) -> _Json:
        row: _Json = {
            "manager": self.manager,
            "operation": self.operation,
            "apiVersion": self.api_version,
            "time": self.time,
            "fieldsType": "FieldsV1",
            "fieldsV1": encode_fields(self.fields),
        }
        if self.subresource:
            row["subresource"] = self.subresource
        return row

    def same_owner(self, manager: str, operation: str, subresource: str) -> bool:
        return (self.manager, self.operation, self.subresource) == (
            manager,
            operation,
            subresource,
        )


def read_entries(obj: _Json | None) -> list[ManagedEntry]:
    """The entries of an object's managedFields (malformed rows are skipped)."""
    if obj is None:
        return []
    rows = obj.get("metadata", {}).get("managedFields") or []
    entries = []
    for row in rows if isinstance(rows, list) else []:
        if not isinstance(row, dict) or row.get("fieldsType", "FieldsV1") != "FieldsV1":
            continue
        entries.append(
            ManagedEntry(
                manager=str(row.get("manager", "")),
                operation=str(row.get("operation", "Update")),
                api_version=str(row.get("apiVersion", "")),
                time=str(row.get("time", "")),
                fields=decode_fields(row.get("fieldsV1") or {}),
                subresource=str(row.get("subresource", "")),
            )
        )
    return entries


def write_entries(obj: _Json, entries: Iterable[ManagedEntry]) -> None:
    rows = [entry.to_json() for entry in entries if entry.fields]
    meta = obj.setdefault("metadata", {})
    if rows:
        meta["managedFields"] = rows
    else:
        meta.pop("managedFields", None)


def _containers(fields: Iterable[Path]) -> set[Path]:
    """Paths that are proper prefixes of others (owned as containers, compared by children)."""
    return {path[:i] for path in fields for i in range(1, len(path))}


def record_update(
    old: _Json | None,
    new: _Json,
    shape: Shape,
    *,
    manager: str,
    api_version: str,
    time: str,
    subresource: str = "",
) -> list[ManagedEntry]:
    """The managedFields after an Update by ``manager`` turned ``old`` into ``new``."""
    entries = read_entries(old)
    new_values = field_values(new, shape)
    old_values = field_values(old, shape) if old is not None else {}
    containers = _containers(new_values)
    changed = {
        path
        for path, value in new_values.items()
        if path not in old_values or (path not in containers and value != old_values[path])
    }
    removed = old_values.keys() - new_values.keys()
    result: list[ManagedEntry] = []
    mine: FieldSet = frozenset()
    for entry in entries:
        if entry.same_owner(manager, "Update", subresource):
            mine = entry.fields
            continue
        kept = entry.fields - changed - removed
        if kept:
            result.append(evolve(entry, fields=kept))
    owned = (mine | changed) - removed
    if owned:
        result.append(ManagedEntry(manager, "Update", api_version, time, owned, subresource))
    return result


def _merge(live: Any, applied: Any, shape: Shape) -> Any:
    """The applied configuration laid over the live object, by the schema's semantics."""
    if (
        shape.kind in (ShapeKind.STRUCT, ShapeKind.MAP)
        and isinstance(live, dict)
        and isinstance(applied, dict)
    ):
        result = dict(live)
        for key, value in applied.items():
            result[key] = _merge(live.get(key), value, shape.field(key))
        return result
    if shape.kind is ShapeKind.LIST_MAP and isinstance(live, list) and isinstance(applied, list):
        result_list = list(live)
        positions = {element_key(e, shape): i for i, e in enumerate(result_list)}
        for element in applied:
            key = element_key(element, shape)
            if key in positions:
                position = positions[key]
                result_list[position] = _merge(result_list[position], element, shape.element())
            else:
                positions[key] = len(result_list)
                result_list.append(deep_copy(element))
        return result_list
    if shape.kind is ShapeKind.SET and isinstance(live, list) and isinstance(applied, list):
        return [*live, *(item for item in applied if item not in live)]
    return deep_copy(applied)


def _remove(obj: Any, path: Path, shape: Shape) -> None:
    """Remove the field, element or member ``path`` names, if present."""
    parent, here = obj, shape
    for kind, name in path[:-1]:
        if kind == "f" and isinstance(parent, dict) and name in parent:
            parent, here = parent[name], here.field(name)
        elif kind == "k" and isinstance(parent, list):
            found = next(
                (e for e in parent if isinstance(e, dict) and element_key(e, here) == name),
                None,
            )
            if found is None:
                return
            parent, here = found, here.element()
        else:
            return
    kind, name = path[-1]
    if kind == "f" and isinstance(parent, dict):
        parent.pop(name, None)
    elif kind == "k" and isinstance(parent, list):
        parent[:] = [
            e for e in parent if not (isinstance(e, dict) and element_key(e, here) == name)
        ]
    elif kind == "v" and isinstance(parent, list):
        value = orjson.loads(name)
        parent[:] = [e for e in parent if e != value]


def apply_intent(
    live: _Json | None,
    applied: _Json,
    shape: Shape,
    *,
    manager: str,
    api_version: str,
    time: str,
    force: bool,
    subresource: str = "",
) -> tuple[_Json, list[ManagedEntry]]:
    """Server-side apply: the object after ``manager`` applies ``applied``, and the new
    managedFields. Raises :class:`ConflictError` listing every conflicting field."""
    applied_fields = field_set(applied, shape)
    if live is None:
        entry = ManagedEntry(manager, "Apply", api_version, time, applied_fields, subresource)
        return deep_copy(applied), [entry]
    entries = read_entries(live)
    containers = _containers(applied_fields)
    conflicts: dict[tuple[str, str], list[Path]] = defaultdict(list)
    for entry in entries:
        if entry.manager == manager:
            continue
        for path in sorted(applied_fields & entry.fields):
            if path in containers:
                continue
            if value_at(applied, path, shape) != value_at(live, path, shape):
                conflicts[(entry.manager, entry.api_version)].append(path)
    if conflicts and not force:
        raise _conflict_error(conflicts)
    taken = {path for paths in conflicts.values() for path in paths}
    others: list[ManagedEntry] = []
    previous: FieldSet = frozenset()
    for entry in entries:
        if entry.same_owner(manager, "Apply", subresource):
            previous = entry.fields
            continue
        kept = entry.fields - taken
        if kept:
            others.append(evolve(entry, fields=kept))
    result = _merge(deep_copy(live), applied, shape)
    owned_elsewhere = {path for entry in others for path in entry.fields}
    still_held = owned_elsewhere | _containers(owned_elsewhere)
    # Outermost first: removing an element removes its fields with it, while removing a key
    # field first would change the element's identity and strand it.
    for path in sorted(previous - applied_fields, key=len):
        if path not in still_held and not is_missing(value_at(result, path, shape)):
            _remove(result, path, shape)
    mine = ManagedEntry(manager, "Apply", api_version, time, applied_fields, subresource)
    return result, [*others, mine]


def _conflict_error(conflicts: dict[tuple[str, str], list[Path]]) -> ConflictError:
    total = sum(len(paths) for paths in conflicts.values())
    causes = [
        StatusCause(
            "FieldManagerConflict",
            f'conflict with "{manager}" using {api_version}',
            format_path(path),
        )
        for (manager, api_version), paths in conflicts.items()
        for path in paths
    ]
    if total == 1:
        ((manager, api_version), paths), *_ = conflicts.items()
        message = (
            f'Apply failed with 1 conflict: conflict with "{manager}" using {api_version}: '
            f"{format_path(paths[0])}"
        )
    else:
        parts = [
            f'conflicts with "{manager}" using {api_version}:\n'
            + "\n".join(f"- {format_path(path)}" for path in paths)
            for (manager, api_version), paths in conflicts.items()
        ]
        message = f"Apply failed with {total} conflicts: " + "\n".join(parts)
    return ConflictError(message, causes=causes)
