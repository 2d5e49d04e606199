"""Structural validation and unknown-field detection, compiled from the schema metadata.

Each definition compiles once into closures that know its fields' types, so checking a
request is a walk over the request's own keys with one dict lookup and one call per value:
no per-request interpretation of the schema, and no attrs objects on the hot path
(``benchmarks/bench_schema.py`` measures both). JSON ``null`` counts as absent, as Go's
decoder treats it; a required string that is empty counts as missing, as upstream's
validators do.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Callable
from typing import Any

from engenho.schema import causes as c
from engenho.schema.fieldpath import Key, Path, render
from engenho.schema.model import Definition, TypeKind, TypeSpec
from engenho.schema.quantity import is_quantity
from engenho.schema.registry import DEFINITIONS

__all__ = ["check_structure", "unknown_fields"]

# (value, parent path, key of the value in its parent, causes) -> None
_Checker = Callable[[Any, Path, "str | int", list[c.Cause]], None]

_INT_RANGES = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}
# Required fields that upstream accepts empty: the OpenAPI marks them required because Go
# always writes them, and no validator checks them. The kubelet reports a container that has
# not started yet with ``imageID: ""``.
_EMPTY_ALLOWED = frozenset({("io.k8s.api.core.v1.ContainerStatus", "imageID")})
_DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})")
_QUANTITY_DETAIL = (
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
)


def _type_error(expected: str) -> _Checker:
    detail = f"must be of type {expected}"

    def report(value: Any, parent: Path, key: str | int, causes: list[c.Cause]) -> None:
        causes.append(c.type_invalid(render((parent, key)), value, detail))

    return report


class _Compiler:
    def __init__(self) -> None:
        self._objects: dict[str, _Checker] = {}

    def object_checker(self, name: str) -> _Checker:
        checker = self._objects.get(name)
        if checker is None:
            checker = self._compile_object(DEFINITIONS[name])
        return checker

    def _compile_object(self, definition: Definition) -> _Checker:
        # Most fields are checked inline rather than by a call: a Python type (plain strings,
        # booleans) is a type test, a frozenset (enums) a membership test, a range (int32 and
        # int64) a type and range test. Everything else is a compiled checker function.
        fields: dict[str, _Checker | type | frozenset[str] | range] = {}
        required: list[str] = []
        empty_allowed = {f for d, f in _EMPTY_ALLOWED if d == definition.name}
        wrong = _type_error("object")

        def check(value: Any, parent: Path, key: str | int, causes: list[c.Cause]) -> None:
            if type(value) is not dict:
                wrong(value, parent, key, causes)
                return
            here = (parent, key)
            get = fields.get
            for name, item in value.items():
                entry = get(name)
                if entry is None or item is None:
                    continue
                kind = type(entry)
                if kind is type:
                    if type(item) is not entry:
                        _TYPE_ERRORS[entry](item, here, name, causes)  # type: ignore[index]
                elif kind is frozenset:
                    if item not in entry and item != "":  # type: ignore[operator]
                        _enum_error(definition, name, item, here, causes)
                elif kind is range:
                    if type(item) is not int or item not in entry:  # type: ignore[operator]
                        _int_error(entry, item, here, name, causes)  # type: ignore[arg-type]
                else:
                    entry(item, here, name, causes)  # type: ignore[operator]
            if required:
                for name in required:
                    item = value.get(name)
                    if item is None or (item == "" and name not in empty_allowed):
                        causes.append(c.required(render((here, name))))

        # Registered before the fields compile, so a recursive schema would terminate.
        self._objects[definition.name] = check
        for field in definition.fields:
            spec = field.type
            if _plain_string(spec):
                fields[field.name] = str
            elif spec.kind is TypeKind.BOOLEAN:
                fields[field.name] = bool
            elif spec.kind is TypeKind.STRING and spec.enum and not spec.format:
                fields[field.name] = frozenset(spec.enum)
            elif spec.kind is TypeKind.INTEGER:
                low, high = _INT_RANGES.get(spec.format, _INT_RANGES["int64"])
                fields[field.name] = range(low, high + 1)
            else:
                fields[field.name] = self._compile(spec)
            if field.required:
                required.append(field.name)
        return check

    def _compile(self, spec: TypeSpec) -> _Checker:
        kind = spec.kind
        if kind is TypeKind.OBJECT:
            existing = self._objects.get(spec.ref)
            return existing if existing is not None else self._lazy_object(spec.ref)
        if kind is TypeKind.ARRAY:
            assert spec.items is not None
            if _plain_string(spec.items):
                return _string_array()
            return _array(self._compile(spec.items))
        if kind is TypeKind.MAP:
            assert spec.items is not None
            if _plain_string(spec.items):
                return _string_map()
            return _map(self._compile(spec.items))
        if kind is TypeKind.STRING:
            return _string(spec)
        if kind is TypeKind.INTEGER:
            return _integer(spec)
        if kind is TypeKind.BOOLEAN:
            return _typed(bool, "boolean")
        if kind is TypeKind.NUMBER:
            return _number()
        if kind is TypeKind.INT_OR_STRING:
            return _int_or_string()
        if kind is TypeKind.QUANTITY:
            return _quantity()
        return _anything

    def _lazy_object(self, ref: str) -> _Checker:
        """Compile ``ref`` now; the schema has no cycles, so this always terminates."""
        return self._compile_object(DEFINITIONS[ref])


_TYPE_ERRORS: dict[type, _Checker] = {str: _type_error("string"), bool: _type_error("boolean")}
_WRONG_INTEGER = _type_error("integer")
_WRONG_STRING = _TYPE_ERRORS[str]


def _enum_error(
    definition: Definition, name: str, value: Any, here: Path, causes: list[c.Cause]
) -> None:
    if type(value) is not str:
        _WRONG_STRING(value, here, name, causes)
        return
    field = definition.field(name)
    supported = field.type.enum if field is not None else ()
    causes.append(c.not_supported(render((here, name)), value, supported))


def _int_error(bounds: range, value: Any, here: Path, name: str, causes: list[c.Cause]) -> None:
    if type(value) is not int:
        _WRONG_INTEGER(value, here, name, causes)
        return
    bits = 32 if bounds.stop == 2**31 else 64
    detail = f"must fit in a {bits}-bit signed integer"
    causes.append(c.invalid(render((here, name)), value, detail))


def _anything(value: Any, parent: Path, key: str | int, causes: list[c.Cause]) -> None:
    return None


def _typed(python_type: type, name: str) -> _Checker:
    wrong = _type_error(name)

    def check(value: Any, parent: Path, key: str | int, causes: list[c.Cause]) -> None:
        if type(value) is not python_type:
            wrong(value, parent, key, causes)

    return check


def _string(spec: TypeSpec) -> _Checker:
    wrong = _type_error("string")
    allowed = frozenset(spec.enum)
    supported = spec.enum
    # A $ref to a named scalar (meta.v1.Time) carries its format on the definition.
    fmt = spec.format or (DEFINITIONS[spec.ref].format if spec.ref else "")

    if allowed:

        def check_enum(value: Any, parent: Path, key: str | int, causes: list[c.Cause]) -> None:
            if type(value) is not str:
                wrong(value, parent, key, causes)
            elif value not in allowed and value != "":
                causes.append(c.not_supported(render((parent, key)), value, supported))

        return check_enum
    if fmt == "date-time":

        def check_time(value: Any, parent: Path, key: str | int, causes: list[c.Cause]) -> None:
            if type(value) is not str:
                wrong(value, parent, key, causes)
            elif _DATE_TIME.fullmatch(value) is None:
                detail = "must be an RFC 3339 date-time (2006-01-02T15:04:05Z)"
                causes.append(c.invalid(render((parent, key)), value, detail))

        return check_time
    if fmt == "byte":

        def check_bytes(value: Any, parent: Path, key: str | int, causes: list[c.Cause]) -> None:
            if type(value) is not str:
                wrong(value, parent, key, causes)
                return
            try:
                binascii.a2b_base64(value, strict_mode=True)
            except binascii.Error:
                detail = "must be base64-encoded bytes"
                causes.append(c.invalid(render((parent, key)), "<bytes>", detail))

        return check_bytes
    return _typed(str, "string")


def _integer(spec: TypeSpec) -> _Checker:
    wrong = _type_error("integer")
    low, high = _INT_RANGES.get(spec.format, _INT_RANGES["int64"])
    bits = spec.format.removeprefix("int") or "64"

    def check(value: Any, parent: Path, key: str | int, causes: list[c.Cause]) -> None:
        if type(value) is not int:
            wrong(value, parent, key, causes)
        elif not low <= value <= high:
            detail = f"must fit in a {bits}-bit signed integer"
            causes.append(c.invalid(render((parent, key)), value, detail))

    return check


def _number() -> _Checker:
    wrong = _type_error("number")

    def check(value: Any, parent: Path, key: str | int, causes: list[c.Cause]) -> None:
        if type(value) is not int and type(value) is not float:
            wrong(value, parent, key, causes)

    return check


def _int_or_string() -> _Checker:
    wrong = _type_error("integer or string")

    def check(value: Any, parent: Path, key: str | int, causes: list[c.Cause]) -> None:
        if type(value) is not int and type(value) is not str:
            wrong(value, parent, key, causes)

    return check


def _quantity() -> _Checker:
    def check(value: Any, parent: Path, key: str | int, causes: list[c.Cause]) -> None:
        if not is_quantity(value):
            causes.append(c.invalid(render((parent, key)), value, _QUANTITY_DETAIL))

    return check


def _plain_string(spec: TypeSpec) -> bool:
    return spec.kind is TypeKind.STRING and not spec.enum and not spec.format and not spec.ref


def _string_array() -> _Checker:
    """``[]string`` (args, command, finalizers): the element type test inlined."""
    wrong, wrong_item = _type_error("array"), _type_error("string")

    def check(value: Any, parent: Path, key: str | int, causes: list[c.Cause]) -> None:
        if type(value) is not list:
            wrong(value, parent, key, causes)
            return
        for index, element in enumerate(value):
            if type(element) is not str:
                wrong_item(element, (parent, key), index, causes)

    return check


def _string_map() -> _Checker:
    """``map[string]string`` (labels, annotations, data): the value type test inlined."""
    wrong, wrong_item = _type_error("object"), _type_error("string")

    def check(value: Any, parent: Path, key: str | int, causes: list[c.Cause]) -> None:
        if type(value) is not dict:
            wrong(value, parent, key, causes)
            return
        for name, element in value.items():
            if type(element) is not str and element is not None:
                wrong_item(element, (parent, key), Key(name), causes)

    return check


def _array(item: _Checker) -> _Checker:
    wrong = _type_error("array")

    def check(value: Any, parent: Path, key: str | int, causes: list[c.Cause]) -> None:
        if type(value) is not list:
            wrong(value, parent, key, causes)
            return
        here = (parent, key)
        for index, element in enumerate(value):
            item(element, here, index, causes)

    return check


def _map(item: _Checker) -> _Checker:
    wrong = _type_error("object")

    def check(value: Any, parent: Path, key: str | int, causes: list[c.Cause]) -> None:
        if type(value) is not dict:
            wrong(value, parent, key, causes)
            return
        here = (parent, key)
        for name, element in value.items():
            if element is not None:
                item(element, here, Key(name), causes)

    return check


_COMPILER = _Compiler()
_ROOT = ""  # the key of the root object: render() drops empty segments


def check_structure(obj: dict[str, Any], definition: str) -> list[c.Cause]:
    """Type, enum, format and required-field findings for ``obj`` against ``definition``."""
    causes: list[c.Cause] = []
    _COMPILER.object_checker(definition)(obj, None, _ROOT, causes)
    return causes


def unknown_fields(obj: dict[str, Any], definition: str, *, prune: bool = False) -> list[str]:
    """Paths of fields the schema does not know (``spec.foo``), in document order.

    With ``prune=True`` they are also deleted from ``obj``, as upstream's decoder drops them
    under ``fieldValidation=Ignore`` or ``Warn``. Values of the wrong type are not descended.
    """
    found: list[str] = []
    _walk_unknown(obj, DEFINITIONS[definition], None, found, prune)
    return found


def _walk_unknown(
    obj: dict[str, Any], definition: Definition, here: Path, found: list[str], prune: bool
) -> None:
    by_name = _fields_by_name(definition)
    for key in list(obj):
        field = by_name.get(key)
        if field is None:
            found.append(render((here, key)))
            if prune:
                del obj[key]
            continue
        _walk_value(obj[key], field.type, (here, key), found, prune)


def _walk_value(value: Any, spec: TypeSpec, here: Path, found: list[str], prune: bool) -> None:
    if spec.kind is TypeKind.OBJECT and type(value) is dict:
        _walk_unknown(value, DEFINITIONS[spec.ref], here, found, prune)
    elif spec.items is None or spec.items.kind not in _CONTAINERS:
        return
    elif spec.kind is TypeKind.ARRAY and type(value) is list:
        for index, element in enumerate(value):
            _walk_value(element, spec.items, (here, index), found, prune)
    elif spec.kind is TypeKind.MAP and type(value) is dict:
        for name, element in value.items():
            _walk_value(element, spec.items, (here, Key(name)), found, prune)


_CONTAINERS = (TypeKind.OBJECT, TypeKind.ARRAY, TypeKind.MAP)
_FIELDS: dict[str, dict[str, Any]] = {}


def _fields_by_name(definition: Definition) -> dict[str, Any]:
    cached = _FIELDS.get(definition.name)
    if cached is None:
        cached = _FIELDS[definition.name] = {f.name: f for f in definition.fields}
    return cached
