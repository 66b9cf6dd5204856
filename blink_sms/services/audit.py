"""The audit trail: one event per state change that matters to an auditor."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Table, insert
from sqlalchemy.orm import Session

from ..actors import Actor
from ..logging import SECRET_KEYS
from ..models import AuditEvent, utcnow
from . import webhook_events

INSERT = insert(cast(Table, AuditEvent.__table__))


def label(actor: Actor | str) -> str:
    """What a row's ``actor`` column holds for ``actor``."""
    return actor.label if isinstance(actor, Actor) else actor


def record(
    session: Session,
    action: str,
    *,
    actor: Actor | str,
    client_id: int | None = None,
    user_id: int | None = None,
    request_id: int | None = None,
    **detail: Any,
) -> None:
    """Write an audit event in the session's transaction (committed with the change).

    ``actor`` is an :class:`Actor` (its label is recorded, and where it acted from) or,
    for users and the system, a plain label such as ``"sms:user:7"``.
    """
    if isinstance(actor, Actor):
        if actor.source and "source" not in detail:
            detail["source"] = actor.source
        actor = actor.label
    leaked = SECRET_KEYS.intersection(k.lower() for k in detail)
    if leaked:
        raise ValueError(f"audit detail may not carry secrets: {sorted(leaked)}")
    # A plain INSERT: the trail is append-only, so there is nothing to track.
    at = utcnow()
    session.connection().execute(
        INSERT,
        {
            "at": at,
            "action": action,
            "actor": actor,
            "client_id": client_id,
            "user_id": user_id,
            "request_id": request_id,
            "detail": detail,
        },
    )
    # Events a PSA subscribes to are queued as webhooks in this same transaction (an
    # outbox); other actions cost a dictionary lookup.
    webhook_events.emit(
        session,
        action,
        at=at,
        client_id=client_id,
        user_id=user_id,
        request_id=request_id,
        detail=detail,
    )
