"""Resets and unlocks: accepting a request, and the job that carries it out.

A one-time password is generated inside :func:`_reset_and_text`, set in the
directory, put in one SMS, and dropped. It is never stored, logged, queued or put
in an exception. A request that cannot tell whether its SMS left (a crash between
sending and recording) fails instead of sending a second, different password.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session

from directory_adapters import DirectoryError, OperationNotSupported, PasswordRejected

from .. import otp, queue
from ..context import Blink
from ..db import insert_ignoring_conflicts
from ..messaging import texts
from ..messaging.i18n import normalize_language, translate
from ..messaging.sms import SmsError
from ..models import (
    PENDING_STATUSES,
    OutboundMessage,
    RequestKind,
    RequestOrigin,
    RequestStatus,
    ResetRequest,
    User,
    UTCDateTime,
    utcnow,
)
from . import audit
from .outbound import send_sms

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


# A request still queued or running after this long is stuck (its worker died):
# it no longer blocks a new one.
STALE_AFTER = timedelta(minutes=15)

HOUR_AGO = bindparam("hour_ago", type_=UTCDateTime())
DAY_AGO = bindparam("day_ago", type_=UTCDateTime())


def recent_request_columns(user_id: Any) -> tuple[Any, Any, Any]:
    """Scalar subqueries: oldest pending request, SMS requests in the last hour and day.

    Built once into prepared statements (see ``RECENT`` and the inbound sender query).
    """
    mine = ResetRequest.user_id == user_id
    pending_since = (
        select(func.min(ResetRequest.created_at))
        .where(mine, ResetRequest.status.in_(PENDING_STATUSES))
        .scalar_subquery()
    )
    by_sms = (mine, ResetRequest.origin == RequestOrigin.SMS)
    last_hour = (
        select(func.count()).where(*by_sms, ResetRequest.created_at >= HOUR_AGO).scalar_subquery()
    )
    last_day = (
        select(func.count()).where(*by_sms, ResetRequest.created_at >= DAY_AGO).scalar_subquery()
    )
    return pending_since, last_hour, last_day


RECENT = select(*recent_request_columns(bindparam("user_id")))


@dataclass(frozen=True)
class Target:
    """The user a request is for, as plain values (from a User or a query row)."""

    user_id: int
    client_id: int
    queue_name: str
    resets_per_hour: int
    resets_per_day: int

    @classmethod
    def of(cls, user: User) -> Target:
        client = user.client
        return cls(
            user.id, client.id, client.queue_name, client.resets_per_hour, client.resets_per_day
        )


@dataclass(frozen=True)
class Recent:
    """What the user asked for lately: the rate limits and single flight read this."""

    pending_since: datetime | None
    last_hour: int
    last_day: int

    @classmethod
    def load(cls, session: Session, user_id: int, now: datetime) -> Recent:
        row = (
            session.connection()
            .execute(RECENT, {"user_id": user_id, "hour_ago": now - HOUR, "day_ago": now - DAY})
            .one()
        )
        return cls(row[0], row[1], row[2])


def _limit_wait(
    session: Session, user_id: int, now: datetime, window: timedelta, limit: int, count: int
) -> timedelta:
    """How long until fewer than ``limit`` SMS requests fall inside ``window``."""
    oldest_that_must_expire = session.execute(
        select(ResetRequest.created_at)
        .where(
            ResetRequest.user_id == user_id,
            ResetRequest.origin == RequestOrigin.SMS,
            ResetRequest.created_at >= now - window,
        )
        .order_by(ResetRequest.created_at)
        .offset(count - limit)
        .limit(1)
    ).scalar_one()
    return max(oldest_that_must_expire + window - now, timedelta(minutes=1))


_INSERT_REQUEST: dict[str, Any] = {}


def _insert_request(session: Session) -> Any:
    """INSERT a request unless one is pending (the partial unique index decides)."""
    dialect = session.get_bind().dialect.name
    statement = _INSERT_REQUEST.get(dialect)
    if statement is None:
        table = ResetRequest.__table__
        statement = insert_ignoring_conflicts(
            session,
            table,
            index_elements=[table.c.user_id],
            index_where=table.c.status.in_([s.value for s in PENDING_STATUSES]),
        ).returning(table.c.id)
        _INSERT_REQUEST[dialect] = statement
    return statement


def _fail_stale(session: Session, target: Target, now: datetime) -> None:
    stale = session.execute(
        update(ResetRequest)
        .where(
            ResetRequest.user_id == target.user_id,
            ResetRequest.status.in_(PENDING_STATUSES),
            ResetRequest.created_at < now - STALE_AFTER,
        )
        .values(status=RequestStatus.FAILED, error_code="stale", finished_at=now)
        .returning(ResetRequest.id, ResetRequest.kind)
    ).all()
    for request_id, kind in stale:
        log.warning("stuck request given up", reset_request=request_id)
        audit.record(
            session,
            f"{kind.value}.failed",
            actor="system",
            client_id=target.client_id,
            user_id=target.user_id,
            request_id=request_id,
            error_code="stale",
        )


def request_reset(
    app: Blink,
    session: Session,
    target: Target,
    *,
    kind: RequestKind,
    origin: RequestOrigin,
    actor: str,
    inbound_sid: str | None = None,
    reply_from: str | None = None,
    recent: Recent | None = None,
    now: datetime | None = None,
) -> Outcome:
    """Accept a reset or unlock, or say why not. Commits, then enqueues the job.

    ``recent`` may come from the caller's own query (the webhook reads it together
    with the sender, in one statement).
    """
    now = now or utcnow()
    recent = recent or Recent.load(session, target.user_id, now)
    if recent.pending_since is not None:
        if now - recent.pending_since < STALE_AFTER:
            return AlreadyPending()
        _fail_stale(session, target, now)
    if origin is RequestOrigin.SMS:
        for window, limit, count in (
            (DAY, target.resets_per_day, recent.last_day),
            (HOUR, target.resets_per_hour, recent.last_hour),
        ):
            if count >= limit:
                wait = _limit_wait(session, target.user_id, now, window, limit, count)
                log.info("reset rate limited", window=str(window), count=count)
                audit.record(
                    session,
                    "reset.rate_limited",
                    actor=actor,
                    client_id=target.client_id,
                    user_id=target.user_id,
                    window=str(window),
                )
                session.commit()
                return RateLimited(wait)
    request_id = (
        session.connection()
        .execute(
            _insert_request(session),
            {
                "user_id": target.user_id,
                "kind": kind,
                "origin": origin,
                "status": RequestStatus.QUEUED,
                "actor": actor,
                "inbound_sid": inbound_sid,
                "reply_from": reply_from,
                "attempts": 0,
                "created_at": now,
            },
        )
        .scalar_one_or_none()
    )
    if request_id is None:
        return AlreadyPending()  # a concurrent text from the same user won the race
    audit.record(
        session,
        f"{kind.value}.requested",
        actor=actor,
        client_id=target.client_id,
        user_id=target.user_id,
        request_id=request_id,
        origin=origin.value,
    )
    session.commit()
    try:
        app.queue.enqueue(
            target.queue_name, perform_request, request_id, job_id=f"request-{request_id}"
        )
    except Exception as err:  # Redis down: the request cannot run, say so now
        log.error("cannot enqueue request", reset_request=request_id, error=type(err).__name__)
        request = session.get(ResetRequest, request_id)
        assert request is not None
        _finish(session, request, RequestStatus.FAILED, error_code="queue_unavailable")
        session.commit()
        return QueueUnavailable(request_id)
    log.info("request queued", reset_request=request_id, kind=kind.value, origin=origin.value)
    return Accepted(request_id)


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


def perform_request(request_id: int) -> None:
    """Job: carry out a reset or unlock request (see :func:`perform`)."""
    from ..context import blink

    queue.start_job_logging()
    perform(blink(), request_id, retries_left=queue.retries_left())


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
                try:
                    app.directories.for_client(user.client).unlock(user.directory_id)
                except OperationNotSupported:
                    _offer_reset(app, session, request)
                    return
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


def _offer_reset(app: Blink, session: Session, request: ResetRequest) -> None:
    """The directory has no unlock (Entra ID): say so and offer RESET, which ends a lockout.

    Not an apology: nothing went wrong, the user is told what works instead.
    """
    log.info("directory cannot unlock; offering RESET instead")
    _finish(session, request, RequestStatus.FAILED, error_code="unlock_not_supported")
    session.commit()
    user = request.user
    body = translate(language_of(user), texts.UNLOCK_NOT_SUPPORTED)
    try:
        send_sms(app, session, user, body, purpose="unlock_not_supported", request=request)
    except SmsError as err:
        log.error("unlock-not-supported SMS failed", error_code=error_code_of(err))
