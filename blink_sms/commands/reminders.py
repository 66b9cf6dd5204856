"""``blink-sms reminders``: password-expiry reminders (turned on per client with
``blink-sms clients edit SLUG --expiry-reminders 7,3,1``)."""

from __future__ import annotations

import click

from directory_adapters import DirectoryError

from ..actors import COMMAND_LINE
from ..context import blink
from ..crypto import mask_phone
from ..services import expiry_reminders
from .base import refusals, with_app


@click.group("reminders")
def reminders_group() -> None:
    """Password-expiry reminders by SMS."""


@reminders_group.command("preview")
@click.option("--client", "slug", required=True, help="The client's slug.")
@with_app
def preview(slug: str) -> None:
    """List who would be reminded now, without sending anything (asks the directory once)."""
    app = blink()
    with app.db.session() as session, refusals():
        try:
            due = expiry_reminders.preview(app, session, COMMAND_LINE, slug)
        except DirectoryError as err:
            raise click.ClickException(f"the directory could not be asked: {err.message}") from None
    if not due:
        click.echo(f"{slug}: nobody would be reminded now")
        return
    click.echo(f"{'USER':<32} {'PHONE':<16} {'EXPIRES (UTC)':<17} DAYS BEFORE")
    for reminder in due:
        click.echo(
            f"{reminder.username:<32} {mask_phone(reminder.phone) or '':<16} "
            f"{reminder.expires_at:%Y-%m-%d %H:%M}  {reminder.days_before}"
        )
    click.echo(f"{len(due)} reminder(s) would be sent; nothing was sent")
