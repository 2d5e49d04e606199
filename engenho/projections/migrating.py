"""Create and upgrade the projection schema with the Alembic migrations in ``migrations/``.

Migrations run when projections open, inside one transaction (SQLite and PostgreSQL both have
transactional DDL), so a schema is either upgraded whole or left as it was. They are found
beside the package when installed from a wheel (``engenho/projections/_migrations``, put
there by the wheel build) and at the repository root in a development checkout.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine

from engenho.projections.database import writer
from engenho.projections.errors import ProjectionError

__all__ = ["HEAD", "downgrade", "migrations_directory", "upgrade"]

HEAD = "head"
_VERSION_TABLE = "alembic_version"


def migrations_directory() -> Path:
    """Where the migration scripts are: packaged in a wheel, or the checkout's ``migrations/``."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "_migrations", here.parents[1] / "migrations"):
        if (candidate / "env.py").is_file():
            return candidate
    raise ProjectionError(f"the projection migrations are missing (looked beside {here})")


def _config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_directory()))
    config.attributes["connection"] = connection
    return config


def _upgrade(connection: Connection, revision: str) -> None:
    config = _config(connection)
    if revision == HEAD and inspect(connection).has_table(_VERSION_TABLE):
        current = connection.execute(text("SELECT version_num FROM alembic_version")).all()
        head = ScriptDirectory.from_config(config).get_current_head()
        if [row[0] for row in current] == [head]:
            return  # the common case at every open: skip Alembic's machinery (and its logs)
    command.upgrade(config, revision)


async def upgrade(engine: AsyncEngine, revision: str = HEAD) -> None:
    """Bring the schema up to ``revision`` (creating it in an empty database)."""
    async with writer(engine) as connection, connection.begin():
        await connection.run_sync(_upgrade, revision)


async def downgrade(engine: AsyncEngine, revision: str = "base") -> None:
    """Take the schema down to ``revision``; ``base`` drops every projection table."""
    async with writer(engine) as connection, connection.begin():
        await connection.run_sync(lambda c: command.downgrade(_config(c), revision))
