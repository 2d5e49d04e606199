"""LogStore: the durable, attested, append-only log of one node.

Writes are batched by **group commit**: every append waiting while the previous batch was being
made durable joins the next batch, which costs one ``write`` and one ``fdatasync``. An append
returns only after its entries are durable (DESIGN.md rule 5). Batches are pipelined: the next
one is built on the event loop while the writer thread writes and syncs the current one.

The store is shaped for Raft: entries carry a term, an *uncommitted* suffix can be truncated
(never a committed entry), the commit index is persisted, and followers can append entries
built elsewhere (``append_entries``) after their hashes and links are checked.

On open the active segment is read whole: a torn last record (a crash mid-write) is truncated;
a damaged record followed by readable ones, or damage at or below the persisted commit index,
is corruption and the store refuses to open, naming the entry (``docs/log-format.md``).
"""

from __future__ import annotations

import asyncio
import bisect
import concurrent.futures
import contextlib
import fcntl
import io
import logging
import os
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Self

from attrs import Factory, define, frozen

from engenho.log.command import COMMAND_SCHEMA_VERSION, ResourceCommand, encode_command
from engenho.log.commit_state import CommitState
from engenho.log.entry import (
    GENESIS_HASH,
    MAX_COMMAND,
    RECORD_OVERHEAD,
    Entry,
    seal_record,
    split_payload,
)
from engenho.log.errors import (
    CommittedTruncationError,
    CorruptLogError,
    EncodingError,
    IndexOutOfRangeError,
    LogClosedError,
    LogError,
    LogFailedError,
    LogLockedError,
    LogUnavailableError,
)
from engenho.log.framing import (
    SEGMENT_HEADER,
    FrameScanner,
    decode_segment_header,
    find_valid_frame,
)
from engenho.log.segments import Segment, fsync_directory, list_segments, read_term, walk_segment

__all__ = ["BatchObserver", "DurableListener", "LogOptions", "LogStats", "LogStore"]

_log = logging.getLogger("engenho.log")

BatchObserver = Callable[[int, int, float], None]
"""Called after each durable batch with (entries, bytes, seconds spent in write+fdatasync)."""

DurableListener = Callable[[int], None]
"""Called with the index of the last entry of each durable batch, before its appenders resume."""


@frozen
class LogOptions:
    segment_bytes: int = 64 * 1024 * 1024
    """A segment is sealed and a new one started once it reaches this size."""
    max_batch_entries: int = 4096
    max_batch_bytes: int = 8 * 1024 * 1024
    max_pending_entries: int = 65536
    """Appends wait (backpressure) while this many entries are queued."""
    split_backlog: int = 0
    """When nothing is being written and at least this many entries are queued, the older half
    is written at once and the rest is built while it syncs; from then on the appenders form two
    groups, one syncing while the other is encoded and built. That hides the fsync behind the
    CPU work only when an fsync is much shorter than the CPU time of half the backlog, and the
    extra batches cost CPU: on a shared 2-core machine it gained nothing measurable at 256
    appenders and cost about a tenth more CPU per append, hence off (0) by default."""
    recent_entries: int = 4096
    """Entries kept in memory so live subscribers never read the disk."""
    commit_flush_interval: float = 0.05
    """The persisted commit index trails the live one by at most about this many seconds."""


@define
class LogStats:
    batches: int = 0
    entries: int = 0
    bytes: int = 0
    sync_seconds: float = 0.0


@define
class _Proposal:
    future: asyncio.Future[list[Entry]]
    term: int
    commands: Sequence[ResourceCommand]
    encoded: Sequence[bytes]
    entries: Sequence[Entry]
    """Prebuilt entries (follower path); exclusive with ``commands``."""
    size: int
    nbytes: int
    built: list[Entry]
    """The entries once built (an empty list until then, and again if its batch is rebuilt)."""


def _settle(future: asyncio.Future[list[Entry]], error: BaseException) -> None:
    # A caller that was cancelled has stopped listening; its future must not be set again.
    if not future.done():
        future.set_exception(error)


@define
class _Batch:
    """Proposals laid out as records, chained after everything built before them.

    A batch is built on the event loop while the batch before it is being written, and is
    written with one ``write`` and one ``fdatasync`` once that one is durable.
    """

    proposals: list[_Proposal] = Factory(list)
    entries: list[Entry] = Factory(list)
    parts: list[bytes] = Factory(list)
    """The records, in pieces (``seal_record``), joined once when the batch is written."""
    offsets: list[int] = Factory(list)
    """Where each record starts, from the start of the batch."""
    nbytes: int = 0
    taken: int = 0
    taken_bytes: int = 0
    """Entries and command bytes taken from the queue (with proposals that failed): the batch
    limits count these."""
    outcome: float | BaseException | None = None
    """Once the thread is done: the seconds the write and fdatasync took, or what they raised."""


class LogStore:
    """The log of one node. Create with :meth:`open`; close with :meth:`close`."""

    def __init__(self, directory: Path, options: LogOptions) -> None:
        self.directory = directory
        self.options = options
        self.stats = LogStats()
        self._observers: list[BatchObserver] = []
        self._durable_listeners: list[DurableListener] = []
        self._segments: list[Segment] = []
        self._firsts: list[int] = []
        self._fd = -1
        self._lock_fd = -1
        self._read_fds: dict[Path, int] = {}
        self._commit_state: CommitState | None = None
        self._last_index = 0
        self._last_term = 0
        self._last_hash = GENESIS_HASH
        self._tail_index = 0
        self._tail_term = 0
        self._tail_hash = GENESIS_HASH
        """Where the next built entry goes: after the last durable entry and every entry built
        since (being written, or waiting in the following batch)."""
        self._commit_index = 0
        self._recent: list[Entry] = []
        self._queue: list[_Proposal] = []
        self._queued_entries = 0
        self._wake = asyncio.Event()
        self._space = asyncio.Event()
        self._commit_event = asyncio.Event()
        self._commit_dirty = asyncio.Event()
        self._io_lock = asyncio.Lock()
        self._truncating = 0
        self._writing: _Batch | None = None
        self._following: _Batch | None = None
        self._taking: list[_Proposal] = []
        self._loop = asyncio.get_running_loop()
        # One thread of its own, so that log writes never queue behind other blocking work.
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="engenho-log-writer"
        )
        self._failed: BaseException | None = None
        self._closing = False
        self._closed_event = asyncio.Event()
        self._fd_lock = threading.Lock()
        self._tasks: list[asyncio.Task[None]] = []

    # ------------------------------------------------------------------ opening and closing

    @classmethod
    async def open(cls, directory: Path, options: LogOptions | None = None) -> LogStore:
        """Open (creating if needed) the log in ``directory`` and recover it."""
        store = cls(Path(directory), options or LogOptions())
        try:
            await asyncio.to_thread(store._recover)
        except BaseException:
            store._release_files()
            store._executor.shutdown(wait=False)
            raise
        store._tail_index, store._tail_hash, store._tail_term = (
            store._last_index,
            store._last_hash,
            store._last_term,
        )
        store._tasks = [
            asyncio.create_task(store._write_loop(), name="log-writer"),
            asyncio.create_task(store._flush_loop(), name="log-commit-flusher"),
        ]
        return store

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Finish queued appends, persist the commit index, release the directory."""
        if self._closing:
            await self._closed_event.wait()
            return
        self._closing = True
        self._wake.set()
        self._commit_dirty.set()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        # Idle unless the writer died with a write in flight: that write must end before the
        # files are closed under it.
        await asyncio.to_thread(self._executor.shutdown)
        if self._commit_state is not None and self._commit_state.persisted < self._commit_index:
            with contextlib.suppress(OSError):
                await asyncio.to_thread(self._commit_state.write, self._commit_index)
        self._release_files()
        self._closed_event.set()
        self._commit_event.set()
        self._space.set()

    def _release_files(self) -> None:
        for fd in [self._fd, *self._read_fds.values()]:
            if fd >= 0:
                os.close(fd)
        self._fd = -1
        self._read_fds.clear()
        if self._commit_state is not None:
            self._commit_state.close()
            self._commit_state = None
        if self._lock_fd >= 0:
            os.close(self._lock_fd)  # closing the descriptor releases the flock
            self._lock_fd = -1

    def _lock(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock_fd = os.open(self.directory / "LOCK", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            holder = os.pread(self._lock_fd, 32, 0).decode(errors="replace").strip()
            raise LogLockedError(
                f"the log in {self.directory} is in use by another process (pid {holder or '?'})"
            ) from exc
        os.ftruncate(self._lock_fd, 0)
        os.pwrite(self._lock_fd, f"{os.getpid()}\n".encode(), 0)

    def _recover(self) -> None:
        self._lock()
        for tmp in self.directory.glob("*.idx.tmp"):
            tmp.unlink()
        self._commit_state = CommitState(self.directory / "commit")
        committed = self._commit_state.persisted
        found = list_segments(self.directory)
        if not found:
            self._segments = [Segment.create(self.directory, 1, GENESIS_HASH)]
            self._firsts = [1]
            self._open_active()
            return
        expected_first, expected_prev, term = found[0][0], GENESIS_HASH, 0
        if expected_first != 1:
            raise CorruptLogError(
                "the first segment does not start at index 1",
                index=1,
                segment=found[0][1],
                offset=0,
            )
        for first, path in found[:-1]:
            self._check_name(first, expected_first, path)
            segment, term = Segment.load_sealed(
                path, expected_first=expected_first, expected_prev=expected_prev, prev_term=term
            )
            self._segments.append(segment)
            expected_first, expected_prev = segment.last_index + 1, segment.last_hash
        first, path = found[-1]
        self._check_name(first, expected_first, path)
        if self._abandoned_rotation(path):
            _log.warning("removing %s: a segment left empty by a crash during rotation", path.name)
            path.unlink()
            fsync_directory(self.directory)
            active = self._segments[-1]
            active.remove_sidecar()
        else:
            active = self._recover_active(path, expected_first, expected_prev, term)
            self._segments.append(active)
            if active.count:  # otherwise the last term is the sealed segment's
                term = read_term(path, active.offsets[-1])
        active = self._segments[-1]
        self._firsts = [s.first_index for s in self._segments]
        self._last_index = active.last_index if active.count else active.first_index - 1
        self._last_hash = active.last_hash
        self._last_term = term
        if committed > self._last_index:
            raise CorruptLogError(
                f"commit index {committed} was recorded but the log ends at {self._last_index}: "
                "committed entries are missing",
                index=self._last_index + 1,
                segment=active.path,
                offset=active.size,
            )
        self._commit_index = committed
        self._open_active()

    @staticmethod
    def _check_name(first: int, expected: int, path: Path) -> None:
        if first != expected:
            raise CorruptLogError(
                f"segment file name says it starts at {first}, but the log continues at {expected}",
                index=expected,
                segment=path,
                offset=0,
            )

    def _abandoned_rotation(self, path: Path) -> bool:
        """A last segment with a damaged header and no records was being created at a crash."""
        if not self._segments:
            return False
        data = path.read_bytes()
        if decode_segment_header(data[: SEGMENT_HEADER.size]) is not None:
            return False
        return find_valid_frame(data, 0) is None

    def _recover_active(self, path: Path, first: int, prev: bytes, prev_term: int) -> Segment:
        walked = walk_segment(path, expected_first=first, expected_prev=prev, prev_term=prev_term)
        size = path.stat().st_size
        damage = walked.damage
        if damage is not None:
            index = walked.next_index
            if not damage.is_torn_tail:
                raise CorruptLogError(
                    f"{damage.problem.value}, and readable records follow at byte "
                    f"{damage.later_frame_offset}: this is corruption, not a torn write",
                    index=index,
                    segment=path,
                    offset=damage.offset,
                )
            committed = self._commit_state.persisted if self._commit_state else 0
            if index <= committed:
                raise CorruptLogError(
                    f"{damage.problem.value}, but entry {index} is at or below the commit "
                    f"index {committed}",
                    index=index,
                    segment=path,
                    offset=damage.offset,
                )
            _log.warning(
                "truncating a torn tail of %d bytes at byte %d of %s (entry %d never completed)",
                size - damage.offset,
                damage.offset,
                path.name,
                index,
            )
            with path.open("rb+") as file:
                file.truncate(damage.offset)
                os.fdatasync(file.fileno())
            size = damage.offset
        segment = Segment(path, walked.header, walked.offsets, size, walked.last_hash)
        segment.remove_sidecar()
        return segment

    def _open_active(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
        self._fd = os.open(self._segments[-1].path, os.O_WRONLY | os.O_APPEND)

    # ------------------------------------------------------------------ state

    @property
    def last_index(self) -> int:
        return self._last_index

    @property
    def last_term(self) -> int:
        return self._last_term

    @property
    def last_hash(self) -> bytes:
        return self._last_hash

    @property
    def commit_index(self) -> int:
        return self._commit_index

    @property
    def persisted_commit_index(self) -> int:
        return self._commit_state.persisted if self._commit_state else 0

    @property
    def healthy(self) -> bool:
        """Open, and no write has failed in a way that needs a reopen."""
        return self._failed is None and not self._closing

    @property
    def segment_paths(self) -> list[Path]:
        return [s.path for s in self._segments]

    def add_batch_observer(self, observer: BatchObserver) -> None:
        self._observers.append(observer)

    def add_durable_listener(self, listener: DurableListener) -> None:
        """Call ``listener`` on the event loop with the last index of every durable batch.

        It runs before the batch's appenders are resumed (a one-voter group commits there).
        """
        self._durable_listeners.append(listener)

    def _check_open(self) -> None:
        if self._closing:
            raise LogClosedError("the log is closed")
        if self._failed is not None:
            raise LogFailedError(f"the log failed and must be reopened: {self._failed}")

    # ------------------------------------------------------------------ appending

    async def append(self, commands: Sequence[ResourceCommand], *, term: int) -> list[Entry]:
        """Append commands at ``term``; return their entries once durable.

        Encoding happens here, so a command with no canonical form, or too large for a record
        frame, raises :class:`EncodingError` before anything is queued.
        """
        self._check_open()
        if not commands:
            return []
        encoded = [encode_command(c) for c in commands]
        nbytes = 0
        for data in encoded:
            if len(data) > MAX_COMMAND:
                raise EncodingError(
                    f"a command of {len(data)} bytes is over the log's limit of {MAX_COMMAND}"
                )
            nbytes += len(data)
        future: asyncio.Future[list[Entry]] = self._loop.create_future()
        proposal = _Proposal(future, term, commands, encoded, (), len(encoded), nbytes, [])
        if self._queued_entries >= self.options.max_pending_entries:
            await self._wait_for_space()
            self._check_open()
        self._enqueue(proposal)
        return await future

    async def append_entries(self, entries: Sequence[Entry]) -> None:
        """Append entries built by another node (a Raft follower's path).

        The first entry must follow the current last entry; each entry's hash and link are
        checked before anything is written.
        """
        self._check_open()
        if not entries:
            return
        future: asyncio.Future[list[Entry]] = self._loop.create_future()
        nbytes = sum(len(e.command_bytes) for e in entries)
        proposal = _Proposal(future, entries[0].term, (), (), entries, len(entries), nbytes, [])
        if self._queued_entries >= self.options.max_pending_entries:
            await self._wait_for_space()
            self._check_open()
        self._enqueue(proposal)
        await future

    async def _wait_for_space(self) -> None:
        while self._queued_entries >= self.options.max_pending_entries and not self._closing:
            self._space.clear()
            await self._space.wait()

    def _enqueue(self, proposal: _Proposal) -> None:
        self._queue.append(proposal)
        self._queued_entries += proposal.size
        self._wake.set()

    def _take(self, batch: _Batch, count: int | None = None) -> None:
        """Move the oldest queued proposals into ``batch`` within the batch limits.

        At least one proposal goes into an empty batch however large it is. ``count`` limits
        how many entries are taken.
        """
        opts = self.options
        limit = opts.max_batch_entries if count is None else min(count, opts.max_batch_entries)
        if not batch.proposals:  # what failed alone does not count against the limits
            batch.taken = batch.taken_bytes = 0
        queue = self._queue
        taken = 0
        entries, nbytes = batch.taken, batch.taken_bytes
        for proposal in queue:
            if (entries or taken) and (
                entries + proposal.size > limit or nbytes + proposal.nbytes > opts.max_batch_bytes
            ):
                break
            entries += proposal.size
            nbytes += proposal.nbytes
            taken += 1
        if not taken:
            return
        proposals = queue[:taken]
        del queue[:taken]
        self._queued_entries -= entries - batch.taken
        batch.taken, batch.taken_bytes = entries, nbytes
        self._space.set()
        if self._failed is not None:
            error = LogFailedError(f"the log failed and must be reopened: {self._failed}")
            for proposal in proposals:
                _settle(proposal.future, error)
            return
        self._taking = proposals  # out of the queue and not yet in the batch: see _write_loop
        self._build(batch, proposals)
        self._taking = []

    def _build(self, batch: _Batch, proposals: list[_Proposal]) -> None:
        """Assign indices and hashes after the tail; proposals that cannot go on fail alone."""
        index, prev, last_term = self._tail_index, self._tail_hash, self._tail_term
        built, flat, parts, offsets = batch.proposals, batch.entries, batch.parts, batch.offsets
        position = batch.nbytes
        for proposal in proposals:
            if proposal.term < last_term:
                _settle(
                    proposal.future,
                    ValueError(f"term {proposal.term} is older than the log's term {last_term}"),
                )
                continue
            if proposal.entries:
                mark = len(parts), len(offsets), position, index, prev, last_term
                problem = None
                for entry in proposal.entries:
                    problem = _foreign_problem(entry, index, prev, last_term)
                    if problem is None:
                        offsets.append(position)
                        position += RECORD_OVERHEAD + len(entry.command_bytes)
                        digest = seal_record(
                            prev,
                            index + 1,
                            entry.term,
                            entry.command_bytes,
                            parts,
                            entry.schema_version,
                        )
                        if digest != entry.hash:
                            problem = f"entry {entry.index} has a wrong hash"
                    if problem is not None:
                        break
                    index, prev, last_term = entry.index, entry.hash, entry.term
                if problem is not None:
                    del parts[mark[0] :], offsets[mark[1] :]
                    position, index, prev, last_term = mark[2:]
                    _settle(proposal.future, ValueError(problem))
                    continue
                entries = proposal.built
                entries[:] = proposal.entries
            else:
                term = proposal.term
                entries = proposal.built
                entries.clear()  # built before, for a batch whose write failed
                commands, encoded = proposal.commands, proposal.encoded
                for i in range(len(encoded)):  # per entry: cheaper than zip(strict=True)
                    data = encoded[i]
                    index += 1
                    offsets.append(position)
                    position += RECORD_OVERHEAD + len(data)
                    digest = seal_record(prev, index, term, data, parts)
                    entries.append(
                        Entry(index, term, prev, digest, COMMAND_SCHEMA_VERSION, commands[i], data)
                    )
                    prev = digest
                last_term = term
            flat += entries
            built.append(proposal)
        batch.nbytes = position
        self._tail_index, self._tail_hash, self._tail_term = index, prev, last_term

    # ------------------------------------------------------------------ writing

    async def _write_loop(self) -> None:
        try:
            while True:
                if not self._queue:
                    if self._closing:
                        return
                    self._wake.clear()
                    await self._wake.wait()
                    continue
                async with self._io_lock:  # truncation waits for the pipeline to drain
                    await self._pipeline()
        except Exception as exc:
            # A bug here must not leave appenders waiting forever: fail everything pending.
            _log.exception("the log writer failed")
            self._failed = exc
            error = LogFailedError(f"the log writer failed: {exc!r}")
            pending = [p for b in (self._writing, self._following) if b for p in b.proposals]
            for proposal in [*pending, *self._taking, *self._queue]:
                _settle(proposal.future, error)
            self._queue.clear()

    async def _pipeline(self) -> None:
        """Write batches back to back; return when idle and a truncation waits or the log closes.

        While a batch is being written and synced in the writer thread, appends arriving meanwhile
        are built (indexed, hashed, framed) into the following batch on the event loop, chained
        after the batch being written. When the write completes the following batch goes to the
        thread at once, and only then are the appenders of the completed batch told: their
        entries are durable, and the disk is already busy with the next ones. If the write fails,
        its appenders get the error and the following batch goes back to the queue to be built
        again after the last durable entry.
        """
        writing: _Batch | None = None
        following = self._following = _Batch()
        while True:
            if self._queue and not self._truncating:
                count = None
                split_at = self.options.split_backlog
                if (
                    split_at
                    and writing is None
                    and not following.proposals
                    and self._queued_entries >= split_at
                ):
                    count = (self._queued_entries + 1) // 2
                self._take(following, count)
            if writing is None:
                if following.proposals:
                    self._start(following)
                    writing = self._writing = following
                    following = self._following = _Batch()
                    continue
                if self._queue and not self._truncating:
                    continue  # everything taken failed alone; take more
                if self._truncating or self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            outcome = writing.outcome
            if outcome is None:
                self._wake.clear()
                await self._wake.wait()
                continue
            done = writing
            if isinstance(outcome, BaseException):
                if not isinstance(outcome, LogError):
                    raise outcome
                writing = self._writing = None
                for proposal in done.proposals:
                    _settle(proposal.future, outcome)
                self._unbuild(following)
                following = self._following = _Batch()
                continue
            self._account(done, outcome)
            if following.proposals:
                self._start(following)
                writing = self._writing = following
                following = self._following = _Batch()
            else:
                writing = self._writing = None
            for proposal in done.proposals:
                if not proposal.future.done():
                    proposal.future.set_result(proposal.built)

    def _start(self, batch: _Batch) -> None:
        data = b"".join(batch.parts)
        batch.parts = []
        active = self._segments[-1]
        rotate = active.size >= self.options.segment_bytes and active.count > 0
        job = self._executor.submit(self._write_job, data, rotate)
        # Straight from the thread to the loop: one loop iteration fewer per batch than
        # run_in_executor's chain of futures.
        call = self._loop.call_soon_threadsafe
        job.add_done_callback(lambda job: call(self._finished, batch, job))

    def _finished(self, batch: _Batch, job: concurrent.futures.Future[float]) -> None:
        error = job.exception()
        batch.outcome = job.result() if error is None else error
        self._wake.set()

    def _write_job(self, data: bytes, rotate: bool) -> float:
        """Runs in the writer thread: start a new segment if due, then write and sync."""
        if rotate:
            self._rotate()
        started = time.perf_counter()
        self._durable_write(data, self._segments[-1].size)
        return time.perf_counter() - started

    def _account(self, batch: _Batch, elapsed: float) -> None:
        """Record a batch that is durable: where its records are, the new last entry."""
        active = self._segments[-1]
        base = active.size
        active.offsets.extend([base + offset for offset in batch.offsets])
        active.size = base + batch.nbytes
        entries = batch.entries
        last = entries[-1]
        active.last_hash = last.hash
        self._last_index, self._last_hash, self._last_term = last.index, last.hash, last.term
        self._remember(entries)
        count = len(entries)
        stats = self.stats
        stats.batches += 1
        stats.entries += count
        stats.bytes += batch.nbytes
        stats.sync_seconds += elapsed
        for observer in self._observers:
            observer(count, batch.nbytes, elapsed)
        for listener in self._durable_listeners:
            listener(last.index)

    def _unbuild(self, batch: _Batch) -> None:
        """Put a built batch's proposals back at the front of the queue; the tail is durable."""
        proposals = batch.proposals
        self._queue[:0] = proposals
        self._queued_entries += sum(p.size for p in proposals)
        self._tail_index, self._tail_hash, self._tail_term = (
            self._last_index,
            self._last_hash,
            self._last_term,
        )

    def _durable_write(self, data: bytes, old_size: int) -> None:
        view = memoryview(data)
        try:
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
        except OSError as exc:
            try:
                os.ftruncate(self._fd, old_size)
            except OSError as undo:
                self._failed = undo
                raise LogFailedError(f"append failed and could not be undone: {undo}") from exc
            raise LogUnavailableError(f"append failed: {exc.strerror or exc}") from exc
        try:
            os.fdatasync(self._fd)
        except OSError as exc:
            # After a failed fsync the page cache can no longer be trusted (see "fsyncgate").
            self._failed = exc
            raise LogFailedError(f"fdatasync failed: {exc.strerror or exc}") from exc

    def _rotate(self) -> None:
        old = self._segments[-1]
        try:
            old.write_sidecar()
            new = Segment.create(self.directory, old.last_index + 1, old.last_hash)
        except OSError as exc:
            with contextlib.suppress(OSError):
                (self.directory / f"{old.last_index + 1:020d}.seg").unlink()
            raise LogUnavailableError(f"cannot start a new segment: {exc}") from exc
        self._segments.append(new)
        self._firsts.append(new.first_index)
        self._open_active()

    def _remember(self, entries: list[Entry]) -> None:
        recent = self._recent
        recent.extend(entries)
        keep = self.options.recent_entries
        if len(recent) > 2 * keep:
            del recent[: len(recent) - keep]

    # ------------------------------------------------------------------ commit

    def commit_to(self, index: int) -> None:
        """Advance the commit index (never backwards) and wake subscribers."""
        if index > self._last_index:
            raise ValueError(f"cannot commit {index}: the log ends at {self._last_index}")
        if index <= self._commit_index:
            return
        self._commit_index = index
        self._commit_event.set()
        self._commit_event = asyncio.Event()
        self._commit_dirty.set()

    async def _flush_loop(self) -> None:
        state = self._commit_state
        assert state is not None
        while not self._closing:
            await self._commit_dirty.wait()
            self._commit_dirty.clear()
            target = self._commit_index
            if target > state.persisted and self._failed is None:
                try:
                    await asyncio.to_thread(state.write, target)
                except OSError as exc:
                    _log.warning("could not persist the commit index: %s", exc)
            if not self._closing:  # coalesce: at most one commit-file fsync per interval
                await asyncio.sleep(self.options.commit_flush_interval)

    # ------------------------------------------------------------------ truncation

    async def truncate_suffix(self, from_index: int) -> None:
        """Remove entries ``from_index`` onwards; they must all be uncommitted."""
        self._check_open()
        self._truncating += 1  # the writer stops taking appends and drains its pipeline
        self._wake.set()
        try:
            await self._truncate_suffix(from_index)
        finally:
            self._truncating -= 1
            self._wake.set()

    async def _truncate_suffix(self, from_index: int) -> None:
        async with self._io_lock:
            if from_index <= self._commit_index:
                raise CommittedTruncationError(
                    f"cannot truncate from {from_index}: entries up to {self._commit_index} "
                    "are committed"
                )
            if from_index > self._last_index:
                return
            await asyncio.to_thread(self._truncate, from_index)

    def _truncate(self, from_index: int) -> None:
        changed_active = False
        while len(self._segments) > 1 and self._segments[-1].first_index >= from_index:
            gone = self._segments.pop()
            self._firsts.pop()
            with self._fd_lock:
                fd = self._read_fds.pop(gone.path, -1)
            if fd >= 0:
                os.close(fd)
            gone.remove_sidecar()
            gone.path.unlink()
            changed_active = True
        if changed_active:
            fsync_directory(self.directory)
            self._open_active()
        segment = self._segments[-1]
        segment.remove_sidecar()
        if from_index <= segment.last_index:
            cut = segment.offsets[from_index - segment.first_index]
            os.ftruncate(self._fd, cut)
            os.fdatasync(self._fd)
            del segment.offsets[from_index - segment.first_index :]
            segment.size = cut
        if segment.count:
            last = self._read_disk(segment.last_index, segment.last_index)[0]
            segment.last_hash, self._last_term = last.hash, last.term
        else:
            segment.last_hash = segment.prev_hash
            self._last_term = (
                read_term(self._segments[-2].path, self._segments[-2].offsets[-1])
                if len(self._segments) > 1
                else 0
            )
        self._last_index = from_index - 1
        self._last_hash = segment.last_hash
        self._tail_index, self._tail_hash, self._tail_term = (
            self._last_index,
            self._last_hash,
            self._last_term,
        )
        self._recent = [e for e in self._recent if e.index < from_index]

    # ------------------------------------------------------------------ reading

    async def read(self, start: int, end: int | None = None, *, limit: int = 1024) -> list[Entry]:
        """Entries ``start..end`` (inclusive; at most ``limit``), checked as they are read."""
        if start < 1 or start > self._last_index:
            raise IndexOutOfRangeError(f"index {start} is outside the log (1..{self._last_index})")
        stop = min(self._last_index, start + limit - 1, end if end is not None else start + limit)
        recent = self._recent
        if recent and recent[0].index <= start:
            base = recent[0].index
            return recent[start - base : stop - base + 1]
        return await asyncio.to_thread(self._read_disk, start, stop)

    async def entry(self, index: int) -> Entry:
        return (await self.read(index, index))[0]

    def term_at(self, index: int) -> int | None:
        """The term of a recently appended entry, if it is still in memory."""
        recent = self._recent
        if recent and recent[0].index <= index <= recent[-1].index:
            return recent[index - recent[0].index].term
        return None

    def _read_fd(self, segment: Segment) -> int:
        with self._fd_lock:  # reads run in worker threads
            fd = self._read_fds.get(segment.path)
            if fd is None:
                fd = os.open(segment.path, os.O_RDONLY)
                self._read_fds[segment.path] = fd
            return fd

    def _read_disk(self, start: int, stop: int) -> list[Entry]:
        result: list[Entry] = []
        index = start
        while index <= stop:
            segment = self._segments[bisect.bisect_right(self._firsts, index) - 1]
            last = min(stop, segment.last_index)
            lo, hi = segment.span(index, last)
            data = os.pread(self._read_fd(segment), hi - lo, lo)
            scanner = FrameScanner(io.BytesIO(data), 0, chunk_size=max(len(data), 1))
            for offset, payload in scanner:
                fields = split_payload(payload)
                problem = (
                    "payload lengths are inconsistent"
                    if fields is None
                    else "entry hash mismatch: the record was altered"
                    if not fields.hash_ok
                    else f"record holds index {fields.index}"
                    if fields.index != index
                    else "prev_hash does not match the previous entry"
                    if result and fields.prev_hash != result[-1].hash
                    else None
                )
                if problem is not None or fields is None:
                    raise CorruptLogError(
                        problem or "unreadable",
                        index=index,
                        segment=segment.path,
                        offset=lo + offset,
                    )
                result.append(Entry.from_fields(fields))
                index += 1
            if scanner.damage is not None or index <= last:
                if index > self._last_index:
                    raise IndexOutOfRangeError(f"entry {index} was truncated while being read")
                raise CorruptLogError(
                    scanner.damage.problem.value if scanner.damage else "record missing",
                    index=index,
                    segment=segment.path,
                    offset=lo + (scanner.damage.offset if scanner.damage else len(data)),
                )
        return result

    async def committed(self, start: int) -> AsyncIterator[Entry]:
        """Yield committed entries from ``start`` in index order, waiting for new commits.

        Ends when the store closes.
        """
        index = max(start, 1)
        while not self._closing:
            if index <= self._commit_index:
                for entry in await self.read(index, self._commit_index):
                    yield entry
                    index = entry.index + 1
                continue
            event = self._commit_event
            await event.wait()


def _foreign_problem(entry: Entry, last_index: int, prev: bytes, term: int) -> str | None:
    """What is wrong with a leader's entry as the next one after ``last_index`` (hash aside)."""
    if entry.index != last_index + 1:
        return f"entry {entry.index} does not follow {last_index}"
    if entry.prev_hash != prev:
        return f"entry {entry.index} does not link to the hash of entry {last_index}"
    if entry.term < term:
        return f"entry {entry.index} has term {entry.term} below {term}"
    if len(entry.command_bytes) > MAX_COMMAND:
        return f"entry {entry.index} is over the log's size limit"
    return None
