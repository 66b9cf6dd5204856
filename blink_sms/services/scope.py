"""Tenant-scoped lookups: every row an actor reaches goes through here.

A client admin asking for another client's client, user or event gets
:class:`NotFound`, exactly as for an id that does not exist: the answer does not
reveal that the object exists. Queries are filtered in SQL, never after loading.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from ..actors import Actor
from ..models import AuditEvent, Client, User


class NotFound(Exception):
    """No such object among those the actor may see (HTTP 404)."""

    def __init__(self, what: str) -> None:
        super().__init__(f"no such {what}")
        self.what = what


def clients(actor: Actor) -> Select[Client]:
    """The clients the actor may see."""
    query = select(Client)
    if actor.client_id is not None:
        query = query.where(Client.id == actor.client_id)
    return query


def users(actor: Actor) -> Select[User]:
    """The users of the clients the actor may see."""
    query = select(User)
    if actor.client_id is not None:
        query = query.where(User.client_id == actor.client_id)
    return query


def events(actor: Actor) -> Select[AuditEvent]:
    """The audit events of the clients the actor may see (MSP-wide ones: MSP roles only)."""
    query = select(AuditEvent)
    if actor.client_id is not None:
        query = query.where(AuditEvent.client_id == actor.client_id)
    return query


def client(session: Session, actor: Actor, slug: str, *, lock: bool = False) -> Client:
    """The client with ``slug``, if the actor may see it."""
    query = clients(actor).where(Client.slug == slug)
    if lock:
        query = query.with_for_update()
    found = session.execute(query).scalar_one_or_none()
    if found is None:
        raise NotFound("client")
    return found


def user(session: Session, actor: Actor, client: Client, user_id: Any) -> User:
    """A user of ``client`` by id, if the actor may see it (ids that are not numbers: 404)."""
    try:
        number = int(user_id)
    except (TypeError, ValueError):
        raise NotFound("user") from None
    if not 0 < number < 2**31:  # ids are 32-bit: PostgreSQL refuses to compare with more
        raise NotFound("user")
    found = session.execute(
        users(actor).where(User.client_id == client.id, User.id == number)
    ).scalar_one_or_none()
    if found is None:
        raise NotFound("user")
    return found


def find_user(session: Session, actor: Actor, client: Client, identifier: str) -> User:
    """A user of ``client`` by username, email or directory id (case-insensitive).

    ``NotFound`` when none or several match (say which to use: a username is unique).
    """
    key = identifier.strip().casefold()
    matches = (
        session.execute(
            users(actor).where(
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
    if len(matches) != 1:
        raise NotFound("user")
    return matches[0]
