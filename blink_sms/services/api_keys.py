"""API keys: created by MSP owners, scoped to the MSP or one client, read or read-write.

A key is ``blk_<prefix>_<secret>``: 8 hex characters to find its row, then 256 random
bits. It is shown once; only the prefix and a SHA-256 of the whole key are stored, so
neither the database nor ``BLINK_SECRET_KEY`` can rebuild it. Each request made with a
key acts as that key's :class:`~blink_sms.actors.Actor`: a read-only key is an auditor,
a read-write key a technician (MSP-wide) or a client admin (one client), so the API
goes through the same services and scoping as the console.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ..actors import Actor, Permission, Role
from ..models import ApiKey, Client, utcnow
from . import audit
from .errors import Conflict, Invalid
from .scope import NotFound

KEY = re.compile(r"blk_([0-9a-f]{8})_([A-Za-z0-9_-]{43})")
# "Last used" is written at most this often per key: a busy key costs no write per call.
LAST_USED_EVERY = timedelta(minutes=1)


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode("ascii")).hexdigest()


def actor_of(key: ApiKey) -> Actor:
    """The actor a request made with ``key`` acts as."""
    if not key.writes:
        role = Role.AUDITOR
    elif key.client_id is None:
        role = Role.MSP_TECHNICIAN
    else:
        role = Role.CLIENT_ADMIN
    return Actor(
        kind="api_key", label=f"api_key:{key.id}:{key.name}", role=role, client_id=key.client_id
    )


def create_key(
    session: Session, actor: Actor, *, name: str, client: Client | None, writes: bool
) -> tuple[ApiKey, str]:
    """A new key, and the key itself to show once. Commits."""
    actor.require(Permission.MANAGE_ADMINS)
    if client is not None and not actor.sees(client.id):
        raise NotFound("client")
    name = name.strip()
    if not 1 <= len(name) <= 100:
        raise Invalid("name", "name the key after what uses it (at most 100 characters)")
    prefix = secrets.token_hex(4)
    while session.execute(select(ApiKey.id).where(ApiKey.prefix == prefix)).first():
        prefix = secrets.token_hex(4)  # 1 in 4 billion: try another
    key = f"blk_{prefix}_{secrets.token_urlsafe(32)}"
    row = ApiKey(
        name=name,
        prefix=prefix,
        key_hash=_hash(key),
        client_id=client.id if client else None,
        writes=writes,
        created_by=actor.label,
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        "api_key.created",
        actor=actor,
        client_id=row.client_id,
        api_key_id=row.id,
        name=name,
        access="read-write" if writes else "read",
    )
    session.commit()
    return row, key


def list_keys(session: Session, actor: Actor) -> list[ApiKey]:
    actor.require(Permission.MANAGE_ADMINS)
    query = select(ApiKey).order_by(ApiKey.revoked_at.is_not(None), ApiKey.name, ApiKey.id)
    if actor.client_id is not None:
        query = query.where(ApiKey.client_id == actor.client_id)
    return list(session.execute(query).scalars())


def revoke_key(session: Session, actor: Actor, key_id: int) -> ApiKey:
    """Revoke a key: refused from the next request on. Commits."""
    actor.require(Permission.MANAGE_ADMINS)
    row = session.get(ApiKey, key_id)
    if row is None or not actor.sees(row.client_id):
        raise NotFound("API key")
    if row.revoked_at is not None:
        raise Conflict(f"API key {row.name!r} is revoked already")
    row.revoked_at = utcnow()
    audit.record(
        session, "api_key.revoked", actor=actor, client_id=row.client_id, api_key_id=row.id
    )
    session.commit()
    return row


@dataclass(frozen=True)
class Identity:
    """A key that authenticated: its row's id and the actor it acts as."""

    key_id: int
    actor: Actor


def authenticate(session: Session, presented: str) -> Actor | None:
    """The actor of a presented key, or None (unknown, malformed or revoked: the same)."""
    identity = identify(session, presented)
    return identity.actor if identity else None


def identify(session: Session, presented: str) -> Identity | None:
    """The key's id and actor, or None (unknown, malformed or revoked: the same).

    The hash is compared in constant time; "last used" is updated at most once a minute.
    """
    match = KEY.fullmatch(presented.strip())
    if match is None:
        return None
    row = session.execute(
        select(ApiKey).where(ApiKey.prefix == match.group(1))
    ).scalar_one_or_none()
    if row is None or not hmac.compare_digest(row.key_hash, _hash(match.group(0))):
        return None
    if row.revoked_at is not None:
        return None
    now = utcnow()
    if row.last_used_at is None or now - row.last_used_at >= LAST_USED_EVERY:
        session.execute(update(ApiKey).where(ApiKey.id == row.id).values(last_used_at=now))
        session.commit()
    return Identity(row.id, actor_of(row))
