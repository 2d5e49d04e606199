"""The records the projections hand out: stored objects, changes, apply outcomes, pages.

A :class:`StoredObject` carries the object's JSON bytes exactly as stored (resourceVersion
stamped); parsing them is left to whoever needs the dict (``.object``, cached), because most
readers (lists, watches) only forward the bytes.
"""

from __future__ import annotations

import enum
import functools
from typing import Any

import orjson
from attrs import field, frozen

__all__ = [
    "ApplyOutcome",
    "Change",
    "EventType",
    "Page",
    "Rejection",
    "StoredObject",
    "object_key",
]


def object_key(group: str, resource: str, namespace: str, name: str) -> str:
    """The one-column identity of an object (the version is not part of it)."""
    return f"{group}/{resource}/{namespace}/{name}"


class EventType(enum.StrEnum):
    """What an applied entry did to its object, as a watch event names it."""

    ADDED = "ADDED"
    MODIFIED = "MODIFIED"
    DELETED = "DELETED"


class Rejection(enum.StrEnum):
    """Why a committed entry changed nothing (decided at apply time, so it is the same on
    every replica and on every rebuild)."""

    ALREADY_EXISTS = "AlreadyExists"
    """``must_not_exist`` and the key exists."""
    NOT_FOUND = "NotFound"
    """The key is absent but the verb or a precondition needs it."""
    CONFLICT = "Conflict"
    """The resourceVersion precondition names an older version."""
    UID_MISMATCH = "UIDMismatch"
    """The uid precondition names another incarnation of the object."""
    CLAIMED = "Claimed"
    """A claim of the command is held by another object."""
    INVALID = "Invalid"
    """The object has no ``metadata`` mapping to stamp (a proposer bug; never applied)."""


@frozen
class StoredObject:
    """One version of an object as the projection holds it."""

    group: str
    resource: str
    namespace: str
    name: str
    uid: str
    resource_version: int
    """The log index of the entry that wrote this version."""
    data: bytes = field(repr=lambda b: f"<{len(b)} bytes>")
    """The object's JSON (keys sorted, ``metadata.resourceVersion`` stamped)."""
    claims: tuple[str, ...] = ()
    """The unique names this version holds (from the command that wrote it)."""

    @functools.cached_property
    def object(self) -> dict[str, Any]:
        """The parsed object (parsed on first use; treat it as read-only)."""
        value: dict[str, Any] = orjson.loads(self.data)
        return value

    @property
    def key(self) -> str:
        return object_key(self.group, self.resource, self.namespace, self.name)


@frozen
class Change:
    """One change to one object, at the log index that made it.

    For ``DELETED`` the ``object`` is the last state stamped with the deletion's index and
    ``prior`` the last state as it was stored; for ``MODIFIED`` ``prior`` is the version it
    replaced (for selector transitions); for ``ADDED`` it is ``None``.
    """

    index: int
    group: str
    resource: str
    namespace: str
    name: str
    type: EventType
    object: StoredObject
    prior: StoredObject | None


@frozen
class ApplyOutcome:
    """What applying one committed entry did, for the proposer waiting on it.

    ``applied`` is false when the entry was rejected (``reason`` says why; nothing changed).
    ``object`` is the stored result of an upsert, or the stamped last state of a removal.
    """

    index: int
    applied: bool
    reason: Rejection | None
    event: EventType | None
    object: StoredObject | None


@frozen
class Page:
    """A page of a list, read at one snapshot index."""

    items: list[StoredObject]
    index: int
    """The index the page was read at: the list's resourceVersion (and the ``at`` of the
    next page)."""
    remaining: int = 0
    """How many items follow the last one at this snapshot (continue with ``after`` = its
    position): the list's ``remainingItemCount``."""

    @property
    def more(self) -> bool:
        return self.remaining > 0
