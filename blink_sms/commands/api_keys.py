"""``blink-sms api-keys``: create, list and revoke keys for the REST API."""

from __future__ import annotations

import click

from ..actors import COMMAND_LINE
from ..context import blink
from ..services import api_keys, scope
from .base import refusals, with_app


@click.group("api-keys")
def api_keys_group() -> None:
    """Bearer keys for the REST API (shown once, stored hashed)."""


@api_keys_group.command("create")
@click.option("--name", required=True, help="What uses the key, e.g. 'PSA automation'.")
@click.option("--client", "slug", help="Only this client (default: every client).")
@click.option(
    "--access",
    type=click.Choice(["read", "read-write"]),
    default="read",
    show_default=True,
    help="read: look only; read-write: act (invite, reset, unlock...).",
)
@with_app
def create(name: str, slug: str | None, access: str) -> None:
    """Create a key and print it once."""
    with blink().db.session() as session, refusals():
        client = scope.client(session, COMMAND_LINE, slug) if slug else None
        row, key = api_keys.create_key(
            session, COMMAND_LINE, name=name, client=client, writes=access == "read-write"
        )
        where = f"client {slug}" if slug else "every client"
        click.echo(f"API key {row.id} ({row.name}, {access}, {where}):")
        click.echo(key)
        click.echo("it is shown only now: store it in your PSA or RMM's secret store")


@api_keys_group.command("list")
@with_app
def list_() -> None:
    """List keys: scope, access, last use, revoked or not (never the keys)."""
    with blink().db.session() as session, refusals():
        rows = api_keys.list_keys(session, COMMAND_LINE)
        slugs = {c.id: c.slug for c in session.execute(scope.clients(COMMAND_LINE)).scalars()}
    if not rows:
        click.echo("no API keys yet: create one with 'blink-sms api-keys create'")
        return
    click.echo(f"{'ID':<5} {'NAME':<28} {'CLIENT':<16} {'ACCESS':<11} {'LAST USED':<17} STATE")
    for row in rows:
        used = f"{row.last_used_at:%Y-%m-%d %H:%M}" if row.last_used_at else "never"
        state = "revoked" if row.revoked_at else "active"
        access = "read-write" if row.writes else "read"
        client = slugs.get(row.client_id, "-") if row.client_id else "(all)"
        click.echo(f"{row.id:<5} {row.name:<28} {client:<16} {access:<11} {used:<17} {state}")


@api_keys_group.command("revoke")
@click.argument("key_id", type=int)
@with_app
def revoke(key_id: int) -> None:
    """Revoke a key: refused from its next request on."""
    with blink().db.session() as session, refusals():
        row = api_keys.revoke_key(session, COMMAND_LINE, key_id)
        click.echo(f"API key {row.id} ({row.name}) revoked")
