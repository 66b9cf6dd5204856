"""Delivery status callbacks: what became of a message the gateway sent."""

from __future__ import annotations

import structlog
from sqlalchemy import select

from ..context import Blink
from ..models import OutboundMessage, ResetRequest

log = structlog.get_logger(__name__)

STATUSES = frozenset(
    {
        "accepted",
        "scheduled",
        "queued",
        "sending",
        "sent",
        "delivered",
        "undelivered",
        "failed",
        "read",
        "canceled",
    }
)


def record_status(app: Blink, sid: str, status: str, error_code: str | None) -> bool:
    """Store the status of message ``sid``; False when the message is not ours."""
    with app.db.session() as session:
        message = session.execute(
            select(OutboundMessage).where(OutboundMessage.sid == sid)
        ).scalar_one_or_none()
        if message is None:
            log.info("status callback for an unknown message", message_sid=sid)
            return False
        message.status, message.error_code = status, error_code
        if message.request_id is not None and message.purpose in ("otp", "unlocked"):
            request = session.get(ResetRequest, message.request_id)
            if request is not None:
                request.delivery_status = status
        session.commit()
        log.info("delivery status recorded", message_sid=sid, status=status, error_code=error_code)
        return True
