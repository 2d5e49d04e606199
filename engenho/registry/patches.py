"""Patch algorithms that need no schema: JSON merge patch (RFC 7386) and JSON Patch (RFC 6902).

Both behave as the apiserver's, which applies them with evanphx/json-patch v4 (``MergePatch``
and ``DecodePatch(...).Apply``); where that library departs from the RFCs, these follow it.

Merge patch is RFC 7386 section 2, except that a value set where the target has nothing (or
``null``, or a non-object) loses its ``null`` members at every depth, inside arrays too.

JSON Patch is RFC 6902 with the library's extensions and limits:

- ``replace`` of a missing object member adds it;
- an array index may be negative, counting from the end (``-1`` is the last element, or the
  end for ``add``), and may carry a sign or leading zeros;
- ``add`` at the root (``""``) is refused; ``replace`` there takes an object or array;
- a missing ``value`` is ``null``; ``copy`` from a missing object member copies ``null``;
- ``test`` of a missing member passes when ``value`` is ``null`` or absent; values compare
  as JSON (``1`` and ``1.0`` differ, so do ``1`` and ``true``);
- ``copy`` may add at most ``JSON_PATCH_MAX_COPY_BYTES`` of JSON in one patch.

A body that is not an array of objects is a 400; an operation that cannot apply is a 422
(upstream's message, with the detail after it); more than 10,000 operations is a 413.
"""

from __future__ import annotations

import json
import re
from typing import Any, Final

from engenho.registry.copying import deep_copy
from engenho.registry.errors import BadRequestError, InvalidError, RequestEntityTooLargeError

__all__ = [
    "JSON_PATCH_MAX_COPY_BYTES",
    "MAX_JSON_PATCH_OPERATIONS",
    "apply_json_patch",
    "apply_merge_patch",
]

MAX_JSON_PATCH_OPERATIONS: Final = 10_000
JSON_PATCH_MAX_COPY_BYTES: Final = 3 * 1024 * 1024  # the apiserver's JSONPatchMaxCopyBytes

_REJECTED: Final = "the server rejected our request due to an error in our request"
_INDEX: Final = re.compile(r"[+-]?[0-9]+")
_INT64: Final = 2**63


# Merge patch


def apply_merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 as the apiserver applies it: objects merge, ``null`` deletes, the rest
    replaces. Neither argument is modified."""
    if not isinstance(patch, dict):
        return deep_copy(patch)
    if not isinstance(target, dict):
        return _without_nulls(patch)
    return _merge_into(deep_copy(target), patch)


def _merge_into(target: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    for key, value in patch.items():
        current = target.get(key)
        if value is None:
            target.pop(key, None)
        elif not isinstance(current, dict):
            target[key] = _without_nulls(value)
        elif isinstance(value, dict):
            target[key] = _merge_into(current, value)
        else:
            target[key] = deep_copy(value)
    return target


def _without_nulls(value: Any) -> Any:
    """A copy without ``null`` object members at any depth (null array elements stay)."""
    if isinstance(value, dict):
        return {key: _without_nulls(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [_without_nulls(item) for item in value]
    return value


# JSON Patch


class _OperationError(Exception):
    """An operation that cannot apply (answered 422)."""


def apply_json_patch(target: Any, operations: Any) -> Any:
    """RFC 6902 as the apiserver applies it. ``target`` is not modified. A JSON ``null`` body
    decodes to no operations, as upstream's does."""
    if operations is None:
        operations = []
    if not isinstance(operations, list) or not all(
        operation is None or isinstance(operation, dict) for operation in operations
    ):
        raise BadRequestError("json patch must be a JSON array of operation objects")
    if len(operations) > MAX_JSON_PATCH_OPERATIONS:
        raise RequestEntityTooLargeError(
            f"The allowed maximum operations in a JSON patch is {MAX_JSON_PATCH_OPERATIONS}, "
            f"got {len(operations)}"
        )
    document = deep_copy(target)
    copied = 0
    try:
        for operation in operations:
            document, copied = _apply(document, operation or {}, copied)
    except _OperationError as exc:
        raise InvalidError(f"{_REJECTED}: {exc}") from exc
    return document


def _apply(document: Any, operation: dict[str, Any], copied: int) -> tuple[Any, int]:
    kind = operation.get("op")
    if not isinstance(kind, str):
        kind = "unknown"
    if kind == "add":
        _add_at(document, _pointer(operation, "path", kind), operation.get("value"), kind)
    elif kind == "remove":
        _remove(document, _pointer(operation, "path", kind))
    elif kind == "replace":
        document = _replace(document, operation)
    elif kind == "move":
        source = _pointer(operation, "from", kind)
        container, key = _resolve(document, source, kind)
        value = _get(container, key, f"error in move for path: '{key}'")
        _remove(document, source)
        _add_at(document, _pointer(operation, "path", kind), value, kind)
    elif kind == "test":
        _test(document, operation)
    elif kind == "copy":
        container, key = _resolve(document, _pointer(operation, "from", kind), kind)
        value = _get(container, key, f"error in copy for from: '{key}'")
        copied += _encoded_size(value)
        if copied > JSON_PATCH_MAX_COPY_BYTES:
            raise _OperationError(
                "Unable to complete the copy, the accumulated size increase of copy is "
                f"{copied}, exceeding the limit {JSON_PATCH_MAX_COPY_BYTES}"
            )
        _add_at(document, _pointer(operation, "path", kind), value, kind)
    else:
        raise _OperationError(f"Unexpected kind: {kind}")
    return document, copied


def _pointer(operation: dict[str, Any], member: str, kind: str) -> str:
    value = operation.get(member)
    if value is None:
        raise _OperationError(f"{kind} operation missing {member} field: missing value")
    if not isinstance(value, str):
        raise _OperationError(
            f"{kind} operation failed to decode {member}: {member} must be a string"
        )
    return value


def _resolve(document: Any, pointer: str, kind: str) -> tuple[dict[str, Any] | list[Any], str]:
    """The container the pointer's last token is in, and that token (unescaped)."""
    tokens = pointer.split("/")
    container = document if len(tokens) > 1 else None
    for token in tokens[1:-1]:
        if not isinstance(container, dict | list):
            break
        try:
            container = _get(container, _unescape(token), "")
        except _OperationError:
            container = None
    if not isinstance(container, dict | list):
        raise _OperationError(f'{kind} operation does not apply: doc is missing path: "{pointer}"')
    return container, _unescape(tokens[-1])


def _unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


def _index(token: str, length: int, context: str, *, adding: bool = False) -> int:
    """An array index as the library reads one: Go's Atoi, negatives from the end."""
    if not _INDEX.fullmatch(token) or not -_INT64 <= int(token) < _INT64:
        raise _OperationError(f'{context}: strconv.Atoi: parsing "{token}": invalid syntax')
    index = int(token)
    size = length + 1 if adding else length
    if index >= size or index < -size:
        raise _OperationError(
            f"{context}: Unable to access invalid index: {index}: invalid index referenced"
        )
    return index + size if index < 0 else index


def _get(container: dict[str, Any] | list[Any], key: str, context: str) -> Any:
    """The member or element; a missing object member reads as null."""
    if isinstance(container, dict):
        return container.get(key)
    return container[_index(key, len(container), context)]


def _add_at(document: Any, pointer: str, value: Any, kind: str) -> None:
    container, key = _resolve(document, pointer, kind)
    value = deep_copy(value)
    if isinstance(container, dict):
        container[key] = value
    elif key == "-":
        container.append(value)
    else:
        context = f"error in {kind} for path: '{pointer}'"
        container.insert(_index(key, len(container), context, adding=True), value)


def _remove(document: Any, pointer: str) -> None:
    container, key = _resolve(document, pointer, "remove")
    if isinstance(container, dict):
        if key not in container:
            raise _OperationError(f"Unable to remove nonexistent key: {key}: missing value")
        del container[key]
    else:
        del container[_index(key, len(container), f"error in remove for path: '{pointer}'")]


def _replace(document: Any, operation: dict[str, Any]) -> Any:
    pointer = _pointer(operation, "path", "replace")
    value = deep_copy(operation.get("value"))
    if pointer == "":
        if not isinstance(value, dict | list):
            raise _OperationError("replace operation value must be object or array")
        return value
    container, key = _resolve(document, pointer, "replace")
    if isinstance(container, dict):
        container[key] = value
    else:
        context = f"replace operation does not apply: doc is missing key: {pointer}"
        container[_index(key, len(container), context)] = value
    return document


def _test(document: Any, operation: dict[str, Any]) -> None:
    pointer = _pointer(operation, "path", "test")
    expected = operation.get("value")
    if pointer == "":
        actual = document
    else:
        container, key = _resolve(document, pointer, "test")
        actual = _get(container, key, f"error in test for path: '{pointer}'")
    if actual is None and pointer != "":
        passed = expected is None
    else:
        passed = expected is not None and _json_equal(actual, expected)
    if not passed:
        raise _OperationError(f"testing value {pointer} failed: test failed")


def _json_equal(left: Any, right: Any) -> bool:
    """Equal as JSON documents: numbers of different spelling (1, 1.0) and types differ."""
    if isinstance(left, dict):
        return (
            isinstance(right, dict)
            and left.keys() == right.keys()
            and all(
                (left[key] is None) == (right[key] is None)
                and (left[key] is None or _json_equal(left[key], right[key]))
                for key in left
            )
        )
    if isinstance(left, list):
        return (
            isinstance(right, list)
            and len(left) == len(right)
            and all(
                (a is None and b is None) or (a is not None and _json_equal(a, b))
                for a, b in zip(left, right, strict=True)
            )
        )
    return type(left) is type(right) and bool(left == right)


def _encoded_size(value: Any) -> int:
    """The bytes Go's encoding/json writes for ``value`` (it escapes <, >, &, U+2028/9)."""
    if value is None:
        return 0
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    escaped = sum(text.count(c) for c in "<>&") * 5 + sum(text.count(c) for c in "\u2028\u2029") * 3
    return len(text.encode("utf-8")) + escaped
