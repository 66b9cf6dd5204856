"""Abuse and identity hardening

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 16:37:55.055107
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import blink_sms.models

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:

    with op.batch_alter_table("clients", schema=None) as batch_op:
        batch_op.add_column(sa.Column("allowed_countries", sa.String(length=200), nullable=True))
        batch_op.add_column(
            sa.Column("binding_policy", sa.String(length=16), server_default="any", nullable=False)
        )
        batch_op.add_column(
            sa.Column("reset_pin", sa.String(length=16), server_default="off", nullable=False)
        )
        batch_op.add_column(
            sa.Column("sim_swap_policy", sa.String(length=8), server_default="off", nullable=False)
        )
        batch_op.add_column(
            sa.Column("sim_swap_days", sa.Integer(), server_default="7", nullable=False)
        )

    with op.batch_alter_table("invitations", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "approval_requested_at", blink_sms.models.UTCDateTime(timezone=True), nullable=True
            )
        )
        batch_op.add_column(
            sa.Column("approved_at", blink_sms.models.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("approved_by", sa.String(length=200), nullable=True))

    with op.batch_alter_table("outbound_messages", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("redacted_at", blink_sms.models.UTCDateTime(timezone=True), nullable=True)
        )

    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("pin_hash", sa.String(length=200), nullable=True))
        batch_op.add_column(
            sa.Column("pin_failures", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(
            sa.Column(
                "pin_failed_since", blink_sms.models.UTCDateTime(timezone=True), nullable=True
            )
        )
        batch_op.add_column(
            sa.Column(
                "pin_blocked_until", blink_sms.models.UTCDateTime(timezone=True), nullable=True
            )
        )


def downgrade() -> None:

    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("pin_blocked_until")
        batch_op.drop_column("pin_failed_since")
        batch_op.drop_column("pin_failures")
        batch_op.drop_column("pin_hash")

    with op.batch_alter_table("outbound_messages", schema=None) as batch_op:
        batch_op.drop_column("redacted_at")

    with op.batch_alter_table("invitations", schema=None) as batch_op:
        batch_op.drop_column("approved_by")
        batch_op.drop_column("approved_at")
        batch_op.drop_column("approval_requested_at")

    with op.batch_alter_table("clients", schema=None) as batch_op:
        batch_op.drop_column("sim_swap_days")
        batch_op.drop_column("sim_swap_policy")
        batch_op.drop_column("reset_pin")
        batch_op.drop_column("binding_policy")
        batch_op.drop_column("allowed_countries")
