"""Fixtures for projection tests: a real log in a temporary directory, projections over it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from engenho.log import LogStore
from engenho.projections import Projections, sqlite_url


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite by default; the PostgreSQL contract tests override this fixture."""
    return sqlite_url(tmp_path / "projections.db")


@pytest.fixture
async def log(tmp_path: Path) -> AsyncIterator[LogStore]:
    store = await LogStore.open(tmp_path / "log")
    yield store
    await store.close()


@pytest.fixture
async def projections(database_url: str, log: LogStore) -> AsyncIterator[Projections]:
    opened = await Projections.open(database_url, log)
    yield opened
    await opened.close()
