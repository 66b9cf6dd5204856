"""Texts the gateway sends through the REST API: who may receive them, and the record.

Only enrolled users receive SMS (:func:`send_sms`). The one exception is the
verification code for a number being enrolled, which goes through :func:`deliver`
directly from the enrollment service, under its own limits.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from ..context import Blink
from ..messaging.sms import OutgoingSms, SmsError
from ..models import Client, OutboundMessage, ResetRequest, User


def deliver(
    app: Blink,
    session: Session,
    *,
    to: str,
    client: Client,
    body: str,
    purpose: str,
    user_id: int | None,
    request: ResetRequest | None = None,
) -> str:
    """Send one SMS and record it (never its body). Commits before and after sending.

    The record is committed as 'sending' first, so a crash between handing the text
    to Twilio and recording the result is visible to a retried job.
    """
    if app.sms is None:
        raise SmsError("SMS sending is off: Twilio credentials are not configured", permanent=True)
    record = OutboundMessage(
        request_id=request.id if request else None,
        user_id=user_id,
        purpose=purpose,
        status="sending",
    )
    session.add(record)
    session.commit()
    # The answer comes from the number the user texted, when there was one.
    sender = (request.reply_from if request else None) or client.sender_number
    try:
        sid = app.sms.send(
            OutgoingSms(
                to=to,
                body=body,
                from_=sender,
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
    if request is not None:
        request.outbound_sid = sid
    session.commit()
    return sid


def send_sms(
    app: Blink,
    session: Session,
    user: User,
    body: str,
    *,
    purpose: str,
    request: ResetRequest | None = None,
) -> str:
    """Text an enrolled user who has not opted out. Commits."""
    if user.phone is None or user.sms_opted_out:
        raise SmsError(
            "the user has no reachable phone (not enrolled or opted out)", permanent=True
        )
    return deliver(
        app,
        session,
        to=user.phone,
        client=user.client,
        body=body,
        purpose=purpose,
        user_id=user.id,
        request=request,
    )
