"""The running service: whose each alert is, API keys, one verdict per alert and person.

- alerts.rep_id and alerts.team: the owner rep (or the rep an alert is about) and their
  team when the alert was stored, so rep and manager keys read only their own.
- api_keys: keys by id with the SHA-256 of the key, never the key.
- feedback.voter, unique with alert_id: a repeated click replaces the verdict instead of
  counting again. Verdicts already stored twice keep the newest.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Add the columns and the keys table; keep the newest of repeated verdicts. What a
    database already has (tables made by `create_all` from these models before it was
    migrated) is left as it is."""
    offline = op.get_context().as_sql
    inspector = None if offline else sa.inspect(op.get_bind())

    def has(table: str, column: str) -> bool:
        return inspector is not None and column in {
            c["name"] for c in inspector.get_columns(table)}

    if not has("alerts", "rep_id"):
        with op.batch_alter_table("alerts") as alerts:
            alerts.add_column(sa.Column("rep_id", sa.String(200), nullable=True))
            alerts.add_column(sa.Column("team", sa.String(200), nullable=True))
            alerts.create_index("ix_alerts_rep_id", ["rep_id"])
            alerts.create_index("ix_alerts_team", ["team"])
    if inspector is None or "api_keys" not in inspector.get_table_names():
        op.create_table(
            "api_keys",
            sa.Column("key_id", sa.String(16), nullable=False),
            sa.Column("key_hash", sa.String(64), nullable=False),
            sa.Column("name", sa.String(200), nullable=False),
            sa.Column("role", sa.String(16), nullable=False),
            sa.Column("team", sa.String(200), nullable=True),
            sa.Column("rep_id", sa.String(200), nullable=True),
            sa.Column("created_at", TZ, nullable=False),
            sa.Column("last_used_at", TZ, nullable=True),
            sa.Column("revoked_at", TZ, nullable=True),
            sa.PrimaryKeyConstraint("key_id", name="pk_api_keys"),
        )
    if not has("feedback", "voter"):
        with op.batch_alter_table("feedback") as feedback:
            feedback.add_column(sa.Column("voter", sa.String(200), nullable=False,
                                          server_default=""))
        op.execute("UPDATE feedback SET voter = CASE WHEN rep_id IS NOT NULL "
                   "THEN 'rep:' || rep_id ELSE source END")
        op.execute("DELETE FROM feedback WHERE id NOT IN "
                   "(SELECT MAX(id) FROM feedback GROUP BY alert_id, voter)")
        with op.batch_alter_table("feedback") as feedback:
            feedback.alter_column("voter", server_default=None)
            feedback.create_unique_constraint("uq_feedback_alert_id", ["alert_id", "voter"])


def downgrade() -> None:
    """Back to revision 0001."""
    with op.batch_alter_table("feedback") as feedback:
        feedback.drop_constraint("uq_feedback_alert_id", type_="unique")
        feedback.drop_column("voter")
    op.drop_table("api_keys")
    with op.batch_alter_table("alerts") as alerts:
        alerts.drop_index("ix_alerts_team")
        alerts.drop_index("ix_alerts_rep_id")
        alerts.drop_column("team")
        alerts.drop_column("rep_id")
