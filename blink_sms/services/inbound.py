"""An inbound text: de-duplicate, find the sender, act on the keyword, choose the reply.

This is the webhook's hot path, so it runs a fixed handful of prepared statements:
insert-or-ignore the MessageSid, one query for the sender with their client and
recent requests, then (for RESET/UNLOCK) insert-or-ignore the request and its audit
event. Replies never tell a sender more than they know already: an unknown number
gets one generic answer a day, whatever it texted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from directory_adapters import WITHOUT_UNLOCK

from ..context import Blink
from ..crypto import mask_phone
from ..db import insert_ignoring_conflicts
from ..keywords import Action, Keyword, parse_keyword
from ..messaging import texts
from ..messaging.i18n import format_wait, normalize_language, translate
from ..models import (
    Client,
    InboundMessage,
    LockoutEvent,
    RequestKind,
    RequestOrigin,
    User,
    UserStatus,
    client_queue,
    utcnow,
)
from . import audit, throttle
from .resets import (
    DAY,
    HOUR,
    Accepted,
    AlreadyPending,
    Recent,
    Target,
    recent_request_columns,
    request_reset,
)

log = structlog.get_logger(__name__)

SENDER = (
    select(
        User.id,
        User.status,
        User.language,
        User.sms_opted_out,
        Client.id,
        Client.slug,
        Client.language,
        Client.resets_per_hour,
        Client.resets_per_day,
        Client.directory_kind,
        Client.disabled_at,
        Client.support_contact,
        *recent_request_columns(User.id),
    )
    .join(Client, Client.id == User.client_id)
    .where(User.phone == bindparam("phone"))
)


@dataclass(frozen=True)
class InboundSms:
    """A parsed, signature-checked inbound webhook."""

    sid: str
    sender: str  # E.164
    to: str
    body: str


@dataclass(frozen=True)
class Reply:
    """What to answer in TwiML; ``None`` answers with an empty response."""

    text: str | None = None


@dataclass(frozen=True)
class Sender:
    """An enrolled user as the webhook needs them: one row of ``SENDER``."""

    target: Target
    status: UserStatus
    language: str
    opted_out: bool
    directory_kind: str
    recent: Recent
    client_disabled: bool = False
    support_contact: str = ""


def find_sender(session: Session, phone: str, now: datetime) -> Sender | None:
    row = (
        session.connection()
        .execute(SENDER, {"phone": phone, "hour_ago": now - HOUR, "day_ago": now - DAY})
        .first()
    )
    if row is None:
        return None
    (user_id, status, language, opted_out, client_id, slug, client_language,
     per_hour, per_day, directory_kind, disabled_at, support, pending_since, last_hour,
     last_day) = row  # fmt: skip
    return Sender(
        target=Target(user_id, client_id, client_queue(slug), per_hour, per_day),
        status=status,
        language=normalize_language(language or client_language),
        opted_out=opted_out,
        directory_kind=directory_kind,
        recent=Recent(pending_since, last_hour, last_day),
        client_disabled=disabled_at is not None,
        support_contact=support,
    )


def handle(app: Blink, message: InboundSms) -> Reply:
    keyword = parse_keyword(message.body)
    structlog.contextvars.bind_contextvars(message_sid=message.sid, action=keyword.action.value)
    now = utcnow()
    with app.db.session() as session:
        # Core statements on the session's connection: no ORM bookkeeping on the hot path.
        connection = session.connection()
        first_time = connection.execute(
            insert_ignoring_conflicts(session, InboundMessage.__table__)
            .values(sid=message.sid, received_at=now)
            .returning(InboundMessage.sid)
        ).first()
        if not first_time:
            session.rollback()
            log.info("duplicate MessageSid dropped")
            return Reply()
        sender = find_sender(session, message.sender, now)
        if sender is None or sender.status is not UserStatus.ACTIVE:
            reply = _unknown_sender(app, session, message, keyword, now)
        else:
            target = sender.target
            structlog.contextvars.bind_contextvars(
                user_id=target.user_id, client_id=target.client_id
            )
            reply = _known_sender(app, session, message, keyword, sender, now)
        session.commit()
        return reply


def _unknown_sender(
    app: Blink, session: Session, message: InboundSms, keyword: Keyword, now: datetime
) -> Reply:
    log.info("text from a number that is not enrolled")
    if keyword.action in (Action.STOP, Action.START):
        return Reply()
    allowed = throttle.allow(
        session,
        f"unknown:{app.secrets.keyed_hash(message.sender)}",
        limit=1,
        window=timedelta(seconds=app.settings.unknown_sender_reply_interval),
        now=now,
    )
    if not allowed:
        return Reply()
    return Reply(translate(normalize_language(keyword.language), texts.UNKNOWN_SENDER))


def _origin(session: Session, user_id: int) -> RequestOrigin:
    """LOCKOUT when the text answers a lockout notice (the user's lockout is still open),
    else SMS. Both count toward the user's limits alike."""
    open_lockout = session.execute(
        select(LockoutEvent.id).where(
            LockoutEvent.user_id == user_id, LockoutEvent.ended_at.is_(None)
        )
    ).first()
    return RequestOrigin.LOCKOUT if open_lockout is not None else RequestOrigin.SMS


def _set_opt_out(session: Session, sender: Sender, message: InboundSms, *, opted_out: bool) -> None:
    target = sender.target
    session.execute(update(User).where(User.id == target.user_id).values(sms_opted_out=opted_out))
    audit.record(
        session,
        "sms.opted_out" if opted_out else "sms.opted_in",
        actor=f"sms:user:{target.user_id}",
        client_id=target.client_id,
        user_id=target.user_id,
        source=mask_phone(message.sender),
    )


def _known_sender(
    app: Blink,
    session: Session,
    message: InboundSms,
    keyword: Keyword,
    sender: Sender,
    now: datetime,
) -> Reply:
    action, language, target = keyword.action, sender.language, sender.target
    if action in (Action.STOP, Action.START):
        # Twilio itself confirms opt-out and opt-in, and blocks messages while opted out.
        _set_opt_out(session, sender, message, opted_out=action is Action.STOP)
        return Reply()
    if sender.opted_out:
        log.info("user opted out of SMS; text ignored until they send START")
        return Reply()
    if action in (Action.RESET, Action.UNLOCK) and sender.client_disabled:
        # The MSP turned the client off: say so, and let nothing reach the directory.
        log.info("client disabled; request refused")
        text = translate(language, texts.CLIENT_DISABLED, support=sender.support_contact)
    elif action is Action.UNLOCK and sender.directory_kind in WITHOUT_UNLOCK:
        text = translate(language, texts.UNLOCK_NOT_SUPPORTED)
    elif action in (Action.RESET, Action.UNLOCK):
        kind = RequestKind.RESET if action is Action.RESET else RequestKind.UNLOCK
        outcome = request_reset(
            app,
            session,
            target,
            kind=kind,
            origin=_origin(session, target.user_id),
            actor=f"sms:user:{target.user_id}",
            inbound_sid=message.sid,
            reply_from=message.to,
            recent=sender.recent,
            now=now,
            source=mask_phone(message.sender),
        )
        if isinstance(outcome, Accepted):
            ack = texts.ACK_RESET if kind is RequestKind.RESET else texts.ACK_UNLOCK
            return Reply(translate(language, ack))
        if isinstance(outcome, AlreadyPending):
            text = translate(language, texts.RESET_PENDING)
        else:
            wait = format_wait(outcome.retry_after.total_seconds(), language)
            text = translate(language, texts.RATE_LIMITED, wait=wait)
    else:
        text = translate(language, texts.HELP)
    allowed = throttle.allow(
        session,
        f"reply:{target.user_id}",
        limit=app.settings.replies_per_hour,
        window=timedelta(hours=1),
        now=now,
    )
    return Reply(text if allowed else None)
