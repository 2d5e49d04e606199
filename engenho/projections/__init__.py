"""Projections: SQL state derived from the log, serving reads, apply outcomes and watches.

Every row here is a pure function of the log prefix (DESIGN.md rules 1 to 3): the applier consumes
committed entries in index order, decides each against the current state (preconditions
included), and writes the rows and its applied index in one transaction. ``resourceVersion`` is
the index of the entry that last changed an object. Objects are kept as versions valid over a
range of indices, so the state at any index down to the compaction floor can be listed, and
watches can replay history before switching to the live change feed.
"""

from engenho.projections.database import sqlite_url
from engenho.projections.digest import DIGEST_TAG
from engenho.projections.errors import (
    HistoryExpired,
    NotYetApplied,
    OutcomeExpired,
    ProjectionClosed,
    ProjectionError,
    ProjectionFailed,
    ProjectionMismatch,
    SubscriptionOverflow,
)
from engenho.projections.feed import Subscription
from engenho.projections.options import ProjectionOptions
from engenho.projections.projections import Projections
from engenho.projections.rebuilding import RebuildProgress, RebuildSummary, rebuild
from engenho.projections.records import (
    ApplyOutcome,
    Change,
    EventType,
    Page,
    Rejection,
    StoredObject,
    object_key,
)

__all__ = [
    "DIGEST_TAG",
    "ApplyOutcome",
    "Change",
    "EventType",
    "HistoryExpired",
    "NotYetApplied",
    "OutcomeExpired",
    "Page",
    "ProjectionClosed",
    "ProjectionError",
    "ProjectionFailed",
    "ProjectionMismatch",
    "ProjectionOptions",
    "Projections",
    "RebuildProgress",
    "RebuildSummary",
    "Rejection",
    "StoredObject",
    "Subscription",
    "SubscriptionOverflow",
    "object_key",
    "rebuild",
    "sqlite_url",
]
