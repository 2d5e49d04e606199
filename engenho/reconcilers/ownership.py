"""Controller references: which object controls another, and claiming objects by selector.

A workload controller owns the objects whose ``ownerReferences`` name it with
``controller: true``. Upstream's ControllerRefManager decides, for each candidate in the
owner's namespace, whether to keep it, adopt it or let it go, and this module does the same:

- controlled by this owner and matching its selector: **claimed**;
- controlled by this owner and no longer matching: **released** (the reference is removed with
  a strategic merge patch), unless the owner is being deleted;
- controlled by no one, matching, alive, and the owner is not being deleted: **adopted** (a
  controller reference is added with a strategic merge patch), after a fresh read confirms the
  owner is still the same object and not being deleted (the cache may be behind);
- controlled by another owner: left alone.

Both patches carry the object's uid, so they never touch a newer object of the same name.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Protocol

from engenho.projections import StoredObject
from engenho.registry import (
    BadRequestError,
    ConflictError,
    InvalidError,
    NotFoundError,
    Registry,
    RequestContext,
)
from engenho.schema import ResourceType
from engenho.selectors import LabelSelector

__all__ = ["Claimant", "claim", "controller_of", "controller_ref", "deleting", "labels_of"]

_log = logging.getLogger("engenho.reconcilers")


class Claimant(Protocol):
    """What claiming needs from a controller: its registry and its request context."""

    registry: Registry

    def context(self) -> RequestContext: ...


def labels_of(obj: Mapping[str, Any]) -> dict[str, str]:
    labels = (obj.get("metadata") or {}).get("labels")
    return labels if isinstance(labels, dict) else {}


def deleting(stored: StoredObject) -> bool:
    return bool(stored.object.get("metadata", {}).get("deletionTimestamp"))


def controller_of(obj: Mapping[str, Any]) -> dict[str, Any] | None:
    """The ownerReference with ``controller: true`` (there is at most one), or None."""
    refs = (obj.get("metadata") or {}).get("ownerReferences")
    for ref in refs if isinstance(refs, list) else ():
        if isinstance(ref, dict) and ref.get("controller") is True and ref.get("uid"):
            return ref
    return None


def controller_ref(owner: StoredObject) -> dict[str, Any]:
    """A controller reference to ``owner`` that blocks its foreground deletion."""
    obj = owner.object
    return {
        "apiVersion": obj.get("apiVersion", ""),
        "kind": obj.get("kind", ""),
        "name": owner.name,
        "uid": owner.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


async def _owner_still_adoptive(
    controller: Claimant, owner_rt: ResourceType, owner: StoredObject
) -> bool:
    """Upstream's RecheckDeletionTimestamp: read the owner afresh before adopting anything."""
    try:
        fresh = await controller.registry.get(owner_rt, owner.namespace, owner.name)
    except NotFoundError:
        return False
    return fresh.uid == owner.uid and not deleting(fresh)


async def _patch_refs(
    controller: Claimant, rt: ResourceType, stored: StoredObject, refs: list[dict[str, Any]]
) -> StoredObject | None:
    patch = {"metadata": {"ownerReferences": refs, "uid": stored.uid}}
    try:
        return await controller.registry.patch(
            controller.context(), rt, stored.namespace, stored.name, "strategic", patch
        )
    except (NotFoundError, ConflictError, BadRequestError, InvalidError) as exc:
        # Gone, replaced by another object of that name, or refused: nothing of ours to change.
        _log.debug("ownerReferences of %s/%s unchanged: %s", stored.namespace, stored.name, exc)
        return None


async def claim(
    controller: Claimant,
    owner_rt: ResourceType,
    owner: StoredObject,
    selector: LabelSelector,
    rt: ResourceType,
    candidates: list[StoredObject],
) -> list[StoredObject]:
    """The candidates ``owner`` controls after adopting and releasing by ``selector``."""
    claimed: list[StoredObject] = []
    owner_deleting = deleting(owner)
    adoptive: bool | None = None
    for stored in candidates:
        ref = controller_of(stored.object)
        matches = selector.matches(labels_of(stored.object))
        if ref is not None:
            if ref.get("uid") != owner.uid:
                continue
            if matches:
                claimed.append(stored)
            elif not owner_deleting:
                await _patch_refs(controller, rt, stored, [{"$patch": "delete", "uid": owner.uid}])
            continue
        if owner_deleting or not matches or deleting(stored):
            continue
        if stored.namespace != owner.namespace:
            continue
        if adoptive is None:
            adoptive = await _owner_still_adoptive(controller, owner_rt, owner)
        if not adoptive:
            continue
        adopted = await _patch_refs(controller, rt, stored, [controller_ref(owner)])
        if adopted is not None:
            claimed.append(adopted)
    return claimed
