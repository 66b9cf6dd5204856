"""Activation invitations: create, revoke, and the email jobs.

Token scheme: the link's token is 32 random bytes (256 bits) made *inside* the email
job, which stores its SHA-256 and puts the token in the email, then forgets it. Job
arguments are the invitation id only; the database only ever holds the hash, so
neither Redis, the database nor ``BLINK_SECRET_KEY`` can rebuild a working link.
A retried job makes a new token (the old one was never delivered). An invitation
is open until used, revoked (a newer invitation, Reset User) or expired.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

import structlog
from babel.dates import format_timedelta
from sqlalchemy import select
from sqlalchemy.orm import Session, object_session

from .. import queue
from ..actors import Actor, Permission
from ..context import Blink
from ..crypto import mask_phone
from ..messaging.email import EmailError, OutgoingEmail
from ..messaging.pages import email_templates, gettext_for
from ..models import Client, Invitation, User, UserStatus, utcnow
from ..queue import EMAIL_QUEUE
from ..retries import RetryLater
from . import audit, pins
from .branding import brand_of
from .errors import Conflict
from .mail import email_sender_for, send_or_retry
from .scope import NotFound
from .user_details import language_of

log = structlog.get_logger(__name__)

TOKEN_BYTES = 32


class InvitationRefused(Conflict):
    """The user cannot be invited now; the message says why, for an administrator."""


def token_hash(token: str) -> str:
    """The stored form of a link token. The token has 256 bits: a plain SHA-256 is enough."""
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


def is_open(invitation: Invitation, now: datetime) -> bool:
    return (
        invitation.used_at is None and invitation.revoked_at is None and invitation.expires_at > now
    )


def enrollment_url(app: Blink, token: str) -> str:
    return f"{app.settings.public_url}/enroll/{token}"


def _revoke_open(session: Session, user: User, *, reason: str, actor: Actor, now: datetime) -> None:
    rows = session.execute(
        select(Invitation)
        .where(
            Invitation.user_id == user.id,
            Invitation.used_at.is_(None),
            Invitation.revoked_at.is_(None),
        )
        .with_for_update()
    ).scalars()
    for invitation in rows:
        invitation.revoked_at, invitation.revoked_reason = now, reason
        audit.record(
            session,
            "invitation.revoked",
            actor=actor,
            client_id=user.client_id,
            user_id=user.id,
            invitation_id=invitation.id,
            reason=reason,
        )
    session.flush()  # free the one-open-invitation index before a new row goes in


def _check_can_invite(app: Blink, actor: Actor, user: User) -> None:
    if not actor.sees(user.client_id):
        raise NotFound("user")
    actor.require(Permission.MANAGE_USERS)
    if user.client.disabled_at is not None:
        raise InvitationRefused(f"client {user.client.slug} is disabled")
    if email_sender_for(app, user.client) is None:
        raise InvitationRefused(
            "email is off: set BLINK_SMTP_URL and BLINK_MAIL_FROM, or a mail server for "
            f"client {user.client.slug}"
        )
    if user.status is UserStatus.DISABLED:
        raise InvitationRefused(f"{user.username} is disabled")
    if not user.email:
        raise InvitationRefused(f"{user.username} has no email address (users set-email)")
    if not user.client.sender_number:
        raise InvitationRefused(
            f"client {user.client.slug} has no sender number: users would not know "
            "which number to text"
        )


def invite(app: Blink, session: Session, actor: Actor, user: User) -> Invitation:
    """Send ``user`` a new activation email; open invitations are revoked. Commits.

    An active user keeps their phone: use :func:`reset_user` to start over.
    """
    _check_can_invite(app, actor, user)
    if user.status is UserStatus.ACTIVE:
        raise InvitationRefused(f"{user.username} is already active: use Reset User")
    return _create_and_send(app, session, user, actor=actor, reason="superseded")


def needs_invitation(invitation: Invitation | None, now: datetime) -> bool:
    """Whether a not-yet-active user's last invitation is missing, failed, revoked or expired."""
    if invitation is None or invitation.email_status == "failed":
        return True
    return invitation.used_at is None and (
        invitation.revoked_at is not None or invitation.expires_at <= now
    )


def invite_pending(
    app: Blink,
    session: Session,
    actor: Actor,
    client: Client,
    track: Callable[[list[User]], Iterable[User]] = iter,
) -> tuple[int, list[str]]:
    """Invite everyone of ``client`` not yet active who has no working invitation;
    ``track`` walks the list (the command line's progress bar).

    Returns how many emails were queued and, for the others, why not (one line each).
    """
    from .users import latest_invitations

    if not actor.sees(client.id):
        raise NotFound("client")
    actor.require(Permission.MANAGE_USERS)
    latest = latest_invitations(session, client)
    now = utcnow()
    targets = [
        user
        for user in session.execute(
            select(User)
            .where(
                User.client_id == client.id,
                User.status.in_((UserStatus.PENDING, UserStatus.INVITED)),
            )
            .order_by(User.username)
        ).scalars()
        if needs_invitation(latest.get(user.id), now)
    ]
    sent, problems = 0, []
    for user in track(targets):
        try:
            invite(app, session, actor, user)
            sent += 1
        except InvitationRefused as err:
            problems.append(str(err))
    return sent, problems


def reset_user(app: Blink, session: Session, actor: Actor, user: User) -> Invitation:
    """ "Reset User": unbind the phone, revoke open invitations, send a new one. Commits."""
    _check_can_invite(app, actor, user)
    if user.phone is not None:
        audit.record(
            session,
            "user.phone_unbound",
            actor=actor,
            client_id=user.client_id,
            user_id=user.id,
            phone=mask_phone(user.phone),
        )
        # Kept until the next binding has told it so (notices.text_previous_phone).
        user.previous_phone, user.phone = user.phone, None
    if pins.clear(user):  # the reset PIN, its wrong tries and its block go too
        audit.record(session, "user.pin_cleared", actor=actor, client_id=user.client_id,
                     user_id=user.id)  # fmt: skip
    return _create_and_send(app, session, user, actor=actor, reason="reset_user")


def _create_and_send(
    app: Blink, session: Session, user: User, *, actor: Actor, reason: str
) -> Invitation:
    now = utcnow()
    _revoke_open(session, user, reason=reason, actor=actor, now=now)
    invitation = Invitation(
        user_id=user.id,
        actor=actor.label,
        created_at=now,
        expires_at=now + timedelta(hours=user.client.invitation_hours),
        email_status="queued",
    )
    session.add(invitation)
    user.status = UserStatus.INVITED
    session.flush()
    audit.record(
        session,
        "invitation.created",
        actor=actor,
        client_id=user.client_id,
        user_id=user.id,
        invitation_id=invitation.id,
    )
    session.commit()
    try:
        app.queue.enqueue(
            EMAIL_QUEUE,
            send_activation_email,
            invitation.id,
            job_id=f"invitation-{invitation.id}",
        )
    except Exception as err:  # Redis down: say so in `users list` rather than hide it
        log.error("cannot enqueue activation email", error=type(err).__name__)
        invitation.email_status, invitation.email_error = "failed", "queue unavailable"
        session.commit()
    return invitation


# --- the jobs ---------------------------------------------------------------------------------


def send_activation_email(invitation_id: int) -> None:
    """Job: make the link's token and email it (see :func:`deliver_activation`)."""
    from ..context import blink

    queue.start_job_logging()
    deliver_activation(blink(), invitation_id, retries_left=queue.retries_left())


def send_phone_bound_email(invitation_id: int) -> None:
    """Job: tell the user by email that the invitation bound a phone to their account."""
    from ..context import blink

    queue.start_job_logging()
    deliver_phone_bound_notice(blink(), invitation_id, retries_left=queue.retries_left())


def _mark_failed(session: Session, invitation: Invitation, error: str) -> None:
    invitation.token_hash = None  # nobody received the link
    invitation.email_status, invitation.email_error = "failed", error[:200]
    audit.record(
        session,
        "invitation.email_failed",
        actor="system",
        client_id=invitation.user.client_id,
        user_id=invitation.user_id,
        invitation_id=invitation.id,
        error=error[:200],
    )
    session.commit()
    log.error("activation email failed", invitation_id=invitation.id, error=error)


def deliver_activation(app: Blink, invitation_id: int, *, retries_left: int) -> None:
    """Make a fresh token, store its hash, email the link. Safe to run again."""
    structlog.contextvars.bind_contextvars(invitation_id=invitation_id)
    with app.db.session() as session:
        invitation = session.get(Invitation, invitation_id)
        now = utcnow()
        if invitation is None or not is_open(invitation, now):
            log.info("invitation is no longer open; no email sent")
            return
        if invitation.email_status == "sent":
            log.info("activation email already sent")
            return
        user = invitation.user
        sender = email_sender_for(app, user.client)
        if sender is None:
            _mark_failed(session, invitation, "email is off")
            return
        if not user.email:
            _mark_failed(session, invitation, "no email address")
            return
        token = secrets.token_urlsafe(TOKEN_BYTES)
        invitation.token_hash = token_hash(token)
        invitation.expires_at = now + timedelta(hours=user.client.invitation_hours)
        invitation.email_status = "sending"
        session.commit()
        message = render_activation(app, user, enrollment_url(app, token))
        del token
        try:
            sender.send(message)
        except EmailError as err:
            if not err.permanent and retries_left > 0:
                log.warning("activation email will be retried", error=err.message)
                invitation.email_status, invitation.email_error = "retrying", err.message[:200]
                session.commit()
                raise RetryLater("smtp") from None
            _mark_failed(session, invitation, err.message)
            return
        invitation.email_status, invitation.email_error = "sent", None
        invitation.email_sent_at = utcnow()
        audit.record(
            session,
            "invitation.email_sent",
            actor="system",
            client_id=user.client_id,
            user_id=user.id,
            invitation_id=invitation.id,
        )
        session.commit()
        log.info("activation email sent")


def deliver_phone_bound_notice(app: Blink, invitation_id: int, *, retries_left: int) -> None:
    """Email the user that a used invitation bound a phone ("changed" if one was before)."""
    with app.db.session() as session:
        invitation = session.get(Invitation, invitation_id)
        if invitation is None or invitation.used_at is None or invitation.phone is None:
            return
        user = invitation.user
        sender = email_sender_for(app, user.client)
        if not user.email or sender is None:
            log.info("no email for the phone-bound notice")
            return
        changed = (
            session.execute(
                select(Invitation.id).where(
                    Invitation.user_id == user.id,
                    Invitation.used_at.is_not(None),
                    Invitation.id < invitation.id,
                )
            ).first()
            is not None
        )
        message = render_phone_bound(app, user, invitation, changed=changed)
        if send_or_retry(sender, message, retries_left=retries_left, what="phone-bound notice"):
            return
        audit.record(
            session,
            "notice.phone_bound_sent",
            actor="system",
            client_id=user.client_id,
            user_id=user.id,
            invitation_id=invitation.id,
        )
        session.commit()


# --- the emails -------------------------------------------------------------------------------


def _render(name: str, language: str, **context: object) -> tuple[str, str]:
    env = email_templates()
    _ = gettext_for(language)
    html = env.get_template(f"email/{name}.html").render(_=_, lang=language, **context)
    text = env.get_template(f"email/{name}.txt").render(_=_, lang=language, **context)
    return html, text


def render_activation(app: Blink, user: User, link: str) -> OutgoingEmail:
    language = language_of(user)
    # No session: the job's is idle (committed) here, and a read in it would keep an
    # SQLite write lock through the SMTP conversation.
    brand = brand_of(app, user.client)
    _ = gettext_for(language)
    valid_for = format_timedelta(
        timedelta(hours=user.client.invitation_hours), format="long", locale=language
    )
    html, text = _render(
        "activation",
        language,
        brand=brand,
        user=user,
        link=link,
        valid_for=valid_for,
        subject=_("Set up password reset by text for your {client} account", client=brand.name),
    )
    return OutgoingEmail(
        to=user.email or "",
        subject=_("Set up password reset by text for your {client} account", client=brand.name),
        text=text,
        html=html,
        from_name=brand.name,
        reply_to=brand.support_email,
    )


def render_phone_bound(
    app: Blink, user: User, invitation: Invitation, *, changed: bool
) -> OutgoingEmail:
    language = language_of(user)
    # The job's session is inside a transaction: the MSP's branding is read in it.
    brand = brand_of(app, user.client, object_session(user))
    _ = gettext_for(language)
    subject = (
        _("The phone for your password resets was changed")
        if changed
        else _("A phone was registered for your password resets")
    )
    html, text = _render(
        "phone_bound",
        language,
        brand=brand,
        user=user,
        phone=mask_phone(invitation.phone),
        changed=changed,
        subject=subject,
    )
    return OutgoingEmail(
        to=user.email or "",
        subject=subject,
        text=text,
        html=html,
        from_name=brand.name,
        reply_to=brand.support_email,
    )
