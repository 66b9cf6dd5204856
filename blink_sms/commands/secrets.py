"""``blink-sms secrets``: re-encrypt stored secrets after changing BLINK_SECRET_KEY."""

from __future__ import annotations

import click

from ..context import blink
from ..services.secrets import reencrypt_all
from .base import with_app

ACTOR = "cli"


@click.group()
def secrets() -> None:
    """Secrets stored in the database (clients' directory settings)."""


@secrets.command()
@with_app
def rotate() -> None:
    """Re-encrypt every client's directory settings under the current BLINK_SECRET_KEY.

    Run it after setting a new BLINK_SECRET_KEY with the old one as
    BLINK_SECRET_KEY_PREVIOUS; afterwards the previous key can go. Exits 1 when some
    client's settings cannot be read with any of the keys: those are left as they were.
    """
    app = blink()
    with app.db.session() as session:
        result = reencrypt_all(session, app.secrets, actor=ACTOR)
        session.commit()
    for slug, problem in result.unreadable.items():
        click.echo(f"{slug}: {problem}; left as it was")
    click.echo(
        f"{result.reencrypted} re-encrypted, {result.current} already under the current key, "
        f"{len(result.unreadable)} unreadable"
    )
    if result.unreadable:
        raise SystemExit(1)
