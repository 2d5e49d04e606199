"""Projections: the SQL state derived from the log, serving reads, outcomes and watches.

One applier task consumes committed entries strictly in index order and applies them in
batches, each in one transaction with the applied index (``applying``). After each commit it
publishes, synchronously, the batch's changes to the in-memory current state (``current``),
its outcomes (``progress``) and its changes to the feed (``feed``). Reads of the current state
come from memory; reads at an exact older index, history and the digest go to the database
through their own pooled connections. The engine is owned here and disposed on close.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import logging
from collections.abc import AsyncGenerator
from typing import Self, cast

from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import AsyncEngine

from engenho.log import Entry, LogStore
from engenho.projections.applying import AppliedBatch, apply_batch
from engenho.projections.current import CurrentState
from engenho.projections.database import create_engine, snapshot, writer
from engenho.projections.digest import compute_digest
from engenho.projections.errors import (
    HistoryExpired,
    NotYetApplied,
    ProjectionClosed,
    ProjectionFailed,
    ProjectionMismatch,
)
from engenho.projections.feed import ChangeFeed, Subscription
from engenho.projections.migrating import upgrade
from engenho.projections.options import ProjectionOptions
from engenho.projections.progress import ApplyProgress
from engenho.projections.reading import (
    ProjectionState,
    list_objects,
    load_current,
    read_changes,
    read_state,
)
from engenho.projections.records import ApplyOutcome, Change, Page, StoredObject, object_key
from engenho.projections.tables import OBJECT_VERSIONS as V
from engenho.projections.tables import PROJECTION_STATE as S

__all__ = ["Projections"]

_log = logging.getLogger("engenho.projections")


class Projections:
    """The projections of one log. Create with :meth:`open`; close with :meth:`close`."""

    def __init__(
        self,
        engine: AsyncEngine,
        log: LogStore,
        state: ProjectionState,
        options: ProjectionOptions,
        current: CurrentState,
    ) -> None:
        self.options = options
        self._current = current
        self._engine = engine
        self._log = log
        self._floor = state.floor
        self._progress = ApplyProgress(state.applied_index, options.recent_outcomes)
        self._feed = ChangeFeed(
            state.applied_index,
            ring_size=options.recent_changes,
            history=self._read_history,
            floor=lambda: self._floor,
        )
        # The applier and compaction are the only writers; on SQLite they must take turns.
        self._write_lock = asyncio.Lock()
        self._writing = False
        self._stopping = False
        self._closed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ opening and closing

    @classmethod
    async def open(
        cls,
        database_url: str,
        log: LogStore,
        *,
        options: ProjectionOptions | None = None,
    ) -> Projections:
        """Migrate the schema, check it belongs to ``log``, and start applying from the
        applied index + 1."""
        engine = create_engine(database_url)
        try:
            await upgrade(engine)
            async with snapshot(engine) as connection:
                state = await read_state(connection)
                current = CurrentState(await load_current(connection))
            await _check_belongs(state, log)
        except BaseException:
            await engine.dispose()
            raise
        projections = cls(engine, log, state, options or ProjectionOptions(), current)
        projections._task = asyncio.create_task(
            projections._apply_loop(), name="projection-applier"
        )
        return projections

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop the applier (a batch being written is finished first), end every
        subscription, and dispose of the engine."""
        if self._stopping:
            await self._closed.wait()
            return
        self._stopping = True
        task = self._task
        if task is not None:
            if not self._writing:
                task.cancel()  # it is waiting for entries: nothing is half-done
            with contextlib.suppress(asyncio.CancelledError):
                await task
        error = ProjectionClosed("the projections are closed")
        self._progress.fail(error)
        self._feed.close()
        await self._engine.dispose()
        self._closed.set()

    # ------------------------------------------------------------------ applying

    async def _apply_loop(self) -> None:
        log = self._log
        limit = self.options.max_batch_entries
        try:
            async with writer(self._engine) as connection:
                # committed() is an async generator; close it explicitly when we stop.
                entries = cast(
                    AsyncGenerator[Entry, None], log.committed(self._progress.applied_index + 1)
                )
                async with contextlib.aclosing(entries):
                    batch: list[Entry] = []
                    async for entry in entries:
                        batch.append(entry)
                        # Take what is committed already (group commit); apply when caught up.
                        if entry.index < log.commit_index and len(batch) < limit:
                            continue
                        async with self._write_lock:
                            self._writing = True
                            try:
                                applied = await apply_batch(connection, batch, self._current)
                            finally:
                                self._writing = False
                        self._publish(applied, batch[-1])
                        batch = []
                        if self._stopping:
                            return
            if not self._stopping:
                self._fail(ProjectionClosed("the log was closed"))
        except Exception as exc:
            _log.exception("the projection applier failed")
            error = ProjectionFailed(f"the projection applier failed: {exc!r}")
            error.__cause__ = exc
            self._fail(error)

    def _publish(self, applied: AppliedBatch, last: Entry) -> None:
        # One step, no await: readers see the current state, the applied index and the feed
        # move together.
        self._current.apply(applied.changes)
        self._progress.advance(last.index, applied.outcomes)
        self._feed.publish(applied.changes, last.index)

    def _fail(self, error: BaseException) -> None:
        self._progress.fail(error)
        self._feed.close(error)

    # ------------------------------------------------------------------ progress

    @property
    def applied_index(self) -> int:
        return self._progress.applied_index

    @property
    def floor(self) -> int:
        """The oldest index reads at an exact index and watches can start from."""
        return self._floor

    # The timeout parameters mirror asyncio.wait_for: callers pass per-request deadlines.
    async def wait_for(self, index: int, timeout: float | None = None) -> None:  # noqa: ASYNC109
        """Return once the applied index is at least ``index``; ``TimeoutError`` after
        ``timeout`` seconds."""
        await self._progress.wait_for(index, timeout)

    async def wait_outcome(
        self,
        index: int,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> ApplyOutcome:
        """The outcome of applying entry ``index`` (waiting for it if needed)."""
        return await self._progress.wait_outcome(index, timeout)

    # ------------------------------------------------------------------ reading

    def _check_open(self) -> None:
        if self._stopping:
            raise ProjectionClosed("the projections are closed")

    async def get(
        self, group: str, resource: str, namespace: str, name: str
    ) -> StoredObject | None:
        """The current version of an object, or ``None``."""
        self._check_open()
        return self._current.get(object_key(group, resource, namespace, name))

    def claims(self, prefix: str) -> dict[str, str]:
        """Claims held now whose names start with ``prefix``, and the key holding each."""
        return self._current.claims(prefix)

    async def list(
        self,
        group: str,
        resource: str,
        namespace: str | None,
        *,
        at: int | None = None,
        after: tuple[str, str] | None = None,
        limit: int | None = None,
    ) -> Page:
        """Objects in (namespace, name) order after the ``after`` position, at most ``limit``.

        With ``at=None`` the current state, read at the applied index (``Page.index``) in the
        same snapshot; with ``at=N`` the state as of index N exactly, so later pages of one
        list are a consistent snapshot while writes go on. ``namespace=None`` lists every
        namespace.
        """
        self._check_open()
        if limit is not None and limit < 1:
            raise ValueError(f"limit must be positive or None (no limit), not {limit}")
        applied = self.applied_index
        if at is None or at == applied:
            items, remaining = self._current.list(group, resource, namespace, after, limit)
            return Page(items, applied, remaining)
        async with snapshot(self._engine) as connection:
            state = await read_state(connection)
            if at is not None:
                if at < state.floor:
                    raise HistoryExpired(at, state.floor)
                if at > state.applied_index:
                    raise NotYetApplied(at, state.applied_index)
            items, remaining = await list_objects(
                connection, group, resource, namespace, at=at, after=after, limit=limit
            )
        return Page(items, state.applied_index if at is None else at, remaining)

    def subscribe(
        self,
        group: str,
        resource: str,
        namespace: str | None,
        after: int,
        *,
        buffer: int | None = None,
    ) -> Subscription:
        """Changes to ``resource`` objects (in ``namespace``, or all when ``None``) with an
        index above ``after``, in index order. Registration is immediate; iterate it."""
        return self._feed.subscribe(
            group, resource, namespace, after, buffer or self.options.subscriber_buffer
        )

    async def _read_history(
        self, group: str, resource: str, namespace: str | None, after: int, upto: int
    ) -> tuple[builtins.list[Change], int]:
        async with snapshot(self._engine) as connection:
            state = await read_state(connection)
            if after < state.floor:
                raise HistoryExpired(after, state.floor)
            return await read_changes(
                connection,
                group,
                resource,
                namespace,
                after=after,
                upto=upto,
                limit=self.options.history_window,
            )

    async def digest(self) -> str:
        """The digest of the projected state at the applied index (see ``digest``)."""
        self._check_open()
        async with snapshot(self._engine) as connection:
            return await compute_digest(connection)

    # ------------------------------------------------------------------ history

    async def compact(self, before_index: int) -> None:
        """Forget versions replaced or removed at or before ``before_index`` and raise the
        floor to it: reads at, and watches from, older indices then raise
        :class:`HistoryExpired`. Never run automatically (yet)."""
        self._check_open()
        if before_index > self.applied_index:
            raise NotYetApplied(before_index, self.applied_index)
        async with self._write_lock, writer(self._engine) as connection:
            async with connection.begin():
                floor = (await read_state(connection)).floor
                if before_index <= floor:
                    return
                await connection.execute(
                    delete(V).where(V.c.valid_to.is_not(None), V.c.valid_to <= before_index)
                )
                await connection.execute(update(S).where(S.c.id == 1).values(floor=before_index))
            self._floor = before_index


async def _check_belongs(state: ProjectionState, log: LogStore) -> None:
    """Refuse a database built from another log, or from entries this log no longer has."""
    index = state.applied_index
    if index == 0:
        return
    if index > log.last_index:
        raise ProjectionMismatch(
            f"the projections have applied {index} entries but the log ends at "
            f"{log.last_index}; rebuild them from the log"
        )
    entry = await log.entry(index)
    if entry.hash != state.applied_hash:
        raise ProjectionMismatch(
            f"entry {index} of the log has hash {entry.hash.hex()[:16]}…, but the projections "
            f"applied one with hash {state.applied_hash.hex()[:16]}…; rebuild them from the log"
        )
