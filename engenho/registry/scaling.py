"""The ``scale`` subresource: an autoscaling/v1 Scale view of a workload's replica count.

Reading it builds the Scale from the parent (deployments, replicasets, statefulsets,
replicationcontrollers); writing it changes only the parent's ``spec.replicas``, through the
same write path, with a resourceVersion in the Scale acting as the parent's precondition.
"""

from __future__ import annotations

from typing import Any

from engenho.projections import StoredObject
from engenho.registry import refusals
from engenho.registry.copying import deep_copy
from engenho.registry.errors import BadRequestError, InvalidError, StatusCause
from engenho.registry.patches import apply_json_patch, apply_merge_patch
from engenho.schema import ResourceType
from engenho.selectors import SelectorError, label_selector_from_object

__all__ = ["apply_scale_patch", "replicas_from_scale", "scale_of", "with_replicas"]

_Json = dict[str, Any]


def _selector_string(obj: _Json) -> str:
    selector = (obj.get("spec") or {}).get("selector")
    if selector is None:
        return ""
    try:
        if isinstance(selector, dict) and (
            "matchLabels" in selector or "matchExpressions" in selector
        ):
            return str(label_selector_from_object(selector))
        if isinstance(selector, dict):  # replicationcontrollers: a plain map
            return ",".join(f"{k}={v}" for k, v in sorted(selector.items()))
    except SelectorError:
        return ""
    return ""


def scale_of(rt: ResourceType, stored: StoredObject) -> _Json:
    """The Scale of a stored workload."""
    obj = stored.object
    meta = obj.get("metadata", {})
    scale_meta = {
        key: meta[key]
        for key in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
        if key in meta
    }
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": scale_meta,
        "spec": {"replicas": (obj.get("spec") or {}).get("replicas", 1)},
        "status": {
            "replicas": (obj.get("status") or {}).get("replicas", 0),
            "selector": _selector_string(obj),
        },
    }


def replicas_from_scale(rt: ResourceType, name: str, scale: Any) -> int:
    """The replica count a written Scale asks for; 400/422 when it is not a Scale."""
    if not isinstance(scale, dict) or scale.get("kind", "Scale") != "Scale":
        raise BadRequestError("the body must be an autoscaling/v1 Scale")
    replicas = (scale.get("spec") or {}).get("replicas")
    if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 0:
        raise InvalidError(
            f'Scale.autoscaling "{name}" is invalid: spec.replicas: Invalid value: '
            f"{replicas!r}: must be greater than or equal to 0",
            name=name,
            group="autoscaling",
            kind="Scale",
            causes=[
                StatusCause(
                    "FieldValueInvalid",
                    f"Invalid value: {replicas!r}: must be greater than or equal to 0",
                    "spec.replicas",
                )
            ],
        )
    return replicas


def apply_scale_patch(current: _Json, patch_type: str, patch: Any) -> _Json:
    """A patched Scale (merge and strategic patches are the same on a Scale)."""
    if patch_type in ("merge", "strategic"):
        return apply_merge_patch(deep_copy(current), patch)  # type: ignore[no-any-return]
    if patch_type == "json":
        return apply_json_patch(deep_copy(current), patch)  # type: ignore[no-any-return]
    raise BadRequestError(f"{patch_type} patches are not supported on the scale subresource")


def with_replicas(rt: ResourceType, name: str, obj: _Json, replicas: int) -> _Json:
    result = deep_copy(obj)
    spec = result.get("spec")
    if not isinstance(spec, dict):
        raise refusals.not_found(rt, name)
    spec["replicas"] = replicas
    return result
