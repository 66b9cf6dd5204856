"""Users of a client: import from the directory, find, change email.

The import goes through the client's directory adapter (``list_users``), so it works
with every directory kind. Users are matched by their stable directory id: a second
import updates, never duplicates.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from directory_adapters import DirectoryUser

from ..context import Blink
from ..models import Client, Invitation, User, UserStatus
from . import audit

EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


@dataclass
class ImportSummary:
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped_no_email: int = 0
    skipped_disabled: int = 0
    skipped_protected: int = 0
    disabled: list[str] = field(default_factory=list)  # existing users now disabled

    @property
    def total(self) -> int:
        return (
            self.new
            + self.updated
            + self.unchanged
            + self.skipped_no_email
            + self.skipped_disabled
            + self.skipped_protected
        )


def directory_users(
    app: Blink, client: Client, *, group: str | None = None, ou: str | None = None
) -> list[DirectoryUser]:
    """The users in scope, fetched once (raises the adapter's ``DirectoryError``)."""
    return list(app.directories.for_client(client).list_users(group=group, ou=ou))


def import_users(
    session: Session,
    client: Client,
    entries: Iterable[DirectoryUser],
    *,
    actor: str,
    progress: Callable[[DirectoryUser], None] = lambda entry: None,
) -> ImportSummary:
    """Create or update users from directory entries. Commits once at the end."""
    summary = ImportSummary()
    existing = {
        user.directory_id: user
        for user in session.execute(select(User).where(User.client_id == client.id)).scalars()
    }
    for entry in entries:
        progress(entry)
        user = existing.get(entry.id)
        if entry.protected:
            summary.skipped_protected += 1
            continue
        if entry.disabled:
            if user is not None and user.status is not UserStatus.DISABLED:
                user.status = UserStatus.DISABLED
                summary.disabled.append(user.username)
                audit.record(
                    session,
                    "user.disabled",
                    actor=actor,
                    client_id=client.id,
                    user_id=user.id,
                    source="directory",
                )
            summary.skipped_disabled += 1
            continue
        if user is None:
            if not entry.email:
                summary.skipped_no_email += 1
                continue
            user = User(
                client_id=client.id,
                directory_id=entry.id,
                username=entry.username,
                display_name=entry.display_name,
                email=entry.email,
                status=UserStatus.PENDING,
            )
            session.add(user)
            session.flush()
            existing[entry.id] = user
            audit.record(
                session, "user.imported", actor=actor, client_id=client.id, user_id=user.id
            )
            summary.new += 1
            continue
        changes = {
            name: value
            for name, value in (
                ("username", entry.username),
                ("display_name", entry.display_name),
                ("email", entry.email or user.email),
            )
            if getattr(user, name) != value
        }
        if user.status is UserStatus.DISABLED:
            changes["status"] = UserStatus.ACTIVE if user.phone else UserStatus.PENDING
        if not changes:
            summary.unchanged += 1
            continue
        for name, value in changes.items():
            setattr(user, name, value)
        audit.record(
            session,
            "user.updated",
            actor=actor,
            client_id=client.id,
            user_id=user.id,
            fields=sorted(changes),
        )
        summary.updated += 1
    session.commit()
    return summary


def find_user(session: Session, client: Client, identifier: str) -> User | None:
    """A user of ``client`` by username, email or directory id (case-insensitive)."""
    key = identifier.strip().casefold()
    matches = (
        session.execute(
            select(User).where(
                User.client_id == client.id,
                or_(
                    func.lower(User.username) == key,
                    func.lower(User.email) == key,
                    User.directory_id == identifier.strip(),
                ),
            )
        )
        .scalars()
        .all()
    )
    return matches[0] if len(matches) == 1 else None


def set_email(session: Session, user: User, email: str, *, actor: str) -> None:
    """Change the address activation emails go to. Commits."""
    email = email.strip()
    if len(email) > 320 or not EMAIL.fullmatch(email):
        raise ValueError("not an email address")
    user.email = email
    audit.record(
        session, "user.email_changed", actor=actor, client_id=user.client_id, user_id=user.id
    )
    session.commit()


def latest_invitations(session: Session, client: Client) -> dict[int, Invitation]:
    """Each user's newest invitation, for listings."""
    newest = (
        select(Invitation.user_id, func.max(Invitation.id).label("id"))
        .join(User, User.id == Invitation.user_id)
        .where(User.client_id == client.id)
        .group_by(Invitation.user_id)
        .subquery()
    )
    rows = session.execute(select(Invitation).join(newest, Invitation.id == newest.c.id)).scalars()
    return {invitation.user_id: invitation for invitation in rows}
