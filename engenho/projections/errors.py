"""Errors raised by the projections.

::

    ProjectionError            base of every error in this package
    ├── HistoryExpired         a read or watch needs an index below the history floor
    ├── NotYetApplied          an exact-index read is ahead of the applied index
    ├── SubscriptionOverflow   a subscriber's buffer filled; resume after last_index
    ├── OutcomeExpired         an entry's apply outcome is no longer held in memory
    ├── ProjectionMismatch     the database was built from another (or a longer) log
    ├── ProjectionClosed       the projections are closed (or closing)
    └── ProjectionFailed       the applier stopped on an error; reopen to resume

The names state the condition, as the API layer speaks of them (``HistoryExpired`` becomes a
410 ``Expired``), so ruff's N818 ("end exception names in Error") is waived for them.
"""

from __future__ import annotations

__all__ = [
    "HistoryExpired",
    "NotYetApplied",
    "OutcomeExpired",
    "ProjectionClosed",
    "ProjectionError",
    "ProjectionFailed",
    "ProjectionMismatch",
    "SubscriptionOverflow",
]


class ProjectionError(Exception):
    """Base class of every error raised by :mod:`engenho.projections`."""


class HistoryExpired(ProjectionError):  # noqa: N818
    """Raised when a read at an exact index, or a watch from an index, needs history that
    compaction removed: ``requested`` is below ``floor``, the oldest index still served.

    The API answers 410 ``Expired`` (``too old resource version: requested (floor)``).
    """

    def __init__(self, requested: int, floor: int) -> None:
        self.requested = requested
        self.floor = floor
        super().__init__(f"too old resource version: {requested} ({floor})")


class NotYetApplied(ProjectionError):  # noqa: N818
    """Raised by a read at an exact index above the applied index.

    Callers that mean "not older than" wait with ``wait_for`` first.
    """

    def __init__(self, requested: int, applied: int) -> None:
        self.requested = requested
        self.applied = applied
        super().__init__(f"index {requested} is not applied yet (applied: {applied})")


class SubscriptionOverflow(ProjectionError):  # noqa: N818
    """Raised by a subscription whose buffer filled because its consumer was too slow.

    Every change up to and including ``last_index`` was delivered; subscribing again with
    ``after=last_index`` yields exactly the rest. Slow consumers are closed rather than allowed
    to stall the applier (CONVENTIONS.md, Concurrency).
    """

    def __init__(self, last_index: int) -> None:
        self.last_index = last_index
        super().__init__(f"subscriber fell behind; resume after index {last_index}")


class OutcomeExpired(ProjectionError):  # noqa: N818
    """Raised by ``wait_outcome`` for an entry applied so long ago that its outcome left the
    in-memory ring (or that was applied before these projections were opened)."""

    def __init__(self, index: int, oldest: int) -> None:
        self.index = index
        self.oldest = oldest
        super().__init__(f"the outcome of entry {index} is no longer held (oldest held: {oldest})")


class ProjectionMismatch(ProjectionError):  # noqa: N818
    """Raised by ``open`` when the database does not belong to the log: it has applied more
    entries than the log holds, or the entry at its applied index has another hash.

    Rebuild the projections from the log (``engenho projections rebuild``).
    """


class ProjectionClosed(ProjectionError):  # noqa: N818
    """Raised by calls made on projections that are closed or closing."""


class ProjectionFailed(ProjectionError):  # noqa: N818
    """Raised to waiters when the applier stopped on an error (the cause is chained).

    Nothing half-applied remains: each batch commits with its applied index or not at all.
    """
