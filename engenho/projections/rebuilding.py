"""Rebuild the projections from the log: drop every projection table and apply the log again.

The result must have the same digest as the projections it replaced (DESIGN.md rule 1; contract
§21 item 23). A rebuild that is interrupted leaves a consistent, partly applied projection
(every batch commits with its applied index), which the next open simply continues.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from attrs import frozen
from sqlalchemy import func, select

from engenho.log import LogStore
from engenho.projections.applying import apply_batch
from engenho.projections.current import CurrentState
from engenho.projections.database import create_engine, snapshot, writer
from engenho.projections.digest import compute_digest
from engenho.projections.migrating import downgrade, upgrade
from engenho.projections.tables import OBJECT_VERSIONS as V

__all__ = ["RebuildProgress", "RebuildSummary", "rebuild"]

RebuildProgress = Callable[[int, int], None]
"""Called after each batch with (entries applied so far, entries to apply)."""

REBUILD_BATCH = 4096


@frozen
class RebuildSummary:
    entries: int
    """Log entries applied (the commit index of the log)."""
    objects: int
    """Objects in the rebuilt state."""
    seconds: float
    digest: str


async def rebuild(
    database_url: str,
    log: LogStore,
    *,
    progress: RebuildProgress | None = None,
    batch_entries: int = REBUILD_BATCH,
) -> RebuildSummary:
    """Drop the projections in ``database_url`` and apply every committed entry of ``log``.

    Nothing else may use the database meanwhile (the CLI holds the log's lock, which keeps a
    server out).
    """
    started = time.perf_counter()
    total = log.commit_index
    engine = create_engine(database_url)
    try:
        await downgrade(engine)
        await upgrade(engine)
        current = CurrentState()
        async with writer(engine) as connection:
            index = 1
            while index <= total:
                entries = await log.read(index, total, limit=batch_entries)
                applied = await apply_batch(connection, entries, current)
                current.apply(applied.changes)
                index = entries[-1].index + 1
                if progress is not None:
                    progress(entries[-1].index, total)
        async with snapshot(engine) as connection:
            digest = await compute_digest(connection)
            objects = (
                await connection.execute(
                    select(func.count()).select_from(V).where(V.c.valid_to.is_(None))
                )
            ).scalar_one()
    finally:
        await engine.dispose()
    return RebuildSummary(total, objects, time.perf_counter() - started, digest)
