"""The lockout watch's email to a client's admins: one list of the accounts a poll found
newly locked, sent to ``Client.lockout_alert_email`` on the email queue."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import structlog
from sqlalchemy import select, update

from .. import queue
from ..context import Blink
from ..messaging.email import OutgoingEmail
from ..models import Client, LockoutEvent, LockoutWatch, User
from ..queue import EMAIL_QUEUE
from . import audit
from .mail import email_sender_for, send_or_retry

log = structlog.get_logger(__name__)


def enqueue_digest(app: Blink, client_id: int, event_ids: list[int]) -> None:
    """Queue the digest of ``event_ids`` (one poll's events of the client)."""
    first, last = min(event_ids), max(event_ids)
    try:
        app.queue.enqueue(
            EMAIL_QUEUE, send_lockout_digest, client_id, first, last,
            job_id=f"lockout-digest-{client_id}-{last}",
        )  # fmt: skip
    except Exception as err:  # the events and their texts stand; only the email is lost
        log.error("cannot enqueue the lockout digest", error=type(err).__name__)


def send_lockout_digest(client_id: int, first_event_id: int, last_event_id: int) -> None:
    """Job: email the client's alert address the lockouts one poll detected."""
    from ..context import blink

    queue.start_job_logging()
    deliver_digest(
        blink(), client_id, first_event_id, last_event_id, retries_left=queue.retries_left()
    )


def deliver_digest(
    app: Blink, client_id: int, first_event_id: int, last_event_id: int, *, retries_left: int
) -> bool:
    """Send the digest of events ``first_event_id`` to ``last_event_id`` of the client;
    True when sent. At most once: ``LockoutWatch.digest_sent_at`` marks what was sent."""
    with app.db.session() as session:
        client = session.get(Client, client_id)
        if client is None or not client.lockout_alert_email:
            return False
        rows = session.execute(
            select(LockoutEvent, User.username, User.display_name)
            .join(User, User.id == LockoutEvent.user_id)
            .where(
                LockoutEvent.client_id == client_id,
                LockoutEvent.id.between(first_event_id, last_event_id),
            )
            .order_by(User.username)
        ).all()
        newest = max((event.detected_at for event, _, _ in rows), default=None)
        sent_up_to = session.execute(
            select(LockoutWatch.digest_sent_at).where(LockoutWatch.client_id == client_id)
        ).scalar_one_or_none()
        if newest is None or (sent_up_to is not None and sent_up_to >= newest):
            session.commit()
            return False
        sender = email_sender_for(app, client)
        message = _digest(client, client.lockout_alert_email, rows)
        session.commit()  # no transaction (no SQLite lock) during the SMTP conversation
        if sender is None:
            log.warning("lockout digest not sent: email is off for this client")
            return False
        if send_or_retry(sender, message, retries_left=retries_left, what="lockout digest"):
            return False
        session.execute(
            update(LockoutWatch)
            .where(LockoutWatch.client_id == client_id)
            .values(digest_sent_at=newest)
        )
        audit.record(
            session, "lockout.digest_sent", actor="system", client_id=client_id,
            to=client.lockout_alert_email, lockouts=len(rows),
        )  # fmt: skip
        session.commit()
    log.info("lockout digest sent", lockouts=len(rows))
    return True


_NOTICE_WORDS = {
    "sent": "texted",
    "opted_out": "not texted: opted out of SMS",
    "throttled": "not texted: too many texts this hour",
    "failed": "not texted: the SMS failed",
    "unknown": "text may have failed",
}


def _digest(client: Client, to: str, rows: Sequence[Any]) -> OutgoingEmail:
    lines = []
    for event, username, display_name in rows:
        when = f"{event.locked_at:%Y-%m-%d %H:%M} UTC" if event.locked_at else "now"
        kind = "blocked sign-ins from a malicious address" if event.kind == "blocked_ip" else ""
        notice = _NOTICE_WORDS.get(event.notice or "", event.notice or "")
        extra = "; ".join(part for part in (kind, notice) if part)
        lines.append(f"- {username} ({display_name}), locked {when}; {extra}")
    count = len(rows)
    noun = "account" if count == 1 else "accounts"
    body = (
        f"Blink SMS found {count} newly locked {noun} at {client.name}:\n\n"
        + "\n".join(lines)
        + "\n\nEach enrolled user was offered a text to unlock or reset it. This email "
        "goes to the lockout alert address in the client's settings.\n"
    )
    return OutgoingEmail(
        to=to,
        subject=f"{client.name}: {count} {noun} locked out",
        text=body,
        from_name="Blink SMS",
    )
