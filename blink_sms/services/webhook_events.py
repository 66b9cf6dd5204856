"""The webhooks' outbox: audited actions that a PSA subscribes to, queued as deliveries.

:func:`emit` is called by :func:`blink_sms.services.audit.record`: an audited action in
:data:`EVENT_OF_ACTION` inserts one delivery row per matching enabled endpoint in the
same transaction as the change, so an event is never lost between the change and its
webhook. Other actions cost nothing; a mapped one costs one SELECT of endpoints, and one
more to build the payload when some endpoint wants it. Payloads name the client and the
user, never a phone number, password, code or token. The endpoints are managed by
:mod:`blink_sms.services.webhooks`; :mod:`blink_sms.services.webhook_sender` sends.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, and_, insert, or_, select
from sqlalchemy.orm import Session

from ..models import Client, ResetRequest, User, WebhookDelivery, WebhookEndpoint

# Audited actions that go out as webhooks, and the event type each becomes.
EVENT_OF_ACTION = {
    "reset.completed": "reset.completed",
    "reset.failed": "reset.failed",
    "unlock.completed": "unlock.completed",
    "unlock.failed": "unlock.failed",
    "lockout.detected": "lockout.detected",
    "enrollment.phone_bound": "enrollment.completed",
}
EVENT_TYPES = tuple(sorted(set(EVENT_OF_ACTION.values())))  # what an endpoint subscribes to
# Audit detail passed on in the payload (the rest may hold a masked phone, a holder...).
PAYLOAD_DETAIL = ("error_code", "cause")
PENDING = "pending"  # a delivery's first status (the others: see webhook_sender)

DELIVERIES = cast(Table, WebhookDelivery.__table__)


def timestamp(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def emit(
    session: Session,
    action: str,
    *,
    at: datetime,
    client_id: int | None,
    user_id: int | None,
    request_id: int | None,
    detail: dict[str, Any],
) -> None:
    """Queue the webhooks of an audited action, in the session's transaction.

    Only actions of :data:`EVENT_OF_ACTION` about a client go out. Core statements on
    the session's connection: nothing is flushed or loaded into the caller's session.
    """
    event = EVENT_OF_ACTION.get(action)
    if event is None or client_id is None:
        return
    connection = session.connection()
    endpoints = connection.execute(
        select(WebhookEndpoint.id, WebhookEndpoint.events).where(
            WebhookEndpoint.disabled_at.is_(None),
            or_(WebhookEndpoint.client_id.is_(None), WebhookEndpoint.client_id == client_id),
        )
    ).all()
    targets = [endpoint_id for endpoint_id, events in endpoints if not events or event in events]
    if not targets:
        return
    # The client, the user and the request's origin, in one query.
    facts = connection.execute(
        select(
            Client.slug,
            Client.name,
            User.id,
            User.username,
            User.display_name,
            ResetRequest.origin,
        )
        .select_from(Client)
        .outerjoin(User, and_(User.id == user_id, User.client_id == Client.id))
        .outerjoin(
            ResetRequest, and_(ResetRequest.id == request_id, ResetRequest.user_id == User.id)
        )
        .where(Client.id == client_id)
    ).one_or_none()
    if facts is None:
        return
    slug, name, found_user, username, display_name, origin = facts
    payload: dict[str, Any] = {
        "type": event,
        "created_at": timestamp(at),
        "client": {"slug": slug, "name": name},
        "user": (
            {"id": found_user, "username": username, "display_name": display_name}
            if found_user is not None
            else None
        ),
        "request_id": request_id,
    }
    if origin is not None:
        payload["origin"] = origin.value
    payload.update({key: detail[key] for key in PAYLOAD_DETAIL if key in detail})
    rows = []
    for endpoint_id in targets:
        event_id = str(uuid.uuid4())
        rows.append(
            {
                "endpoint_id": endpoint_id,
                "event_id": event_id,
                "event": event,
                "payload": {"id": event_id, **payload},
                "status": PENDING,
                "attempts": 0,
                "next_attempt_at": at,
                "created_at": at,
            }
        )
    connection.execute(insert(DELIVERIES), rows)
