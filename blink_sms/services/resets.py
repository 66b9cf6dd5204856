"""Resets and unlocks: accepting a request, and the job that carries it out.

A one-time password is generated inside :func:`_reset_and_text`, set in the
directory, put in one SMS, and dropped. It is never stored, logged, queued or put
in an exception. A request that cannot tell whether its SMS left (a crash between
sending and recording) fails instead of sending a second, different password.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy import case, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from directory_adapters import DirectoryError, PasswordRejected

from .. import otp
from ..context import Blink
from ..messaging import texts
from ..messaging.i18n import normalize_language, translate
from ..messaging.sms import OutgoingSms, SmsError
from ..models import (
    PENDING_STATUSES,
    OutboundMessage,
    RequestKind,
    RequestOrigin,
    RequestStatus,
    ResetRequest,
    User,
    utcnow,
)
from . import audit

log = structlog.get_logger(__name__)

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


@dataclass(frozen=True)
class Accepted:
    request_id: int


@dataclass(frozen=True)
class AlreadyPending:
    pass


@dataclass(frozen=True)
class RateLimited:
    retry_after: timedelta


@dataclass(frozen=True)
class QueueUnavailable:
    request_id: int


Outcome = Accepted | AlreadyPending | RateLimited | QueueUnavailable


class RetryLater(Exception):
    """Raised by the job so the queue tries again; carries an error code, nothing else."""


def language_of(user: User) -> str:
    return normalize_language(user.language or user.client.language)


def _limit_wait(
    session: Session, user: User, now: datetime, window: timedelta, limit: int, count: int
) -> timedelta:
    """How long until fewer than ``limit`` SMS requests fall inside ``window``."""
    oldest_that_must_expire = session.execute(
        select(ResetRequest.created_at)
        .where(
            ResetRequest.user_id == user.id,
            ResetRequest.origin == RequestOrigin.SMS,
            ResetRequest.created_at >= now - window,
        )
        .order_by(ResetRequest.created_at)
        .offset(count - limit)
        .limit(1)
    ).scalar_one()
    return max(oldest_that_must_expire + window - now, timedelta(minutes=1))


def request_reset(
    app: Blink,
    session: Session,
    user: User,
    *,
    kind: RequestKind,
    origin: RequestOrigin,
    actor: str,
    inbound_sid: str | None = None,
    reply_from: str | None = None,
) -> Outcome:
    """Accept a reset or unlock for ``user``, or say why not. Commits, then enqueues."""
    now = utcnow()
    client = user.client
    pending, last_hour, last_day = session.execute(
        select(
            func.coalesce(
                func.sum(case((ResetRequest.status.in_(PENDING_STATUSES), 1), else_=0)), 0
            ),
            func.coalesce(
                func.sum(
                    case(
                        (
                            (ResetRequest.origin == RequestOrigin.SMS)
                            & (ResetRequest.created_at >= now - HOUR),
                            1,
                        ),
                        else_=0,
                    )
                ),
                0,
            ),
            func.coalesce(
                func.sum(case((ResetRequest.origin == RequestOrigin.SMS, 1), else_=0)), 0
            ),
        ).where(ResetRequest.user_id == user.id, ResetRequest.created_at >= now - DAY)
    ).one()
    if pending:
        return AlreadyPending()
    if origin is RequestOrigin.SMS:
        for window, limit, count in (
            (DAY, client.resets_per_day, last_day),
            (HOUR, client.resets_per_hour, last_hour),
        ):
            if count >= limit:
                wait = _limit_wait(session, user, now, window, limit, count)
                log.info("reset rate limited", user_id=user.id, window=str(window), count=count)
                audit.record(
                    session,
                    "reset.rate_limited",
                    actor=actor,
                    client_id=client.id,
                    user_id=user.id,
                    window=str(window),
                )
                session.commit()
                return RateLimited(wait)
    request = ResetRequest(
        user_id=user.id,
        kind=kind,
        origin=origin,
        actor=actor,
        inbound_sid=inbound_sid,
        reply_from=reply_from,
        created_at=now,
    )
    try:
        with session.begin_nested():
            session.add(request)
    except IntegrityError:
        return AlreadyPending()  # a concurrent text from the same user won the race
    audit.record(
        session,
        f"{kind.value}.requested",
        actor=actor,
        client_id=client.id,
        user_id=user.id,
        request_id=request.id,
        origin=origin.value,
    )
    session.commit()
    from ..jobs import perform_request

    try:
        app.queue.enqueue(
            client.queue_name, perform_request, request.id, job_id=f"request-{request.id}"
        )
    except Exception as err:  # Redis down: the request cannot run, say so now
        log.error("cannot enqueue request", reset_request=request.id, error=type(err).__name__)
        _finish(session, request, RequestStatus.FAILED, error_code="queue_unavailable")
        session.commit()
        return QueueUnavailable(request.id)
    log.info("request queued", reset_request=request.id, kind=kind.value, origin=origin.value)
    return Accepted(request.id)


def _finish(
    session: Session, request: ResetRequest, status: RequestStatus, *, error_code: str | None = None
) -> None:
    request.status = status
    request.error_code = error_code
    request.finished_at = utcnow()
    audit.record(
        session,
        f"{request.kind.value}.{'completed' if status is RequestStatus.DONE else 'failed'}",
        actor="system",
        client_id=request.user.client_id,
        user_id=request.user_id,
        request_id=request.id,
        **({"error_code": error_code} if error_code else {}),
    )


def error_code_of(err: DirectoryError | SmsError) -> str:
    if isinstance(err, SmsError):
        return f"sms_{err.code}" if err.code else "sms_failed"
    name = type(err).__name__
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")


def send_sms(
    app: Blink,
    session: Session,
    user: User,
    body: str,
    *,
    purpose: str,
    request: ResetRequest | None = None,
) -> str:
    """Text an enrolled user and record the message (never its body). Commits."""
    if app.sms is None:
        raise SmsError("SMS sending is off: Twilio credentials are not configured", permanent=True)
    if user.phone is None or user.sms_opted_out:
        raise SmsError(
            "the user has no reachable phone (not enrolled or opted out)", permanent=True
        )
    client = user.client
    record = OutboundMessage(
        request_id=request.id if request else None,
        user_id=user.id,
        purpose=purpose,
        status="sending",
    )
    session.add(record)
    session.commit()
    sender = (request.reply_from if request else None) or client.sender_number
    try:
        sid = app.sms.send(
            OutgoingSms(
                to=user.phone,
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


def _reset_and_text(app: Blink, session: Session, request: ResetRequest) -> None:
    """Set a fresh one-time password and text it. The password lives only here."""
    user, client = request.user, request.user.client
    directory = app.directories.for_client(client)
    policy = directory.password_policy()
    avoid = [user.username, user.display_name]
    password = otp.generate_password(policy, length=client.password_length, avoid=avoid)
    try:
        directory.set_password(
            user.directory_id,
            password,
            must_change=client.must_change_at_next_logon,
            unlock=client.unlock_on_reset,
        )
    except PasswordRejected:
        # A fine-grained policy may ask for more than the domain policy says: once, longer.
        log.warning("password rejected by policy, trying once more, longer")
        password = otp.generate_password(
            policy, length=max(client.password_length, policy.min_length) + 6, avoid=avoid
        )
        directory.set_password(
            user.directory_id,
            password,
            must_change=client.must_change_at_next_logon,
            unlock=client.unlock_on_reset,
        )
    message = texts.OTP if client.must_change_at_next_logon else texts.OTP_NO_CHANGE
    body = translate(language_of(user), message, password=password)
    del password
    send_sms(app, session, user, body, purpose="otp", request=request)


def perform(app: Blink, request_id: int, *, retries_left: int) -> None:
    """The job: carry out one reset or unlock request. Safe to run again."""
    structlog.contextvars.bind_contextvars(reset_request=request_id)
    with app.db.session() as session:
        request = session.get(ResetRequest, request_id)
        if request is None:
            log.warning("request vanished")
            return
        if request.status in (RequestStatus.DONE, RequestStatus.FAILED):
            log.info("request already finished", status=request.status.value)
            return
        uncertain = (
            session.execute(
                select(OutboundMessage.status).where(
                    OutboundMessage.request_id == request.id, OutboundMessage.purpose != "apology"
                )
            )
            .scalars()
            .all()
        )
        if "sent" in uncertain:
            _finish(session, request, RequestStatus.DONE)
            session.commit()
            return
        if "sending" in uncertain:
            # A previous attempt died between handing the SMS over and recording it.
            # Sending another password could leave the user with two different ones.
            log.error("previous attempt may have sent the SMS; not sending another")
            _finish(session, request, RequestStatus.FAILED, error_code="delivery_unknown")
            session.commit()
            return
        user = request.user
        request.status = RequestStatus.RUNNING
        request.attempts += 1
        request.started_at = request.started_at or utcnow()
        session.commit()
        try:
            if user.sms_opted_out or user.phone is None:
                raise SmsError("the user opted out of SMS", permanent=True)
            if request.kind is RequestKind.UNLOCK:
                app.directories.for_client(user.client).unlock(user.directory_id)
                body = translate(language_of(user), texts.UNLOCKED)
                send_sms(app, session, user, body, purpose="unlocked", request=request)
            else:
                _reset_and_text(app, session, request)
        except (DirectoryError, SmsError) as err:
            code = error_code_of(err)
            if not err.permanent and retries_left > 0:
                log.warning("request will be retried", error_code=code, retries_left=retries_left)
                request.status, request.error_code = RequestStatus.QUEUED, code
                session.commit()
                raise RetryLater(code) from None
            log.error("request failed", error_code=code, detail=err.message)
            _finish(session, request, RequestStatus.FAILED, error_code=code)
            session.commit()
            _apologise(app, session, request)
            return
        _finish(session, request, RequestStatus.DONE)
        session.commit()
        log.info("request completed", kind=request.kind.value)


def _apologise(app: Blink, session: Session, request: ResetRequest) -> None:
    user = request.user
    if user.sms_opted_out or user.phone is None:
        return
    body = translate(language_of(user), texts.APOLOGY, support=user.client.support_contact)
    try:
        send_sms(app, session, user, body, purpose="apology", request=request)
    except SmsError as err:
        log.error("apology SMS failed", error_code=error_code_of(err))
