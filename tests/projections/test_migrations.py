"""The projection schema: the Alembic migrations create exactly the tables and indexes the
queries are written against (``engenho.projections.tables``), upgrading is idempotent, and
downgrading to base drops everything (what a rebuild does)."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, inspect

from engenho.projections import sqlite_url
from engenho.projections.database import create_engine
from engenho.projections.migrating import downgrade, migrations_directory, upgrade
from engenho.projections.tables import METADATA


def differences(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection)
    return list(compare_metadata(context, METADATA))


def table_names(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


async def test_migrations_match_the_table_definitions(tmp_path: Path) -> None:
    engine = create_engine(sqlite_url(tmp_path / "p.db"))
    try:
        await upgrade(engine)
        await upgrade(engine)  # already at head: nothing to do
        async with engine.connect() as connection:
            assert await connection.run_sync(differences) == []
            indexes = await connection.run_sync(
                lambda c: {i["name"] for i in inspect(c).get_indexes("object_versions")}
            )
        assert indexes == {i.name for i in METADATA.tables["object_versions"].indexes}
        await downgrade(engine)
        async with engine.connect() as connection:
            assert await connection.run_sync(table_names) == {"alembic_version"}
    finally:
        await engine.dispose()


def test_migrations_are_found_in_the_checkout() -> None:
    directory = migrations_directory()
    assert (directory / "env.py").is_file()
    assert any((directory / "versions").glob("0001_*.py"))
