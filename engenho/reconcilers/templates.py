"""Pods made from a workload's pod template, as upstream's ``GetPodFromTemplate`` makes them.

The StatefulSet, DaemonSet and Job controllers build their pods the same way: the template's
labels, annotations, finalizers and spec, in the owner's namespace, with a controller reference
to the owner (``controller: true``, ``blockOwnerDeletion: true``), named either exactly (a
StatefulSet's ``web-0``) or by the registry from a prefix (``<owner>-`` plus five characters,
decided before the create is proposed). Each controller then adds what is its own (identity
labels, tolerations, node affinity, completion indexes).

(The ReplicaSet controller has its own ``pod_from_template`` bound to a ReplicaSet; this one
takes any template, which the StatefulSet needs when it recreates a pod at an older revision.)
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from engenho.projections import StoredObject
from engenho.reconcilers.ownership import controller_ref

__all__ = ["int_field", "pod_from_template", "pods_prefix", "spec_of", "template_of"]


def spec_of(obj: Mapping[str, Any]) -> dict[str, Any]:
    spec = obj.get("spec")
    return spec if isinstance(spec, dict) else {}


def template_of(obj: Mapping[str, Any]) -> dict[str, Any]:
    """``spec.template`` of a workload (an empty template when it has none)."""
    template = spec_of(obj).get("template")
    return template if isinstance(template, dict) else {}


def int_field(section: Mapping[str, Any] | None, key: str, default: int) -> int:
    """An integer field, or ``default`` when it is absent or not an integer."""
    value = section.get(key) if isinstance(section, Mapping) else None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return default


def pods_prefix(owner_name: str) -> str:
    """The ``generateName`` of an owner's pods (upstream's getPodsPrefix)."""
    return f"{owner_name}-"


def pod_from_template(
    template: Mapping[str, Any],
    owner: StoredObject,
    *,
    name: str = "",
    generate_name: str = "",
) -> dict[str, Any]:
    """A new pod of ``owner`` from ``template``: named ``name``, or generated from
    ``generate_name`` (by default ``<owner>-``)."""
    template_meta = template.get("metadata")
    template_meta = template_meta if isinstance(template_meta, dict) else {}
    meta: dict[str, Any] = {
        "namespace": owner.namespace,
        "ownerReferences": [controller_ref(owner)],
    }
    if name:
        meta["name"] = name
    else:
        meta["generateName"] = generate_name or pods_prefix(owner.name)
    for field in ("labels", "annotations", "finalizers"):
        if template_meta.get(field):
            meta[field] = copy.deepcopy(template_meta[field])
    spec = template.get("spec")
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": copy.deepcopy(spec) if isinstance(spec, dict) else {},
    }
