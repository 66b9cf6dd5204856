"""``blink-sms branding``: how a client's activation emails and pages look."""

from __future__ import annotations

import click
from sqlalchemy import select

from ..context import blink
from ..messaging.pages import HEX_COLOR, Branding
from ..models import Client
from ..services import audit
from .base import with_app


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
    if color and not HEX_COLOR.match(color):
        raise click.BadParameter("must look like #1f5fbf", param_hint="--color")
    if logo_url and not logo_url.startswith("https://"):
        raise click.BadParameter("must be an https:// address", param_hint="--logo-url")
    changes = {
        column: value or None
        for column, value in (
            ("brand_name", name),
            ("brand_logo_url", logo_url),
            ("brand_color", color),
            ("email_message", email_text),
            ("support_email", support_email),
        )
        if value is not None
    }
    with blink().db.session() as session:
        client = session.execute(select(Client).where(Client.slug == slug)).scalar_one_or_none()
        if client is None:
            raise click.ClickException(f"no such client: {slug}")
        for column, value in changes.items():
            setattr(client, column, value)
        if link_hours is not None:
            client.invitation_hours = link_hours
        audit.record(
            session,
            "client.branding_changed",
            actor="cli",
            client_id=client.id,
            fields=sorted([*changes, *(["invitation_hours"] if link_hours else [])]),
        )
        session.commit()
        _show(client)


@branding.command("show")
@click.option("--client", "slug", required=True, help="Client slug.")
@with_app
def show(slug: str) -> None:
    """Show a client's branding as users see it."""
    with blink().db.session() as session:
        client = session.execute(select(Client).where(Client.slug == slug)).scalar_one_or_none()
        if client is None:
            raise click.ClickException(f"no such client: {slug}")
        _show(client)


def _show(client: Client) -> None:
    brand = Branding.of(client)
    click.echo(f"name:          {brand.name}")
    click.echo(f"colour:        {brand.color}")
    click.echo(f"logo:          {brand.logo_url or '-'}")
    click.echo(f"support:       {brand.support}")
    click.echo(f"link works:    {client.invitation_hours} hours")
    click.echo(f"email text:    {brand.message or '-'}")
