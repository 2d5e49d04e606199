"""The projection database: engine setup and the three ways the projections use a connection.

SQLite (via aiosqlite) is the default and PostgreSQL (via asyncpg) is chosen by URL; queries
are portable Core SQL. Two things differ per backend and are settled here:

* **Snapshots.** A multi-statement read (the applied index and the rows of a list page) must
  see one snapshot. Python's sqlite3 does not begin a transaction before a SELECT, so each
  statement would see its own; we turn its transaction control off and emit ``BEGIN``
  ourselves (the recipe in SQLAlchemy's SQLite documentation). PostgreSQL reads at
  ``REPEATABLE READ``.
* **Writes.** SQLite writers begin with ``BEGIN IMMEDIATE`` so a writer never fails to upgrade
  a read lock. WAL with ``synchronous=NORMAL`` is enough: the log is the durable truth, and a
  transaction lost to a power cut takes its applied index with it, so the applier simply
  re-applies from the log.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import Connection, event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

__all__ = ["async_url", "create_engine", "single_statement", "snapshot", "sqlite_url", "writer"]

_ASYNC_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}
_BEGIN_OPTION = "engenho_sqlite_begin"
_SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA busy_timeout=10000",
    # Reads of large lists benefit from a bigger cache and memory-mapped I/O.
    "PRAGMA cache_size=-32768",
    "PRAGMA mmap_size=268435456",
    "PRAGMA temp_store=MEMORY",
)


def sqlite_url(path: object) -> str:
    """The default URL of a SQLite projection database at ``path``."""
    return f"sqlite+aiosqlite:///{path}"


def async_url(url: str) -> str:
    """``url`` with an asyncio driver: ``sqlite://`` and ``postgresql://`` are accepted too."""
    parsed = make_url(url)
    name = "postgresql" if parsed.drivername == "postgres" else parsed.drivername
    driver = _ASYNC_DRIVERS.get(name)
    return parsed.set(drivername=driver).render_as_string(False) if driver else url


def create_engine(url: str) -> AsyncEngine:
    engine = create_async_engine(async_url(url))
    if engine.dialect.name == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_connect)
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
    return engine


def _sqlite_connect(dbapi_connection: Any, _record: object) -> None:
    dbapi_connection.isolation_level = None  # we emit BEGIN ourselves (_sqlite_begin)
    cursor = dbapi_connection.cursor()
    for pragma in _SQLITE_PRAGMAS:
        cursor.execute(pragma)
    cursor.close()


def _sqlite_begin(connection: Connection) -> None:
    begin = connection.get_execution_options().get(_BEGIN_OPTION, "BEGIN")
    if begin:
        connection.exec_driver_sql(begin)


@asynccontextmanager
async def snapshot(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection inside a read transaction: every statement sees the same snapshot."""
    async with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            await connection.execution_options(
                isolation_level="REPEATABLE READ", postgresql_readonly=True
            )
        async with connection.begin():
            yield connection


@asynccontextmanager
async def single_statement(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection for one statement, which is consistent on its own: on SQLite no
    ``BEGIN`` is sent (a round trip to aiosqlite's thread saved on every point read)."""
    async with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            await connection.execution_options(**{_BEGIN_OPTION: ""})
        yield connection


@asynccontextmanager
async def writer(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection for writing; each ``begin()`` on it takes the write lock at once."""
    async with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            await connection.execution_options(**{_BEGIN_OPTION: "BEGIN IMMEDIATE"})
        yield connection
