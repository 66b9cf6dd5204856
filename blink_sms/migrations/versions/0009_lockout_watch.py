"""Lockout watch, notices and expiry reminders

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 16:02:47.860381
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import blink_sms.models

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "lockout_watch",
        sa.Column("client_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("queued_at", blink_sms.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("polled_at", blink_sms.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("since", blink_sms.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=True),
        sa.Column("detail", sa.String(length=300), nullable=True),
        sa.Column("digest_sent_at", blink_sms.models.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["clients.id"],
            name=op.f("fk_lockout_watch_client_id_clients"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("client_id", name=op.f("pk_lockout_watch")),
    )
    op.create_table(
        "expiry_reminders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("expires_at", blink_sms.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("days_before", sa.Integer(), nullable=False),
        sa.Column("sent_at", blink_sms.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_expiry_reminders_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_expiry_reminders")),
        sa.UniqueConstraint(
            "user_id", "expires_at", "days_before", name=op.f("uq_expiry_reminders_user_id")
        ),
    )
    op.create_table(
        "lockout_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("locked_at", blink_sms.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("detected_at", blink_sms.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("notified_at", blink_sms.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("notice", sa.String(length=32), nullable=True),
        sa.Column("ended_at", blink_sms.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("ended_reason", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["clients.id"],
            name=op.f("fk_lockout_events_client_id_clients"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_lockout_events_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lockout_events")),
    )
    with op.batch_alter_table("lockout_events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_lockout_events_client_detected", ["client_id", "detected_at"], unique=False
        )
        batch_op.create_index(
            "uq_lockout_events_one_open_per_user",
            ["user_id"],
            unique=True,
            sqlite_where=sa.text("ended_at IS NULL"),
            postgresql_where=sa.text("ended_at IS NULL"),
        )

    with op.batch_alter_table("clients", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("lockout_watch", sa.Boolean(), server_default=sa.text("true"), nullable=False)
        )
        batch_op.add_column(sa.Column("lockout_poll_seconds", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("lockout_alert_email", sa.String(length=320), nullable=True))
        batch_op.add_column(
            sa.Column("reset_notices", sa.Boolean(), server_default=sa.text("true"), nullable=False)
        )
        batch_op.add_column(sa.Column("expiry_reminder_days", sa.String(length=32), nullable=True))

    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("previous_phone", sa.String(length=20), nullable=True))


def downgrade() -> None:

    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("previous_phone")

    with op.batch_alter_table("clients", schema=None) as batch_op:
        batch_op.drop_column("expiry_reminder_days")
        batch_op.drop_column("reset_notices")
        batch_op.drop_column("lockout_alert_email")
        batch_op.drop_column("lockout_poll_seconds")
        batch_op.drop_column("lockout_watch")

    with op.batch_alter_table("lockout_events", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_lockout_events_one_open_per_user",
            sqlite_where=sa.text("ended_at IS NULL"),
            postgresql_where=sa.text("ended_at IS NULL"),
        )
        batch_op.drop_index("ix_lockout_events_client_detected")

    op.drop_table("lockout_events")
    op.drop_table("expiry_reminders")
    op.drop_table("lockout_watch")
