"""Objects as the client hands them out: plain wire dicts or the generated attrs models.

The client always speaks wire JSON; a model is made from it at the edge, only when the
caller addressed the resource by its model class. These helpers read the few metadata
fields the client itself needs (name, namespace, resourceVersion, uid, labels) from either
form without converting it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import attrs

from engenho.schema import from_wire, to_wire

__all__ = [
    "Obj",
    "decode",
    "encode",
    "labels_of",
    "name_of",
    "namespace_of",
    "resource_version_of",
    "uid_of",
]

Obj = dict[str, Any]
"""An object in wire form, as decoded from JSON."""

T = TypeVar("T")


def encode(obj: Any) -> Obj:
    """The wire dict of ``obj`` (a model, or a mapping taken as is)."""
    if isinstance(obj, Mapping):
        return dict(obj)
    if attrs.has(type(obj)):
        return to_wire(obj)
    raise TypeError(f"expected a dict or a generated model, not {type(obj).__name__}")


def decode(data: Obj, cls: type[T] | None) -> T | Obj:
    """``data`` as ``cls`` when one is given, else the dict itself."""
    if cls is None:
        return data
    return from_wire(data, cls)


def _metadata(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return obj.get("metadata") or {}
    return getattr(obj, "metadata", None)


def _field(obj: Any, wire: str, attribute: str) -> Any:
    meta = _metadata(obj)
    if meta is None:
        return None
    if isinstance(meta, Mapping):
        return meta.get(wire)
    return getattr(meta, attribute, None)


def name_of(obj: Any) -> str:
    return _field(obj, "name", "name") or ""


def namespace_of(obj: Any) -> str:
    return _field(obj, "namespace", "namespace") or ""


def resource_version_of(obj: Any) -> str:
    return _field(obj, "resourceVersion", "resource_version") or ""


def uid_of(obj: Any) -> str:
    return _field(obj, "uid", "uid") or ""


def labels_of(obj: Any) -> Mapping[str, str]:
    return _field(obj, "labels", "labels") or {}
