"""The projection contract (``contract.py``) against PostgreSQL: the same tests, a real server
(see ``postgres.py``; skipped when PostgreSQL cannot be started here)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from tests.projections.contract import ProjectionContract
from tests.projections.postgres import PostgresServer

_databases = itertools.count()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    server, reason = PostgresServer.start()
    if server is None:
        pytest.skip(reason)
    yield server
    server.stop()


class TestPostgresProjections(ProjectionContract):
    @pytest.fixture
    async def database_url(self, postgres_server: PostgresServer) -> str:
        return await postgres_server.create_database(f"contract_{next(_databases)}")
