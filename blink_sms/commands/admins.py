"""``blink-sms admins``: the first console account, the list, and the way back in.

Thin over :mod:`blink_sms.services.admins`, acting as the command line (an MSP owner).
Set-up links are printed once: only their hash is stored.
"""

from __future__ import annotations

import click
from sqlalchemy.orm import Session

from ..actors import COMMAND_LINE as ACTOR
from ..actors import Role
from ..context import blink
from ..models import Admin, Client
from ..services import admins as service
from ..services import scope, second_factor
from .base import refusals, with_app


def _admin(session: Session, email: str) -> Admin:
    try:
        return service.find_admin(session, ACTOR, email)
    except scope.NotFound:
        raise click.ClickException(f"no admin with email {email}") from None


def _print_link(session: Session, what: str, url: str) -> None:
    expires = service.check_setup_token(session, url.rsplit("/", 1)[1]).expires_at
    click.echo(f"{what}: {url}")
    click.echo(
        f"it works once, until {expires:%Y-%m-%d %H:%M} UTC ({service.SETUP_HOURS} hours);"
        " hand it over in person or by a channel you trust"
    )


@click.group()
def admins() -> None:
    """Accounts of the admin console."""


@admins.command()
@click.option("--email", required=True, help="The admin's email address (their sign-in name).")
@click.option(
    "--role",
    required=True,
    type=click.Choice([role.value for role in Role]),
    help="msp-owner and msp-technician have no client; client-admin needs --client.",
)
@click.option("--client", "slug", help="Client slug (client admins; optional for auditors).")
@click.option("--name", default="", help="Shown in the console.")
@with_app
def create(email: str, role: str, slug: str | None, name: str) -> None:
    """Create an admin and print their one-time set-up link."""
    app = blink()
    with app.db.session() as session, refusals():
        client: Client | None = scope.client(session, ACTOR, slug) if slug else None
        admin, url = service.create_admin(
            app, session, ACTOR, email=email, role=Role(role), client=client, name=name
        )
        _print_link(session, f"set-up link for {admin.email} ({admin.role.display})", url)


@admins.command("list")
@with_app
def list_() -> None:
    """List admin accounts with their role, client and second factor."""
    with blink().db.session() as session:
        rows = service.list_admins(session, ACTOR)
        if not rows:
            click.echo("no admins yet: create the first with 'blink-sms admins create'")
            return
        click.echo(f"{'EMAIL':<32} {'ROLE':<16} {'CLIENT':<16} {'2FA':<5} {'STATUS':<14} LAST")
        for admin in rows:
            if admin.disabled_at is not None:
                status = "disabled"
            elif admin.password_hash is None:
                status = "set-up pending"
            else:
                status = "active"
            last = f"{admin.last_sign_in_at:%Y-%m-%d %H:%M}" if admin.last_sign_in_at else "-"
            factor = "yes" if second_factor.has_second_factor(admin) else "no"
            client = admin.client.slug if admin.client else "-"
            click.echo(
                f"{admin.email:<32} {admin.role.value:<16} {client:<16} {factor:<5} "
                f"{status:<14} {last}"
            )


@admins.command("reset-2fa")
@click.option("--email", required=True, help="The locked-out admin's email address.")
@with_app
def reset_2fa(email: str) -> None:
    """Clear an admin's second factor and password; print a new set-up link."""
    app = blink()
    with app.db.session() as session, refusals():
        admin = _admin(session, email)
        url = second_factor.reset_second_factors(app, session, ACTOR, admin)
        click.echo(
            f"{admin.email}: authenticator app, passkeys, recovery codes and password cleared;"
            " every session signed out"
        )
        _print_link(session, "new set-up link", url)
