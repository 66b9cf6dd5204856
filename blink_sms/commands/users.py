"""``blink-sms users``: import, invite, Reset User, push a reset, unlock, disable, list,
and the GDPR export and erasure of one user.

Thin over :mod:`blink_sms.services`: parse options, call a service as the command line
actor, print. The rules (who may, what is audited) are in the services.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import click
from sqlalchemy.orm import Session

from directory_adapters import DirectoryError

from ..actors import COMMAND_LINE as ACTOR
from ..context import Blink, blink
from ..crypto import SecretBoxError, mask_phone
from ..models import Client, RequestKind, User
from ..services import enrollment, invitations, privacy, scope
from ..services import users as users_service
from ..services.user_details import describe_status
from .base import refusals, with_app

FORMULA = ("=", "+", "-", "@", "\t", "\r")


def _client(session: Session, slug: str) -> Client:
    try:
        return scope.client(session, ACTOR, slug)
    except scope.NotFound:
        raise click.ClickException(f"no such client: {slug}") from None


def _user(session: Session, client: Client, identifier: str) -> User:
    try:
        return scope.find_user(session, ACTOR, client, identifier)
    except scope.NotFound:
        raise click.ClickException(
            f"no single user {identifier!r} in {client.slug} (username, email or directory id)"
        ) from None


def _progress(verb: str) -> Callable[[list[User]], Iterator[User]]:
    """Walk a list of users under a progress bar on stderr (drawn only on a terminal)."""

    def track(targets: list[User]) -> Iterator[User]:
        label = f"{verb} {len(targets)} users"
        with click.progressbar(targets, label=label, file=sys.stderr) as bar:
            yield from bar

    return track


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
            with refusals():
                entries = users_service.directory_users(app, ACTOR, client, group=group, ou=ou)
        except DirectoryError as err:
            raise click.ClickException(f"directory: {err.message}") from None
        except SecretBoxError as err:
            raise click.ClickException(f"{slug}: {err}") from None
        # The bar goes to stderr (click draws it only on a terminal): stdout keeps the summary.
        with click.progressbar(
            length=len(entries),
            label=f"Importing {len(entries)} users",
            file=sys.stderr,
        ) as bar:
            summary = users_service.import_users(
                session, ACTOR, client, entries, progress=lambda _: bar.update(1)
            )
    reasons = [
        f"{count} {reason}"
        for count, reason in (
            (summary.skipped_no_email, "without email"),
            (summary.skipped_invalid_email, "with an invalid email"),
            (summary.skipped_disabled, "disabled"),
            (summary.skipped_protected, "protected"),
        )
        if count
    ]
    click.echo(
        f"{summary.new} new, {summary.updated} updated, {summary.unchanged} unchanged; "
        f"skipped: {', '.join(reasons) or 'none'}"
    )
    if summary.disabled:
        click.echo(f"now disabled (they can no longer reset): {', '.join(summary.disabled)}")
    for line in summary.protected:
        click.echo(f"skipped as protected: {line}")


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
        if not identifier:
            with refusals():
                sent, problems = invitations.invite_pending(
                    app, session, ACTOR, client, track=_progress("Inviting")
                )
            for problem in problems:
                click.echo(f"not invited: {problem}", err=True)
            click.echo(f"{sent} activation email(s) queued")
            return
        user = _user(session, client, identifier)
        with refusals():
            invitations.invite(app, session, ACTOR, user)
        click.echo("1 activation email(s) queued")


@users.command("reset-user")
@click.option("--client", "slug", required=True, help="Client slug.")
@click.option("--user", "identifier", required=True, help="Username, email or directory id.")
@with_app
def reset_user(slug: str, identifier: str) -> None:
    """Reset User: unbind the phone, revoke invitations, send a new activation email."""
    app = blink()
    with _jobs_finish(app), app.db.session() as session:
        user = _user(session, _client(session, slug), identifier)
        with refusals():
            invitations.reset_user(app, session, ACTOR, user)
        click.echo(f"{user.username}: phone unbound, new activation email queued")


@users.command("approve-binding")
@click.option("--client", "slug", required=True, help="Client slug.")
@click.argument("identifier", metavar="USER")
@with_app
def approve_binding(slug: str, identifier: str) -> None:
    """Approve the phone a user confirmed (binding policy "approval"): bind it, text them."""
    app = blink()
    with _jobs_finish(app), app.db.session() as session:
        user = _user(session, _client(session, slug), identifier)
        with refusals():
            phone = enrollment.approve_binding(app, session, ACTOR, user)
        click.echo(f"{user.username}: phone {phone} approved and bound")


@users.command("reject-binding")
@click.option("--client", "slug", required=True, help="Client slug.")
@click.argument("identifier", metavar="USER")
@with_app
def reject_binding(slug: str, identifier: str) -> None:
    """Reject the phone a user confirmed: the link stops working, nothing is bound."""
    with blink().db.session() as session:
        user = _user(session, _client(session, slug), identifier)
        with refusals():
            phone = enrollment.reject_binding(session, ACTOR, user)
        click.echo(f"{user.username}: phone {phone} rejected (Reset User sends a new link)")


@users.command("set-email")
@click.option("--client", "slug", required=True, help="Client slug.")
@click.option("--user", "identifier", required=True, help="Username, email or directory id.")
@click.option("--email", required=True, help="The new address for activation emails.")
@with_app
def set_email(slug: str, identifier: str, email: str) -> None:
    """Change the address a user's activation emails go to."""
    with blink().db.session() as session:
        user = _user(session, _client(session, slug), identifier)
        with refusals():
            users_service.set_email(session, ACTOR, user, email)
        click.echo(f"{user.username}: email set; send a new activation with 'users invite'")


@users.command("push-reset")
@click.option("--client", "slug", required=True, help="Client slug.")
@click.option("--user", "identifier", required=True, help="Username, email or directory id.")
@with_app
def push_reset(slug: str, identifier: str) -> None:
    """Set a one-time password and text it to the user's registered phone."""
    _request(slug, identifier, RequestKind.RESET)


@users.command()
@click.option("--client", "slug", required=True, help="Client slug.")
@click.option("--user", "identifier", required=True, help="Username, email or directory id.")
@with_app
def unlock(slug: str, identifier: str) -> None:
    """Unlock the account without changing its password (the user gets a text)."""
    _request(slug, identifier, RequestKind.UNLOCK)


def _request(slug: str, identifier: str, kind: RequestKind) -> None:
    app = blink()
    with _jobs_finish(app), app.db.session() as session:
        user = _user(session, _client(session, slug), identifier)
        with refusals():
            request_id = users_service.request(app, session, ACTOR, user, kind=kind)
        what = "reset" if kind is RequestKind.RESET else "unlock"
        click.echo(f"{user.username}: {what} queued (request {request_id})")


@users.command()
@click.option("--client", "slug", required=True, help="Client slug.")
@click.option("--user", "identifier", required=True, help="Username, email or directory id.")
@click.option("--enable", is_flag=True, help="Enable the user again instead.")
@with_app
def disable(slug: str, identifier: str, enable: bool) -> None:
    """Stop a user from resetting by text (the directory account is not touched)."""
    with blink().db.session() as session:
        user = _user(session, _client(session, slug), identifier)
        with refusals():
            changed = users_service.set_disabled(session, ACTOR, user, disabled=not enable)
        state = "enabled" if enable else "disabled"
        click.echo(f"{user.username}: {state}" if changed else f"{user.username}: already {state}")


@users.command()
@click.option("--client", "slug", required=True, help="Client slug.")
@click.option("--user", "identifier", required=True, help="Username, email or directory id.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@with_app
def remove(slug: str, identifier: str, yes: bool) -> None:
    """Remove a user from the gateway (phone freed; the directory account is kept)."""
    with blink().db.session() as session:
        user = _user(session, _client(session, slug), identifier)
        name = user.username
        if not yes:
            click.confirm(f"remove {name} from {slug}?", abort=True)
        with refusals():
            users_service.remove_user(session, ACTOR, user)
        click.echo(f"{name}: removed from the gateway")


@users.command("export")
@click.option("--client", "slug", required=True, help="Client slug.")
@click.argument("identifier", metavar="USER")
@with_app
def export(slug: str, identifier: str) -> None:
    """Print everything held about a user as JSON (GDPR access request)."""
    with blink().db.session() as session:
        user = _user(session, _client(session, slug), identifier)
        with refusals():
            data = privacy.export_user(session, ACTOR, user)
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


@users.command("erase")
@click.option("--client", "slug", required=True, help="Client slug.")
@click.argument("identifier", metavar="USER")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@with_app
def erase(slug: str, identifier: str, yes: bool) -> None:
    """Erase a user's personal data (GDPR); their audit events stay, pseudonymised."""
    with blink().db.session() as session:
        user = _user(session, _client(session, slug), identifier)
        name = user.username
        if not yes:
            click.confirm(
                f"erase the personal data of {name} in {slug}? This cannot be undone", abort=True
            )
        with refusals():
            privacy.erase_user(session, ACTOR, user)
        click.echo(f"{name}: personal data erased; now {user.username} in the audit trail")


@users.command("list")
@click.option("--client", "slug", required=True, help="Client slug.")
@click.option("--state", type=click.Choice(users_service.STATES), help="Only users in this state.")
@click.option("--search", default="", help="Name, username, email or last digits of the phone.")
@click.option(
    "--format", "format_", type=click.Choice(["table", "csv", "json"]), default="table",
    show_default=True,
)  # fmt: skip
@with_app
def list_(slug: str, state: str | None, search: str, format_: str) -> None:
    """List a client's users with their status and masked phone."""
    app = blink()
    rows: list[users_service.UserRow] = []
    with app.db.session() as session:
        client = _client(session, slug)
        try:
            with refusals():
                while page := users_service.users_after(
                    app, session, ACTOR, client, search=search, state=state or "",
                    after_id=rows[-1].user.id if rows else 0, limit=1000,
                ):  # fmt: skip
                    rows += page
        except DirectoryError as err:  # --state locked asks the directory
            raise click.ClickException(f"directory: {err.message}") from None
        lines = [
            {
                "username": row.user.username,
                "name": row.user.display_name,
                "status": str(describe_status(row.user, row.invitation)),
                "phone": mask_phone(row.user.phone) or "",
                "email": row.user.email or "",
            }
            for row in sorted(rows, key=lambda row: row.user.username)
        ]
    if format_ == "json":
        click.echo(json.dumps(lines, indent=2))
    elif format_ == "csv":
        buffer = io.StringIO()
        out = csv.DictWriter(buffer, fieldnames=["username", "name", "status", "phone", "email"])
        out.writeheader()
        # Directory text a spreadsheet would run as a formula is shown as text.
        out.writerows(
            {k: "'" + v if k != "phone" and v[:1] in FORMULA else v for k, v in line.items()}
            for line in lines
        )
        click.echo(buffer.getvalue(), nl=False)
    elif not lines:
        found = "no users match" if state or search else "no users"
        click.echo(f"{found} in {slug}: import them with 'blink-sms users import'")
    else:
        click.echo(f"{'USER':<24} {'STATUS':<40} {'PHONE':<16} EMAIL")
        for line in lines:
            click.echo(
                f"{line['username']:<24} {line['status']:<40} "
                f"{line['phone'] or '-':<16} {line['email'] or '-'}"
            )
