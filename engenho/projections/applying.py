"""Applying a batch of committed entries: one transaction for the rows and the applied index.

A batch costs a few round trips whatever its size (aiosqlite hops to its thread for each
call): one ``executemany`` closing the versions the batch replaced, one ``executemany``
inserting the versions it wrote, one update of the applied index, one commit. The current
versions the entries are decided against come from the in-memory :class:`CurrentState`, which
always equals the tables' current rows at the applied index. Because the applied index
commits with the rows, a crash leaves either the whole batch or none of it, and restarting at
applied + 1 never applies an entry twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from attrs import frozen
from sqlalchemy.ext.asyncio import AsyncConnection

from engenho.log import Entry
from engenho.projections.current import CurrentState
from engenho.projections.deciding import decide
from engenho.projections.records import ApplyOutcome, Change, EventType, StoredObject, object_key
from engenho.projections.statements import INSERT_COLUMNS, statements

__all__ = ["AppliedBatch", "apply_batch", "fold_batch"]


@frozen
class AppliedBatch:
    """What a batch did: an outcome per entry, the changes in index order, and the rows."""

    outcomes: list[ApplyOutcome]
    changes: list[Change]
    inserts: list[tuple[Any, ...]]
    """Rows of ``object_versions`` in column order."""
    closes: list[tuple[int, int]]
    """``(valid_from, valid_to)`` of versions written before the batch and ended in it."""


def fold_batch(entries: Sequence[Entry], current: CurrentState) -> AppliedBatch:
    """Decide every entry in order over ``current`` (the state before the batch), overlaying
    the batch's own writes so a key touched twice, or a claim released and taken again within
    the batch, is decided against its in-batch state."""
    versions: dict[str, StoredObject | None] = {}
    holders: dict[str, str | None] = {}  # claim -> key, for claims the batch changed

    def version(okey: str) -> StoredObject | None:
        return versions[okey] if okey in versions else current.get(okey)

    def holder(claim: str) -> str | None:
        return holders[claim] if claim in holders else current.holder(claim)

    written: dict[str, int] = {}  # key -> position in ``inserts`` of its in-batch version
    outcomes: list[ApplyOutcome] = []
    changes: list[Change] = []
    inserts: list[tuple[Any, ...]] = []
    closes: list[tuple[int, int]] = []
    for entry in entries:
        command = entry.command
        key = command.key
        if key is None:
            outcome, _ = decide(entry.index, command, None)
            outcomes.append(outcome)
            continue
        okey = object_key(key.group, key.resource, key.namespace, key.name)
        prior = version(okey)
        outcome, change = decide(entry.index, command, prior, holder)
        outcomes.append(outcome)
        if change is None:
            continue
        changes.append(change)
        if prior is not None:
            for claim in prior.claims:
                holders[claim] = None
            position = written.pop(okey, None)
            if position is not None:  # replaced within the batch: written already closed
                row = inserts[position]
                inserts[position] = (row[0], entry.index, *row[2:])
            else:
                closes.append((prior.resource_version, entry.index))
        if change.type is EventType.DELETED:
            versions[okey] = None
            continue
        stored = change.object
        versions[okey] = stored
        for claim in stored.claims:
            holders[claim] = okey
        written[okey] = len(inserts)
        inserts.append(
            (
                entry.index,
                None,
                okey,
                key.group,
                key.resource,
                key.namespace,
                key.name,
                stored.uid,
                stored.data,
                orjson.dumps(list(stored.claims)).decode(),
            )
        )
    return AppliedBatch(outcomes, changes, inserts, closes)


async def apply_batch(
    connection: AsyncConnection, entries: Sequence[Entry], current: CurrentState
) -> AppliedBatch:
    """Apply consecutive committed ``entries`` (the first follows the applied index) in one
    transaction on ``connection``, and commit. ``current`` is the state before the batch; the
    caller updates it with the batch's changes once this returns (the commit succeeded)."""
    last = entries[-1]
    sql = statements(connection.dialect)
    batch = fold_batch(entries, current)
    async with connection.begin():
        # Close replaced versions before inserting their successors: the unique index on the
        # current version of a key must hold after every statement.
        if batch.closes:
            await connection.exec_driver_sql(
                sql.close.sql, sql.close.many(sql.CLOSE_NAMES, batch.closes)
            )
        if batch.inserts:
            await connection.exec_driver_sql(
                sql.insert.sql, sql.insert.many(INSERT_COLUMNS, batch.inserts)
            )
        await connection.exec_driver_sql(
            sql.meta.sql, sql.meta.parameters(sql.META_NAMES, (last.index, last.hash, 1))
        )
    return batch
