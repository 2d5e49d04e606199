"""The apply semantics: what one committed entry does to the object at its key.

This is a pure function of the entry and the key's current version (DESIGN.md rule 2), so a
projection is a pure fold over the log prefix: rebuilding gives the same bytes, and every
replica decides preconditions identically. Preconditions are decided here, at apply time, and
not by the proposer, so two concurrent writers cannot both pass (contract §9).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from engenho.log import ResourceCommand, Verb
from engenho.projections.records import (
    ApplyOutcome,
    Change,
    EventType,
    Rejection,
    StoredObject,
    object_key,
)

__all__ = ["decide", "stamp", "stamp_removal"]

_SORTED = orjson.OPT_SORT_KEYS
_CREATE = Verb.CREATE


def stamp(obj: dict[str, Any], index: int) -> bytes | None:
    """The stored bytes of ``obj`` with ``metadata.resourceVersion`` set to ``index``.

    Keys are sorted so the bytes do not depend on how the command's dict was built (an entry
    fresh from a proposer and the same entry read back from disk must store the same bytes).
    The command's dict is shared with the log's memory and is never mutated. ``None`` when
    there is no metadata mapping to stamp.
    """
    metadata = obj.get("metadata", {})
    if not isinstance(metadata, dict):
        return None
    stamped = {**obj, "metadata": {**metadata, "resourceVersion": str(index)}}
    return orjson.dumps(stamped, option=_SORTED)


def stamp_removal(prior: StoredObject, index: int) -> StoredObject:
    """The last state of a removed object, stamped with the removal's index (contract §6.1)."""
    data = stamp(prior.object, index)
    assert data is not None  # it was stamped when it was stored
    return StoredObject(
        prior.group,
        prior.resource,
        prior.namespace,
        prior.name,
        prior.uid,
        index,
        data,
        prior.claims,
    )


def _rejected(index: int, reason: Rejection) -> tuple[ApplyOutcome, None]:
    return ApplyOutcome(index, False, reason, None, None), None


def _nobody(_claim: str) -> str | None:
    return None


def decide(
    index: int,
    command: ResourceCommand,
    prior: StoredObject | None,
    holder: Callable[[str], str | None] = _nobody,
) -> tuple[ApplyOutcome, Change | None]:
    """The outcome of applying ``command`` at ``index`` when the key's current version is
    ``prior`` and ``holder`` tells which object key holds a claim, and the change it makes
    (``None`` when it changes nothing)."""
    key = command.key
    if key is None:  # a system command (commands check: no key exactly when system)
        return ApplyOutcome(index, True, None, None, None), None
    pre = command.precondition
    if pre.must_not_exist and prior is not None:
        return _rejected(index, Rejection.ALREADY_EXISTS)
    if pre.resource_version is not None:
        if prior is None:
            return _rejected(index, Rejection.NOT_FOUND)
        if prior.resource_version != pre.resource_version:
            return _rejected(index, Rejection.CONFLICT)
    if pre.uid is not None:
        if prior is None:
            return _rejected(index, Rejection.NOT_FOUND)
        if prior.uid != pre.uid:
            return _rejected(index, Rejection.UID_MISMATCH)
    if prior is None and command.verb is not _CREATE:
        return _rejected(index, Rejection.NOT_FOUND)

    # Commands check that create, update and patch-result carry an object and finalize does
    # not, so "has an object" is exactly "upsert"; a delete without one removes.
    if command.object is not None:
        okey = object_key(key.group, key.resource, key.namespace, key.name)
        for claim in command.claims:
            held_by = holder(claim)
            if held_by is not None and held_by != okey:
                return _rejected(index, Rejection.CLAIMED)
        data = stamp(command.object, index)
        if data is None:
            return _rejected(index, Rejection.INVALID)
        stored = StoredObject(
            key.group,
            key.resource,
            key.namespace,
            key.name,
            command.uid,
            index,
            data,
            command.claims,
        )
        event = EventType.ADDED if prior is None else EventType.MODIFIED
    else:  # delete without an object, or finalize: the object goes
        assert prior is not None
        stored = stamp_removal(prior, index)
        event = EventType.DELETED
    change = Change(index, key.group, key.resource, key.namespace, key.name, event, stored, prior)
    return ApplyOutcome(index, True, None, event, stored), change
