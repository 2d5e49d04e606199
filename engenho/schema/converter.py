"""The explicit cattrs converter between the typed models and wire JSON.

Never the global converter: :func:`make_converter` builds one with the wire conventions —
camelCase names taken from each attribute's ``metadata["wire"]``, unset (``None``) optional
fields omitted, tuples written as lists, enums as their values, quantities and
int-or-strings as sent, ``Time``/``MicroTime`` in their RFC 3339 precisions — so
``unstructure(structure(obj)) == obj`` for any valid object without explicit nulls.
"""

from __future__ import annotations

import enum
import typing
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from engenho.schema.generated.models import MODELS
from engenho.schema.quantity import Quantity
from engenho.schema.registry import definition_for
from engenho.schema.wire import (
    MicroTime,
    Time,
    format_micro_time,
    format_time,
    parse_time,
)

__all__ = ["CONVERTER", "from_wire", "make_converter", "model_for", "to_wire"]

T = TypeVar("T")


def make_converter() -> cattrs.Converter:
    converter = cattrs.Converter(
        omit_if_default=True,
        unstruct_collection_overrides={Sequence: list, tuple: list},
        forbid_extra_keys=False,
    )
    converter.register_structure_hook(Quantity, lambda value, _: _structure_quantity(value))
    converter.register_unstructure_hook(Quantity, lambda value: value.wire)
    converter.register_structure_hook(Time, lambda value, _: Time(parse_time(value)))
    converter.register_unstructure_hook(Time, format_time)
    converter.register_structure_hook(MicroTime, lambda value, _: MicroTime(parse_time(value)))
    converter.register_unstructure_hook(MicroTime, format_micro_time)
    converter.register_unstructure_hook(datetime, format_time)
    converter.register_structure_hook_func(
        _is_int_or_string, lambda value, _: _structure_int_or_string(value)
    )
    converter.register_structure_hook_factory(attrs.has, lambda cls: _structure_fn(cls, converter))
    converter.register_unstructure_hook_factory(
        attrs.has, lambda cls: _unstructure_fn(cls, converter)
    )
    converter.register_unstructure_hook(enum.Enum, lambda value: value.value)
    return converter


def _structure_quantity(value: Any) -> Quantity:
    return Quantity.from_json(value)


def _is_int_or_string(type_: Any) -> bool:
    """``IntOrString`` and ``IntOrString | None`` (cattrs cannot split a union of scalars)."""
    return set(typing.get_args(type_)) - {type(None)} == {int, str}


def _structure_int_or_string(value: Any) -> int | str | None:
    if value is None:
        return None
    if type(value) is int or type(value) is str:
        return value
    raise TypeError(f"{value!r} is neither an integer nor a string")


def _renames(cls: type) -> dict[str, Any]:
    return {a.name: override(rename=a.metadata.get("wire", a.name)) for a in attrs.fields(cls)}


def _structure_fn(cls: type, converter: cattrs.Converter) -> Callable[[Any, Any], Any]:
    return make_dict_structure_fn(cls, converter, **_renames(cls))


def _unstructure_fn(cls: type, converter: cattrs.Converter) -> Callable[[Any], Any]:
    return make_dict_unstructure_fn(cls, converter, _cattrs_omit_if_default=True, **_renames(cls))


CONVERTER = make_converter()


def model_for(api_version: str, kind: str) -> type[Any]:
    """The generated attrs class of ``kind`` in ``api_version``."""
    return MODELS[definition_for(api_version, kind).name]


def from_wire(obj: Mapping[str, Any], cls: type[T] | None = None) -> T:
    """Structure a wire dict into its model (chosen from apiVersion/kind when ``cls`` is None)."""
    target: type[Any] = (
        cls if cls is not None else model_for(str(obj.get("apiVersion")), str(obj.get("kind")))
    )
    result: T = CONVERTER.structure(obj, target)
    return result


def to_wire(model: Any) -> dict[str, Any]:
    """Unstructure a model into wire JSON (a fresh dict)."""
    result: dict[str, Any] = CONVERTER.unstructure(model)
    return result
