"""Threshold versions: who changed which threshold, when, why, with the whole
configuration of each version (so a rollback restores it exactly).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """The versions table (left as it is when `create_all` made it already)."""
    offline = op.get_context().as_sql
    if not offline and "threshold_versions" in sa.inspect(op.get_bind()).get_table_names():
        return
    op.create_table(
        "threshold_versions",
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("who", sa.String(200), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("rollback_of", sa.Integer(), nullable=True),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("diff", sa.JSON(), nullable=False),
        sa.Column("outcome", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("version", name="pk_threshold_versions"),
    )


def downgrade() -> None:
    """Back to revision 0002."""
    op.drop_table("threshold_versions")
