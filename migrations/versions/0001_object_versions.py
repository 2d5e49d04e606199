"""Object versions (MVCC) and the projection state row.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _bytewise() -> sa.types.TypeEngine[str]:
    # Ordered and compared by bytes on every backend (keyset paging relies on it).
    return sa.Text().with_variant(sa.String(collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "object_versions",
        sa.Column(
            "valid_from",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=False,
        ),
        sa.Column("valid_to", sa.BigInteger(), nullable=True),
        sa.Column("key", _bytewise(), nullable=False),
        sa.Column("api_group", _bytewise(), nullable=False),
        sa.Column("resource", _bytewise(), nullable=False),
        sa.Column("namespace", _bytewise(), nullable=False),
        sa.Column("name", _bytewise(), nullable=False),
        sa.Column("uid", sa.Text(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
    )
    current = sa.text("valid_to IS NULL")
    op.create_index(
        "uq_object_versions_current_key",
        "object_versions",
        ["key"],
        unique=True,
        sqlite_where=current,
        postgresql_where=current,
    )
    op.create_index(
        "ix_object_versions_current_list",
        "object_versions",
        ["api_group", "resource", "namespace", "name"],
        sqlite_where=current,
        postgresql_where=current,
    )
    op.create_index(
        "ix_object_versions_list_at",
        "object_versions",
        ["api_group", "resource", "namespace", "name", "valid_from"],
    )
    op.create_index(
        "ix_object_versions_changes_from",
        "object_versions",
        ["api_group", "resource", "valid_from"],
    )
    op.create_index(
        "ix_object_versions_changes_to",
        "object_versions",
        ["api_group", "resource", "valid_to"],
    )
    state = op.create_table(
        "projection_state",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("applied_index", sa.BigInteger(), nullable=False),
        sa.Column("applied_hash", sa.LargeBinary(), nullable=False),
        sa.Column("floor", sa.BigInteger(), nullable=False),
    )
    op.bulk_insert(state, [{"id": 1, "applied_index": 0, "applied_hash": b"", "floor": 0}])


def downgrade() -> None:
    op.drop_table("projection_state")
    op.drop_table("object_versions")
