"""Reading one's own writes through informers.

A controller writes through the registry and reads from informers, which follow the change
feed a little behind. A decision taken on a cache that has not yet seen the controller's own
last write (a ReplicaSet it just scaled, a status it just wrote) is taken on a past that no
longer exists: at best the write that follows fails with a conflict, at worst it is a second
scale-down computed from the first one's stale inputs. :class:`OwnWrites` remembers the log
index of each write per informer and lets a reconcile wait until the informers have caught up
with them (resourceVersions are log indexes, and informers see changes in index order).
"""

from __future__ import annotations

import asyncio
import contextlib

from engenho.projections import StoredObject
from engenho.reconcilers.informer import Informer

__all__ = ["OwnWrites"]


class OwnWrites:
    def __init__(self, patience: float = 2.0) -> None:
        self.patience = patience
        self._wanted: dict[int, tuple[Informer, int]] = {}
        self._progress = asyncio.Event()

    def follow(self, informer: Informer) -> None:
        """Be told when ``informer`` moves (once per informer, before it runs)."""

        def moved(_event: str, _old: StoredObject | None, _new: StoredObject | None) -> None:
            # Handlers run before the informer records its new resourceVersion; look after it.
            asyncio.get_running_loop().call_soon(self._progress.set)

        informer.add_handler(moved)

    def wrote(self, informer: Informer, stored: StoredObject | None) -> None:
        """Remember a write whose result ``informer`` will see."""
        if stored is None:
            return
        _, index = self._wanted.get(id(informer), (informer, 0))
        self._wanted[id(informer)] = (informer, max(index, stored.resource_version))

    async def caught_up(self) -> bool:
        """Wait until every informer has seen the writes remembered so far; False if that
        took longer than ``patience`` seconds (the caller proceeds on what it has)."""
        targets = list(self._wanted.values())
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.patience):
                while any(informer.resource_version < index for informer, index in targets):
                    self._progress.clear()
                    await self._progress.wait()
                return True
        return False
