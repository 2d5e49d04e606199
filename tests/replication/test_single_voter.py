"""SingleVoter: a one-voter Raft group commits what is durable, once per batch, and a proposer
that stops waiting still has its entry committed."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from engenho.log import LogStore
from engenho.replication import SingleVoter
from tests.log.helpers import command


async def test_proposals_return_committed(tmp_path: Path) -> None:
    async with await LogStore.open(tmp_path) as log:
        voter = SingleVoter(log)
        assert voter.term == 1
        entries = await voter.propose([command(1), command(2)])
        assert [e.index for e in entries] == [1, 2] and log.commit_index == 2
        results = await asyncio.gather(*(voter.propose([command(i)]) for i in range(3, 303)))
        for result in results:
            assert log.commit_index >= result[0].index
        assert log.commit_index == log.last_index == 302
        assert all(e.term == 1 for r in results for e in r)


async def test_commits_follow_batches_not_proposals(tmp_path: Path) -> None:
    async with await LogStore.open(tmp_path) as log:
        voter = SingleVoter(log)
        advances: list[int] = []
        log.add_durable_listener(advances.append)
        await asyncio.gather(*(voter.propose([command(i)]) for i in range(64)))
        assert advances[-1] == 64 and len(advances) == log.stats.batches < 64


async def test_a_cancelled_proposal_is_still_committed(tmp_path: Path) -> None:
    async with await LogStore.open(tmp_path) as log:
        voter = SingleVoter(log)
        task = asyncio.create_task(voter.propose([command(1)]))
        await asyncio.sleep(0)  # proposed: the entry is on its way to the disk
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        deadline = asyncio.get_running_loop().time() + 30
        while log.commit_index < 1:
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.001)
        assert (await log.entry(1)).command == command(1)


async def test_each_start_proposes_in_a_new_term_with_everything_committed(
    tmp_path: Path,
) -> None:
    async with await LogStore.open(tmp_path) as log:
        await SingleVoter(log).propose([command(1)])
        await log.append([command(2)], term=1)  # around the voter: committed once durable too
        assert log.commit_index == 2
    async with await LogStore.open(tmp_path) as log:
        voter = SingleVoter(log)
        assert voter.term == 2 and log.commit_index == 2
        entries = await voter.propose([command(3)])
        assert (entries[0].index, entries[0].term, log.commit_index) == (3, 2, 3)
