"""How long the audit trail is kept, and the scheduled pruning of older events.

The MSP sets one retention period for every client (``MspSettings.audit_retention_days``,
400 days when unset); the scheduler's ``retention`` task (:func:`prune`) deletes events
older than that, in batches. On PostgreSQL a trigger refuses any other UPDATE or DELETE
of an event (migration 0008): the pruning and a GDPR erasure say what they are doing with
:func:`allow_audit_maintenance`, for their own transaction only.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import delete, select, text, update
from sqlalchemy.orm import Session

from ..actors import Actor, Forbidden, Permission
from ..context import Blink
from ..db import insert_ignoring_conflicts
from ..models import AuditEvent, MspSettings, utcnow
from . import audit
from .errors import Invalid

DEFAULT_RETENTION_DAYS = 400
MIN_RETENTION_DAYS = 30
MAX_RETENTION_DAYS = 3650
PRUNE_BATCH = 1000


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
    """Delete the audit events older than the retention period; the number deleted.

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
    return deleted
