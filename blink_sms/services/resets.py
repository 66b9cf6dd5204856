"""Resets and unlocks: accepting a request (rate limits, single flight) and queueing it.

The job that carries a request out, and how it survives crashes, is in
:mod:`blink_sms.services.reset_job`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import bindparam, func, select, text, update
from sqlalchemy.orm import Session

from ..actors import Actor
from ..context import Blink
from ..db import insert_ignoring_conflicts
from ..models import (
    PENDING_PREDICATE,
    PENDING_STATUSES,
    RequestKind,
    RequestOrigin,
    RequestStatus,
    ResetRequest,
    User,
    UTCDateTime,
    utcnow,
)
from . import audit
from .reset_job import enqueue

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


Outcome = Accepted | AlreadyPending | RateLimited


# A request still queued or running after this long is stuck (no scheduler ran to
# recover it, see reset_job.sweep): it no longer blocks a new one.
STALE_AFTER = timedelta(minutes=15)

HOUR_AGO = bindparam("hour_ago", type_=UTCDateTime())
DAY_AGO = bindparam("day_ago", type_=UTCDateTime())


# Requests a user texted: RESET or UNLOCK, on its own or answering a lockout notice. The
# per-user limits count them together.
TEXTED = (RequestOrigin.SMS, RequestOrigin.LOCKOUT)


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
    by_sms = (mine, ResetRequest.origin.in_(TEXTED))
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
            ResetRequest.origin.in_(TEXTED),
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
            # Literal SQL, as in the index: see PENDING_PREDICATE.
            index_where=text(PENDING_PREDICATE),
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


def _source(source: str | None) -> dict[str, Any]:
    return {"source": source} if source else {}


def request_reset(
    app: Blink,
    session: Session,
    target: Target,
    *,
    kind: RequestKind,
    origin: RequestOrigin,
    actor: Actor | str,
    inbound_sid: str | None = None,
    reply_from: str | None = None,
    recent: Recent | None = None,
    now: datetime | None = None,
    source: str | None = None,
) -> Outcome:
    """Accept a reset or unlock, or say why not. Commits, then enqueues the job.

    ``source`` is where a text came from (the masked number) for the audit trail; an
    admin's or a key's actor carries its own IP.
    ``recent`` may come from the caller's own query (the webhook reads it together
    with the sender, in one statement). The committed row is the source of truth: when
    the queue cannot take the job (Redis down), the request waits in the outbox and the
    scheduler's sweep enqueues it once Redis is back; it is accepted all the same.
    """
    now = now or utcnow()
    recent = recent or Recent.load(session, target.user_id, now)
    if recent.pending_since is not None:
        if now - recent.pending_since < STALE_AFTER:
            return AlreadyPending()
        _fail_stale(session, target, now)
    if origin in TEXTED:
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
                    **_source(source),
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
                "actor": audit.label(actor),
                "inbound_sid": inbound_sid,
                "reply_from": reply_from,
                "attempts": 0,
                "created_at": now,
                "enqueued_at": now,
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
        **_source(source),
    )
    session.commit()
    # Redis down: the request waits in the outbox and the scheduler enqueues it later.
    enqueue(app, [(request_id, 0, target.queue_name)], noted=True)
    log.info("request queued", reset_request=request_id, kind=kind.value, origin=origin.value)
    return Accepted(request_id)
