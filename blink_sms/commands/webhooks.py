"""``blink-sms webhooks``: outbound event webhooks for a PSA (add, list, test, remove)."""

from __future__ import annotations

import click

from ..actors import COMMAND_LINE
from ..context import blink
from ..services import scope, webhooks
from ..services.webhook_events import EVENT_TYPES
from .base import refusals, with_app


@click.group("webhooks")
def webhooks_group() -> None:
    """Signed JSON POSTs to a PSA on resets, unlocks, lockouts and enrollments."""


@webhooks_group.command("add")
@click.option("--url", required=True, help="The receiver's https address.")
@click.option("--client", "slug", help="Only this client's events (default: every client).")
@click.option(
    "--event",
    "events",
    multiple=True,
    type=click.Choice(EVENT_TYPES),
    help="Send only these events (repeat the option; default: all).",
)
@click.option("--description", default="", help="What receives it, e.g. 'Autotask tickets'.")
@with_app
def add(url: str, slug: str | None, events: tuple[str, ...], description: str) -> None:
    """Add an endpoint and print its signing secret once."""
    app = blink()
    with app.db.session() as session, refusals():
        client = scope.client(session, COMMAND_LINE, slug) if slug else None
        row, secret = webhooks.create_endpoint(
            session,
            app.secrets,
            COMMAND_LINE,
            url=url,
            client=client,
            events=events,
            description=description,
        )
    where = f"client {slug}" if slug else "every client"
    click.echo(f"webhook endpoint {row.id} ({where}, {', '.join(row.events) or 'all events'}):")
    click.echo(secret)
    click.echo("the signing secret is shown only now: store it with the receiver")


@webhooks_group.command("list")
@with_app
def list_() -> None:
    """List endpoints with their last delivery (never their secrets)."""
    with blink().db.session() as session, refusals():
        listed = webhooks.list_endpoints(session, COMMAND_LINE)
        slugs = {c.id: c.slug for c in session.execute(scope.clients(COMMAND_LINE)).scalars()}
    if not listed:
        click.echo("no webhook endpoints yet: add one with 'blink-sms webhooks add'")
        return
    click.echo(f"{'ID':<5} {'CLIENT':<16} {'STATE':<9} {'LAST DELIVERY':<32} URL")
    for item in listed:
        row, last = item.endpoint, item.last
        client = slugs.get(row.client_id, "-") if row.client_id else "(all)"
        state = "disabled" if row.disabled_at else "enabled"
        if last is None:
            delivery = "none yet"
        else:
            delivery = f"{last.status} {last.created_at:%Y-%m-%d %H:%M}"
            if last.last_status is not None:
                delivery += f" HTTP {last.last_status}"
        click.echo(f"{row.id:<5} {client:<16} {state:<9} {delivery:<32} {row.url}")
        if row.events:
            click.echo(f"{'':<5} events: {', '.join(row.events)}")


@webhooks_group.command("test")
@click.argument("endpoint_id", type=int)
@with_app
def test(endpoint_id: int) -> None:
    """Queue a webhook.test event; the scheduler sends it within seconds."""
    with blink().db.session() as session, refusals():
        delivery = webhooks.send_test(session, COMMAND_LINE, endpoint_id)
    click.echo(
        f"test event {delivery.event_id} queued: 'blink-sms webhooks list' shows how it went"
    )


@webhooks_group.command("disable")
@click.argument("endpoint_id", type=int)
@click.option("--enable", is_flag=True, help="Enable it again instead.")
@with_app
def disable(endpoint_id: int, enable: bool) -> None:
    """Pause an endpoint: no new events; what is queued waits until it is enabled."""
    with blink().db.session() as session, refusals():
        webhooks.set_disabled(session, COMMAND_LINE, endpoint_id, disabled=not enable)
    click.echo(f"webhook endpoint {endpoint_id} {'enabled' if enable else 'disabled'}")


@webhooks_group.command("remove")
@click.argument("endpoint_id", type=int)
@with_app
def remove(endpoint_id: int) -> None:
    """Remove an endpoint and whatever was still to be sent to it."""
    with blink().db.session() as session, refusals():
        webhooks.remove_endpoint(session, COMMAND_LINE, endpoint_id)
    click.echo(f"webhook endpoint {endpoint_id} removed")
