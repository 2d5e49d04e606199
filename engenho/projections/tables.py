"""The projection's tables, as SQLAlchemy Core sees them for queries.

The schema itself is created and upgraded by the Alembic migrations in ``migrations/``; a test
checks that these definitions and the migrated database agree.

``object_versions`` holds every version of every object (MVCC): a version is valid from the
index that wrote it (its resourceVersion, unique across the table because an entry writes at
most one version) until the index that replaced or removed it (``NULL`` while current). That
one table answers current reads, reads at an exact past index (consistent list pages) and the
change history that watches replay.

Text columns that are ordered or compared use the ``C`` collation on PostgreSQL so ordering is
by bytes, as on SQLite, and keyset paging agrees with Python's string order.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

__all__ = ["METADATA", "OBJECT_VERSIONS", "PROJECTION_STATE", "bytewise_text"]


def bytewise_text() -> Text:
    """Text compared and ordered by bytes on every backend."""
    return Text().with_variant(String(collation="C"), "postgresql")


METADATA = MetaData()

OBJECT_VERSIONS = Table(
    "object_versions",
    METADATA,
    # The primary key is the index that wrote the version: on SQLite an INTEGER PRIMARY KEY is
    # the rowid, so versions are stored in log order and appends land at the end of the table.
    Column(
        "valid_from",
        BigInteger().with_variant(Integer, "sqlite"),
        primary_key=True,
        autoincrement=False,
    ),
    Column("valid_to", BigInteger, nullable=True),
    Column("key", bytewise_text(), nullable=False),
    Column("api_group", bytewise_text(), nullable=False),
    Column("resource", bytewise_text(), nullable=False),
    Column("namespace", bytewise_text(), nullable=False),
    Column("name", bytewise_text(), nullable=False),
    Column("uid", Text, nullable=False),
    Column("data", LargeBinary, nullable=False),
    # The version's claims (unique names it holds), as a JSON array of strings.
    Column("claims", Text, nullable=False, server_default="[]"),
)
Index(
    "uq_object_versions_current_key",
    OBJECT_VERSIONS.c.key,
    unique=True,
    sqlite_where=OBJECT_VERSIONS.c.valid_to.is_(None),
    postgresql_where=OBJECT_VERSIONS.c.valid_to.is_(None),
)
Index(
    "ix_object_versions_current_list",
    OBJECT_VERSIONS.c.api_group,
    OBJECT_VERSIONS.c.resource,
    OBJECT_VERSIONS.c.namespace,
    OBJECT_VERSIONS.c.name,
    sqlite_where=OBJECT_VERSIONS.c.valid_to.is_(None),
    postgresql_where=OBJECT_VERSIONS.c.valid_to.is_(None),
)
Index(
    "ix_object_versions_list_at",
    OBJECT_VERSIONS.c.api_group,
    OBJECT_VERSIONS.c.resource,
    OBJECT_VERSIONS.c.namespace,
    OBJECT_VERSIONS.c.name,
    OBJECT_VERSIONS.c.valid_from,
)
Index(
    "ix_object_versions_changes_from",
    OBJECT_VERSIONS.c.api_group,
    OBJECT_VERSIONS.c.resource,
    OBJECT_VERSIONS.c.valid_from,
)
Index(
    "ix_object_versions_changes_to",
    OBJECT_VERSIONS.c.api_group,
    OBJECT_VERSIONS.c.resource,
    OBJECT_VERSIONS.c.valid_to,
)

PROJECTION_STATE = Table(
    "projection_state",
    METADATA,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("applied_index", BigInteger, nullable=False),
    Column("applied_hash", LargeBinary, nullable=False),
    Column("floor", BigInteger, nullable=False),
)
"""One row (``id`` = 1): the applied index and its entry hash (written in the same
transaction as the rows of the batch) and the history floor raised by compaction."""
