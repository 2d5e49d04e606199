"""The public surface of ``engenho.projections``."""

from __future__ import annotations

import engenho.projections
from engenho.projections import errors


def test_projections_surface() -> None:
    assert set(engenho.projections.__all__) == {
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
    }


def test_every_error_derives_from_the_base() -> None:
    for name in errors.__all__:
        assert issubclass(getattr(errors, name), errors.ProjectionError)
        assert name in errors.__doc__  # the tree in the docstring names it
