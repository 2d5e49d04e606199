"""ConfigMap and Secret rules: keys, sizes, well-known Secret types, immutability."""

from __future__ import annotations

import binascii
import json
from collections.abc import Mapping
from typing import Any

from engenho.schema import causes as c
from engenho.schema.rules.meta import add_invalid
from engenho.schema.rules.names import config_key_errors

__all__ = ["validate_config_map", "validate_secret"]

_DATA_LIMIT = 1024 * 1024
# Secret type -> data keys it must carry (upstream ValidateSecret).
_REQUIRED_KEYS = {
    "kubernetes.io/tls": ("tls.crt", "tls.key"),
    "kubernetes.io/dockerconfigjson": (".dockerconfigjson",),
    "kubernetes.io/dockercfg": (".dockercfg",),
    "kubernetes.io/ssh-auth": ("ssh-privatekey",),
}
_SA_NAME_ANNOTATION = "kubernetes.io/service-account.name"


def _keys(data: Any, field: str, causes: list[c.Cause]) -> tuple[set[str], int]:
    if type(data) is not dict:
        return set(), 0
    size = 0
    for key, value in data.items():
        errors = config_key_errors(key)
        if errors:
            add_invalid(causes, f"{field}[{key}]", key, errors)
        if type(value) is str:
            size += len(value)
    return set(data), size


def validate_config_map(
    obj: Mapping[str, Any], old: Mapping[str, Any] | None, causes: list[c.Cause]
) -> None:
    data_keys, data_size = _keys(obj.get("data"), "data", causes)
    binary_keys, binary_size = _keys(obj.get("binaryData"), "binaryData", causes)
    causes.extend(
        c.invalid(f"data[{key}]", key, "duplicate of key present in binaryData")
        for key in sorted(data_keys & binary_keys)
    )
    if data_size + binary_size * 3 // 4 > _DATA_LIMIT:
        causes.append(c.too_long("", _DATA_LIMIT))
    if old is not None:
        _immutable(obj, old, ("data", "binaryData"), causes)


def validate_secret(
    obj: Mapping[str, Any], old: Mapping[str, Any] | None, causes: list[c.Cause]
) -> None:
    data: dict[str, Any] = obj["data"] if type(obj.get("data")) is dict else {}
    keys, size = _keys(data, "data", causes)
    if size * 3 // 4 > _DATA_LIMIT:
        causes.append(c.too_long("data", _DATA_LIMIT))
    kind = obj.get("type") or "Opaque"
    causes.extend(
        c.required(f"data[{required}]")
        for required in _REQUIRED_KEYS.get(kind, ())
        if required not in keys
    )
    if kind == "kubernetes.io/dockerconfigjson" and ".dockerconfigjson" in keys:
        _check_json(data[".dockerconfigjson"], "data[.dockerconfigjson]", causes)
    if kind == "kubernetes.io/service-account-token":
        annotations = (obj.get("metadata") or {}).get("annotations") or {}
        if not annotations.get(_SA_NAME_ANNOTATION):
            causes.append(c.required(f"metadata.annotations[{_SA_NAME_ANNOTATION}]"))
    if old is not None:
        if (old.get("type") or "Opaque") != kind:
            causes.append(c.invalid("type", kind, "field is immutable"))
        _immutable(obj, old, ("data", "stringData"), causes)


def _check_json(encoded: Any, field: str, causes: list[c.Cause]) -> None:
    try:
        json.loads(binascii.a2b_base64(encoded, strict_mode=True))
    except (binascii.Error, ValueError, TypeError):
        causes.append(c.invalid(field, "<secret contents redacted>", "must be valid JSON"))


def _immutable(
    obj: Mapping[str, Any], old: Mapping[str, Any], fields: tuple[str, ...], causes: list[c.Cause]
) -> None:
    if old.get("immutable") is not True:
        return
    if obj.get("immutable") is not True:
        causes.append(c.forbidden("immutable", "field is immutable when `immutable` is set"))
    causes.extend(
        c.forbidden(field, "field is immutable when `immutable` is set")
        for field in fields
        if (obj.get(field) or {}) != (old.get(field) or {})
    )
