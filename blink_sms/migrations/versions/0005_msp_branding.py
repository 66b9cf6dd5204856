"""MSP branding: one row, the default look of every client without its own

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 13:58:31.415228
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "msp_branding",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("brand_name", sa.String(length=100), nullable=True),
        sa.Column("brand_logo_url", sa.String(length=500), nullable=True),
        sa.Column("brand_color", sa.String(length=7), nullable=True),
        sa.Column("support_email", sa.String(length=320), nullable=True),
        sa.Column("email_message", sa.Text(), nullable=True),
        sa.CheckConstraint("id = 1", name=op.f("ck_msp_branding_single_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_msp_branding")),
    )


def downgrade() -> None:
    op.drop_table("msp_branding")
