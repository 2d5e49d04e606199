"""Emit the typed models: one module of frozen, slotted attrs classes per group-version.

Attributes are snake_case and every one records its wire name in ``metadata["wire"]``; the
explicit converter (:mod:`engenho.schema.converter`) renames by it. Required fields have no
default; optional ones default to ``None`` (absent), so unstructuring omits them and
round-trips are exact. The spec's default, where it has one, is in ``metadata["default"]``
and applied by :func:`engenho.schema.default` on the dict path.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping

from engenho.schema.codegen.naming import enum_member_name, pascal_case
from engenho.schema.codegen.source import docstring, header, literal
from engenho.schema.model import Definition, FieldSchema, TypeKind, TypeSpec

__all__ = ["emit_models"]

_SCALARS = {
    TypeKind.STRING: "str",
    TypeKind.INTEGER: "int",
    TypeKind.NUMBER: "float",
    TypeKind.BOOLEAN: "bool",
    TypeKind.INT_OR_STRING: "IntOrString",
    TypeKind.QUANTITY: "Quantity",
    TypeKind.ANY: "JsonObject",
}
_TIMES = {
    "io.k8s.apimachinery.pkg.apis.meta.v1.Time": "Time",
    "io.k8s.apimachinery.pkg.apis.meta.v1.MicroTime": "MicroTime",
}


class _Module:
    """Source of one models module, built up class by class."""

    def __init__(self, name: str, definitions: Mapping[str, Definition]) -> None:
        self.name = name
        self.definitions = definitions
        self.imports: set[str] = set()
        self.wire_names: set[str] = set()
        self.enums: dict[tuple[str, str], str] = {}  # (class, field) -> enum class name

    def annotation(self, spec: TypeSpec, owner: str, field: str) -> str:
        if spec.kind is TypeKind.OBJECT:
            target = self.definitions[spec.ref]
            if target.module == self.name:
                return target.class_name
            self.imports.add(target.module)
            return f"{target.module}.{target.class_name}"
        if spec.kind is TypeKind.ARRAY:
            assert spec.items is not None
            return f"tuple[{self.annotation(spec.items, owner, field)}, ...]"
        if spec.kind is TypeKind.MAP:
            assert spec.items is not None
            return f"Mapping[str, {self.annotation(spec.items, owner, field)}]"
        if spec.ref in _TIMES:
            self.wire_names.add(_TIMES[spec.ref])
            return _TIMES[spec.ref]
        if spec.enum:
            return self.enums[(owner, field)]
        name = _SCALARS[spec.kind]
        if name in ("IntOrString", "JsonObject"):
            self.wire_names.add(name)
        return name


def _enum_spec(spec: TypeSpec) -> TypeSpec | None:
    while spec.kind in (TypeKind.ARRAY, TypeKind.MAP) and spec.items is not None:
        spec = spec.items
    return spec if spec.enum else None


def _name_enums(definitions: list[Definition]) -> dict[tuple[str, str], str]:
    """Name each enum after its field, prefixed by the class when field names clash."""
    by_field: dict[str, set[tuple[str, ...]]] = defaultdict(set)
    owners: list[tuple[str, str, tuple[str, ...]]] = []
    for definition in definitions:
        for field in definition.fields:
            spec = _enum_spec(field.type)
            if spec is not None:
                by_field[field.name].add(spec.enum)
                owners.append((definition.class_name, field.name, spec.enum))
    classes = {d.class_name for d in definitions}
    names: dict[tuple[str, str], str] = {}
    for owner, field_name, _values in owners:
        plain = pascal_case(field_name)
        unique = len(by_field[field_name]) == 1 and plain not in classes
        names[(owner, field_name)] = plain if unique else owner + plain
    return names


def _topological(definitions: list[Definition], module: str) -> list[Definition]:
    """Classes ordered so each one's same-module dependencies come first (names break ties)."""
    by_name = {d.name: d for d in definitions}
    ordered: list[Definition] = []
    done: set[str] = set()

    def refs(spec: TypeSpec) -> list[str]:
        if spec.items is not None:
            return refs(spec.items)
        return [spec.ref] if spec.ref in by_name else []

    def visit(definition: Definition) -> None:
        if definition.name in done:
            return
        done.add(definition.name)
        for field in definition.fields:
            for ref in refs(field.type):
                visit(by_name[ref])
        ordered.append(definition)

    for definition in sorted(definitions, key=lambda d: d.class_name):
        visit(definition)
    assert all(d.module == module for d in ordered)
    return ordered


def _field_line(module: _Module, owner: str, field: FieldSchema) -> str:
    annotation = module.annotation(field.type, owner, field.name)
    metadata = f'{{"wire": {literal(field.name)}'
    if field.has_default:
        metadata += f', "default": {literal(field.default_json)}'
    metadata += "}"
    if field.required:
        return f"    {field.attr}: {annotation} = attrs.field(metadata={metadata})"
    return f"    {field.attr}: {annotation} | None = attrs.field(default=None, metadata={metadata})"


def _emit_class(module: _Module, definition: Definition) -> str:
    lines = ["@attrs.frozen(kw_only=True)", f"class {definition.class_name}:"]
    lines.append(docstring(definition.description, "    "))
    lines.append("")
    ordered = sorted(definition.fields, key=lambda f: (not f.required, f.attr))
    for field in ordered:
        line = _field_line(module, definition.class_name, field)
        if len(line) > 100:
            # Wrap the field() call the way a formatter would.
            head, _, call = line.partition(" = attrs.field(")
            line = f"{head} = attrs.field(\n        {call[:-1]}\n    )"
        lines.append(line)
    if not ordered:
        lines.append("    pass")
    return "\n".join(lines)


def _emit_enum(name: str, values: tuple[str, ...]) -> str:
    lines = [f"class {name}(enum.StrEnum):"]
    members = [(enum_member_name(value), value) for value in values]
    if len({m for m, _ in members}) != len(members):
        raise ValueError(f"enum {name}: member names collide: {members}")
    lines += [f"    {member} = {literal(value)}" for member, value in members]
    return "\n".join(lines)


def emit_models(
    module_name: str,
    definitions: list[Definition],
    all_definitions: Mapping[str, Definition],
    digests: Mapping[str, str],
) -> str:
    """Source of ``engenho/schema/generated/models/<module_name>.py``."""
    classes = [d for d in definitions if d.kind is TypeKind.OBJECT]
    module = _Module(module_name, all_definitions)
    module.enums = _name_enums(classes)
    enum_values: dict[str, tuple[str, ...]] = {}
    for definition in classes:
        for field in definition.fields:
            spec = _enum_spec(field.type)
            if spec is not None:
                enum_values[module.enums[(definition.class_name, field.name)]] = spec.enum
    body = [_emit_class(module, d) for d in _topological(classes, module_name)]
    enums = [_emit_enum(name, values) for name, values in sorted(enum_values.items())]
    sources = [(d.source, digests[d.source]) for d in classes]
    group_version = module_name.replace("_", "/")
    parts = [
        header(sources, f"Typed models of {group_version}, generated from the OpenAPI schemas.")
    ]
    imports = ["from __future__ import annotations", ""]
    if enums:
        imports.append("import enum")
    if any("Mapping[" in text for text in body):
        imports.append("from collections.abc import Mapping")
    imports += ["", "import attrs", ""]
    if module.imports:
        others = ", ".join(sorted(module.imports))
        imports.append(f"from engenho.schema.generated.models import {others}")
    if any("Quantity" in text for text in body):
        imports.append("from engenho.schema.quantity import Quantity")
    if module.wire_names:
        imports.append(f"from engenho.schema.wire import {', '.join(sorted(module.wire_names))}")
    names = sorted([d.class_name for d in classes] + list(enum_values))
    exported = "__all__ = [\n" + "".join(f"    {literal(n)},\n" for n in names) + "]"
    parts[0] += "\n" + "\n".join(imports).rstrip("\n") + "\n\n" + exported
    parts.extend(enums)
    parts.extend(body)
    return "\n\n\n".join(parts) + "\n"
