"""The lockout watch: each client's directory is asked which accounts are locked, and
each newly locked, enrolled user is texted once per lockout.

- **Scheduling.** The scheduler's ``lockout-watch`` task (:func:`enqueue_due`, every few
  seconds) finds the clients whose poll is due (watch on, client enabled, their interval
  ``Client.lockout_poll_seconds`` or ``BLINK_LOCKOUT_POLL_SECONDS`` passed since the last
  poll) and enqueues one :func:`poll_lockouts` job per client on **the client's own
  queue**, so an on-premises worker runs it. ``LockoutWatch.queued_at`` is set by a
  conditional UPDATE first: a poll is never queued twice, and a queued poll that the
  queue lost (Redis restarted, a worker died) is queued again.
- **The poll** (:func:`poll`): one directory query (``lockouts``: one paged search in
  Active Directory, the sign-in logs in Entra ID), one query for the client's users among
  them and one for its open events. A lockout of an enrolled user (active, with a phone)
  without an open :class:`~blink_sms.models.LockoutEvent` opens one (the partial unique
  index decides when two polls race), is audited as ``lockout.detected`` (a PSA webhook)
  with the notice's outcome, and texts ``LOCKOUT_NOTICE`` in the user's language from the
  client's sender: "reply UNLOCK or RESET", or only RESET where the directory cannot
  unlock or Entra ID blocked a malicious address. An opted-out user's event is recorded
  but not texted; the notices count against ``BLINK_REPLIES_PER_HOUR``. Users the gateway
  does not know, or who are not enrolled, get nothing.
- **Ends.** An open event whose user the directory no longer reports is closed: "reset"
  or "unlocked" when a reset or unlock of the user completed after it was detected,
  "ended" otherwise (the lockout timed out, or an admin unlocked in the directory). A
  lockout that began after such a completed request is a new one, and texted again.
- **Digest.** With ``Client.lockout_alert_email``, a poll that opened events emails one
  list of them to that address (:mod:`.lockout_digest`, on the email queue).
- **Health.** ``LockoutWatch`` keeps when the last poll ended and how (``ok``,
  ``failing``, ``off``) with why in plain words: Entra ID without ``AuditLog.Read.All`` or
  a P1/P2 licence is ``off`` and tried again every :data:`OFF_RETRY`.

The SMS is sent at most once per event: a job that dies between recording an event and
its SMS leaves the notice "sending", and the next poll marks it "unknown" and audits it.

The parts: this module schedules, polls and keeps the watch's state;
:mod:`.lockout_events` opens, texts and closes events; :mod:`.lockout_digest` emails.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from directory_adapters import (
    CAPABILITIES,
    LOCKOUT_QUERY,
    DirectoryError,
    DirectoryUnavailable,
    OperationNotSupported,
    PermissionDenied,
)

from .. import queue
from ..actors import Actor, Permission
from ..context import Blink, StoredDirectory
from ..crypto import SecretBoxError
from ..db import insert_ignoring_conflicts
from ..models import (
    Client,
    LockoutEvent,
    LockoutWatch,
    User,
    client_queue,
    utcnow,
)
from . import scope
from .lockout_events import PollResult, WatchedClient, apply_lockouts

log = structlog.get_logger(__name__)

# A watch that is off (no permission or licence) is tried again this often, so that
# granting what it lacks turns it on by itself.
OFF_RETRY = timedelta(minutes=15)
# A poll queued longer than this (and two intervals) is asked after: lost ones are queued again.
STUCK_AFTER = timedelta(minutes=2)
_DETAIL_MAX = 300  # LockoutWatch.detail's length


def job_id(client_id: int) -> str:
    """The queue's id of a client's poll: one at a time, so a duplicate is recognised."""
    return f"lockout-poll-{client_id}"


def poll_interval(app: Blink, client_seconds: int | None) -> timedelta:
    return timedelta(seconds=client_seconds or app.settings.lockout_poll_seconds)


# --- the scheduler's task --------------------------------------------------------------------


def enqueue_due(app: Blink, *, now: datetime | None = None) -> int:
    """Enqueue one poll for each client whose poll is due; the number enqueued.

    Run by the scheduler every few seconds. Quick: one query, then a conditional UPDATE
    and an enqueue per due client. A poll still queued is not queued again, unless it has
    waited long and the queue no longer has it.
    """
    now = now or utcnow()
    with app.db.session() as session:
        rows = session.execute(
            select(
                Client.id,
                Client.slug,
                Client.lockout_poll_seconds,
                LockoutWatch.queued_at,
                LockoutWatch.polled_at,
                LockoutWatch.status,
            )
            .outerjoin(LockoutWatch, LockoutWatch.client_id == Client.id)
            .where(Client.lockout_watch.is_(True), Client.disabled_at.is_(None))
        ).all()
        session.commit()
    due: list[tuple[int, str, datetime | None]] = []
    waiting: dict[str, tuple[int, str, datetime | None]] = {}
    for client_id, slug, seconds, queued_at, polled_at, status in rows:
        every = poll_interval(app, seconds)
        if status == "off":
            every = max(every, OFF_RETRY)
        if queued_at is not None:
            if queued_at < now - max(STUCK_AFTER, 2 * every):
                waiting[job_id(client_id)] = (client_id, slug, queued_at)
        elif polled_at is None or polled_at + every <= now:
            due.append((client_id, slug, None))
    if waiting:
        try:
            lost = app.queue.missing(list(waiting))
        except Exception as err:  # Redis down: nothing can be enqueued anyway
            log.warning("queue unavailable; lockout polls wait", error=type(err).__name__)
            return 0
        due += [waiting[j] for j in sorted(lost)]
    enqueued = 0
    for client_id, slug, was in due:
        if not _mark_queued(app, client_id, was, now):
            continue  # another scheduler run queued it
        try:
            app.queue.enqueue(
                client_queue(slug), poll_lockouts, client_id, job_id=job_id(client_id), retry=False
            )
        except Exception as err:  # Redis down: unmark, the next run tries again
            log.warning("queue unavailable; lockout poll not queued", error=type(err).__name__)
            _unmark_queued(app, client_id)
            break
        enqueued += 1
    return enqueued


def _mark_queued(app: Blink, client_id: int, was: datetime | None, now: datetime) -> bool:
    """Set ``queued_at`` if it is still ``was``; False when another run got there first."""
    with app.db.session() as session:
        table = LockoutWatch.__table__
        inserted = session.execute(
            insert_ignoring_conflicts(session, table)
            .values(client_id=client_id, queued_at=now)
            .returning(table.c.client_id)
        ).first()
        if inserted is None:
            same = (
                LockoutWatch.queued_at.is_(None) if was is None else LockoutWatch.queued_at == was
            )
            result = session.execute(
                update(LockoutWatch)
                .where(LockoutWatch.client_id == client_id, same)
                .values(queued_at=now)
                .execution_options(synchronize_session=False)
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                session.rollback()
                return False
        session.commit()
    return True


def _unmark_queued(app: Blink, client_id: int) -> None:
    with app.db.session() as session:
        session.execute(
            update(LockoutWatch).where(LockoutWatch.client_id == client_id).values(queued_at=None)
        )
        session.commit()


# --- the poll ----------------------------------------------------------------------------------


def poll_lockouts(client_id: int) -> None:
    """Job: one lockout poll of a client (see :func:`poll`)."""
    from ..context import blink

    queue.start_job_logging()
    poll(blink(), client_id)


def poll(app: Blink, client_id: int, *, now: datetime | None = None) -> PollResult:
    """Ask the client's directory which accounts are locked, text the newly locked, close
    what ended and record how it went on ``LockoutWatch``. Safe to run twice."""
    structlog.contextvars.bind_contextvars(client_id=client_id)
    started = now or utcnow()
    client = _load(app, client_id)
    if client is None:
        _record(app, client_id, status=None)
        log.info("lockout poll skipped: client disabled, removed or watch off")
        return PollResult("skipped")
    if LOCKOUT_QUERY not in CAPABILITIES.get(client.directory.directory_kind, frozenset()):
        _record(app, client_id, status="off", detail="Off: this directory cannot report lockouts.")
        return PollResult("off")
    try:
        directory = app.directories.for_client(client.directory)
        lockouts = directory.lockouts(client.since)
    except SecretBoxError:
        detail = (
            "The directory settings cannot be read with this BLINK_SECRET_KEY: set the old key "
            "as BLINK_SECRET_KEY_PREVIOUS, or save the settings again."
        )
        _record(app, client_id, status="failing", detail=detail)
        log.error("lockout poll failed: directory settings unreadable")
        return PollResult("failing")
    except (PermissionDenied, OperationNotSupported) as err:
        _record(app, client_id, status="off", detail=_off_detail(err))
        log.warning("lockout watch off", reason=err.message)
        return PollResult("off")
    except DirectoryError as err:
        _record(app, client_id, status="failing", detail=_failing_detail(err))
        log.warning("lockout poll failed", error=type(err).__name__, reason=err.message)
        return PollResult("failing")
    result = apply_lockouts(app, client, lockouts, started)
    _record(app, client_id, status="ok", since=started)
    if result.detected or result.closed:  # a quiet poll (most of them) logs nothing
        log.info(
            "lockout poll done", locked=result.locked, detected=result.detected,
            texted=result.texted, closed=result.closed,
        )  # fmt: skip
    return result


def _load(app: Blink, client_id: int) -> WatchedClient | None:
    with app.db.session() as session:
        row = session.execute(
            select(Client, LockoutWatch.since)
            .outerjoin(LockoutWatch, LockoutWatch.client_id == Client.id)
            .where(Client.id == client_id)
        ).first()
        session.commit()
    if row is None:
        return None
    found, since = row
    if not found.lockout_watch or found.disabled_at is not None:
        return None
    return WatchedClient(
        id=found.id,
        directory=StoredDirectory(
            found.id, found.directory_kind, found.directory_settings_encrypted
        ),
        language=found.language,
        sender_number=found.sender_number,
        messaging_service_sid=found.messaging_service_sid,
        alert_email=found.lockout_alert_email,
        since=since,
    )


def _record(
    app: Blink,
    client_id: int,
    *,
    status: str | None,
    detail: str | None = None,
    since: datetime | None = None,
) -> None:
    """The poll ended: no longer queued; when and how (``status`` None: only that; the
    client may be gone)."""
    values: dict[str, Any] = {"queued_at": None}
    if status is not None:
        values.update(
            polled_at=utcnow(), status=status, detail=detail[:_DETAIL_MAX] if detail else None
        )
    if since is not None:
        values["since"] = since
    with app.db.session() as session:
        table = LockoutWatch.__table__
        inserted = None
        if status is not None:
            inserted = session.execute(
                insert_ignoring_conflicts(session, table)
                .values(client_id=client_id, **values)
                .returning(table.c.client_id)
            ).first()
        if inserted is None:
            session.execute(
                update(LockoutWatch).where(LockoutWatch.client_id == client_id).values(**values)
            )
        session.commit()


def _first_clause(message: str) -> str:
    """An adapter's message up to its technical detail in parentheses."""
    return message.split(" (", 1)[0].removeprefix("lockout watch off: ").strip()


def _off_detail(err: DirectoryError) -> str:
    if isinstance(err, PermissionDenied) and err.missing_right:
        return (
            f"Off: the directory refuses to report lockouts without {err.missing_right}. "
            "Grant it and the watch starts by itself within 15 minutes."
        )
    return (
        f"Off: {_first_clause(err.message)}. With it, the watch starts by itself within 15 minutes."
    )


def _failing_detail(err: DirectoryError) -> str:
    if isinstance(err, DirectoryUnavailable):
        wait = f" (it asked to wait {err.retry_after:.0f} s)" if err.retry_after else ""
        return f"The directory did not answer{wait}; the next poll tries again: {err.message}"
    return f"The directory refused the lockout query: {err.message}"


# --- reading -------------------------------------------------------------------------------


@dataclass(frozen=True)
class WatchState:
    """The watch of one client, as its health shows it."""

    status: str  # ok, failing, off, waiting
    detail: str | None
    polled_at: datetime | None
    open_lockouts: int


def watch_states(session: Session, clients: Sequence[Client]) -> dict[int, WatchState]:
    """The watch of each client, in two queries."""
    ids = [client.id for client in clients]
    if not ids:
        return {}
    rows = {
        row.client_id: row
        for row in session.execute(
            select(LockoutWatch).where(LockoutWatch.client_id.in_(ids))
        ).scalars()
    }
    counts: dict[int, int] = {}
    for client_id, count in session.execute(
        select(LockoutEvent.client_id, func.count())
        .where(LockoutEvent.client_id.in_(ids), LockoutEvent.ended_at.is_(None))
        .group_by(LockoutEvent.client_id)
    ):
        counts[client_id] = count
    states: dict[int, WatchState] = {}
    for client in clients:
        row = rows.get(client.id)
        polled_at = row.polled_at if row is not None else None
        count = counts.get(client.id, 0)
        if not client.lockout_watch:
            state = WatchState("off", "Turned off in the client's settings.", polled_at, count)
        elif client.disabled_at is not None:
            state = WatchState("off", "The client is disabled.", polled_at, count)
        elif row is None or row.status is None:
            state = WatchState("waiting", "No poll yet.", polled_at, count)
        else:
            state = WatchState(row.status, row.detail, polled_at, count)
        states[client.id] = state
    return states


@dataclass(frozen=True)
class OpenLockout:
    """An open lockout event, for a list."""

    event_id: int
    username: str
    display_name: str
    kind: str
    locked_at: datetime | None
    detected_at: datetime
    notice: str | None


def open_lockouts(session: Session, actor: Actor, client: Client) -> list[OpenLockout]:
    """The client's open lockout events, newest first (``NotFound`` for a client the
    actor may not see)."""
    actor.require(Permission.VIEW)
    if not actor.sees(client.id):
        raise scope.NotFound("client")
    rows = session.execute(
        select(LockoutEvent, User.username, User.display_name)
        .join(User, User.id == LockoutEvent.user_id)
        .where(LockoutEvent.client_id == client.id, LockoutEvent.ended_at.is_(None))
        .order_by(LockoutEvent.detected_at.desc(), LockoutEvent.id.desc())
    ).all()
    found = []
    for event, username, display_name in rows:
        kind, locked_at, notice = event.kind, event.locked_at, event.notice
        found.append(
            OpenLockout(
                event.id, username, display_name, kind, locked_at, event.detected_at, notice
            )
        )
    return found
