"""The claims each object version holds (allocated ClusterIPs, NodePorts, pod CIDRs).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "object_versions",
        sa.Column("claims", sa.Text(), nullable=False, server_default="[]"),
    )


def downgrade() -> None:
    with op.batch_alter_table("object_versions") as batch:
        batch.drop_column("claims")
