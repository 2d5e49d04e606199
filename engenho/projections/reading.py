"""Queries over the projection tables; each takes a connection the caller owns.

Reads hand out stored bytes without parsing them, so a list of ten thousand objects costs a
query and a record per row, not a JSON parse per row.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import orjson
from attrs import frozen
from sqlalchemy import Select, and_, func, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection

from engenho.projections.deciding import stamp_removal
from engenho.projections.records import Change, EventType, StoredObject
from engenho.projections.statements import ITEM_COLUMNS
from engenho.projections.tables import OBJECT_VERSIONS as V
from engenho.projections.tables import PROJECTION_STATE as S

__all__ = [
    "ProjectionState",
    "list_objects",
    "load_current",
    "read_changes",
    "read_state",
]


@frozen
class ProjectionState:
    applied_index: int
    applied_hash: bytes
    floor: int


async def read_state(connection: AsyncConnection) -> ProjectionState:
    row = (
        await connection.execute(
            select(S.c.applied_index, S.c.applied_hash, S.c.floor).where(S.c.id == 1)
        )
    ).one()
    return ProjectionState(row[0], bytes(row[1]), row[2])


def _items(group: str, resource: str, rows: Iterable[Sequence[Any]]) -> list[StoredObject]:
    return [StoredObject(group, resource, r[1], r[2], r[3], r[0], r[4]) for r in rows]


async def load_current(connection: AsyncConnection) -> list[StoredObject]:
    """Every current version (what :class:`CurrentState` is loaded from at open)."""
    rows = await connection.execute(
        select(V.c.api_group, V.c.resource, *ITEM_COLUMNS, V.c.claims).where(V.c.valid_to.is_(None))
    )
    return [
        StoredObject(r[0], r[1], r[3], r[4], r[5], r[2], bytes(r[6]), tuple(orjson.loads(r[7])))
        for r in rows
    ]


def _scope(query: Select[Any], group: str, resource: str, namespace: str | None) -> Select[Any]:
    query = query.where(V.c.api_group == group, V.c.resource == resource)
    return query if namespace is None else query.where(V.c.namespace == namespace)


async def list_objects(
    connection: AsyncConnection,
    group: str,
    resource: str,
    namespace: str | None,
    *,
    at: int | None,
    after: tuple[str, str] | None,
    limit: int | None,
) -> tuple[list[StoredObject], int]:
    """Objects in (namespace, name) order, current (``at`` None) or as of index ``at``;
    returns the items and how many more follow them (0 when none)."""
    query = _window(select(*ITEM_COLUMNS), group, resource, namespace, at, after)
    if query is None:
        return [], 0
    query = query.order_by(V.c.namespace, V.c.name)
    if limit is not None:
        query = query.limit(limit + 1)
    items = _items(group, resource, await connection.execute(query))
    if limit is None or len(items) <= limit:
        return items, 0
    items = items[:limit]
    last = items[-1]
    counting = _window(
        select(func.count()), group, resource, namespace, at, (last.namespace, last.name)
    )
    assert counting is not None
    remaining = (await connection.execute(counting)).scalar_one()
    return items, int(remaining)


def _window(
    query: Select[Any],
    group: str,
    resource: str,
    namespace: str | None,
    at: int | None,
    after: tuple[str, str] | None,
) -> Select[Any] | None:
    """``query`` restricted to the versions listed at ``at`` after ``after``; None when
    nothing can follow ``after`` in ``namespace``."""
    query = _scope(query, group, resource, namespace)
    if at is None:
        query = query.where(V.c.valid_to.is_(None))
    else:
        # The version valid at ``at``: written at or before it, not yet replaced at it. The
        # ``+ 0`` keeps SQLite's planner (which has no statistics) from reading these ranges
        # through a history index and then sorting; it walks the list index in order instead.
        query = query.where(
            V.c.valid_from + 0 <= at, or_(V.c.valid_to.is_(None), V.c.valid_to + 0 > at)
        )
    if after is not None:
        if namespace is None:
            query = query.where(tuple_(V.c.namespace, V.c.name) > tuple_(*after))
        elif after[0] == namespace:
            # Within one namespace compare names alone: SQLite then seeks the index directly.
            query = query.where(V.c.name > after[1])
        elif after[0] > namespace:
            return None
    return query


async def read_changes(
    connection: AsyncConnection,
    group: str,
    resource: str,
    namespace: str | None,
    *,
    after: int,
    upto: int,
    limit: int,
) -> tuple[list[Change], int]:
    """The changes with index in ``(after, reached]``, in index order, and ``reached``
    (``upto``, or less when more than ``limit`` versions were written in the range).

    A version written at index i is an ADDED change, or MODIFIED when another version of the
    same key ended at i; a version that ended at i with no successor written at i is a
    DELETED change (its last state stamped with i). Index i is unique to one entry, and an
    entry touches one key, so at most one version starts and one ends at each index.
    """
    columns = (V.c.valid_from, V.c.namespace, V.c.name, V.c.uid, V.c.data, V.c.valid_to)
    written = list(
        await connection.execute(
            _scope(select(*columns), group, resource, namespace)
            .where(V.c.valid_from > after, V.c.valid_from <= upto)
            .order_by(V.c.valid_from)
            .limit(limit)
        )
    )
    reached = written[-1][0] if len(written) == limit else upto
    ended = await connection.execute(
        _scope(select(*columns), group, resource, namespace).where(
            and_(V.c.valid_to > after, V.c.valid_to <= reached)
        )
    )
    endings = {(r[1], r[2], r[5]): r for r in ended}
    changes: list[Change] = []
    for row in written:
        obj = StoredObject(group, resource, row[1], row[2], row[3], row[0], row[4])
        before = endings.pop((row[1], row[2], row[0]), None)
        prior = (
            None
            if before is None
            else StoredObject(group, resource, row[1], row[2], before[3], before[0], before[4])
        )
        kind = EventType.ADDED if prior is None else EventType.MODIFIED
        changes.append(Change(row[0], group, resource, row[1], row[2], kind, obj, prior))
    for row in endings.values():
        last = StoredObject(group, resource, row[1], row[2], row[3], row[0], row[4])
        changes.append(
            Change(
                row[5],
                group,
                resource,
                row[1],
                row[2],
                EventType.DELETED,
                stamp_removal(last, row[5]),
                last,
            )
        )
    changes.sort(key=lambda c: c.index)
    return changes, reached
