"""A StatefulSet's pods as its controller reads and makes them: names and ordinals, the pod
made from a revision (stable name, identity labels, hostname and subdomain, claim volumes),
the claims its ``volumeClaimTemplates`` give each ordinal, and their owners under
``persistentVolumeClaimRetentionPolicy``.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from engenho.projections import StoredObject
from engenho.reconcilers.history import POD_REVISION_LABEL, template_from
from engenho.reconcilers.machines.pods import observe
from engenho.reconcilers.machines.statefulsets import Outcome, Slot
from engenho.reconcilers.templates import pod_from_template, spec_of

__all__ = [
    "POD_INDEX_LABEL",
    "POD_NAME_LABEL",
    "claim_name",
    "claim_owners",
    "claims_for",
    "parent_and_ordinal",
    "retention",
    "slot_of",
    "stateful_pod",
]

POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"
_ORDINAL = re.compile(r"^(.*)-([0-9]+)$")


def parent_and_ordinal(pod_name: str) -> tuple[str, int]:
    """The set a pod name belongs to and its ordinal (-1 when the name has none)."""
    match = _ORDINAL.match(pod_name)
    if match is None:
        return "", -1
    return match.group(1), int(match.group(2))


def claim_name(template_name: str, set_name: str, ordinal: int) -> str:
    return f"{template_name}-{set_name}-{ordinal}"


def slot_of(pod: Mapping[str, Any], now: datetime, min_ready: int) -> tuple[Slot, float | None]:
    """The machine's view of a pod, and when to look again for it to become available."""
    meta = pod.get("metadata") or {}
    phase = (pod.get("status") or {}).get("phase")
    # Readiness is read as if the pod were not being deleted: upstream counts a terminating
    # pod that still runs and is ready as ready, and the pod machine forgets readiness once a
    # deletion is requested.
    probe = {**pod, "metadata": {k: v for k, v in meta.items() if k != "deletionTimestamp"}}
    view, effects = observe(probe, now, min_ready)
    recheck = min((effect.seconds for effect in effects), default=None)
    return (
        Slot(
            revision=str((meta.get("labels") or {}).get(POD_REVISION_LABEL, "")),
            ready=view.ready and phase == "Running",
            available=view.available and phase == "Running",
            terminating=bool(meta.get("deletionTimestamp")),
            outcome=Outcome(phase) if phase in ("Succeeded", "Failed") else None,
        ),
        recheck,
    )


def retention(obj: Mapping[str, Any]) -> tuple[bool, bool]:
    """(delete claims when the set is deleted, delete claims of pods scaled away)."""
    policy = spec_of(obj).get("persistentVolumeClaimRetentionPolicy") or {}
    return policy.get("whenDeleted") == "Delete", policy.get("whenScaled") == "Delete"


def _reference(owner: StoredObject, api_version: str, kind: str) -> dict[str, Any]:
    """A plain (not controller) owner reference, as upstream's setOwnerRef writes it."""
    return {"apiVersion": api_version, "kind": kind, "name": owner.name, "uid": owner.uid}


def claims_for(sts: StoredObject, ordinal: int) -> list[tuple[str, dict[str, Any]]]:
    """(volume name, PersistentVolumeClaim) for each claim the pod at ``ordinal`` mounts
    (getPersistentVolumeClaims)."""
    spec = spec_of(sts.object)
    match_labels = (spec.get("selector") or {}).get("matchLabels") or {}
    claims: list[tuple[str, dict[str, Any]]] = []
    for template in spec.get("volumeClaimTemplates") or []:
        if not isinstance(template, dict):
            continue
        meta = copy.deepcopy(template.get("metadata") or {})
        volume = str(meta.get("name", ""))
        meta["name"] = claim_name(volume, sts.name, ordinal)
        meta["namespace"] = sts.namespace
        meta["labels"] = {**(meta.get("labels") or {}), **match_labels}
        for field in ("uid", "resourceVersion", "creationTimestamp", "ownerReferences"):
            meta.pop(field, None)
        body = {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": meta,
            "spec": copy.deepcopy(template.get("spec") or {}),
        }
        claims.append((volume, body))
    return claims


def claim_owners(
    claim_obj: StoredObject,
    sts: StoredObject,
    pod: StoredObject,
    by_set: bool,
    by_pod: bool,
) -> list[dict[str, Any]] | None:
    """The claim's ownerReferences with the set's and the pod's as the retention policy wants
    them (updateClaimOwnerRefForSetAndPod), or None when they already are."""
    refs = list((claim_obj.object.get("metadata") or {}).get("ownerReferences") or [])
    kept = [r for r in refs if r.get("uid") not in (sts.uid, pod.uid)]
    wanted = list(kept)
    for owner, keep, api_version, kind in (
        (sts, by_set, "apps/v1", "StatefulSet"),
        (pod, by_pod, "v1", "Pod"),
    ):
        if not keep:
            continue
        existing = next((r for r in refs if r.get("uid") == owner.uid), None)
        wanted.append(existing or _reference(owner, api_version, kind))
    if sorted(map(str, wanted)) == sorted(map(str, refs)):
        return None
    return wanted


def stateful_pod(sts: StoredObject, ordinal: int, revision: StoredObject) -> dict[str, Any]:
    """newStatefulSetPod: the revision's template, the stable identity and the claims."""
    name = f"{sts.name}-{ordinal}"
    pod = pod_from_template(template_from(revision.object), sts, name=name)
    labels = pod["metadata"].setdefault("labels", {})
    labels[POD_NAME_LABEL] = name
    labels[POD_INDEX_LABEL] = str(ordinal)
    labels[POD_REVISION_LABEL] = revision.name
    spec = pod["spec"]
    spec["hostname"] = name
    service = spec_of(sts.object).get("serviceName")
    if service:
        spec["subdomain"] = service
    claims = claims_for(sts, ordinal)
    if claims:
        mounted = {volume for volume, _ in claims}
        volumes = [
            {"name": volume, "persistentVolumeClaim": {"claimName": claim["metadata"]["name"]}}
            for volume, claim in claims
        ]
        volumes += [v for v in spec.get("volumes") or [] if v.get("name") not in mounted]
        spec["volumes"] = volumes
    return pod
