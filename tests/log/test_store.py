"""LogStore behaviour: appends, group commit, reads, subscriptions, rotation, truncation, locking.

Written as a contract (``LogContract``) that every log implementation must pass; the segment
store is its first subclass, the replicated log will be the next.
"""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path

import pytest

from engenho.log import (
    CommittedTruncationError,
    EncodingError,
    Entry,
    IndexOutOfRangeError,
    LogClosedError,
    LogLockedError,
    LogOptions,
    LogStore,
    verify_log,
)
from engenho.log.entry import GENESIS_HASH, split_payload

from .helpers import command


class LogContract:
    """Behaviour every log must have. Subclasses provide ``open_log``."""

    async def open_log(self, path: Path, **options: int | float) -> LogStore:
        raise NotImplementedError

    async def test_appends_are_dense_chained_and_durable(self, tmp_path: Path) -> None:
        log = await self.open_log(tmp_path)
        entries = await log.append([command(1), command(2)], term=1)
        entries += await log.append([command(3)], term=2)
        assert [e.index for e in entries] == [1, 2, 3]
        assert [e.term for e in entries] == [1, 1, 2]
        assert entries[0].prev_hash == GENESIS_HASH
        for before, after in itertools.pairwise(entries):
            assert after.prev_hash == before.hash
        for entry in entries:
            fields = split_payload(entry.payload())
            assert fields is not None and fields.hash_ok
        assert (log.last_index, log.last_term, log.last_hash) == (3, 2, entries[-1].hash)
        await log.close()
        log = await self.open_log(tmp_path)
        assert await log.read(1, 3) == entries
        assert (log.last_index, log.last_term, log.last_hash) == (3, 2, entries[-1].hash)
        await log.close()

    async def test_concurrent_appends_share_batches(self, tmp_path: Path) -> None:
        log = await self.open_log(tmp_path)
        results = await asyncio.gather(*(log.append([command(i)], term=1) for i in range(64)))
        assert sorted(r[0].index for r in results) == list(range(1, 65))
        assert log.stats.entries == 64
        assert log.stats.batches < 8, "group commit should batch concurrent appends"
        await log.close()

    async def test_multi_command_appends_stay_contiguous(self, tmp_path: Path) -> None:
        log = await self.open_log(tmp_path)
        calls = [[command(10 * i + j) for j in range(5)] for i in range(20)]
        results = await asyncio.gather(*(log.append(call, term=1) for call in calls))
        for call, entries in zip(calls, results, strict=True):
            first = entries[0].index
            assert [e.index for e in entries] == list(range(first, first + 5))
            assert [e.command for e in entries] == call
        await log.close()

    async def test_terms_never_decrease(self, tmp_path: Path) -> None:
        log = await self.open_log(tmp_path)
        await log.append([command(1)], term=3)
        with pytest.raises(ValueError, match="older than the log's term 3"):
            await log.append([command(2)], term=2)
        assert log.last_index == 1
        await log.close()

    async def test_bad_input_appends_nothing(self, tmp_path: Path) -> None:
        log = await self.open_log(tmp_path)
        bad = command(1)
        assert bad.object is not None
        bad.object["data"] = {"blob": b"bytes are not JSON"}
        with pytest.raises(EncodingError):
            await log.append([command(0), bad], term=1)
        assert log.last_index == 0 and log.stats.batches == 0
        await log.close()

    async def test_reads(self, tmp_path: Path) -> None:
        log = await self.open_log(tmp_path, recent_entries=4)
        written = await log.append([command(i) for i in range(20)], term=1)
        assert await log.read(5, 7) == written[4:7]
        assert await log.read(18) == written[17:]
        assert len(await log.read(1, limit=3)) == 3
        assert await log.entry(20) == written[-1]
        for bad in (0, 21):
            with pytest.raises(IndexOutOfRangeError):
                await log.read(bad)
        await log.close()

    async def test_subscription_yields_committed_entries_in_order(self, tmp_path: Path) -> None:
        log = await self.open_log(tmp_path, recent_entries=8)
        written = await log.append([command(i) for i in range(30)], term=1)
        log.commit_to(10)
        seen: list[Entry] = []

        async def consume() -> None:
            async for entry in log.committed(3):
                seen.append(entry)  # noqa: PERF401 - the test watches the list fill up live

        consumer = asyncio.create_task(consume(), name="consumer")
        await asyncio.sleep(0.05)
        assert [e.index for e in seen] == list(range(3, 11))  # nothing uncommitted
        log.commit_to(30)
        more = await log.append([command(100)], term=1)
        log.commit_to(31)
        for _ in range(100):
            if len(seen) == 29:
                break
            await asyncio.sleep(0.01)
        assert seen == written[2:] + more
        await log.close()  # ends the subscription
        await asyncio.wait_for(consumer, 5)

    async def test_commit_index(self, tmp_path: Path) -> None:
        log = await self.open_log(tmp_path)
        await log.append([command(i) for i in range(5)], term=1)
        with pytest.raises(ValueError, match="cannot commit 6"):
            log.commit_to(6)
        log.commit_to(4)
        log.commit_to(2)  # never backwards
        assert log.commit_index == 4
        await log.close()
        log = await self.open_log(tmp_path)
        assert log.commit_index == 4
        await log.close()

    async def test_truncating_an_uncommitted_suffix(self, tmp_path: Path) -> None:
        log = await self.open_log(tmp_path, segment_bytes=600)
        written = []
        for i in range(12):  # one batch each, so segments rotate between them
            written += await log.append([command(i, size=200)], term=1)
        log.commit_to(4)
        assert len(log.segment_paths) > 3
        with pytest.raises(CommittedTruncationError):
            await log.truncate_suffix(4)
        await log.truncate_suffix(6)
        assert (log.last_index, log.last_hash) == (5, written[4].hash)
        replacement = await log.append([command(50)], term=2)
        assert replacement[0].index == 6 and replacement[0].prev_hash == written[4].hash
        await log.truncate_suffix(7)  # past the end: nothing to do
        log.commit_to(6)
        await log.close()
        report = verify_log(tmp_path)
        assert report.ok, report.failure
        assert report.head_index == 6
        log = await self.open_log(tmp_path)
        assert await log.read(1, 6) == [*written[:5], *replacement]
        assert log.last_term == 2
        await log.close()

    async def test_truncating_everything_uncommitted(self, tmp_path: Path) -> None:
        log = await self.open_log(tmp_path)
        await log.append([command(1), command(2)], term=1)
        await log.truncate_suffix(1)
        assert (log.last_index, log.last_term, log.last_hash) == (0, 0, GENESIS_HASH)
        again = await log.append([command(3)], term=1)
        assert again[0].index == 1 and again[0].prev_hash == GENESIS_HASH
        await log.close()

    async def test_closed_log_refuses_calls(self, tmp_path: Path) -> None:
        log = await self.open_log(tmp_path)
        await log.close()
        await log.close()  # idempotent
        with pytest.raises(LogClosedError):
            await log.append([command(1)], term=1)

    async def test_backpressure_lets_everything_through(self, tmp_path: Path) -> None:
        log = await self.open_log(tmp_path, max_pending_entries=4, max_batch_entries=3)
        results = await asyncio.gather(*(log.append([command(i)], term=1) for i in range(40)))
        assert sorted(r[0].index for r in results) == list(range(1, 41))
        assert log.stats.batches >= 40 // 3
        await log.close()


class TestSegmentStore(LogContract):
    async def open_log(self, path: Path, **options: int | float) -> LogStore:
        return await LogStore.open(path, LogOptions(**options))  # type: ignore[arg-type]

    async def test_rotation_and_sidecars(self, tmp_path: Path) -> None:
        log = await self.open_log(tmp_path, segment_bytes=1000)
        written = []
        for i in range(10):
            written += await log.append([command(i, size=300)], term=1)
        paths = log.segment_paths
        assert len(paths) >= 4
        assert all(p.with_suffix(".idx").exists() for p in paths[:-1])
        assert not paths[-1].with_suffix(".idx").exists()
        await log.close()
        paths[0].with_suffix(".idx").unlink()  # rebuilt by scanning
        paths[1].with_suffix(".idx").write_bytes(b"garbage")  # rebuilt too
        log = await self.open_log(tmp_path, segment_bytes=1000, recent_entries=1)
        assert await log.read(1, 10) == written
        assert paths[0].with_suffix(".idx").exists()
        await log.close()
        assert verify_log(tmp_path).warnings == ()

    async def test_follower_appends_reproduce_the_same_bytes(self, tmp_path: Path) -> None:
        leader = await self.open_log(tmp_path / "leader")
        entries = await leader.append([command(i) for i in range(5)], term=1)
        await leader.close()
        follower = await self.open_log(tmp_path / "follower")
        with pytest.raises(ValueError, match="does not follow"):
            await follower.append_entries(entries[1:])
        forged = entries[0].__class__(
            index=1,
            term=1,
            prev_hash=GENESIS_HASH,
            hash=entries[1].hash,
            schema_version=1,
            command=entries[0].command,
            command_bytes=entries[0].command_bytes,
        )
        with pytest.raises(ValueError, match="wrong hash"):
            await follower.append_entries([forged])
        assert follower.last_index == 0
        await follower.append_entries(entries[:2])
        await follower.append_entries(entries[2:])
        await follower.close()
        leader_bytes = (tmp_path / "leader" / "00000000000000000001.seg").read_bytes()
        assert (tmp_path / "follower" / "00000000000000000001.seg").read_bytes() == leader_bytes

    async def test_one_process_at_a_time(self, tmp_path: Path) -> None:
        log = await self.open_log(tmp_path)
        with pytest.raises(LogLockedError, match="in use by another process"):
            await self.open_log(tmp_path)
        await log.close()
        again = await self.open_log(tmp_path)
        await again.close()
