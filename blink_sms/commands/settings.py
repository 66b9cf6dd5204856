"""``blink-sms settings``: the MSP's own settings kept in the database (audit retention)."""

from __future__ import annotations

import click

from ..actors import COMMAND_LINE
from ..context import blink
from ..services import retention
from .base import refusals, with_app


@click.group("settings")
def settings_group() -> None:
    """The MSP's settings kept in the database (environment settings: see the README)."""


@settings_group.command("show")
@with_app
def show() -> None:
    """Show the settings."""
    with blink().db.session() as session:
        days = retention.audit_retention_days(session)
    default = " (the default)" if days == retention.DEFAULT_RETENTION_DAYS else ""
    click.echo(f"audit retention: {days} days{default}")


@settings_group.command("set")
@click.option(
    "--audit-retention-days",
    "days",
    type=int,
    required=True,
    help=(
        f"Delete audit events older than this ({retention.MIN_RETENTION_DAYS}"
        f" to {retention.MAX_RETENTION_DAYS}; default {retention.DEFAULT_RETENTION_DAYS})."
    ),
)
@with_app
def set_(days: int) -> None:
    """Change a setting."""
    with blink().db.session() as session, refusals():
        changed = retention.set_audit_retention(session, COMMAND_LINE, days)
    click.echo(f"audit retention: {days} days" + ("" if changed else " (unchanged)"))
