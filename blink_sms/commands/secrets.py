"""``blink-sms secrets``: re-encrypt stored secrets after changing BLINK_SECRET_KEY."""

from __future__ import annotations

import click

from ..context import blink
from ..services.secrets import KIND_WORDS, reencrypt_all
from .base import with_app

ACTOR = "cli"


@click.group()
def secrets() -> None:
    """Secrets stored in the database (clients' directory and SMTP settings, admins' TOTP
    secrets, webhooks' signing secrets)."""


@secrets.command()
@with_app
def rotate() -> None:
    """Re-encrypt every stored secret under the current BLINK_SECRET_KEY.

    That is each client's directory settings and SMTP settings, each admin's TOTP
    secret and each webhook's signing secret. Run it after setting a new
    BLINK_SECRET_KEY with the old one as BLINK_SECRET_KEY_PREVIOUS; once it reports
    nothing unreadable, the previous key can go. Exits 1 naming each value that cannot
    be read with any of the keys: those are left as they were.
    """
    app = blink()
    with app.db.session() as session:
        result = reencrypt_all(session, app.secrets, actor=ACTOR)
        session.commit()
    for item, problem in result.unreadable.items():
        click.echo(f"{item}: {problem}; left as it was")
    for kind, counts in result.by_kind.items():
        if counts.reencrypted or counts.current or counts.unreadable:
            click.echo(
                f"{KIND_WORDS[kind]}: {counts.reencrypted} re-encrypted, "
                f"{counts.current} already current, {counts.unreadable} unreadable"
            )
        else:
            click.echo(f"{KIND_WORDS[kind]}: none stored")
    click.echo(
        f"{result.reencrypted} re-encrypted, {result.current} already under the current key, "
        f"{len(result.unreadable)} unreadable"
    )
    if result.unreadable:
        raise SystemExit(1)
