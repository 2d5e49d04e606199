"""ObjectMeta rules (apimachinery ``ValidateObjectMeta`` / ``ValidateObjectMetaUpdate``)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from engenho.schema import causes as c
from engenho.schema.rules.names import (
    NameCheck,
    dns1123_label_errors,
    label_value_errors,
    qualified_name_errors,
)

__all__ = [
    "add_invalid",
    "validate_annotations",
    "validate_labels",
    "validate_object_meta",
    "validate_object_meta_update",
]

_ANNOTATIONS_LIMIT = 256 * 1024
_STANDARD_FINALIZERS = frozenset({"kubernetes", "orphan", "foregroundDeletion"})


def add_invalid(causes: list[c.Cause], field: str, value: Any, messages: Sequence[str]) -> None:
    if messages:
        causes.extend(c.invalid(field, value, message) for message in messages)


def validate_labels(labels: Any, field: str, causes: list[c.Cause]) -> None:
    """Label keys are qualified names, values label values; errors sit at the map's path."""
    if type(labels) is not dict:
        return  # a type error, reported by structural validation
    for key, value in labels.items():
        add_invalid(causes, field, key, qualified_name_errors(key))
        if type(value) is str:
            add_invalid(causes, field, value, label_value_errors(value))


def validate_annotations(annotations: Any, field: str, causes: list[c.Cause]) -> None:
    if type(annotations) is not dict:
        return
    total = 0
    for key, value in annotations.items():
        add_invalid(causes, field, key, qualified_name_errors(key.lower()))
        total += len(key) + (len(value) if type(value) is str else 0)
    if total > _ANNOTATIONS_LIMIT:
        causes.append(c.too_long(field, _ANNOTATIONS_LIMIT))


def _mask_trailing_dash(name: str) -> str:
    # generateName is a prefix: the random suffix makes a trailing dash legal.
    return name[:-1] + "a" if len(name) > 1 and name.endswith("-") else name


def validate_object_meta(
    meta: Any, *, namespaced: bool, name_check: NameCheck, causes: list[c.Cause]
) -> None:
    if type(meta) is not dict:
        causes.append(c.required("metadata.name", "name or generateName is required"))
        return
    name = meta.get("name")
    generate_name = meta.get("generateName")
    if generate_name and type(generate_name) is str:
        add_invalid(
            causes,
            "metadata.generateName",
            generate_name,
            name_check(_mask_trailing_dash(generate_name)),
        )
    if not name:
        if not generate_name:
            causes.append(c.required("metadata.name", "name or generateName is required"))
    elif type(name) is str:
        add_invalid(causes, "metadata.name", name, name_check(name))
    namespace = meta.get("namespace")
    if namespaced:
        if namespace and type(namespace) is str:
            add_invalid(causes, "metadata.namespace", namespace, dns1123_label_errors(namespace))
    elif namespace:
        causes.append(c.forbidden("metadata.namespace", "not allowed on this type"))
    if "labels" in meta:
        validate_labels(meta["labels"], "metadata.labels", causes)
    if "annotations" in meta:
        validate_annotations(meta["annotations"], "metadata.annotations", causes)
    owners = meta.get("ownerReferences")
    if type(owners) is list:
        controllers = [o for o in owners if type(o) is dict and o.get("controller") is True]
        if len(controllers) > 1:
            refs = [f"{o.get('kind')}/{o.get('name')}" for o in controllers]
            causes.append(
                c.invalid(
                    "metadata.ownerReferences",
                    json.dumps(refs),
                    "Only one reference can have Controller set to true",
                )
            )
    finalizers = meta.get("finalizers")
    if type(finalizers) is list:
        _validate_finalizers(finalizers, causes)


def _validate_finalizers(finalizers: list[Any], causes: list[c.Cause]) -> None:
    seen: set[str] = set()
    for index, finalizer in enumerate(finalizers):
        if type(finalizer) is not str:
            continue
        field = f"metadata.finalizers[{index}]"
        add_invalid(causes, field, finalizer, qualified_name_errors(finalizer))
        if "/" not in finalizer and finalizer not in _STANDARD_FINALIZERS:
            causes.append(
                c.invalid(
                    field,
                    finalizer,
                    "name is neither a standard finalizer name nor is it fully qualified",
                )
            )
        if finalizer in seen:
            causes.append(c.duplicate(field, finalizer))
        seen.add(finalizer)


def validate_object_meta_update(meta: Any, old_meta: Any, causes: list[c.Cause]) -> None:
    if type(meta) is not dict or type(old_meta) is not dict:
        return
    for key in ("name", "namespace", "uid", "creationTimestamp"):
        old_value = old_meta.get(key) or ""
        new_value = meta.get(key) or ""
        if new_value != old_value:
            causes.append(c.invalid(f"metadata.{key}", new_value, "field is immutable"))
    if old_meta.get("deletionTimestamp"):
        old_finalizers = set(old_meta.get("finalizers") or ())
        new_finalizers = set(meta.get("finalizers") or ())
        if new_finalizers - old_finalizers:
            causes.append(
                c.forbidden(
                    "metadata.finalizers",
                    "no new finalizers can be added if the object is being deleted",
                )
            )
