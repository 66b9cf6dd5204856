"""Password-expiry reminders: a text some days before a user's password expires.

A client turns them on with the days to remind on (``Client.expiry_reminder_days``,
e.g. "7,3,1"; none: off). The scheduler's ``expiry-reminders`` task
(:class:`DailyReminders`) runs hourly and, at most once per UTC day per client, puts one
:func:`remind_job` on the client's own queue, so an on-premises worker runs it. The job
asks the directory once (``password_expiries``: one paged query, never one per user)
whose password expires within the largest day plus one, and texts each enrolled user
(active, phone bound, not opted out) whose reminder is due, in their language, from the
client's number: "Your password for … expires in 3 days. Reply RESET for a new password."

Which reminder is due: with ``left`` the days until the expiry, rounded up, it is the
smallest configured day that is at least ``left``, unless it was sent already for that
expiry. So each day is sent once, a day that was missed (no worker that day) is made up
at the next run, one run sends a user at most one text, and a smaller day never comes
before a larger one. A new password has a new expiry, and its reminders start afresh.

Each reminder is an ``ExpiryReminder`` row (user, expiry, day), inserted before the text
is sent: the unique constraint decides between two jobs that race, and a restart or a
second run the same day finds the row and sends nothing. The queued-today mark lives in
Redis (or, without Redis, in the scheduler's memory, where a restart forgets it: the
rows still keep the texts from going twice).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import structlog
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from directory_adapters import CAPABILITIES, PASSWORD_EXPIRY, DirectoryError, PasswordExpiry

from .. import queue
from ..actors import Actor, Permission
from ..context import Blink, StoredDirectory
from ..db import insert_ignoring_conflicts
from ..messaging import texts
from ..messaging.i18n import format_wait, normalize_language, translate
from ..messaging.sms import SmsError
from ..models import (
    Client,
    ExpiryReminder,
    SmsThrottle,
    User,
    UserStatus,
    client_queue,
    utcnow,
)
from ..retries import RetryLater
from . import audit, scope, throttle
from .clients import reminder_days, require_enabled
from .errors import Conflict
from .outbound import deliver

log = structlog.get_logger(__name__)

DAY = timedelta(days=1)
PURPOSE = "expiry_reminder"  # OutboundMessage.purpose
EVENT = "password.expiry_reminded"
# At most one reminder a user in this window, whatever happens to their expiry.
THROTTLE_WINDOW = timedelta(hours=12)
# With Redis, the mark that today's job of a client is queued outlives the scheduler.
QUEUED_KEY = "blink:expiry-reminders:{client_id}:{day}"
QUEUED_TTL = 2 * 86_400


@dataclass(frozen=True)
class Due:
    """A reminder to send now: to whom, for which expiry, and for which configured day."""

    user_id: int
    username: str
    phone: str
    language: str
    expires_at: datetime
    days_before: int


@dataclass(frozen=True)
class _Client:
    """What a run needs of a client, read once (no session is open during the calls)."""

    id: int
    slug: str
    days: tuple[int, ...]
    language: str
    sender_number: str | None
    messaging_service_sid: str | None
    directory: StoredDirectory

    @classmethod
    def of(cls, client: Client) -> _Client:
        return cls(
            id=client.id,
            slug=client.slug,
            days=tuple(reminder_days(client)),
            language=client.language,
            sender_number=client.sender_number,
            messaging_service_sid=client.messaging_service_sid,
            directory=StoredDirectory(
                client.id, client.directory_kind, client.directory_settings_encrypted
            ),
        )

    @property
    def supported(self) -> bool:
        return PASSWORD_EXPIRY in CAPABILITIES.get(self.directory.directory_kind, frozenset())


@dataclass
class Run:
    """What one run of a client's reminders did."""

    expiring: int = 0  # passwords the directory says expire within the window
    sent: int = 0
    throttled: int = 0
    failed: int = 0
    retry: bool = False  # the directory or a text failed for now: try again


# --- the scheduler's task ----------------------------------------------------------------


class DailyReminders:
    """The scheduler's task: today's reminder job for each client that has none queued.

    Clients that are enabled, have reminders on and a directory that reports expiries;
    one job per client per UTC day, on the client's queue.
    """

    def __init__(self) -> None:
        self._queued: dict[int, date] = {}  # without Redis: client id -> day queued

    def __call__(self, app: Blink, *, now: datetime | None = None) -> int:
        """Enqueue what is due; how many jobs were queued."""
        today = (now or utcnow()).astimezone(UTC).date()
        with app.db.session() as session:
            clients = session.execute(
                select(Client.id, Client.slug, Client.directory_kind).where(
                    Client.disabled_at.is_(None),
                    Client.expiry_reminder_days.is_not(None),
                    Client.expiry_reminder_days != "",
                )
            ).all()
        queued = 0
        for client_id, slug, kind in clients:
            if PASSWORD_EXPIRY not in CAPABILITIES.get(kind, frozenset()):
                continue
            if not self._mark(app, client_id, today):
                continue
            try:
                app.queue.enqueue(
                    client_queue(slug), remind_job, client_id,
                    job_id=f"expiry-reminders-{client_id}-{today:%Y%m%d}",
                )  # fmt: skip
            except Exception:
                self._unmark(app, client_id, today)  # the next tick tries again
                raise
            queued += 1
        return queued

    def _mark(self, app: Blink, client_id: int, today: date) -> bool:
        """Mark today's job of a client as queued; False if it already was."""
        if app.redis is None:
            if self._queued.get(client_id) == today:
                return False
            self._queued[client_id] = today
            return True
        key = QUEUED_KEY.format(client_id=client_id, day=today.isoformat())
        return bool(app.redis.set(key, "1", nx=True, ex=QUEUED_TTL))

    def _unmark(self, app: Blink, client_id: int, today: date) -> None:
        if app.redis is None:
            self._queued.pop(client_id, None)
        else:
            app.redis.delete(QUEUED_KEY.format(client_id=client_id, day=today.isoformat()))


# --- the job ----------------------------------------------------------------------------


def remind_job(client_id: int) -> None:
    """Job: send a client's due reminders (see :func:`remind`); retried on the queue when
    the directory or Twilio fails for now."""
    from ..context import blink

    queue.start_job_logging()
    structlog.contextvars.bind_contextvars(client_id=client_id)
    run = remind(blink(), client_id)
    if run.retry:
        if queue.retries_left() > 0:
            raise RetryLater("expiry_reminders")
        log.error("expiry reminders left unsent after the last attempt")


def remind(app: Blink, client_id: int, *, now: datetime | None = None) -> Run:
    """Ask the client's directory once, then text each reminder that is due. Safe to run
    again: a reminder already sent is not sent twice."""
    now = now or utcnow()
    run = Run()
    with app.db.session() as session:
        row = session.get(Client, client_id)
        client = _Client.of(row) if row is not None and row.disabled_at is None else None
    if client is None or not client.days or not client.supported:
        return run
    try:
        expiries = _expiries(app, client, now)
    except DirectoryError as err:
        report = log.error if err.permanent else log.warning
        report("password expiries unreadable", client=client.slug, error=err.message)
        run.retry = not err.permanent
        return run
    run.expiring = len(expiries)
    with app.db.session() as session:
        due = _due(session, client, expiries, now)
    for reminder in due:
        _send(app, client, reminder, now, run)
    log.info("expiry reminders done", client=client.slug, expiring=run.expiring,
             sent=run.sent, throttled=run.throttled, failed=run.failed)  # fmt: skip
    return run


def preview(app: Blink, session: Session, actor: Actor, slug: str) -> list[Due]:
    """Who a run now would text, without sending anything (one directory query; its
    ``DirectoryError`` goes to the caller).

    ``NotFound`` for a client the actor may not see; ``Conflict`` when the client is
    disabled, has reminders off or a directory that reports no expiries."""
    actor.require(Permission.VIEW)
    row = scope.client(session, actor, slug)
    client = _Client.of(row)
    require_enabled(row)
    if not client.days:
        raise Conflict(
            f"password-expiry reminders are off for {slug}: turn them on with "
            f"'blink-sms clients edit {slug} --expiry-reminders 7,3,1'"
        )
    if not client.supported:
        raise Conflict(f"a {client.directory.directory_kind} directory reports no expiries")
    now = utcnow()
    return _due(session, client, _expiries(app, client, now), now)


def _expiries(app: Blink, client: _Client, now: datetime) -> list[PasswordExpiry]:
    """The one directory query: passwords expiring before the largest day plus one."""
    directory = app.directories.for_client(client.directory)
    return directory.password_expiries(now + DAY * (max(client.days) + 1))


def due_day(days: tuple[int, ...], expires_at: datetime, now: datetime) -> int | None:
    """The configured day a reminder for this expiry is due on now (see the module's
    docstring), or None: not yet, or already expired."""
    if expires_at <= now:
        return None
    left = math.ceil((expires_at - now) / DAY)
    return min((day for day in days if day >= left), default=None)


def _due(
    session: Session, client: _Client, expiries: list[PasswordExpiry], now: datetime
) -> list[Due]:
    """The reminders due now for the client's enrolled, reachable users, less those sent."""
    wanted: dict[str, tuple[datetime, int]] = {}
    for expiry in expiries:
        # To the second: the same expiry read twice (Graph gives seconds) is one expiry.
        expires_at = expiry.expires_at.astimezone(UTC).replace(microsecond=0)
        day = due_day(client.days, expires_at, now)
        if day is not None and not expiry.user.disabled and not expiry.user.protected:
            wanted[expiry.user.id] = (expires_at, day)
    if not wanted:
        return []
    users = session.execute(
        select(User.id, User.directory_id, User.username, User.phone, User.language).where(
            User.client_id == client.id,
            User.status == UserStatus.ACTIVE,
            User.phone.is_not(None),
            User.sms_opted_out.is_(False),
        )
    ).all()
    sent = {
        (user_id, expires_at, day)
        for user_id, expires_at, day in session.execute(
            select(ExpiryReminder.user_id, ExpiryReminder.expires_at, ExpiryReminder.days_before)
            .join(User, User.id == ExpiryReminder.user_id)
            .where(User.client_id == client.id, ExpiryReminder.expires_at > now)
        )
    }
    due: list[Due] = []
    for user_id, directory_id, username, phone, language in users:
        if directory_id not in wanted or phone is None:
            continue
        expires_at, day = wanted[directory_id]
        if (user_id, expires_at, day) in sent:
            continue
        due.append(
            Due(
                user_id=user_id,
                username=username,
                phone=phone,
                language=normalize_language(language or client.language),
                expires_at=expires_at,
                days_before=day,
            )
        )
    return sorted(due, key=lambda reminder: (reminder.expires_at, reminder.username.casefold()))


def _send(app: Blink, client: _Client, reminder: Due, now: datetime, run: Run) -> None:
    """Claim the reminder (its row), then text it; the row goes again if the text could
    not leave for now, so that the next run tries again."""
    with app.db.session() as session:
        user = session.get(User, reminder.user_id)
        if (
            user is None
            or user.status is not UserStatus.ACTIVE
            or user.phone is None
            or user.sms_opted_out
        ):
            return  # changed since the query: unenrolled or opted out
        claimed = session.execute(
            insert_ignoring_conflicts(session, ExpiryReminder.__table__).values(
                user_id=user.id,
                expires_at=reminder.expires_at,
                days_before=reminder.days_before,
                sent_at=now,
            )
        )
        if not claimed.rowcount:  # type: ignore[attr-defined]  # a CursorResult
            session.rollback()
            return  # another run sent it
        throttle_key = f"expiry:{user.id}"
        if not throttle.allow(session, throttle_key, limit=1, window=THROTTLE_WINDOW, now=now):
            session.rollback()
            run.throttled += 1
            log.info("expiry reminder throttled", user_id=user.id)
            return
        body = translate(
            reminder.language,
            texts.EXPIRY_REMINDER,
            username=user.username,
            when=format_wait((reminder.expires_at - now).total_seconds(), reminder.language),
        )

        def audited(session: Session, sid: str) -> None:
            audit.record(
                session,
                EVENT,
                actor="system",
                client_id=client.id,
                user_id=reminder.user_id,
                expires_at=reminder.expires_at.isoformat(),
                days_before=reminder.days_before,
            )

        try:
            deliver(
                app, session, to=user.phone, client=client, body=body, purpose=PURPOSE,
                user_id=user.id, then=audited,
            )  # fmt: skip
        except SmsError as err:
            run.failed += 1
            log.warning("expiry reminder not sent", user_id=user.id, error=err.message,
                        permanent=err.permanent)  # fmt: skip
            if not err.permanent:
                # Nothing left: the claim and the throttle's count are given back.
                run.retry = True
                session.execute(
                    delete(ExpiryReminder).where(
                        ExpiryReminder.user_id == user.id,
                        ExpiryReminder.expires_at == reminder.expires_at,
                        ExpiryReminder.days_before == reminder.days_before,
                    )
                )
                session.execute(
                    update(SmsThrottle)
                    .where(SmsThrottle.key == throttle_key, SmsThrottle.count > 0)
                    .values(count=SmsThrottle.count - 1)
                )
                session.commit()
            return
    run.sent += 1
