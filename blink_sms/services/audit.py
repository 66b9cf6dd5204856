"""The audit trail: one event per state change that matters to an auditor."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from ..logging import SECRET_KEYS
from ..models import AuditEvent


def record(
    session: Session,
    action: str,
    *,
    actor: str,
    client_id: int | None = None,
    user_id: int | None = None,
    request_id: int | None = None,
    **detail: Any,
) -> AuditEvent:
    """Add an audit event to the session (committed with the change it describes)."""
    leaked = SECRET_KEYS.intersection(k.lower() for k in detail)
    if leaked:
        raise ValueError(f"audit detail may not carry secrets: {sorted(leaked)}")
    event = AuditEvent(
        action=action,
        actor=actor,
        client_id=client_id,
        user_id=user_id,
        request_id=request_id,
        detail=detail,
    )
    session.add(event)
    return event
