"""The kubelet's restart and image-pull back-off, as a value.

Upstream's curve: 10 s, doubling, capped at 300 s; a crashed container's first restart is
immediate, and one that ran for more than 10 minutes before exiting starts the curve again.
It is a value that the container machine carries, so it survives nothing but the agent
process (as upstream's in-memory back-off does) and tests choose their own clock.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from attrs import evolve, frozen

__all__ = ["BackOff", "BackOffPolicy"]


@frozen
class BackOffPolicy:
    initial: timedelta = timedelta(seconds=10)
    maximum: timedelta = timedelta(seconds=300)
    reset_after: timedelta = timedelta(minutes=10)


@frozen
class BackOff:
    """``wait`` is the back-off in force (until ``until``); ``delay`` is what the *next*
    failure will wait: zero before the first failure, which is retried at once."""

    delay: timedelta = timedelta(0)
    wait: timedelta = timedelta(0)
    until: datetime | None = None

    def failed(
        self,
        at: datetime,
        policy: BackOffPolicy,
        *,
        ran: timedelta | None = None,
        first_immediate: bool = True,
    ) -> BackOff:
        """A failure at ``at`` (of a container that had run for ``ran``). A crashed container
        is restarted at once the first time; a failed image pull waits from the first failure
        (upstream's image back-off starts at ``initial``)."""
        wait = self.delay
        if ran is not None and ran > policy.reset_after:
            wait = timedelta(0)
        if not wait and not first_immediate:
            wait = policy.initial
        following = policy.initial if not wait else min(wait * 2, policy.maximum)
        return BackOff(delay=following, wait=wait, until=at + wait if wait else None)

    def waiting(self, now: datetime) -> bool:
        return self.until is not None and now < self.until

    def cleared(self) -> BackOff:
        """The wait is over (the retry is under way); the next failure waits ``delay``."""
        return evolve(self, until=None)
