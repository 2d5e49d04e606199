"""The append pipeline: records built in pieces, the batch after the one being written, cancelled
appenders, oversized commands, truncation under load, and a write that fails under a built batch.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engenho.log import EncodingError, LogOptions, LogStore, verify_log
from engenho.log.entry import MAX_COMMAND, RECORD_OVERHEAD, seal_payload, seal_record
from engenho.log.framing import encode_frame

from .helpers import command

hashes = st.binary(min_size=32, max_size=32)
u64 = st.integers(0, 2**64 - 1)


@given(hashes, u64, u64, st.sampled_from([1, 2]), st.binary(max_size=3000))
def test_a_record_in_pieces_is_the_documented_frame(
    prev: bytes, index: int, term: int, schema: int, body: bytes
) -> None:
    parts: list[bytes] = []
    digest = seal_record(prev, index, term, body, parts, schema)
    payload, expected = seal_payload(prev, index, term, body, schema)
    assert digest == expected
    assert b"".join(parts) == encode_frame(payload)
    assert len(b"".join(parts)) == len(body) + RECORD_OVERHEAD


async def test_a_large_backlog_is_written_as_two_chained_batches(tmp_path: Path) -> None:
    async with await LogStore.open(tmp_path, LogOptions(split_backlog=8)) as log:
        results = await asyncio.gather(*(log.append([command(i)], term=1) for i in range(40)))
        # The older half went to disk at once; the rest was built while it synced.
        assert log.stats.batches == 2
        assert [r[0].index for r in results] == list(range(1, 41))
        assert [r[0].command for r in results] == [command(i) for i in range(40)]
        for before, after in itertools.pairwise(results):
            assert after[0].prev_hash == before[0].hash
        log.commit_to(40)
    report = verify_log(tmp_path)
    assert report.ok and report.head_index == 40, report.failure


async def test_without_splitting_a_backlog_is_one_batch(tmp_path: Path) -> None:
    async with await LogStore.open(tmp_path, LogOptions(split_backlog=0)) as log:
        await asyncio.gather(*(log.append([command(i)], term=1) for i in range(300)))
        assert log.stats.batches == 1


async def test_appends_during_a_write_go_in_the_next_batch(tmp_path: Path) -> None:
    async with await LogStore.open(tmp_path) as log:
        first = asyncio.create_task(log.append([command(0)], term=1))
        await asyncio.sleep(0)  # queued; the writer takes it and starts writing
        await asyncio.sleep(0)
        later = [asyncio.create_task(log.append([command(i)], term=1)) for i in range(1, 30)]
        written = [await first, *[await task for task in later]]
        assert [w[0].index for w in written] == list(range(1, 31))
        assert log.stats.batches <= 3
        assert log.last_hash == written[-1][0].hash
        log.commit_to(30)
    assert verify_log(tmp_path).ok


async def test_a_cancelled_appender_does_not_stop_the_log(tmp_path: Path) -> None:
    async with await LogStore.open(tmp_path) as log:
        task = asyncio.create_task(log.append([command(1)], term=1))
        await asyncio.sleep(0)  # queued
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # Its entry was already on its way: it is written, and the log goes on.
        later = await log.append([command(2)], term=1)
        assert later[0].index == 2 and log.healthy
        assert (await log.entry(1)).command == command(1)


async def test_a_cancelled_appender_with_a_stale_term_does_not_stop_the_log(
    tmp_path: Path,
) -> None:
    async with await LogStore.open(tmp_path) as log:
        await log.append([command(1)], term=2)
        task = asyncio.create_task(log.append([command(2)], term=1))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert (await log.append([command(3)], term=2))[0].index == 2 and log.healthy


async def test_a_command_too_large_for_a_frame_is_refused(tmp_path: Path) -> None:
    async with await LogStore.open(tmp_path) as log:
        huge = command(1, size=MAX_COMMAND)
        with pytest.raises(EncodingError, match="over the log's limit"):
            await log.append([command(0), huge], term=1)
        assert log.last_index == 0 and log.stats.batches == 0


async def test_truncation_waits_for_batches_in_flight(tmp_path: Path) -> None:
    async with await LogStore.open(tmp_path, LogOptions(split_backlog=4)) as log:
        base = await log.append([command(i) for i in range(5)], term=1)
        log.commit_to(5)
        appends = [asyncio.create_task(log.append([command(i)], term=1)) for i in range(5, 60)]
        deadline = asyncio.get_running_loop().time() + 30
        while log.stats.batches < 2:  # the older half is durable, the rest is being written
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.001)
        await log.truncate_suffix(6)
        assert (log.last_index, log.last_hash) == (5, base[-1].hash)
        results = await asyncio.gather(*appends)  # all were durable before the truncation
        assert sorted(r[0].index for r in results) == list(range(6, 61))
        after = await log.append([command(100)], term=2)
        assert after[0].index == 6 and after[0].prev_hash == base[-1].hash
        log.commit_to(6)
    report = verify_log(tmp_path)
    assert report.ok and report.head_index == 6, report.failure


FAILING_CHILD = textwrap.dedent(
    """
    import asyncio, json, resource, signal, sys
    sys.path.insert(0, sys.argv[2])
    from engenho.log import LogOptions, LogStore, LogUnavailableError
    from tests.log.helpers import command

    async def main():
        log = await LogStore.open(sys.argv[1], LogOptions(max_batch_entries=8, split_backlog=0))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))
        first = await log.append([command(0, size=900)], term=1)
        # Eight large commands fill one batch, over the file size limit; the small one after
        # them is built (chained after them) while they are written, so it must be built again
        # after the write fails. One of the failing appenders was cancelled meanwhile.
        doomed = asyncio.create_task(log.append([command(i, size=3000) for i in range(7)], term=1))
        cancelled = asyncio.create_task(log.append([command(7, size=3000)], term=1))
        small = asyncio.create_task(log.append([command(99, size=10)], term=1))
        await asyncio.sleep(0)
        cancelled.cancel()
        outcome = {}
        try:
            await doomed
        except LogUnavailableError as exc:
            outcome["failure"] = str(exc)
        try:
            await cancelled
        except asyncio.CancelledError:
            outcome["cancelled"] = True
        entries = await small
        outcome["small"] = [entries[0].index, entries[0].prev_hash.hex(), first[0].hash.hex()]
        outcome["healthy"] = log.healthy
        log.commit_to(entries[0].index)
        await log.close()
        print(json.dumps(outcome))

    asyncio.run(main())
    """
)


async def test_a_failed_write_rebuilds_the_batch_built_after_it(tmp_path: Path) -> None:
    repo = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "-c", FAILING_CHILD, str(tmp_path), str(repo)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout)
    assert "append failed" in outcome["failure"]
    assert outcome["cancelled"] and outcome["healthy"]
    index, prev, first_hash = outcome["small"]
    assert index == 2 and prev == first_hash
    async with await LogStore.open(tmp_path) as log:
        assert log.last_index == 2
        assert (await log.entry(2)).command == command(99, size=10)
    assert verify_log(tmp_path).ok
