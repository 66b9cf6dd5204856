"""``blink-sms sandbox``: add, list, lock and unlock the users of a sandbox client's
directory, for trials and demos of a new client without editing files."""

from __future__ import annotations

import click

from directory_adapters.errors import DirectoryError, UserNotFound
from directory_adapters.sandbox import AccountLocked, SandboxDirectory, SignInError

from ..actors import COMMAND_LINE
from ..context import blink
from ..services import clients, scope
from .base import refusals, with_app

client_option = click.option("--client", "slug", required=True, help="The sandbox client.")


def _directory(slug: str) -> SandboxDirectory:
    """The sandbox directory of client ``slug``, from its stored settings."""
    app = blink()
    with app.db.session() as session, refusals():
        client = scope.client(session, COMMAND_LINE, slug)
        if client.directory_kind != "sandbox":
            raise click.ClickException(
                f"client {slug} uses a {client.directory_kind} directory, not the sandbox:"
                " manage its users in that directory"
            )
        settings = clients.directory_settings(app.secrets, client)
    try:
        return SandboxDirectory.from_settings(settings)
    except DirectoryError as err:
        raise click.ClickException(f"client {slug}'s sandbox: {err}") from None


@click.group()
def sandbox() -> None:
    """Users of a sandbox client's directory (trials and demos)."""


@sandbox.command("add-user")
@client_option
@click.argument("username")
@click.option("--name", required=True, help="Display name, e.g. 'Ann Archer'.")
@click.option("--email", help="Email address (where invitations go).")
@click.option("--mobile", help="Mobile number in the directory, e.g. +31612345678.")
@click.option("--password", help="Initial password (default: none usable until a reset).")
@with_app
def add_user(
    slug: str, username: str, name: str, email: str | None, mobile: str | None, password: str | None
) -> None:
    """Create USERNAME in the client's sandbox directory."""
    directory = _directory(slug)
    try:
        directory.add_user(username, name, email=email, mobile=mobile, password=password)
    except ValueError as err:
        raise click.ClickException(str(err)) from None
    click.echo(f"sandbox user {username} added to {slug}")
    click.echo(f"import it with: blink-sms users import --client {slug} --all")


@sandbox.command("list")
@client_option
@with_app
def list_(slug: str) -> None:
    """List the sandbox directory's users with their lockout state."""
    directory = _directory(slug)
    users = list(directory.list_users())
    if not users:
        click.echo(f"no sandbox users for {slug} yet: add one with 'blink-sms sandbox add-user'")
        return
    locked = {user.id for user in directory.locked_out_users()}
    click.echo(f"{'USERNAME':<20} {'NAME':<24} {'EMAIL':<30} {'MOBILE':<16} STATE")
    for user in users:
        state = (
            "protected"
            if user.protected
            else "disabled"
            if user.disabled
            else "locked"
            if user.id in locked
            else "active"
        )
        click.echo(
            f"{user.username:<20} {user.display_name:<24} {user.email or '-':<30}"
            f" {user.mobile or '-':<16} {state}"
        )


@sandbox.command("lock")
@client_option
@click.argument("username")
@with_app
def lock(slug: str, username: str) -> None:
    """Lock USERNAME out as a user would: wrong passwords up to the lockout threshold."""
    directory = _directory(slug)
    if directory.lockout_threshold == 0:
        raise click.ClickException(f"client {slug}'s sandbox never locks (lockout_threshold=0)")
    try:
        user = directory.find_user(username)
    except UserNotFound as err:
        raise click.ClickException(f"{username}: {err}") from None
    for _ in range(directory.lockout_threshold):
        try:
            directory.authenticate(user.username, "\x00not the password\x00")
        except AccountLocked:
            break
        except SignInError:
            continue
    if not directory.is_locked(user.username):
        raise click.ClickException(f"{username} could not be locked")
    click.echo(f"sandbox user {username} of {slug} is locked out")


@sandbox.command("unlock")
@client_option
@click.argument("username")
@with_app
def unlock(slug: str, username: str) -> None:
    """Clear USERNAME's lockout in the sandbox directory."""
    directory = _directory(slug)
    try:
        directory.unlock(directory.find_user(username).id)
    except DirectoryError as err:
        raise click.ClickException(f"{username}: {err}") from None
    click.echo(f"sandbox user {username} of {slug} is unlocked")
