"""Explicit cattrs converters for configuration documents.

Strict on purpose: a string is never read as a number, a number never as a string, a list
never as a string's characters, and an unknown key is refused. Keys are spelled per document
(kebab-case in a ClusterConfig, snake_case in an EngenhoConfig); paths in problems use the same
spelling. Addresses, networks, port ranges, listen addresses and paths are written as strings.
"""

from __future__ import annotations

import copy
import enum
import functools
import math
import operator
import types
import typing
from collections.abc import Callable, Mapping
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from pathlib import Path, PurePath
from typing import Any, TypeVar

import attrs
from cattrs import Converter
from cattrs.errors import (
    BaseValidationError,
    ClassValidationError,
    ForbiddenExtraKeysError,
    IterableValidationError,
    IterableValidationNote,
)
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from engenho.config.errors import InvalidConfigError
from engenho.config.networks import (
    VALUE_TYPES,
    IPAddress,
    IPNetwork,
    ListenAddress,
    PortRange,
    parse_address,
    parse_network,
)
from engenho.config.problems import Problem, join_path

__all__ = [
    "KeyStyle",
    "kebab_case",
    "make_converter",
    "problems_from_structuring",
    "snake_case",
    "structure_document",
]

T = TypeVar("T")
_UNKNOWN_FIELD = "unknown field"
KeyStyle = Callable[[str], str]
"""Maps an attribute name to its key in the document."""


def kebab_case(name: str) -> str:
    return name.replace("_", "-")


def snake_case(name: str) -> str:
    return name


def make_converter(key: KeyStyle) -> Converter:
    converter = Converter(forbid_extra_keys=True, detailed_validation=True)
    _register_scalars(converter)
    _register_values(converter)
    _register_containers(converter)
    _register_records(converter, key)
    return converter


def structure_document(converter: Converter, document: object, cls: type[T], key: KeyStyle) -> T:
    """``document`` as a ``cls``, or InvalidConfigError listing every problem found."""
    if not isinstance(document, Mapping):
        raise InvalidConfigError([Problem("", _expected("a mapping", document))])
    try:
        return converter.structure(document, cls)
    except (BaseValidationError, InvalidConfigError) as exc:
        problems = problems_from_structuring(exc, key)
        error = exc
    if all(p.message == _UNKNOWN_FIELD for p in problems):
        # Unknown keys alone: check the rest too, so that one run lists every problem.
        known = copy.deepcopy(dict(document))
        for problem in problems:
            _remove(known, problem.path)
        try:
            converter.structure(known, cls)
        except (BaseValidationError, InvalidConfigError) as exc:
            problems += problems_from_structuring(exc, key)
    raise InvalidConfigError(problems) from error


def problems_from_structuring(exc: BaseException, key: KeyStyle, path: str = "") -> list[Problem]:
    """Flatten what a converter raised into problems with document paths.

    cattrs notes name attributes; ``key`` spells them as the document does. A record that
    refused itself at construction raised InvalidConfigError with paths relative to itself;
    they are re-rooted here.
    """
    if isinstance(exc, InvalidConfigError):
        return [p.under(path) for p in exc.problems]
    if isinstance(exc, ForbiddenExtraKeysError):
        return [Problem(join_path(path, name), _UNKNOWN_FIELD) for name in sorted(exc.extra_fields)]
    if isinstance(exc, BaseValidationError):
        problems: list[Problem] = []
        for sub in exc.exceptions:
            problems.extend(problems_from_structuring(sub, key, _child_path(sub, exc, key, path)))
        return problems
    if isinstance(exc, KeyError):
        return [Problem(path, "required field missing")]
    return [Problem(path, str(exc.args[0]) if exc.args else repr(exc))]


def _remove(document: dict[str, Any], path: str) -> None:
    *parents, last = path.split(".")
    for key in parents:
        child = document.get(key)
        if not isinstance(child, dict):
            return
        document = child
    document.pop(last, None)


def _child_path(sub: BaseException, parent: BaseValidationError, key: KeyStyle, path: str) -> str:
    for note in getattr(sub, "__notes__", ()):
        name = getattr(note, "name", None)
        if isinstance(parent, ClassValidationError) and isinstance(name, str):
            return join_path(path, key(name))
        if isinstance(parent, IterableValidationError) and isinstance(note, IterableValidationNote):
            index = note.index
            return join_path(path, f"[{index}]" if isinstance(index, int) else index)
    return path


def _expected(what: str, value: object) -> str:
    return f"expected {what}, got {_describe(value)}"


def _describe(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return type(value).__name__


def _register_scalars(converter: Converter) -> None:
    def structure_str(value: object, _: type) -> str:
        if not isinstance(value, str):
            raise TypeError(_expected("a string", value))
        return value

    def structure_int(value: object, _: type) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(_expected("an integer", value))
        return value

    def structure_float(value: object, _: type) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError(_expected("a number", value))
        if not math.isfinite(value):
            raise ValueError(_expected("a finite number", value))
        return float(value)

    def structure_bool(value: object, _: type) -> bool:
        if not isinstance(value, bool):
            raise TypeError(_expected("true or false", value))
        return value

    def structure_path(value: object, _: type) -> Path:
        if isinstance(value, PurePath):
            return Path(value)
        if not isinstance(value, str) or not value:
            raise ValueError(_expected("a path", value))
        return Path(value)

    converter.register_structure_hook(str, structure_str)
    converter.register_structure_hook(int, structure_int)
    converter.register_structure_hook(float, structure_float)
    converter.register_structure_hook(bool, structure_bool)
    converter.register_structure_hook(Path, structure_path)
    converter.register_unstructure_hook(Path, str)


def _register_values(converter: Converter) -> None:
    """Values written as strings: parse on the way in, ``str`` on the way out."""

    def parsed(parse: Callable[[str], object], what: str) -> Callable[[object, type], Any]:
        def structure(value: object, _: type) -> object:
            if not isinstance(value, str):
                raise TypeError(_expected(what, value))
            return parse(value)

        return structure

    def family(parse: Callable[[str], object], cls: type, what: str) -> Callable[[str], object]:
        def parse_family(text: str) -> object:
            value = parse(text)
            if not isinstance(value, cls):
                raise ValueError(f"{text!r} is not {what}")  # noqa: TRY004 - a value, not a type
            return value

        return parse_family

    hooks: list[tuple[Any, Callable[[str], object], str]] = [
        (IPAddress, parse_address, "an IP address"),
        (IPNetwork, parse_network, "a CIDR"),
        (IPv4Address, family(parse_address, IPv4Address, "an IPv4 address"), "an IPv4 address"),
        (IPv6Address, family(parse_address, IPv6Address, "an IPv6 address"), "an IPv6 address"),
        (IPv4Network, family(parse_network, IPv4Network, "an IPv4 CIDR"), "an IPv4 CIDR"),
        (IPv6Network, family(parse_network, IPv6Network, "an IPv6 CIDR"), "an IPv6 CIDR"),
        (PortRange, PortRange.parse, "a port range START-END"),
        (ListenAddress, ListenAddress.parse, "HOST:PORT"),
    ]
    for cls, parse, what in hooks:
        converter.register_structure_hook(cls, parsed(parse, what))
    for cls in (IPv4Address, IPv6Address, IPv4Network, IPv6Network, PortRange, ListenAddress):
        converter.register_unstructure_hook(cls, str)

    def is_enum(t: Any) -> bool:
        return isinstance(t, type) and issubclass(t, enum.Enum)

    def enum_hook(t: type[enum.Enum]) -> Callable[[object, type], enum.Enum]:
        choices = ", ".join(str(member.value) for member in t)

        def structure(value: object, _: type) -> enum.Enum:
            try:
                return t(value)
            except ValueError:
                raise ValueError(f"{_describe(value)} is not one of: {choices}") from None

        return structure

    converter.register_structure_hook_factory(is_enum, enum_hook)


def _register_containers(converter: Converter) -> None:
    def is_optional(t: Any) -> bool:
        return _is_union(t) and type(None) in typing.get_args(t)

    def optional_hook(t: Any) -> Callable[[object, type], object]:
        rest = [arg for arg in typing.get_args(t) if arg is not type(None)]
        inner = functools.reduce(operator.or_, rest)

        def structure(value: object, _: type) -> object:
            return None if value is None else converter.structure(value, inner)

        return structure

    def is_tuple(t: Any) -> bool:
        args = typing.get_args(t)
        return typing.get_origin(t) is tuple and len(args) == 2 and args[1] is Ellipsis

    def tuple_hook(t: Any) -> Callable[[object, type], tuple[object, ...]]:
        item_type = typing.get_args(t)[0]

        def structure(value: object, _: type) -> tuple[object, ...]:
            if not isinstance(value, list | tuple):
                raise TypeError(_expected("a list", value))
            items: list[object] = []
            errors: list[Exception] = []
            for index, item in enumerate(value):
                try:
                    items.append(converter.structure(item, item_type))
                except Exception as exc:
                    exc.add_note(IterableValidationNote(f"@ [{index}]", index, item_type))
                    errors.append(exc)
            if errors:
                raise IterableValidationError("while structuring a list", errors, t)
            return tuple(items)

        return structure

    def is_mapping(t: Any) -> bool:
        return typing.get_origin(t) in (Mapping, dict)

    def mapping_hook(t: Any) -> Callable[[object, type], dict[str, object]]:
        _, value_type = typing.get_args(t)

        def structure(value: object, _: type) -> dict[str, object]:
            if not isinstance(value, Mapping):
                raise TypeError(_expected("a mapping", value))
            items: dict[str, object] = {}
            errors: list[Exception] = []
            for name, item in value.items():
                try:
                    items[_string_key(name)] = converter.structure(item, value_type)
                except Exception as exc:
                    exc.add_note(IterableValidationNote(f"@ [{name!r}]", str(name), value_type))
                    errors.append(exc)
            if errors:
                raise IterableValidationError("while structuring a mapping", errors, t)
            return items

        return structure

    converter.register_structure_hook_factory(is_optional, optional_hook)
    converter.register_structure_hook_factory(is_tuple, tuple_hook)
    converter.register_structure_hook_factory(is_mapping, mapping_hook)

    # Tuples become lists: yaml.safe_dump writes lists, not Python tuples.
    def is_any_tuple(t: Any) -> bool:
        return bool(t is tuple or typing.get_origin(t) is tuple)

    converter.register_unstructure_hook_func(
        is_any_tuple, lambda value: [converter.unstructure(item) for item in value]
    )


def _register_records(converter: Converter, key: KeyStyle) -> None:
    def structure_factory(cls: type) -> Callable[[object, type], object]:
        attrs.resolve_types(cls)
        renames = {a.name: override(rename=_key_of(a, key)) for a in attrs.fields(cls)}
        build: Callable[[Mapping[str, Any], Any], object] = make_dict_structure_fn(
            cls,
            converter,
            **renames,  # type: ignore[arg-type]
        )

        def structure(value: object, t: type) -> object:
            if not isinstance(value, Mapping):
                raise TypeError(_expected("a mapping", value))
            return build(value, t)

        return structure

    def unstructure_factory(cls: type) -> Callable[[Any], dict[str, Any]]:
        attrs.resolve_types(cls)
        renames = {a.name: override(rename=_key_of(a, key)) for a in attrs.fields(cls)}
        return make_dict_unstructure_fn(cls, converter, **renames)  # type: ignore[arg-type]

    def is_record(t: Any) -> bool:
        return attrs.has(t) and t not in VALUE_TYPES

    converter.register_structure_hook_factory(is_record, structure_factory)
    converter.register_unstructure_hook_factory(is_record, unstructure_factory)


def _string_key(name: object) -> str:
    if not isinstance(name, str):
        raise TypeError(_expected("a string key", name))
    return name


def _key_of(attribute: attrs.Attribute[Any], key: KeyStyle) -> str:
    """A field's key: ``metadata={"key": ...}`` where the style cannot spell it (``repoURL``)."""
    explicit = attribute.metadata.get("key")
    return explicit if isinstance(explicit, str) else key(attribute.name)


def _is_union(t: Any) -> bool:
    return typing.get_origin(t) in (typing.Union, types.UnionType)
