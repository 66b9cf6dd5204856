"""Notices after a change to a user's account (NIST SP 800-63B-4: tell the subscriber).

- **Reset and unlock notices.** After every reset or unlock that completed (texted by the
  user, a reply to a lockout notice, or pushed by an admin or an API key) the user gets
  an email in their directory mailbox: what happened, when (UTC), from which phone
  (masked) or that their IT administrator did it, and whom to contact if it was not
  them. The reset job queues it once the completion is committed
  (:func:`queue_reset_notice`); the email job (:func:`deliver_reset_notice`) takes the
  request id only and never knows the password. Per client: ``Client.reset_notices``.
- **The phone that was replaced.** Reset User keeps the unbound number in
  ``User.previous_phone``; when the user binds a different number, that old number gets
  one SMS saying so (:func:`text_previous_phone`). The email about the binding itself is
  :func:`blink_sms.services.invitations.deliver_phone_bound_notice`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import structlog
from babel.dates import format_date, format_time
from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import queue
from ..context import Blink
from ..crypto import mask_phone
from ..messaging import texts
from ..messaging.email import OutgoingEmail
from ..messaging.i18n import translate
from ..messaging.pages import Branding, email_templates, gettext_for
from ..messaging.sms import SmsError
from ..models import (
    AuditEvent,
    Client,
    RequestKind,
    RequestOrigin,
    RequestStatus,
    ResetRequest,
    User,
    utcnow,
)
from ..queue import EMAIL_QUEUE
from . import audit, throttle
from .branding import brand_of
from .mail import email_sender_for, send_or_retry
from .outbound import deliver
from .user_details import language_of

log = structlog.get_logger(__name__)

# Texts to a replaced number, per number: a few a day at most, however often an admin
# resets the user and they enrol again.
PHONE_CHANGED_PER_DAY = 3
PHONE_CHANGED_WINDOW = timedelta(days=1)


# --- reset and unlock notices (email) -------------------------------------------------------


def notice_job_id(request_id: int) -> str:
    return f"reset-notice-{request_id}"


def queue_reset_notice(app: Blink, request_id: int) -> None:
    """Queue the notice email of a request whose completion is committed.

    Never raises: with Redis down the reset stands, and the log says which notice was
    missed (like the welcome SMS and the phone-bound email of an enrollment).
    """
    try:
        app.queue.enqueue(
            EMAIL_QUEUE, send_reset_notice, request_id, job_id=notice_job_id(request_id)
        )
    except Exception as err:  # Redis down: the reset is done; only the notice is missed
        log.error(
            "cannot enqueue the reset notice email",
            reset_request=request_id,
            error=type(err).__name__,
        )


def send_reset_notice(request_id: int) -> None:
    """Job: email the user that their password was reset or their account unlocked."""
    from ..context import blink

    queue.start_job_logging()
    deliver_reset_notice(blink(), request_id, retries_left=queue.retries_left())


def deliver_reset_notice(app: Blink, request_id: int, *, retries_left: int) -> bool:
    """Email the notice of a completed request, once; True when it was sent now.

    Nothing is sent when the request is not done, the client turned notices off, the
    user has no email address, or email is off for the client (each logged). A notice
    already sent for the request (a job run twice) is not sent again.
    """
    structlog.contextvars.bind_contextvars(reset_request=request_id)
    with app.db.session() as session:
        row = session.execute(
            select(ResetRequest, User, Client)
            .join(User, User.id == ResetRequest.user_id)
            .join(Client, Client.id == User.client_id)
            .where(ResetRequest.id == request_id)
        ).first()
        if row is None:
            log.info("no reset notice", reason="the request is gone")
            return False
        request, user, client = row
        reason = _no_notice(session, request, user, client)
        sender = email_sender_for(app, client) if reason is None else None
        if sender is None:
            log.info("no reset notice", reason=reason or "email is off for this client")
            return False
        kind = request.kind.value
        message = render_reset_notice(app, session, user, client, request)
        client_id, user_id = client.id, user.id
        session.commit()  # no transaction stays open through the SMTP conversation
        error = send_or_retry(sender, message, retries_left=retries_left, what="reset notice email")
        if error is not None:
            audit.record(
                session, f"notice.{kind}_failed", actor="system", client_id=client_id,
                user_id=user_id, request_id=request_id, error=error[:200],
            )  # fmt: skip
            session.commit()
            return False
        audit.record(
            session, f"notice.{kind}_sent", actor="system", client_id=client_id,
            user_id=user_id, request_id=request_id,
        )  # fmt: skip
        session.commit()
    log.info("reset notice email sent", kind=kind)
    return True


def _no_notice(session: Session, request: ResetRequest, user: User, client: Client) -> str | None:
    """Why no notice goes out for ``request``, in words for the log; None when one does."""
    if request.status is not RequestStatus.DONE or request.finished_at is None:
        return "the request is not done"
    if not client.reset_notices:
        return "reset notices are off for this client"
    if not user.email:
        return "the user has no email address"
    if _notice_sent(session, request, client.id, request.finished_at):
        return "the notice was sent already"
    return None


def _notice_sent(session: Session, request: ResetRequest, client_id: int, since: datetime) -> bool:
    # By client and time first (the trail's index), then the request's own events.
    return (
        session.execute(
            select(AuditEvent.id).where(
                AuditEvent.client_id == client_id,
                AuditEvent.at >= since,
                AuditEvent.request_id == request.id,
                AuditEvent.action == f"notice.{request.kind.value}_sent",
            )
        ).first()
        is not None
    )


def readable_utc(moment: datetime, language: str) -> str:
    """The time as "March 14, 2025, 09:12 UTC": the date as ``language`` writes it."""
    date = format_date(moment.astimezone(UTC), format="long", locale=language)
    return f"{date}, {format_time(moment, 'HH:mm', tzinfo=UTC, locale=language)} UTC"


def support_of(brand: Branding) -> str:
    """Whom to contact: the client's support contact, and its support email if it has one."""
    if brand.support_email and brand.support_email not in brand.support_contact:
        return f"{brand.support_contact} ({brand.support_email})"
    return brand.support_contact


def render_reset_notice(
    app: Blink, session: Session, user: User, client: Client, request: ResetRequest
) -> OutgoingEmail:
    """The notice email of a done request, in the user's language. No password: the job
    that set it has forgotten it, and nothing here could know it."""
    assert request.finished_at is not None
    language = language_of(user)
    brand = brand_of(app, client, session)
    _ = gettext_for(language)
    when = readable_utc(request.finished_at, language)
    # The number the request came from, or the password went to: the bound one, or the
    # one Reset User unbound since.
    phone = mask_phone(user.phone or user.previous_phone) or ""
    by_admin = request.origin is RequestOrigin.ADMIN
    channel = None
    if request.kind is RequestKind.UNLOCK:
        subject = _("Your account was unlocked")
        what = (
            _("Your account {username} was unlocked on {when} by your IT administrator.",
              username=user.username, when=when)
            if by_admin
            else _("Your account {username} was unlocked on {when}, requested by text "
                   "message from {phone}.", username=user.username, when=when, phone=phone)
        )  # fmt: skip
    else:
        subject = _("Your password was reset")
        if by_admin:
            what = _(
                "The password of your account {username} was reset on {when} by your IT "
                "administrator.", username=user.username, when=when,
            )  # fmt: skip
            if phone:
                channel = _("The new password was sent by text message to {phone}.", phone=phone)
        else:
            what = _(
                "The password of your account {username} was reset on {when}, requested by "
                "text message from {phone}.", username=user.username, when=when, phone=phone,
            )  # fmt: skip
    context = {
        "brand": brand,
        "user": user,
        "subject": subject,
        "what": what,
        "channel": channel,
        "support": support_of(brand),
        "reset": request.kind is RequestKind.RESET,
    }
    env = email_templates()
    html = env.get_template("email/reset_notice.html").render(_=_, lang=language, **context)
    text = env.get_template("email/reset_notice.txt").render(_=_, lang=language, **context)
    return OutgoingEmail(
        to=user.email or "",
        subject=subject,
        text=text,
        html=html,
        from_name=brand.name,
        reply_to=brand.support_email,
    )


# --- the phone that was replaced (SMS) ------------------------------------------------------


def text_previous_phone(app: Blink, session: Session, user: User) -> bool:
    """After ``user`` bound a number (committed): tell the number bound before, once.

    Reset User keeps the number it unbinds in ``User.previous_phone``. That number is no
    longer enrolled, and the gateway texts only enrolled numbers (plus verification
    codes to a number being enrolled); this SMS is the one other exception, on purpose:
    the number was proven the user's when it was bound, and NIST SP 800-63B-4 asks that
    a change of authenticator be told through the one it replaces, so that someone who
    took over an account by enrolling their own phone cannot do it unseen. It goes only
    here, only to that number, at most :data:`PHONE_CHANGED_PER_DAY` a day per number,
    and ``previous_phone`` is cleared first (one try, never a second).

    Nothing is sent when the same number was bound again, the user opted out of texts,
    or the old number now belongs to someone else. Commits; True when the SMS left.
    """
    previous = user.previous_phone
    if previous is None:
        return False
    user.previous_phone = None
    if previous == user.phone:
        session.commit()  # the same phone again: nothing changed
        return False
    masked = mask_phone(previous)
    reason = None
    if user.sms_opted_out:
        reason = "opted_out"
    elif session.execute(select(User.id).where(User.phone == previous)).first() is not None:
        reason = "bound_to_another_user"  # never tell a stranger this user's name
    elif not throttle.allow(
        session,
        f"phone-changed:{app.secrets.keyed_hash(previous)}",
        limit=PHONE_CHANGED_PER_DAY,
        window=PHONE_CHANGED_WINDOW,
        now=utcnow(),
    ):
        reason = "rate_limited"
    if reason is not None:
        _not_sent(session, user, masked, reason)
        return False
    session.commit()
    body = translate(
        language_of(user),
        texts.PHONE_CHANGED,
        username=user.username,
        support=user.client.support_contact,
    )
    try:
        deliver(
            app, session, to=previous, client=user.client, body=body, purpose="phone_changed",
            user_id=user.id,
        )  # fmt: skip
    except SmsError as err:
        _not_sent(session, user, masked, err.error_code)
        return False
    audit.record(
        session, "notice.phone_changed_sent", actor="system", client_id=user.client_id,
        user_id=user.id, phone=masked,
    )  # fmt: skip
    session.commit()
    log.info("previous phone told of the change", user_id=user.id)
    return True


def _not_sent(session: Session, user: User, masked: str | None, reason: str) -> None:
    log.warning("previous phone not told of the change", user_id=user.id, reason=reason)
    audit.record(
        session, "notice.phone_changed_not_sent", actor="system", client_id=user.client_id,
        user_id=user.id, phone=masked, reason=reason,
    )  # fmt: skip
    session.commit()
