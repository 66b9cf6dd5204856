"""``blink-sms lockouts``: the lockout watch of each client and its open lockouts."""

from __future__ import annotations

import click

from ..actors import COMMAND_LINE
from ..context import blink
from ..models import Client
from ..services import lockout_watch, scope
from .base import refusals, with_app


@click.command()
@click.option("--client", "slug", help="Only this client (default: every client).")
@with_app
def lockouts(slug: str | None) -> None:
    """Show the lockout watch of each client and the accounts locked now."""
    with blink().db.session() as session, refusals():
        if slug:
            clients = [scope.client(session, COMMAND_LINE, slug)]
        else:
            query = scope.clients(COMMAND_LINE).order_by(Client.slug)
            clients = list(session.execute(query).scalars())
        states = lockout_watch.watch_states(session, clients)
        for client in clients:
            state = states[client.id]
            polled = f", last poll {state.polled_at:%Y-%m-%d %H:%M} UTC" if state.polled_at else ""
            click.echo(f"{client.name} ({client.slug}): lockout watch {state.status}{polled}")
            if state.detail:
                click.echo(f"  {state.detail}")
            rows = lockout_watch.open_lockouts(session, COMMAND_LINE, client)
            if not rows:
                click.echo("  no account locked")
                continue
            click.echo(f"{'USER':<24} {'KIND':<11} {'LOCKED (UTC)':<17} {'DETECTED':<17} NOTICE")
            for row in rows:
                locked = f"{row.locked_at:%Y-%m-%d %H:%M}" if row.locked_at else "-"
                click.echo(
                    f"{row.username:<24} {row.kind:<11} {locked:<17} "
                    f"{row.detected_at:%Y-%m-%d %H:%M} {row.notice or '-'}"
                )
