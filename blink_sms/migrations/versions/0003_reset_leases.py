"""reset request leases, retry times and the enqueue outbox

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import blink_sms.models

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

PENDING = "status IN ('queued', 'running')"


def upgrade() -> None:
    with op.batch_alter_table("reset_requests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("lease_token", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("lease_holder", sa.String(length=200), nullable=True))
        batch_op.add_column(
            sa.Column(
                "lease_expires_at", blink_sms.models.UTCDateTime(timezone=True), nullable=True
            )
        )
        batch_op.add_column(
            sa.Column("next_attempt_at", blink_sms.models.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("enqueued_at", blink_sms.models.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.create_index(
            "ix_reset_requests_pending",
            ["status"],
            unique=False,
            sqlite_where=sa.text(PENDING),
            postgresql_where=sa.text(PENDING),
        )
    # Requests that were pending when the upgrade ran were enqueued by the old code.
    op.execute(f"UPDATE reset_requests SET enqueued_at = created_at WHERE {PENDING}")  # noqa: S608


def downgrade() -> None:
    with op.batch_alter_table("reset_requests", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_reset_requests_pending",
            sqlite_where=sa.text(PENDING),
            postgresql_where=sa.text(PENDING),
        )
        batch_op.drop_column("enqueued_at")
        batch_op.drop_column("next_attempt_at")
        batch_op.drop_column("lease_expires_at")
        batch_op.drop_column("lease_holder")
        batch_op.drop_column("lease_token")
