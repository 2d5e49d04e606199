"""A Raft group of exactly one voter.

With one voter the quorum is that voter, so an entry is committed as soon as it is durable in
the local log, and every entry already durable when the node starts is committed. Each start is
an election the node wins, so it proposes in a term above every term in its log.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from engenho.log import Entry, LogStore, ResourceCommand

__all__ = ["SingleVoter"]


class SingleVoter:
    """Leader of a one-voter group over ``log``."""

    def __init__(self, log: LogStore) -> None:
        self.log = log
        self._term = log.last_term + 1
        if log.last_index:
            log.commit_to(log.last_index)

    @property
    def term(self) -> int:
        return self._term

    async def propose(self, commands: Sequence[ResourceCommand]) -> list[Entry]:
        # Shielded: a proposer whose request is cancelled mid-append must still see its entry
        # committed once durable, or the entry would stay invisible until the next write.
        return await asyncio.shield(self._append_and_commit(commands))

    async def _append_and_commit(self, commands: Sequence[ResourceCommand]) -> list[Entry]:
        entries = await self.log.append(commands, term=self._term)
        if entries:
            self.log.commit_to(entries[-1].index)
        return entries
