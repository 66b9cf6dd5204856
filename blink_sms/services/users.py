"""Users of a client: import from the directory, find, change email.

The import goes through the client's directory adapter (``list_users``), so it works
with every directory kind. Users are matched by their stable directory id: a second
import updates, never duplicates.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from sqlalchemy import Select, delete, func, or_, select
from sqlalchemy.orm import Session

from directory_adapters import DirectoryUser

from ..actors import Actor, Permission
from ..context import Blink
from ..crypto import mask_phone
from ..messaging.email import EMAIL_ADDRESS
from ..models import Client, Invitation, RequestKind, RequestOrigin, User, UserStatus
from . import audit, scope
from .clients import require_enabled
from .errors import Conflict, Invalid


@dataclass
class ImportSummary:
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped_no_email: int = 0
    skipped_disabled: int = 0
    skipped_protected: int = 0
    skipped_invalid_email: int = 0
    disabled: list[str] = field(default_factory=list)  # existing users now disabled
    # "username: why" of each user skipped as protected (the directory's reason)
    protected: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return (
            self.new
            + self.updated
            + self.unchanged
            + self.skipped_no_email
            + self.skipped_disabled
            + self.skipped_protected
            + self.skipped_invalid_email
        )


def _check(actor: Actor, client_id: int, permission: Permission = Permission.MANAGE_USERS) -> None:
    if not actor.sees(client_id):
        raise scope.NotFound("user")
    actor.require(permission)


def directory_users(
    app: Blink,
    actor: Actor,
    client: Client,
    *,
    group: str | None = None,
    ou: str | None = None,
) -> list[DirectoryUser]:
    """The users in scope, fetched once (raises the adapter's ``DirectoryError``)."""
    _check(actor, client.id)
    require_enabled(client)
    return list(app.directories.for_client(client).list_users(group=group, ou=ou))


def import_users(
    session: Session,
    actor: Actor,
    client: Client,
    entries: Iterable[DirectoryUser],
    *,
    progress: Callable[[DirectoryUser], None] = lambda entry: None,
) -> ImportSummary:
    """Create or update users from directory entries. Commits once at the end."""
    _check(actor, client.id)
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
            summary.protected.append(f"{entry.username}: {entry.protected_reason or 'protected'}")
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
            if not _valid_email(entry.email):
                summary.skipped_invalid_email += 1
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
                ("email", entry.email if _valid_email(entry.email) else user.email),
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


def _valid_email(email: str | None) -> bool:
    """Whether a directory's email can take an activation email (as ``set_email`` checks)."""
    return email is not None and len(email) <= 320 and EMAIL_ADDRESS.fullmatch(email) is not None


def set_email(session: Session, actor: Actor, user: User, email: str) -> None:
    """Change the address activation emails go to. Commits."""
    _check(actor, user.client_id)
    email = email.strip()
    if len(email) > 320 or not EMAIL_ADDRESS.fullmatch(email):
        raise Invalid("email", "not an email address")
    user.email = email
    audit.record(
        session, "user.email_changed", actor=actor, client_id=user.client_id, user_id=user.id
    )
    session.commit()


def latest_invitations(
    session: Session, client: Client, user_ids: Iterable[int] | None = None
) -> dict[int, Invitation]:
    """Each user's newest invitation (of ``user_ids`` only, when given), for listings."""
    newest_query = (
        select(Invitation.user_id, func.max(Invitation.id).label("id"))
        .join(User, User.id == Invitation.user_id)
        .where(User.client_id == client.id)
        .group_by(Invitation.user_id)
    )
    if user_ids is not None:
        newest_query = newest_query.where(Invitation.user_id.in_(list(user_ids)))
    newest = newest_query.subquery()
    rows = session.execute(select(Invitation).join(newest, Invitation.id == newest.c.id)).scalars()
    return {invitation.user_id: invitation for invitation in rows}


def set_disabled(session: Session, actor: Actor, user: User, *, disabled: bool) -> bool:
    """Disable a user in the gateway (they can no longer reset), or enable them again.

    Commits; False when nothing changed. The directory account is not touched; a
    disabled user keeps their phone so that enabling them again needs no enrolment.
    """
    _check(actor, user.client_id)
    if (user.status is UserStatus.DISABLED) == disabled:
        return False
    if disabled:
        user.status = UserStatus.DISABLED
    else:
        user.status = UserStatus.ACTIVE if user.phone else UserStatus.PENDING
    audit.record(
        session,
        "user.disabled" if disabled else "user.enabled",
        actor=actor,
        client_id=user.client_id,
        user_id=user.id,
        source_of_change="admin",
    )
    session.commit()
    return True


def remove_user(session: Session, actor: Actor, user: User) -> None:
    """Remove a user from the gateway: phone freed, invitations and requests gone. Commits.

    The directory account is not touched; a later import brings the user back as new.
    The audit events stay, and one more names who was removed.
    """
    _check(actor, user.client_id)
    audit.record(
        session,
        "user.removed",
        actor=actor,
        client_id=user.client_id,
        user_id=None,
        username=user.username,
        removed_user_id=user.id,
        phone=mask_phone(user.phone),
    )
    session.execute(delete(User).where(User.id == user.id))
    session.commit()
    session.expunge(user)


def request(app: Blink, session: Session, actor: Actor, user: User, *, kind: RequestKind) -> int:
    """Push a reset (the one-time password goes to the user's phone) or an unlock.

    The same job as a RESET text carries it out, with origin "admin" and the actor
    recorded. Returns the request id. ``Conflict`` when the user cannot get one now.
    """
    from .resets import Accepted, Target, request_reset

    _check(actor, user.client_id)
    require_enabled(user.client)
    if user.status is not UserStatus.ACTIVE or user.phone is None:
        raise Conflict(f"{user.username} has no registered phone: send an activation email first")
    if user.sms_opted_out:
        raise Conflict(f"{user.username} opted out of texts (they can send START to opt in)")
    outcome = request_reset(
        app, session, Target.of(user), kind=kind, origin=RequestOrigin.ADMIN, actor=actor
    )
    if not isinstance(outcome, Accepted):
        raise Conflict(f"a reset or unlock for {user.username} is already on its way")
    return outcome.request_id


# --- listings -----------------------------------------------------------------------------

STATES = ("not-invited", "invited", "active", "disabled", "locked")
PAGE_SIZE = 50


@dataclass(frozen=True)
class UserRow:
    user: User
    invitation: Invitation | None


@dataclass(frozen=True)
class UserPage:
    rows: list[UserRow]
    total: int
    page: int
    pages: int


def _search(query: Select[User], text: str) -> Select[User]:
    text = text.strip()
    if not text:
        return query
    digits = "".join(ch for ch in text if ch.isdigit())
    if digits and len(digits) >= 2 and not any(ch.isalpha() for ch in text):
        return query.where(User.phone.like(f"%{digits}"))
    pattern = "%" + text.casefold().replace("\\", "").replace("%", "").replace("_", "") + "%"
    return query.where(
        or_(
            func.lower(User.display_name).like(pattern),
            func.lower(User.username).like(pattern),
            func.lower(User.email).like(pattern),
        )
    )


def _filtered(app: Blink, actor: Actor, client: Client, search: str, state: str) -> Select[User]:
    """The client's users that match ``search`` and ``state``, as one query."""
    _check(actor, client.id, Permission.VIEW)
    if state and state not in STATES:
        raise Invalid("state", "one of " + ", ".join(STATES))
    query = _search(scope.users(actor).where(User.client_id == client.id), search)
    if state == "not-invited":
        query = query.where(User.status == UserStatus.PENDING)
    elif state in ("invited", "active", "disabled"):
        query = query.where(User.status == UserStatus(state))
    elif state == "locked":
        locked = [entry.id for entry in app.directories.for_client(client).locked_out_users()]
        query = query.where(User.directory_id.in_(locked))
    return query


def users_after(
    app: Blink,
    session: Session,
    actor: Actor,
    client: Client,
    *,
    search: str = "",
    state: str = "",
    after_id: int = 0,
    limit: int = PAGE_SIZE,
) -> list[UserRow]:
    """Up to ``limit`` of a client's users with an id above ``after_id``, by id: the
    keyset pages of the API (stable while users are added). Same filters as
    :func:`list_users`."""
    query = _filtered(app, actor, client, search, state)
    users = (
        session.execute(query.where(User.id > after_id).order_by(User.id).limit(limit))
        .scalars()
        .all()
    )
    latest = latest_invitations(session, client, [user.id for user in users])
    return [UserRow(user, latest.get(user.id)) for user in users]


def list_users(
    app: Blink,
    session: Session,
    actor: Actor,
    client: Client,
    *,
    search: str = "",
    state: str = "",
    page: int = 1,
    page_size: int = PAGE_SIZE,
) -> UserPage:
    """One page of a client's users, by display name: search (name, username, email, last
    digits of the phone) and filter by state. "locked" asks the directory (one query)."""
    query = _filtered(app, actor, client, search, state)
    total = session.execute(select(func.count()).select_from(query.subquery())).scalar_one()
    pages = max(1, -(-total // page_size))
    page = min(max(1, page), pages)
    users = (
        session.execute(
            query.order_by(func.lower(User.display_name), User.id)
            .offset((page - 1) * page_size)
            .limit(page_size)
        )
        .scalars()
        .all()
    )
    latest = latest_invitations(session, client, [user.id for user in users])
    return UserPage([UserRow(user, latest.get(user.id)) for user in users], total, page, pages)
