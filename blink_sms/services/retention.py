"""How long the audit trail and the rest are kept, and the scheduled pruning.

The MSP sets one retention period for every client (``MspSettings.audit_retention_days``,
400 days when unset); the scheduler's hourly ``retention`` task (:func:`prune`) deletes
events older than that, in batches. On PostgreSQL a trigger refuses any other UPDATE or
DELETE of an event (migration 0008): the pruning and a GDPR erasure say what they are
doing with :func:`allow_audit_maintenance`, for their own transaction only.

The same task prunes what else grows without bound (:func:`prune_records`):

- inbound message ids after ``BLINK_MESSAGE_ID_RETENTION_DAYS`` (14; Twilio retries a
  webhook within hours, so a repeat is still recognised long after);
- rate-limit counters whose window ended long ago (:data:`THROTTLE_KEEP`);
- API idempotency keys after 24 hours (the API deletes them lazily too);
- with the audit events, at the same age: finished reset requests, the texts sent,
  verification codes, used or revoked activation links and ended lockouts. A pending
  request and its texts, and an open lockout, are never deleted;
- password-expiry reminders 90 days after they went out, once that password expired.

Reports count requests and texts by their ``created_at``, the age pruned by, so a month
within the retention period keeps its numbers; only months older than that lose theirs
(the month the cutoff falls in, in part), as they lose their audit events.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

import structlog
from sqlalchemy import ColumnElement, delete, or_, select, text, update
from sqlalchemy.orm import InstrumentedAttribute, Session

from ..actors import Actor, Forbidden, Permission
from ..context import Blink
from ..db import insert_ignoring_conflicts
from ..models import (
    PENDING_STATUSES,
    AuditEvent,
    ExpiryReminder,
    IdempotencyKey,
    InboundMessage,
    Invitation,
    LockoutEvent,
    MspSettings,
    OutboundMessage,
    RequestStatus,
    ResetRequest,
    SmsThrottle,
    VerificationCode,
    utcnow,
)
from . import audit
from .errors import Invalid

log = structlog.get_logger(__name__)

DEFAULT_RETENTION_DAYS = 400
MIN_RETENTION_DAYS = 30
MAX_RETENTION_DAYS = 3650
PRUNE_BATCH = 1000
# A rate-limit counter whose window began longer ago than the longest window in use
# counts nothing any more (throttle.allow starts a new one). The longest are a day
# (enrollment codes per number, texts to a replaced phone) and the unknown-sender reply
# interval (BLINK_UNKNOWN_SENDER_REPLY_INTERVAL, a day by default): a week leaves room.
THROTTLE_KEEP = timedelta(days=7)
# As the API's Idempotency-Key answers are kept (api/idempotency.py).
IDEMPOTENCY_KEEP = timedelta(hours=24)
REMINDER_KEEP = timedelta(days=90)  # reminders go out at most 60 days before expiry


def allow_audit_maintenance(session: Session, purpose: Literal["retention", "erasure"]) -> None:
    """Let this transaction delete old events (``retention``) or rewrite the personal data
    in events' detail (``erasure``) past PostgreSQL's append-only trigger. The setting ends
    with the transaction; SQLite has no trigger, so there it does nothing."""
    if session.get_bind().dialect.name == "postgresql":
        # A literal, never user input: SET takes no bound parameters.
        session.execute(text(f"SET LOCAL blink.audit_maintenance = '{purpose}'"))


def audit_retention_days(session: Session) -> int:
    """The retention period in days (the default when the MSP set none)."""
    days = session.execute(
        select(MspSettings.audit_retention_days).where(MspSettings.id == 1)
    ).scalar_one_or_none()
    return days if days is not None else DEFAULT_RETENTION_DAYS


def set_audit_retention(session: Session, actor: Actor, days: int) -> bool:
    """Keep audit events this many days (30 to 3650). MSP owners only. Commits; False when
    nothing changed."""
    actor.require(Permission.MANAGE_ADMINS)
    if not actor.msp_wide:
        raise Forbidden("only the MSP's owners set this")
    if isinstance(days, bool) or not MIN_RETENTION_DAYS <= days <= MAX_RETENTION_DAYS:
        raise Invalid(
            "audit_retention_days",
            f"a number of days from {MIN_RETENTION_DAYS} to {MAX_RETENTION_DAYS}",
        )
    previous = audit_retention_days(session)
    if previous == days:
        return False
    session.execute(insert_ignoring_conflicts(session, MspSettings.__table__).values(id=1))
    session.execute(
        update(MspSettings).where(MspSettings.id == 1).values(audit_retention_days=days)
    )
    audit.record(
        session,
        "msp.settings_changed",
        actor=actor,
        fields=["audit_retention_days"],
        audit_retention_days=days,
        previous=previous,
    )
    session.commit()
    return True


def prune(app: Blink, *, now: datetime | None = None, batch: int = PRUNE_BATCH) -> int:
    """Delete the audit events older than the retention period, and the other rows past
    their keeping (:func:`prune_records`); the number of events deleted.

    Events are read oldest id first, a batch at a time, one transaction per batch (a
    long backlog never holds a long lock). Ids grow with time, so the first batch that
    holds no old event ends the run: a run with nothing to do reads one batch (``at`` has
    no index of its own). A run that deleted something records one ``audit.pruned`` event.
    """
    deleted = 0
    after = 0
    with app.db.session() as session:
        days = audit_retention_days(session)
        cutoff = (now or utcnow()) - timedelta(days=days)
        while True:
            rows = session.execute(
                select(AuditEvent.id, AuditEvent.at)
                .where(AuditEvent.id > after)
                .order_by(AuditEvent.id)
                .limit(batch)
            ).all()
            old = [event_id for event_id, at in rows if at < cutoff]
            if not old:
                break
            after = rows[-1][0]
            allow_audit_maintenance(session, "retention")
            session.execute(delete(AuditEvent).where(AuditEvent.id.in_(old)))
            session.commit()
            deleted += len(old)
        if deleted:
            audit.record(
                session,
                "audit.pruned",
                actor="system",
                deleted=deleted,
                older_than=cutoff.isoformat(timespec="seconds"),
                retention_days=days,
            )
            session.commit()
    prune_records(app, now=now, batch=batch)
    return deleted


def prune_records(
    app: Blink, *, now: datetime | None = None, batch: int = PRUNE_BATCH
) -> dict[str, int]:
    """Delete the rows past their keeping (see the module's docstring); how many of each.

    A batch per transaction. Rows with an indexed time go by that index; the others are
    read oldest id first, and a batch that reaches a row younger than the cutoff ends the
    run (ids grow with time). One ``retention.pruned`` event when rows kept as long as
    the audit trail were deleted.
    """
    now = now or utcnow()
    with app.db.session() as session:
        days = audit_retention_days(session)
    cutoff = now - timedelta(days=days)
    pending = select(ResetRequest.id).where(ResetRequest.status.in_(PENDING_STATUSES))
    audited = {
        # Texts first: the database unlinks a deleted request's texts (ON DELETE SET NULL),
        # so the fewer left, the cheaper.
        "outbound_messages": _oldest_first(
            app, OutboundMessage.id, OutboundMessage.created_at, cutoff, batch,
            also=or_(OutboundMessage.request_id.is_(None),
                     OutboundMessage.request_id.not_in(pending)),
        ),
        "reset_requests": _oldest_first(
            app, ResetRequest.id, ResetRequest.created_at, cutoff, batch,
            also=ResetRequest.status.in_((RequestStatus.DONE, RequestStatus.FAILED)),
        ),
        "verification_codes": _oldest_first(
            app, VerificationCode.id, VerificationCode.created_at, cutoff, batch
        ),
        # Used or revoked. One neither used nor revoked is the user's one open invitation
        # (an index says so), expired or not: it stays, so their status still says "link
        # expired"; the next invitation revokes it, and then it goes.
        "invitations": _oldest_first(
            app, Invitation.id, Invitation.created_at, cutoff, batch,
            also=or_(Invitation.used_at.is_not(None), Invitation.revoked_at.is_not(None)),
        ),
        # Ended lockouts (an open one is the user's current lockout: it stays).
        "lockout_events": _oldest_first(
            app, LockoutEvent.id, LockoutEvent.detected_at, cutoff, batch,
            also=LockoutEvent.ended_at.is_not(None),
        ),
    }  # fmt: skip
    counts = {
        **audited,
        "inbound_messages": _by_indexed_time(
            app, InboundMessage.sid, InboundMessage.received_at,
            now - timedelta(days=app.settings.message_id_retention_days), batch,
        ),
        "sms_throttles": _by_indexed_time(
            app, SmsThrottle.key, SmsThrottle.window_start,
            now - max(THROTTLE_KEEP,
                      timedelta(seconds=app.settings.unknown_sender_reply_interval)),
            batch,
        ),
        "idempotency_keys": _by_indexed_time(
            app, IdempotencyKey.id, IdempotencyKey.created_at, now - IDEMPOTENCY_KEEP, batch
        ),
        # Which reminders went out, for passwords that have expired since: none is due.
        "expiry_reminders": _oldest_first(
            app, ExpiryReminder.id, ExpiryReminder.sent_at, now - REMINDER_KEEP, batch,
            also=ExpiryReminder.expires_at < now,
        ),
    }  # fmt: skip
    if any(audited.values()):
        with app.db.session() as session:
            audit.record(
                session,
                "retention.pruned",
                actor="system",
                older_than=cutoff.isoformat(timespec="seconds"),
                retention_days=days,
                **audited,
            )
            session.commit()
    if any(counts.values()):
        log.info("old rows pruned", **counts)
    return counts


def _by_indexed_time(
    app: Blink,
    key: InstrumentedAttribute[Any],
    at: InstrumentedAttribute[datetime],
    cutoff: datetime,
    batch: int,
) -> int:
    """Delete the rows of ``key``'s table whose ``at`` is before ``cutoff``, a batch at a
    time. For tables whose time is indexed, or that stay small (rate-limit counters)."""
    table = key.class_.__table__
    deleted = 0
    while True:
        with app.db.session() as session:
            keys = list(session.execute(select(key).where(at < cutoff).limit(batch)).scalars())
            if keys:
                session.connection().execute(delete(table).where(key.in_(keys)))
                session.commit()
        deleted += len(keys)
        if len(keys) < batch:
            return deleted


def _oldest_first(
    app: Blink,
    id_: InstrumentedAttribute[int],
    at: InstrumentedAttribute[datetime],
    cutoff: datetime,
    batch: int,
    *,
    also: ColumnElement[bool] | None = None,
) -> int:
    """Delete the rows older than ``cutoff`` (that match ``also``), reading the table by
    its primary key, oldest first: for times without an index of their own."""
    table = id_.class_.__table__
    deleted = 0
    after = 0
    while True:
        with app.db.session() as session:
            rows = session.execute(
                select(id_, at).where(id_ > after).order_by(id_).limit(batch)
            ).all()
            old = [row_id for row_id, row_at in rows if row_at < cutoff]
            if old:
                statement = delete(table).where(table.c.id.in_(old))
                if also is not None:
                    statement = statement.where(also)
                deleted += session.connection().execute(statement).rowcount
                session.commit()
        if len(rows) < batch or len(old) < len(rows):
            return deleted
        after = rows[-1][0]
