"""Blank one-time passwords at Twilio once they are delivered (issue 13, item 7).

Twilio keeps every message body in its logs; a password texted to a user should not
stay there. Twilio's documented redaction is to update the sent message with an empty
``Body`` (``SmsSender.redact``). The scheduler's ``redaction`` task (:func:`sweep`) does
it for texts of purpose ``otp`` only:

- as soon as a status callback said the message reached a final state (delivered,
  undelivered, failed, canceled, read), at the next run (every
  :data:`SWEEP_SECONDS`): the webhook answers Twilio at once and never waits for it;
- :data:`REDACT_AFTER` after sending when no final status came (a carrier that never
  reports delivery leaves it ``sent``).

Twilio refuses to change a message still queued or sending (error 20009), and any
failure (network, 5xx, rate limit) leaves ``redacted_at`` empty: the next run tries
again, for :data:`GIVE_UP_AFTER` at most. A message Twilio no longer has (20404) has no
body left to blank and counts as redacted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy import or_, select, update

from ..context import Blink
from ..messaging.sms import NOT_FOUND, SmsError
from ..models import OutboundMessage, utcnow

log = structlog.get_logger(__name__)

SWEEP_SECONDS = 15.0
FINAL_STATUSES = ("delivered", "undelivered", "failed", "canceled", "read")
REDACT_AFTER = timedelta(minutes=15)
GIVE_UP_AFTER = timedelta(days=3)
BATCH = 100


@dataclass(frozen=True)
class RedactionResult:
    redacted: int
    failed: int


def sweep(app: Blink, *, now: datetime | None = None) -> RedactionResult:
    """Redact the OTP texts that are due (see the module docstring); never raises for
    one message's failure."""
    sender = app.sms
    if sender is None:
        return RedactionResult(0, 0)
    now = now or utcnow()
    due = (
        select(OutboundMessage.id, OutboundMessage.sid)
        .where(
            OutboundMessage.purpose == "otp",
            OutboundMessage.sid.is_not(None),
            OutboundMessage.redacted_at.is_(None),
            OutboundMessage.created_at >= now - GIVE_UP_AFTER,
            or_(
                OutboundMessage.status.in_(FINAL_STATUSES),
                OutboundMessage.created_at <= now - REDACT_AFTER,
            ),
        )
        .order_by(OutboundMessage.id)
        .limit(BATCH)
    )
    with app.db.session() as session:
        rows = session.execute(due).all()
        session.commit()
    redacted = failed = 0
    for message_id, sid in rows:
        assert sid is not None  # selected so
        try:
            sender.redact(sid)
        except SmsError as err:
            if err.code != NOT_FOUND:
                failed += 1
                log.warning(
                    "redaction at twilio failed; will retry",
                    message_sid=sid,
                    reason=err.message,
                    code=err.code,
                )
                continue
        with app.db.session() as session:
            session.execute(
                update(OutboundMessage)
                .where(OutboundMessage.id == message_id)
                .values(redacted_at=utcnow())
            )
            session.commit()
        redacted += 1
        log.info("message body redacted at twilio", message_sid=sid)
    return RedactionResult(redacted, failed)
