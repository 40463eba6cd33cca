"""The alert store as SIA 0.1 made it: alerts and the delivery outbox.

A database that SIA created with `create_all` before it had migrations already holds
some of these tables: those are kept as they are (same names, same indexes) and only the
missing ones are created, so such a database simply ends up at this revision.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)  # sia.alerts.store.UtcDateTime stores UTC in these


def alerts() -> None:
    """Every stored alert; its deterministic id is the primary key (stored once)."""
    op.create_table(
        "alerts",
        sa.Column("alert_id", sa.String(64), nullable=False),
        sa.Column("detector", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("subject_kind", sa.String(16), nullable=False),
        sa.Column("subject_id", sa.String(200), nullable=False),
        sa.Column("occurred_at", TZ, nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("explanation", sa.Text(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("dedup_key", sa.String(400), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("facts", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("stored_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("alert_id", name="pk_alerts"),
    )
    for column in ("dedup_key", "detector", "occurred_at", "subject_id"):
        op.create_index(f"ix_alerts_{column}", "alerts", [column])


def messages() -> None:
    """The outbox: one row per message to send, sent or dead-lettered."""
    op.create_table(
        "messages",
        sa.Column("message_id", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("address", sa.String(400), nullable=False),
        sa.Column("recipient_name", sa.String(200), nullable=False),
        sa.Column("rep_id", sa.String(200), nullable=True),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("alert_ids", sa.JSON(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("budget_day", sa.String(10), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", TZ, nullable=False),
        sa.Column("detected_at", TZ, nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("sent_at", TZ, nullable=True),
        sa.Column("receipt", sa.String(200), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("message_id", name="pk_messages"),
    )
    for column in ("next_attempt_at", "rep_id", "status"):
        op.create_index(f"ix_messages_{column}", "messages", [column])


def snoozes() -> None:
    """Snoozes and mutes."""
    op.create_table(
        "snoozes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("target", sa.String(400), nullable=False),
        sa.Column("rep_id", sa.String(200), nullable=True),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("who", sa.String(200), nullable=False),
        sa.Column("why", sa.Text(), nullable=False),
        sa.Column("until", TZ, nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("ended_notice", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_snoozes"),
    )
    for column in ("target", "until"):
        op.create_index(f"ix_snoozes_{column}", "snoozes", [column])


def alert_routes() -> None:
    """One alert for one recipient, and what became of it."""
    op.create_table(
        "alert_routes",
        sa.Column("alert_id", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("address", sa.String(400), nullable=False),
        sa.Column("recipient_name", sa.String(200), nullable=False),
        sa.Column("rep_id", sa.String(200), nullable=True),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("disposition", sa.String(16), nullable=False),
        sa.Column("group_key", sa.String(400), nullable=False),
        sa.Column("due_at", TZ, nullable=False),
        sa.Column("priority", sa.Float(), nullable=False),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("why", sa.Text(), nullable=False),
        sa.Column("message_id", sa.String(64), nullable=True),
        sa.Column("routed_at", TZ, nullable=False),
        sa.ForeignKeyConstraint(["alert_id"], ["alerts.alert_id"],
                                name="fk_alert_routes_alert_id_alerts"),
        sa.PrimaryKeyConstraint("alert_id", "channel", "address", name="pk_alert_routes"),
    )
    for column in ("disposition", "due_at", "message_id", "rep_id"):
        op.create_index(f"ix_alert_routes_{column}", "alert_routes", [column])


def delivery_attempts() -> None:
    """Every try to send a message."""
    op.create_table(
        "delivery_attempts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("message_id", sa.String(64), nullable=False),
        sa.Column("at", TZ, nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("retryable", sa.Boolean(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["message_id"], ["messages.message_id"],
                                name="fk_delivery_attempts_message_id_messages"),
        sa.PrimaryKeyConstraint("id", name="pk_delivery_attempts"),
    )
    op.create_index("ix_delivery_attempts_message_id", "delivery_attempts", ["message_id"])


def feedback() -> None:
    """What people said alerts were worth."""
    op.create_table(
        "feedback",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("alert_id", sa.String(64), nullable=False),
        sa.Column("rep_id", sa.String(200), nullable=True),
        sa.Column("verdict", sa.String(16), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("at", TZ, nullable=False),
        sa.ForeignKeyConstraint(["alert_id"], ["alerts.alert_id"],
                                name="fk_feedback_alert_id_alerts"),
        sa.PrimaryKeyConstraint("id", name="pk_feedback"),
    )
    op.create_index("ix_feedback_alert_id", "feedback", ["alert_id"])


# in dependency order: referenced tables first
TABLES: dict[str, Callable[[], None]] = {
    "alerts": alerts, "messages": messages, "snoozes": snoozes, "alert_routes": alert_routes,
    "delivery_attempts": delivery_attempts, "feedback": feedback,
}


def upgrade() -> None:
    """Create the tables that are not there yet."""
    offline = op.get_context().as_sql  # `alembic upgrade --sql`: no database to look at
    existing = set() if offline else set(sa.inspect(op.get_bind()).get_table_names())
    for name, create in TABLES.items():
        if name not in existing:
            create()


def downgrade() -> None:
    """Drop every table of the store."""
    for name in reversed(TABLES):
        op.drop_table(name)
