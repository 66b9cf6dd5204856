"""What a lockout poll does once the directory answered: open an event for each newly
locked, enrolled user and text them, close the events whose lockout ended.

See :mod:`blink_sms.services.lockout_watch` for the whole watch. Each step is its own
short transaction; none is open while Twilio is called.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from directory_adapters import CAPABILITIES, UNLOCK, Lockout

from ..context import Blink, StoredDirectory
from ..db import insert_ignoring_conflicts
from ..messaging import texts
from ..messaging.i18n import normalize_language, translate
from ..messaging.sms import SmsError
from ..models import (
    LockoutEvent,
    RequestKind,
    RequestStatus,
    ResetRequest,
    User,
    UserStatus,
    utcnow,
)
from . import audit, throttle
from .lockout_digest import enqueue_digest
from .outbound import deliver

log = structlog.get_logger(__name__)

PURPOSE = "lockout_notice"
_CHUNK = 500  # ids per IN (...) list
_OPEN = text("ended_at IS NULL")  # the partial unique index's predicate, literally


@dataclass(frozen=True)
class PollResult:
    """What one poll did: its status ("ok", "failing", "off", or "skipped" when the
    client was disabled, removed or its watch turned off while the poll waited)."""

    status: str
    locked: int = 0  # accounts the directory reported locked
    detected: int = 0  # events opened
    texted: int = 0  # notices sent
    closed: int = 0  # events closed


@dataclass(frozen=True)
class WatchedClient:
    """The client as the poll needs it (plain values, no session)."""

    id: int
    directory: StoredDirectory
    language: str
    sender_number: str | None
    messaging_service_sid: str | None
    alert_email: str | None
    since: datetime | None

    @property
    def can_unlock(self) -> bool:
        return UNLOCK in CAPABILITIES.get(self.directory.directory_kind, frozenset())


@dataclass(frozen=True)
class _Known:
    """A user of the client whom the directory reported locked."""

    user_id: int
    username: str
    language: str | None
    phone: str | None
    opted_out: bool
    enrolled: bool


@dataclass
class _New:
    """An event opened by this poll, and its notice."""

    event_id: int
    user: _Known
    lockout: Lockout
    notice: str  # sending, opted_out, throttled; then sent or failed


def apply_lockouts(
    app: Blink, client: WatchedClient, lockouts: list[Lockout], started: datetime
) -> PollResult:
    """The poll's work once the directory answered."""
    locked = {lockout.user.id: lockout for lockout in lockouts}
    new: list[_New] = []
    with app.db.session() as session:
        known = _known_users(session, client.id, list(locked))
        closed, still_open = _close_ended(session, client.id, locked, started)
        _settle_unsent(session, client.id, started)
        for directory_id, lockout in locked.items():
            user = known.get(directory_id)
            if user is None or not user.enrolled or user.user_id in still_open:
                continue
            opened = _open_event(app, session, client, user, lockout, started)
            if opened is not None:
                new.append(opened)
        session.commit()
    texted = _send_notices(app, client, new)
    with app.db.session() as session:
        _record_notices(session, client.id, new)
        session.commit()
    if new and client.alert_email:
        enqueue_digest(app, client.id, [n.event_id for n in new])
    return PollResult("ok", len(locked), len(new), texted, closed)


def _chunks(values: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]


def _known_users(session: Session, client_id: int, directory_ids: list[str]) -> dict[str, _Known]:
    """The client's users among ``directory_ids``, by directory id (one query per 500)."""
    known: dict[str, _Known] = {}
    for chunk in _chunks(directory_ids):
        for row in session.execute(
            select(
                User.directory_id, User.id, User.username, User.language, User.phone,
                User.sms_opted_out, User.status,
            ).where(User.client_id == client_id, User.directory_id.in_(chunk))
        ):  # fmt: skip
            directory_id, user_id, username, language, phone, opted_out, status = row
            enrolled = status is UserStatus.ACTIVE and phone is not None
            known[directory_id] = _Known(user_id, username, language, phone, opted_out, enrolled)
    return known


def _close_ended(
    session: Session, client_id: int, locked: dict[str, Lockout], now: datetime
) -> tuple[int, set[int]]:
    """Close the open events whose lockout ended; (how many, users still with one open).

    A reset or unlock of the user that completed after the event was detected names the
    reason; a lockout that began after it is a new lockout (its old event closes).
    """
    events = session.execute(
        select(LockoutEvent.id, LockoutEvent.user_id, LockoutEvent.detected_at, User.directory_id)
        .join(User, User.id == LockoutEvent.user_id)
        .where(LockoutEvent.client_id == client_id, LockoutEvent.ended_at.is_(None))
    ).all()
    if not events:
        return 0, set()
    completed = _completed_requests(
        session, [e.user_id for e in events], min(e.detected_at for e in events)
    )
    still_open: set[int] = set()
    closing: dict[str, list[int]] = {}
    for event_id, user_id, detected_at, directory_id in events:
        request = completed.get(user_id)
        request = request if request is not None and request[1] >= detected_at else None
        lockout = locked.get(directory_id)
        relocked = (
            lockout is not None
            and request is not None
            and lockout.locked_at is not None
            and lockout.locked_at > request[1]
        )
        if lockout is not None and not relocked:
            still_open.add(user_id)
            continue
        reason = "ended"
        if request is not None:
            reason = "reset" if request[0] is RequestKind.RESET else "unlocked"
        closing.setdefault(reason, []).append(event_id)
    for reason, ids in closing.items():
        session.execute(
            update(LockoutEvent)
            .where(LockoutEvent.id.in_(ids), LockoutEvent.ended_at.is_(None))
            .values(ended_at=now, ended_reason=reason)
            .execution_options(synchronize_session=False)
        )
    return sum(len(ids) for ids in closing.values()), still_open


def _completed_requests(
    session: Session, user_ids: list[int], since: datetime
) -> dict[int, tuple[RequestKind, datetime]]:
    """Each user's latest reset or unlock that completed since ``since``."""
    latest: dict[int, tuple[RequestKind, datetime]] = {}
    for chunk in _chunks(user_ids):
        for user_id, kind, finished_at in session.execute(
            select(ResetRequest.user_id, ResetRequest.kind, ResetRequest.finished_at)
            .where(
                ResetRequest.user_id.in_(chunk),
                ResetRequest.status == RequestStatus.DONE,
                ResetRequest.finished_at >= since,
            )
            .order_by(ResetRequest.finished_at)
        ):
            if finished_at is not None:  # always, for a finished request
                latest[user_id] = (kind, finished_at)
    return latest


def _settle_unsent(session: Session, client_id: int, started: datetime) -> None:
    """Events an earlier poll died texting: the SMS may or may not have left; never again."""
    for event_id, user_id, kind in session.execute(
        select(LockoutEvent.id, LockoutEvent.user_id, LockoutEvent.kind).where(
            LockoutEvent.client_id == client_id,
            LockoutEvent.notice == "sending",
            LockoutEvent.detected_at < started,
        )
    ):
        session.execute(
            update(LockoutEvent).where(LockoutEvent.id == event_id).values(notice="unknown")
        )
        _audit_detected(session, client_id, user_id, kind, "unknown")


def _open_event(
    app: Blink,
    session: Session,
    client: WatchedClient,
    user: _Known,
    lockout: Lockout,
    now: datetime,
) -> _New | None:
    """Insert the event unless the user has an open one (the unique index decides) and
    decide its notice: opted out, over the limit, or to be texted."""
    table = LockoutEvent.__table__
    if user.opted_out:
        notice = "opted_out"
    else:
        allowed = throttle.allow(
            session, f"reply:{user.user_id}", limit=app.settings.replies_per_hour,
            window=timedelta(hours=1), now=now,
        )  # fmt: skip
        notice = "sending" if allowed else "throttled"
    event_id = session.execute(
        insert_ignoring_conflicts(
            session, table, index_elements=[table.c.user_id], index_where=_OPEN
        )
        .values(
            client_id=client.id,
            user_id=user.user_id,
            kind=lockout.kind,
            locked_at=lockout.locked_at,
            detected_at=now,
            notice=notice,
        )
        .returning(table.c.id)
    ).scalar_one_or_none()
    if event_id is None:
        return None  # a concurrent poll opened it
    if notice != "sending":  # known now: audited with the event
        _audit_detected(session, client.id, user.user_id, lockout.kind, notice)
    return _New(event_id, user, lockout, notice)


def _audit_detected(session: Session, client_id: int, user_id: int, kind: str, notice: str) -> None:
    audit.record(
        session, "lockout.detected", actor="system", client_id=client_id, user_id=user_id,
        kind=kind, notice=notice,
    )  # fmt: skip


def _send_notices(app: Blink, client: WatchedClient, new: list[_New]) -> int:
    """Text each new event's user (no transaction open during a Twilio call)."""
    texted = 0
    with app.db.session() as session:
        for event in new:
            if event.notice != "sending" or event.user.phone is None:
                continue
            offer_unlock = client.can_unlock and event.lockout.kind == "lockout"
            message = texts.LOCKOUT_NOTICE if offer_unlock else texts.LOCKOUT_NOTICE_RESET
            language = normalize_language(event.user.language or client.language)
            body = translate(language, message, username=event.user.username)
            try:
                deliver(
                    app, session, to=event.user.phone, client=client, body=body,
                    purpose=PURPOSE, user_id=event.user.user_id,
                )  # fmt: skip
            except SmsError as err:
                log.error("lockout notice failed", user_id=event.user.user_id,
                          error_code=err.code)  # fmt: skip
                event.notice = "failed"
                continue
            event.notice = "sent"
            texted += 1
    return texted


def _record_notices(session: Session, client_id: int, new: list[_New]) -> None:
    """The outcome of each notice texted, and its event's audit event (a PSA webhook)."""
    now = utcnow()
    for event in new:
        if event.notice not in ("sent", "failed"):
            continue  # not texted: audited when the event was recorded
        values: dict[str, Any] = {"notice": event.notice}
        if event.notice == "sent":
            values["notified_at"] = now
        session.execute(
            update(LockoutEvent).where(LockoutEvent.id == event.event_id).values(**values)
        )
        _audit_detected(session, client_id, event.user.user_id, event.lockout.kind, event.notice)
