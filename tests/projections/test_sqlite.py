"""The projection contract (``contract.py``) against SQLite, the default backend."""

from __future__ import annotations

from tests.projections.contract import ProjectionContract


class TestSQLiteProjections(ProjectionContract):
    pass
