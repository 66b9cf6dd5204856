"""Texts the gateway sends through the REST API: who may receive them, and the record.

Only enrolled users receive SMS (:func:`send_sms`). The one exception is the
verification code for a number being enrolled, which goes through :func:`deliver`
directly from the enrollment service, under its own limits.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from sqlalchemy.orm import Session

from ..context import Blink
from ..messaging.sms import OutgoingSms, SmsError
from ..models import OutboundMessage, User


class Route(Protocol):
    """Where a client's texts leave from (a ``Client``, or a job's snapshot of one)."""

    @property
    def sender_number(self) -> str | None: ...

    @property
    def messaging_service_sid(self) -> str | None: ...


def deliver(
    app: Blink,
    session: Session,
    *,
    to: str,
    client: Route,
    body: str,
    purpose: str,
    user_id: int | None,
    request_id: int | None = None,
    reply_from: str | None = None,
    fence: Callable[[Session], None] | None = None,
    then: Callable[[Session, str], None] | None = None,
) -> str:
    """Send one SMS and record it (never its body). Commits before and after sending.

    The record is committed as 'sending' first, so a crash between handing the text
    to Twilio and recording the result is visible to a retried job. ``fence`` runs in
    that same transaction and may raise to stop the message (a job that lost its lease);
    ``then`` runs in the transaction that records the message id. No transaction is
    open while Twilio is called.
    """
    if app.sms is None:
        raise SmsError("SMS sending is off: Twilio credentials are not configured", permanent=True)
    if fence is not None:
        fence(session)
    record = OutboundMessage(
        request_id=request_id, user_id=user_id, purpose=purpose, status="sending"
    )
    session.add(record)
    session.commit()
    try:
        sid = app.sms.send(
            OutgoingSms(
                to=to,
                body=body,
                # The answer comes from the number the user texted, when there was one.
                from_=reply_from or client.sender_number,
                messaging_service_sid=(
                    client.messaging_service_sid or app.settings.twilio_messaging_service_sid
                ),
                status_callback=app.status_callback_url if app.settings.twilio_configured else None,
            )
        )
    except SmsError as err:
        record.status, record.error_code = "failed", str(err.code or "")
        session.commit()
        raise
    record.sid, record.status = sid, "sent"
    if then is not None:
        then(session, sid)
    session.commit()
    return sid


def send_sms(app: Blink, session: Session, user: User, body: str, *, purpose: str) -> str:
    """Text an enrolled user who has not opted out. Commits."""
    if user.phone is None or user.sms_opted_out:
        raise SmsError(
            "the user has no reachable phone (not enrolled or opted out)", permanent=True
        )
    return deliver(
        app, session, to=user.phone, client=user.client, body=body, purpose=purpose,
        user_id=user.id,
    )  # fmt: skip
