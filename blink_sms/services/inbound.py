"""An inbound text: de-duplicate, find the sender, act on the keyword, choose the reply.

This is the webhook's hot path, so it runs a fixed handful of prepared statements:
insert-or-ignore the MessageSid, one query for the sender with their client and
recent requests, then (for RESET/UNLOCK) insert-or-ignore the request and its audit
event. Replies never tell a sender more than they know already: an unknown number
gets one generic answer a day, whatever it texted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import phonenumbers
import structlog
from babel.languages import get_official_languages
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
from . import audit, pins, throttle
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
        Client.sender_number,
        Client.messaging_service_sid,
        Client.reset_pin,
        User.pin_hash,
        User.pin_failures,
        User.pin_failed_since,
        User.pin_blocked_until,
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
    sender_number: str | None = None
    messaging_service_sid: str | None = None
    reset_pin: str = "off"
    pin: pins.PinState = field(default_factory=pins.PinState)


def find_sender(session: Session, phone: str, now: datetime) -> Sender | None:
    row = (
        session.connection()
        .execute(SENDER, {"phone": phone, "hour_ago": now - HOUR, "day_ago": now - DAY})
        .first()
    )
    if row is None:
        return None
    (user_id, status, language, opted_out, client_id, slug, client_language,
     per_hour, per_day, directory_kind, disabled_at, support, sender_number, service_sid,
     reset_pin, pin_hash, pin_failures, pin_failed_since, pin_blocked_until,
     pending_since, last_hour, last_day) = row  # fmt: skip
    return Sender(
        target=Target(user_id, client_id, client_queue(slug), per_hour, per_day),
        status=status,
        language=normalize_language(language or client_language),
        opted_out=opted_out,
        directory_kind=directory_kind,
        recent=Recent(pending_since, last_hour, last_day),
        client_disabled=disabled_at is not None,
        support_contact=support,
        sender_number=sender_number,
        messaging_service_sid=service_sid,
        reset_pin=reset_pin,
        pin=pins.PinState(pin_hash, pin_failures or 0, pin_failed_since, pin_blocked_until),
    )


def to_number_allowed(app: Blink, session: Session, sender: Sender, to: str) -> bool:
    """Whether a text to ``to`` may act for ``sender``'s client.

    The client's own sender number always may. A client that sends through a Messaging
    Service (its own, or the MSP's ``TWILIO_MESSAGING_SERVICE_SID`` when it has no sender
    number) may be texted on any number of that service's pool, which we do not list:
    any ``To`` is accepted then, except another client's sender number. A client with a
    sender number and no service of its own: only that number.
    """
    if to == sender.sender_number:
        return True
    uses_service = bool(sender.messaging_service_sid) or (
        not sender.sender_number and bool(app.settings.twilio_messaging_service_sid)
    )
    if not uses_service:
        return False
    others = session.connection().execute(
        select(Client.id).where(Client.sender_number == to, Client.id != sender.target.client_id)
    )
    return others.first() is None


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
        elif not to_number_allowed(app, session, sender, message.to):
            # Another client's number (or a stray one): nothing acts, the answer is the
            # unknown sender's, and the attempt is audited for the user's client.
            log.warning("text to a number that is not the client's; refused")
            audit.record(
                session,
                "sms.wrong_number",
                actor=f"sms:user:{sender.target.user_id}",
                client_id=sender.target.client_id,
                user_id=sender.target.user_id,
                source=mask_phone(message.sender),
                to=message.to,
                keyword=keyword.action.value,
            )
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
    language = keyword.language or _language_of_country(session, message.sender)
    return Reply(translate(normalize_language(language), texts.UNKNOWN_SENDER))


def _language_of_country(session: Session, number: str) -> str | None:
    """A language of the number's country that some client's users are texted in: a
    Dutch number gets Dutch where the gateway serves Dutch clients (else English)."""
    try:
        region = phonenumbers.region_code_for_number(phonenumbers.parse(number, None))
    except phonenumbers.NumberParseException:
        return None
    spoken = get_official_languages(region or "", de_facto=True)
    if not spoken:
        return None
    served = set(session.execute(select(Client.language).distinct()).scalars())
    return next((language for language in spoken if language in served), None)


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


def _pin_refusal(
    session: Session, sender: Sender, message: InboundSms, keyword: Keyword, now: datetime
) -> str | None:
    """The reply refusing a RESET or UNLOCK for its PIN, or None when it may go on."""
    outcome = pins.check(
        session,
        policy=sender.reset_pin,
        state=sender.pin,
        pin=keyword.pin,
        user_id=sender.target.user_id,
        client_id=sender.target.client_id,
        source=mask_phone(message.sender),
        now=now,
    )
    language = sender.language
    if outcome is pins.PinCheck.OK:
        return None
    log.info("request refused for its reset PIN", outcome=outcome.value)
    if outcome is pins.PinCheck.NOT_SET:
        return translate(language, texts.PIN_REQUIRED, support=sender.support_contact)
    if outcome is pins.PinCheck.BLOCKED:
        return translate(language, texts.PIN_BLOCKED, support=sender.support_contact)
    return translate(language, texts.PIN_WRONG)


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
    elif action is Action.PIN and sender.reset_pin in ("optional", "required"):
        # Never set by text: a forged sender would own the PIN (see services.pins).
        text = translate(language, texts.PIN_BY_LINK, support=sender.support_contact)
    elif action in (Action.RESET, Action.UNLOCK) and (
        refused := _pin_refusal(session, sender, message, keyword, now)
    ):
        text = refused
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
