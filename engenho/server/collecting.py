"""Garbage collection paced for a server that keeps its working set in memory.

The projections keep every current object in memory, and the log and the change feed keep
rings of recent entries and changes: a few hundred thousand long-lived objects. CPython's
automatic full collections walk all of them (measured here: 50-120 ms each, a dozen times in
ten seconds under write load, freeing nothing) and stall the event loop, which showed up as a
135 ms p99 on creates. Reference counting frees almost all of engenho's garbage; the cycle
collector is only needed for the occasional cycle.

So: young generations collect automatically as usual; the oldest generation never does.
Instead, every ``interval`` seconds a full collection runs and then freezes what survived
(``gc.freeze``), so the next one only walks objects that aged since. Frozen objects are still
freed by reference counting when dropped; only a cycle among them would wait, so once every
``thaw_every`` collections everything is unfrozen and collected in full.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time

__all__ = ["CollectionPacer"]

_log = logging.getLogger("engenho.server")
_NEVER = 1 << 30


class CollectionPacer:
    def __init__(self, *, interval: float = 30.0, thaw_every: int = 120) -> None:
        self.interval = interval
        self.thaw_every = thaw_every
        self._saved = gc.get_threshold()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Freeze what start-up built and take over the oldest generation."""
        gc.collect()
        gc.freeze()
        young, middle, _ = self._saved
        gc.set_threshold(young, middle, _NEVER)
        self._task = asyncio.create_task(self._run(), name="gc-pacer")

    async def _run(self) -> None:
        rounds = 0
        while True:
            await asyncio.sleep(self.interval)
            rounds += 1
            started = time.perf_counter()
            if rounds % self.thaw_every == 0:
                gc.unfreeze()
            found = gc.collect()
            gc.freeze()
            _log.debug(
                "garbage collection: %d unreachable, %.1f ms",
                found,
                (time.perf_counter() - started) * 1000,
            )

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        gc.unfreeze()
        gc.set_threshold(*self._saved)
