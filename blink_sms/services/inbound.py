"""An inbound text: de-duplicate, find the sender, act on the keyword, choose the reply.

Replies never tell a sender more than they know already: an unknown number gets one
generic answer a day, whatever it texted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import structlog
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload

from ..context import Blink
from ..keywords import Action, Keyword, parse_keyword
from ..messaging import texts
from ..messaging.i18n import format_wait, normalize_language, translate
from ..models import InboundMessage, RequestKind, RequestOrigin, User, UserStatus, utcnow
from . import audit, throttle
from .resets import Accepted, AlreadyPending, RateLimited, language_of, request_reset

log = structlog.get_logger(__name__)


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


def handle(app: Blink, message: InboundSms) -> Reply:
    keyword = parse_keyword(message.body)
    structlog.contextvars.bind_contextvars(message_sid=message.sid, action=keyword.action.value)
    with app.db.session() as session:
        session.add(InboundMessage(sid=message.sid, received_at=utcnow()))
        try:
            session.flush()
        except IntegrityError:
            session.rollback()
            log.info("duplicate MessageSid dropped")
            return Reply()
        user = session.execute(
            select(User).options(joinedload(User.client)).where(User.phone == message.sender)
        ).scalar_one_or_none()
        if user is None or user.status is not UserStatus.ACTIVE:
            reply = _unknown_sender(app, session, message, keyword)
        else:
            structlog.contextvars.bind_contextvars(user_id=user.id, client_id=user.client_id)
            reply = _known_sender(app, session, message, keyword, user)
        session.commit()
        return reply


def _unknown_sender(app: Blink, session: Session, message: InboundSms, keyword: Keyword) -> Reply:
    log.info("text from a number that is not enrolled")
    if keyword.action in (Action.STOP, Action.START):
        return Reply()
    allowed = throttle.allow(
        session,
        f"unknown:{app.secrets.keyed_hash(message.sender)}",
        limit=1,
        window=timedelta(seconds=app.settings.unknown_sender_reply_interval),
        now=utcnow(),
    )
    if not allowed:
        return Reply()
    return Reply(translate(normalize_language(keyword.language), texts.UNKNOWN_SENDER))


def _known_sender(
    app: Blink, session: Session, message: InboundSms, keyword: Keyword, user: User
) -> Reply:
    actor = f"sms:user:{user.id}"
    action = keyword.action
    if action is Action.STOP:
        # Twilio itself confirms the opt-out and blocks further messages to the number.
        user.sms_opted_out = True
        audit.record(
            session, "sms.opted_out", actor=actor, client_id=user.client_id, user_id=user.id
        )
        return Reply()
    if action is Action.START:
        user.sms_opted_out = False
        audit.record(
            session, "sms.opted_in", actor=actor, client_id=user.client_id, user_id=user.id
        )
        return Reply()
    if user.sms_opted_out:
        log.info("user opted out of SMS; text ignored until they send START")
        return Reply()
    language = language_of(user)
    if action in (Action.RESET, Action.UNLOCK):
        kind = RequestKind.RESET if action is Action.RESET else RequestKind.UNLOCK
        outcome = request_reset(
            app,
            session,
            user,
            kind=kind,
            origin=RequestOrigin.SMS,
            actor=actor,
            inbound_sid=message.sid,
            reply_from=message.to,
        )
        if isinstance(outcome, Accepted):
            ack = texts.ACK_RESET if kind is RequestKind.RESET else texts.ACK_UNLOCK
            return Reply(translate(language, ack))
        if isinstance(outcome, AlreadyPending):
            text = translate(language, texts.RESET_PENDING)
        elif isinstance(outcome, RateLimited):
            wait = format_wait(outcome.retry_after.total_seconds(), language)
            text = translate(language, texts.RATE_LIMITED, wait=wait)
        else:
            text = translate(language, texts.APOLOGY, support=user.client.support_contact)
    else:
        text = translate(language, texts.HELP)
    allowed = throttle.allow(
        session,
        f"reply:{user.id}",
        limit=app.settings.replies_per_hour,
        window=timedelta(hours=1),
        now=utcnow(),
    )
    return Reply(text if allowed else None)
