"""``blink-sms users``: import from the directory, invite, Reset User, set-email, list."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

import click
from sqlalchemy import select
from sqlalchemy.orm import Session

from directory_adapters import DirectoryError

from ..context import Blink, blink
from ..crypto import SecretBoxError, mask_phone
from ..models import Client, Invitation, User, UserStatus, utcnow
from ..services import invitations
from ..services import users as users_service
from .base import with_app

ACTOR = "cli"


def _client(session: Session, slug: str) -> Client:
    client = session.execute(select(Client).where(Client.slug == slug)).scalar_one_or_none()
    if client is None:
        raise click.ClickException(f"no such client: {slug}")
    return client


def _user(session: Session, client: Client, identifier: str) -> User:
    user = users_service.find_user(session, client, identifier)
    if user is None:
        raise click.ClickException(
            f"no single user {identifier!r} in {client.slug} (username, email or directory id)"
        )
    return user


@contextmanager
def _jobs_finish(app: Blink) -> Iterator[None]:
    """Without Redis, jobs run on threads of this process: wait for them before exiting."""
    yield
    join = getattr(app.queue, "join", None)
    if join is not None:
        join(timeout=120)


@click.group()
def users() -> None:
    """Users of a client: import, invite, Reset User, list."""


@users.command("import")
@click.option("--client", "slug", required=True, help="Client slug.")
@click.option("--group", help="Import the members of this group (nested groups included).")
@click.option("--ou", help="Import the users under this OU.")
@click.option("--all", "all_", is_flag=True, help="Import every user in the directory's scope.")
@with_app
def import_(slug: str, group: str | None, ou: str | None, all_: bool) -> None:
    """Create or update users from the client's directory (matched by directory id)."""
    if sum(bool(x) for x in (group, ou, all_)) != 1:
        raise click.UsageError("give exactly one of --group, --ou or --all")
    app = blink()
    with app.db.session() as session:
        client = _client(session, slug)
        try:
            entries = users_service.directory_users(app, client, group=group, ou=ou)
        except DirectoryError as err:
            raise click.ClickException(f"directory: {err.message}") from None
        except SecretBoxError as err:
            raise click.ClickException(f"{slug}: {err}") from None
        with click.progressbar(length=len(entries), label=f"Importing {len(entries)} users") as bar:
            summary = users_service.import_users(
                session, client, entries, actor=ACTOR, progress=lambda _: bar.update(1)
            )
    click.echo(
        f"{summary.new} new, {summary.updated} updated, {summary.unchanged} unchanged; "
        f"skipped: {summary.skipped_no_email} without email, "
        f"{summary.skipped_disabled} disabled, {summary.skipped_protected} protected"
    )
    if summary.disabled:
        click.echo(f"now disabled (they can no longer reset): {', '.join(summary.disabled)}")


@users.command()
@click.option("--client", "slug", required=True, help="Client slug.")
@click.option("--user", "identifier", help="Username, email or directory id.")
@click.option(
    "--all-pending",
    is_flag=True,
    help="Everyone not yet active whose last invitation is missing, expired or failed.",
)
@with_app
def invite(slug: str, identifier: str | None, all_pending: bool) -> None:
    """Email activation links (a new link revokes the previous one)."""
    if bool(identifier) == all_pending:
        raise click.UsageError("give either --user or --all-pending")
    app = blink()
    with _jobs_finish(app), app.db.session() as session:
        client = _client(session, slug)
        if identifier:
            targets = [_user(session, client, identifier)]
        else:
            latest = users_service.latest_invitations(session, client)
            now = utcnow()
            targets = [
                user
                for user in session.execute(
                    select(User)
                    .where(
                        User.client_id == client.id,
                        User.status.in_((UserStatus.PENDING, UserStatus.INVITED)),
                    )
                    .order_by(User.username)
                ).scalars()
                if _needs_invitation(latest.get(user.id), now)
            ]
        sent, problems = 0, []
        for user in targets:
            try:
                invitations.invite(app, session, user, actor=ACTOR)
                sent += 1
            except invitations.InvitationRefused as err:
                problems.append(str(err))
        for problem in problems:
            click.echo(f"not invited: {problem}", err=True)
        click.echo(f"{sent} activation email(s) queued")
        if identifier and problems:
            raise click.ClickException(problems[0])


def _needs_invitation(invitation: Invitation | None, now: datetime) -> bool:
    if invitation is None or invitation.email_status == "failed":
        return True
    return invitation.used_at is None and (
        invitation.revoked_at is not None or invitation.expires_at <= now
    )


@users.command("reset-user")
@click.option("--client", "slug", required=True, help="Client slug.")
@click.option("--user", "identifier", required=True, help="Username, email or directory id.")
@with_app
def reset_user(slug: str, identifier: str) -> None:
    """Reset User: unbind the phone, revoke invitations, send a new activation email."""
    app = blink()
    with _jobs_finish(app), app.db.session() as session:
        user = _user(session, _client(session, slug), identifier)
        try:
            invitations.reset_user(app, session, user, actor=ACTOR)
        except invitations.InvitationRefused as err:
            raise click.ClickException(str(err)) from None
        click.echo(f"{user.username}: phone unbound, new activation email queued")


@users.command("set-email")
@click.option("--client", "slug", required=True, help="Client slug.")
@click.option("--user", "identifier", required=True, help="Username, email or directory id.")
@click.option("--email", required=True, help="The new address for activation emails.")
@with_app
def set_email(slug: str, identifier: str, email: str) -> None:
    """Change the address a user's activation emails go to."""
    with blink().db.session() as session:
        user = _user(session, _client(session, slug), identifier)
        try:
            users_service.set_email(session, user, email, actor=ACTOR)
        except ValueError as err:
            raise click.ClickException(str(err)) from None
        click.echo(f"{user.username}: email set; send a new activation with 'users invite'")


def _status(user: User, invitation: Invitation | None) -> str:
    status = user.status.value
    if user.status is not UserStatus.INVITED or invitation is None:
        return status
    if invitation.email_status == "failed":
        return f"invited, email failed: {invitation.email_error or 'unknown'}"
    if invitation.used_at is None and invitation.expires_at <= utcnow():
        return "invited, link expired"
    if invitation.email_status != "sent":
        return f"invited, email {invitation.email_status}"
    return status


@users.command("list")
@click.option("--client", "slug", required=True, help="Client slug.")
@with_app
def list_(slug: str) -> None:
    """List a client's users with their status and masked phone."""
    with blink().db.session() as session:
        client = _client(session, slug)
        rows = (
            session.execute(select(User).where(User.client_id == client.id).order_by(User.username))
            .scalars()
            .all()
        )
        latest = users_service.latest_invitations(session, client)
    if not rows:
        click.echo(f"no users in {slug} yet: import them with 'blink-sms users import'")
        return
    click.echo(f"{'USER':<24} {'STATUS':<40} {'PHONE':<16} EMAIL")
    for user in rows:
        click.echo(
            f"{user.username:<24} {_status(user, latest.get(user.id)):<40} "
            f"{mask_phone(user.phone) or '-':<16} {user.email or '-'}"
        )
