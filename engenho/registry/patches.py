"""Patch algorithms that need no schema: JSON Patch (RFC 6902) and JSON merge patch (RFC 7386).

JSON Patch is the ``jsonpatch`` library's. Merge patch is the RFC's own ten-line algorithm
(section 2): no maintained package implements just it, and it is small enough to check
against the RFC's examples in the tests.
"""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch
import jsonpointer

from engenho.registry.errors import BadRequestError, InvalidError, RequestEntityTooLargeError

__all__ = ["MAX_JSON_PATCH_OPERATIONS", "apply_json_patch", "apply_merge_patch"]

MAX_JSON_PATCH_OPERATIONS = 10_000


def apply_merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge recursively, ``null`` deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = apply_merge_patch(result.get(key), value)
    return result


def apply_json_patch(target: dict[str, Any], operations: Any) -> Any:
    """RFC 6902. A body that is not a list of operations is a 400; an operation that cannot
    apply (missing path, failed ``test``) is a 422, as upstream answers."""
    if not isinstance(operations, list):
        raise BadRequestError("json patch must be a JSON array of operations")
    if len(operations) > MAX_JSON_PATCH_OPERATIONS:
        raise RequestEntityTooLargeError(
            f"The allowed maximum operations in a JSON patch is {MAX_JSON_PATCH_OPERATIONS}, "
            f"got {len(operations)}"
        )
    try:
        patch = jsonpatch.JsonPatch(operations)
    except (jsonpatch.InvalidJsonPatch, TypeError) as exc:
        raise BadRequestError(f"invalid json patch: {exc}") from exc
    try:
        return patch.apply(target)
    except jsonpatch.JsonPatchTestFailed as exc:
        raise InvalidError(
            f"the server rejected our request due to an error in our request: {exc}"
        ) from exc
    except (jsonpatch.JsonPatchConflict, jsonpointer.JsonPointerException) as exc:
        raise InvalidError(
            f"the server rejected our request due to an error in our request: {exc}"
        ) from exc
    except jsonpatch.InvalidJsonPatch as exc:
        raise BadRequestError(f"invalid json patch: {exc}") from exc
