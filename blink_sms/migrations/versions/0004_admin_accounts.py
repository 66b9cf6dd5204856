"""admin accounts and their second factors; client disable and mail override

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 12:30:58.790512
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import blink_sms.models

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "admins",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column(
            "role",
            sa.Enum(
                "msp-owner",
                "msp-technician",
                "client-admin",
                "auditor",
                name="admin_role",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("client_id", sa.Integer(), nullable=True),
        sa.Column("password_hash", sa.String(length=200), nullable=True),
        sa.Column("totp_secret_encrypted", sa.Text(), nullable=True),
        sa.Column("totp_confirmed_at", blink_sms.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("totp_last_step", sa.BigInteger(), nullable=True),
        sa.Column("session_epoch", sa.Integer(), nullable=False),
        sa.Column("disabled_at", blink_sms.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", blink_sms.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_sign_in_at", blink_sms.models.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["clients.id"],
            name=op.f("fk_admins_client_id_clients"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_admins")),
        sa.UniqueConstraint("email", name=op.f("uq_admins_email")),
    )
    with op.batch_alter_table("admins", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_admins_client_id"), ["client_id"], unique=False)

    op.create_table(
        "admin_passkeys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("admin_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("credential_id", sa.String(length=400), nullable=False),
        sa.Column("public_key", sa.Text(), nullable=False),
        sa.Column("sign_count", sa.BigInteger(), nullable=False),
        sa.Column("created_at", blink_sms.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", blink_sms.models.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["admin_id"],
            ["admins.id"],
            name=op.f("fk_admin_passkeys_admin_id_admins"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_admin_passkeys")),
        sa.UniqueConstraint("credential_id", name=op.f("uq_admin_passkeys_credential_id")),
    )
    with op.batch_alter_table("admin_passkeys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_admin_passkeys_admin_id"), ["admin_id"], unique=False)

    op.create_table(
        "admin_recovery_codes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("admin_id", sa.Integer(), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("used_at", blink_sms.models.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["admin_id"],
            ["admins.id"],
            name=op.f("fk_admin_recovery_codes_admin_id_admins"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_admin_recovery_codes")),
    )
    with op.batch_alter_table("admin_recovery_codes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_admin_recovery_codes_admin_id"), ["admin_id"], unique=False
        )

    op.create_table(
        "admin_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("admin_id", sa.Integer(), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", blink_sms.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", blink_sms.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("used_at", blink_sms.models.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["admin_id"],
            ["admins.id"],
            name=op.f("fk_admin_tokens_admin_id_admins"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_admin_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_admin_tokens_token_hash")),
    )
    with op.batch_alter_table("admin_tokens", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_admin_tokens_admin_id"), ["admin_id"], unique=False)

    with op.batch_alter_table("clients", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("disabled_at", blink_sms.models.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("smtp_settings_encrypted", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("mail_from", sa.String(length=320), nullable=True))


def downgrade() -> None:

    with op.batch_alter_table("clients", schema=None) as batch_op:
        batch_op.drop_column("mail_from")
        batch_op.drop_column("smtp_settings_encrypted")
        batch_op.drop_column("disabled_at")

    with op.batch_alter_table("admin_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_admin_tokens_admin_id"))

    op.drop_table("admin_tokens")
    with op.batch_alter_table("admin_recovery_codes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_admin_recovery_codes_admin_id"))

    op.drop_table("admin_recovery_codes")
    with op.batch_alter_table("admin_passkeys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_admin_passkeys_admin_id"))

    op.drop_table("admin_passkeys")
    with op.batch_alter_table("admins", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_admins_client_id"))

    op.drop_table("admins")
