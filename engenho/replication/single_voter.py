"""A Raft group of exactly one voter.

With one voter the quorum is that voter, so an entry is committed as soon as it is durable in
the local log, and every entry already durable when the node starts is committed. Each start is
an election the node wins, so it proposes in a term above every term in its log.
"""

from __future__ import annotations

from collections.abc import Coroutine, Sequence
from typing import Any

from engenho.log import Entry, LogStore, ResourceCommand

__all__ = ["SingleVoter"]


class SingleVoter:
    """Leader of a one-voter group over ``log``."""

    def __init__(self, log: LogStore) -> None:
        self.log = log
        self._term = log.last_term + 1
        if log.last_index:
            log.commit_to(log.last_index)
        # Durable is committed: the log commits each batch as soon as it is synced, once per
        # batch and before any of its proposers resumes. A proposer whose request is cancelled
        # while waiting still has its entry committed, so there is nothing to shield.
        log.add_durable_listener(log.commit_to)

    @property
    def term(self) -> int:
        return self._term

    def propose(self, commands: Sequence[ResourceCommand]) -> Coroutine[Any, Any, list[Entry]]:
        # The log's own coroutine, not one wrapped around it: this is every write's path.
        return self.log.append(commands, term=self._term)
