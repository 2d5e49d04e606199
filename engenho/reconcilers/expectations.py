"""Expectations: what a controller is waiting to see in its cache after its own writes.

A controller that creates or deletes children reads them back from an informer, which may not
have caught up with the writes yet. Acting on that stale view would create the same pods twice
(or delete twice). Like upstream's (UID-tracking) ControllerExpectations, a controller records
how many creations and which deletions it expects for a key before it writes; the informer's
handlers count them off as the events arrive; the key is managed again only once everything
expected was seen, or after a timeout (a lost event must not wedge the controller forever).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from attrs import define, field

__all__ = ["EXPECTATION_TIMEOUT", "Expectations"]

EXPECTATION_TIMEOUT = 300.0
"""Seconds after which unmet expectations are ignored (upstream's ExpectationsTimeout)."""


@define
class _Expected:
    creations: int
    deletions: set[str] = field(factory=set)
    at: float = 0.0


class Expectations:
    def __init__(
        self,
        *,
        timeout: float = EXPECTATION_TIMEOUT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.timeout = timeout
        self._clock = clock
        self._expected: dict[str, _Expected] = {}

    def expect_creations(self, key: str, count: int) -> None:
        self._expected[key] = _Expected(count, set(), self._clock())

    def expect_deletions(self, key: str, children: Iterable[str]) -> None:
        self._expected[key] = _Expected(0, set(children), self._clock())

    def creation_observed(self, key: str) -> None:
        """A child of ``key`` appeared (or a create that was expected will not happen)."""
        expected = self._expected.get(key)
        if expected is not None and expected.creations > 0:
            expected.creations -= 1

    def deletion_observed(self, key: str, child: str) -> None:
        expected = self._expected.get(key)
        if expected is not None:
            expected.deletions.discard(child)

    def satisfied(self, key: str) -> bool:
        """Whether ``key`` may be managed: nothing pending, or the wait has timed out."""
        expected = self._expected.get(key)
        if expected is None:
            return True
        if expected.creations <= 0 and not expected.deletions:
            return True
        return self._clock() - expected.at > self.timeout

    def pending(self, key: str) -> tuple[int, int]:
        """(creations, deletions) still expected for ``key``."""
        expected = self._expected.get(key)
        return (0, 0) if expected is None else (expected.creations, len(expected.deletions))

    def forget(self, key: str) -> None:
        self._expected.pop(key, None)
