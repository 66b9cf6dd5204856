"""``blink-sms branding``: how a client's activation emails and pages look."""

from __future__ import annotations

import click

from ..actors import COMMAND_LINE
from ..context import blink
from ..messaging.pages import Branding
from ..models import Client
from ..services import scope
from ..services.branding import set_branding
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
        _show(client)


@branding.command("show")
@click.option("--client", "slug", required=True, help="Client slug.")
@with_app
def show(slug: str) -> None:
    """Show a client's branding as users see it."""
    with blink().db.session() as session, refusals():
        _show(scope.client(session, COMMAND_LINE, slug))


def _show(client: Client) -> None:
    brand = Branding.of(client)
    click.echo(f"name:          {brand.name}")
    click.echo(f"colour:        {brand.color}")
    click.echo(f"logo:          {brand.logo_url or '-'}")
    click.echo(f"support:       {brand.support}")
    click.echo(f"link works:    {client.invitation_hours} hours")
    click.echo(f"email text:    {brand.message or '-'}")
