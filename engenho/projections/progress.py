"""How far the applier has got, and what each entry did: what proposers and readers wait on.

``wait_for(index)`` returns once the applied index reaches ``index`` (read-your-writes, "not
older than N" reads). ``wait_outcome(index)`` returns the outcome of one entry; outcomes are
kept in a bounded ring so a proposer that starts waiting just after its entry was applied still
gets it.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections import deque
from collections.abc import Sequence

from engenho.projections.errors import OutcomeExpired
from engenho.projections.records import ApplyOutcome

__all__ = ["ApplyProgress"]

_PRUNE_AT = 4096


class ApplyProgress:
    def __init__(self, applied_index: int, outcomes_kept: int) -> None:
        self.applied_index = applied_index
        self._outcomes: deque[ApplyOutcome] = deque(maxlen=max(outcomes_kept, 1))
        self._index_waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._outcome_waiters: dict[int, list[asyncio.Future[ApplyOutcome]]] = {}
        self._sequence = itertools.count()
        self._error: BaseException | None = None

    def advance(self, applied_index: int, outcomes: Sequence[ApplyOutcome]) -> None:
        """Record a committed batch (called by the applier right after the commit)."""
        self.applied_index = applied_index
        self._outcomes.extend(outcomes)
        if self._outcome_waiters:
            for outcome in outcomes:
                for waiter in self._outcome_waiters.pop(outcome.index, ()):
                    if not waiter.done():
                        waiter.set_result(outcome)
        waiters = self._index_waiters
        while waiters and waiters[0][0] <= applied_index:
            future = heapq.heappop(waiters)[2]
            if not future.done():
                future.set_result(None)

    def fail(self, error: BaseException) -> None:
        """End every wait, now and later, with ``error`` (the applier stopped)."""
        self._error = error
        for _, _, future in self._index_waiters:
            if not future.done():
                future.set_exception(error)
        self._index_waiters.clear()
        for futures in self._outcome_waiters.values():
            for waiter in futures:
                if not waiter.done():
                    waiter.set_exception(error)
        self._outcome_waiters.clear()

    def _check(self) -> None:
        if self._error is not None:
            raise self._error

    async def wait_for(self, index: int, timeout: float | None) -> None:  # noqa: ASYNC109
        if index <= self.applied_index:
            return
        self._check()
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiters = self._index_waiters
        if len(waiters) >= _PRUNE_AT:  # waiters that timed out on far indices pile up otherwise
            waiters[:] = [w for w in waiters if not w[2].done()]
            heapq.heapify(waiters)
        heapq.heappush(waiters, (index, next(self._sequence), future))
        try:
            async with asyncio.timeout(timeout):
                await future
        finally:
            future.cancel()  # a timed-out waiter leaves a done future, dropped on the next pop

    def outcome(self, index: int) -> ApplyOutcome | None:
        """The outcome of an applied entry if it is still held."""
        held = self._outcomes
        if held and held[0].index <= index <= held[-1].index:
            return held[index - held[0].index]
        return None

    async def wait_outcome(
        self,
        index: int,
        timeout: float | None,  # noqa: ASYNC109
    ) -> ApplyOutcome:
        if index <= self.applied_index:
            found = self.outcome(index)
            if found is None:
                oldest = self._outcomes[0].index if self._outcomes else self.applied_index + 1
                raise OutcomeExpired(index, oldest)
            return found
        self._check()
        future: asyncio.Future[ApplyOutcome] = asyncio.get_running_loop().create_future()
        waiters = self._outcome_waiters.setdefault(index, [])
        waiters.append(future)
        try:
            async with asyncio.timeout(timeout):
                return await future
        finally:
            if not future.done():
                future.cancel()
                waiters.remove(future)
                if not waiters and self._outcome_waiters.get(index) is waiters:
                    del self._outcome_waiters[index]
