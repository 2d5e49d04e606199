"""Tuning knobs of the projections (defaults suit a single node)."""

from __future__ import annotations

from attrs import field, frozen, validators

__all__ = ["ProjectionOptions"]

_positive = validators.gt(0)


@frozen
class ProjectionOptions:
    max_batch_entries: int = field(default=1024, validator=_positive)
    """Entries applied per transaction at most. The applier takes whatever is committed when
    it looks, up to this many, so batches grow with load and stay small when idle."""
    recent_changes: int = field(default=8192, validator=_positive)
    """Changes kept in memory, so watches resuming from a recent index skip the database."""
    recent_outcomes: int = field(default=8192, validator=_positive)
    """Apply outcomes kept for proposers that start waiting after their entry was applied."""
    history_window: int = field(default=1000, validator=_positive)
    """Versions read per query when a watch replays history from the database."""
    subscriber_buffer: int = field(default=1024, validator=_positive)
    """Changes buffered per subscriber before it is closed as too slow (the default)."""
