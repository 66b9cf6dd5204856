"""``blink-sms branding``: how a client's activation emails and pages look.

``branding set`` and ``show`` are per client; ``branding msp`` shows and sets the MSP's
branding, the default of every client that leaves a part of its own empty.
"""

from __future__ import annotations

import click

from ..actors import COMMAND_LINE
from ..context import blink
from ..messaging.pages import Branding
from ..models import Client
from ..services import scope
from ..services.branding import brand_of, read_msp_branding, set_branding, set_msp_branding
from .base import refusals, with_app


@click.group()
def branding() -> None:
    """Logo, colour, custom text and support email of the activation emails and pages."""


@branding.command("set")
@click.option("--client", "slug", required=True, help="Client slug.")
@click.option("--name", help="Name shown to users (default: the client's name).")
@click.option("--logo-url", help="https:// address of a logo image (about 160x40).")
@click.option("--color", help="Main colour, #rrggbb.")
@click.option("--email-text", help="A paragraph of your own in the activation email.")
@click.option("--support-email", help="Where users write for help (also the Reply-To).")
@click.option("--link-hours", type=click.IntRange(1, 24 * 30), help="How long a link works.")
@with_app
def set_(
    slug: str,
    name: str | None,
    logo_url: str | None,
    color: str | None,
    email_text: str | None,
    support_email: str | None,
    link_hours: int | None,
) -> None:
    """Change a client's branding; an empty value ("") goes back to the default."""
    changes = {
        column: value
        for column, value in (
            ("brand_name", name),
            ("brand_logo_url", logo_url),
            ("brand_color", color),
            ("email_message", email_text),
            ("support_email", support_email),
            ("invitation_hours", link_hours),
        )
        if value is not None
    }
    with blink().db.session() as session, refusals():
        client = scope.client(session, COMMAND_LINE, slug)
        set_branding(session, COMMAND_LINE, client, **changes)
        _show(brand_of(blink(), client, session), client)


@branding.command("show")
@click.option("--client", "slug", required=True, help="Client slug.")
@with_app
def show(slug: str) -> None:
    """Show a client's branding as users see it."""
    with blink().db.session() as session, refusals():
        client = scope.client(session, COMMAND_LINE, slug)
        _show(brand_of(blink(), client, session), client)


@branding.command("msp")
@click.option("--name", help="Your name, on pages that name no client (an unknown link).")
@click.option("--logo-url", help="https:// address of a logo image (about 160x40).")
@click.option("--color", help="Main colour, #rrggbb.")
@click.option("--email-text", help="A paragraph of your own in the activation email.")
@click.option("--support-email", help="Where users write for help (also the Reply-To).")
@with_app
def msp(
    name: str | None,
    logo_url: str | None,
    color: str | None,
    email_text: str | None,
    support_email: str | None,
) -> None:
    """Show, or change, the MSP's branding: what every client without its own shows.

    An empty value ("") removes that default (then BLINK_BRAND_* applies, if set).
    """
    changes = {
        column: value
        for column, value in (
            ("brand_name", name),
            ("brand_logo_url", logo_url),
            ("brand_color", color),
            ("email_message", email_text),
            ("support_email", support_email),
        )
        if value is not None
    }
    app = blink()
    with app.db.session() as session, refusals():
        if changes:
            changed = set_msp_branding(app, session, COMMAND_LINE, **changes)
            click.echo(f"changed {', '.join(changed)}" if changed else "nothing changed")
        saved = read_msp_branding(session, COMMAND_LINE)
    click.echo(f"name:          {saved.brand_name or '-'}")
    click.echo(f"colour:        {saved.brand_color or '-'}")
    click.echo(f"logo:          {saved.brand_logo_url or '-'}")
    click.echo(f"support email: {saved.support_email or '-'}")
    click.echo(f"email text:    {saved.email_message or '-'}")
    click.echo("(-: not set; a client without its own then shows BLINK_BRAND_*, if set)")


def _show(brand: Branding, client: Client) -> None:
    click.echo(f"name:          {brand.name}")
    click.echo(f"colour:        {brand.color}")
    click.echo(f"logo:          {brand.logo_url or '-'}")
    click.echo(f"support:       {brand.support}")
    click.echo(f"link works:    {client.invitation_hours} hours")
    click.echo(f"email text:    {brand.message or '-'}")
