"""Numbers for the dashboards: resets per day, the enrollment funnel, failures by cause,
and who is locked out now.

Each report is one grouped query over ``reset_requests`` or ``users`` (never a query
per day or per user), for one client or for every client the actor may see (through
:mod:`blink_sms.services.scope`). Days are UTC days: the gateway keeps no time zone
per client. A day without resets is in the list, with zeros.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, String, func, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from directory_adapters import CAPABILITIES, LOCKOUT_QUERY, DirectoryError

from ..actors import Actor, Permission
from ..context import Blink
from ..crypto import SecretBoxError
from ..models import Client, RequestStatus, ResetRequest, User, UserStatus, utcnow
from . import scope

DAYS = 30

# Error codes of failed requests in plain words. Codes come from the directory error's
# class (``reset_job.error_code_of``), from Twilio (``sms_<code>``) or from the job.
CAUSES: dict[str, str] = {
    "directory_unavailable": "directory did not answer",
    "configuration_error": "directory settings are wrong",
    "permission_denied": "service account lacks a right",
    "password_rejected": "password policy refused the password",
    "operation_refused": "account is protected or disabled",
    "operation_not_supported": "directory cannot do this",
    "user_not_found": "user no longer in the directory",
    "directory_error": "directory error",
    "secret_key_mismatch": "stored settings cannot be decrypted (secret key changed)",
    "client_disabled": "client is disabled",
    "unlock_not_supported": "directory cannot unlock (reset instead)",
    "stale": "stuck, given up",
    "sms_failed": "text message not sent",
    "sms_21211": "text not sent: invalid phone number",
    "sms_21408": "text not sent: country not enabled",
    "sms_21610": "text not sent: user replied STOP",
    "sms_21612": "text not sent: number cannot receive texts",
    "sms_21614": "text not sent: not a mobile number",
    "sms_30003": "text not delivered: phone unreachable",
    "sms_30005": "text not delivered: unknown number",
    "sms_30006": "text not delivered: landline or unreachable carrier",
    "sms_30007": "text not delivered: blocked as spam",
    "unknown": "unknown cause",
}


def cause_words(code: str) -> str:
    """A failure's error code in plain words (an unknown one stays readable)."""
    if code in CAUSES:
        return CAUSES[code]
    if code.startswith("sms_") and code[4:].isdigit():
        return f"text not sent: Twilio error {code[4:]}"
    return code.replace("_", " ")


class utc_day(FunctionElement[str]):  # noqa: N801 -- a SQL function reads as one
    """The UTC calendar day of a timestamp column, as text ``YYYY-MM-DD`` on every database."""

    type = String()
    inherit_cache = True


@compiles(utc_day)
def _utc_day_sqlite(element: utc_day, compiler: SQLCompiler, **kw: Any) -> str:
    # SQLite holds the UTC timestamp as ISO text; date() reads its day.
    return f"date({compiler.process(element.clauses, **kw)})"


@compiles(utc_day, "postgresql")
def _utc_day_postgresql(element: utc_day, compiler: SQLCompiler, **kw: Any) -> str:
    # The session's time zone may be anything: take the day in UTC explicitly.
    column = compiler.process(element.clauses, **kw)
    return f"to_char(({column}) AT TIME ZONE 'UTC', 'YYYY-MM-DD')"


@dataclass(frozen=True)
class DayCount:
    day: date
    done: int = 0
    failed: int = 0

    @property
    def total(self) -> int:
        return self.done + self.failed


@dataclass(frozen=True)
class Funnel:
    """Users by how far they got. Disabled users are counted apart, not in the stages."""

    imported: int  # every user not disabled: pending, invited or active
    invited: int  # sent an activation email: invited or active
    active: int  # phone bound
    disabled: int


@dataclass(frozen=True)
class CauseCount:
    code: str
    count: int

    @property
    def words(self) -> str:
        return cause_words(self.code)


@dataclass(frozen=True)
class LockedUser:
    username: str
    display_name: str
    user_id: int | None  # None: not a user of the gateway (not imported)
    status: str | None  # the gateway user's status


@dataclass
class LockedNow:
    """Who the directory says is locked out now; ``error`` when it could not be asked."""

    users: list[LockedUser] = field(default_factory=list)
    supported: bool = True  # the directory can list lockouts at all
    error: str | None = None


@dataclass(frozen=True)
class Dashboard:
    days: list[DayCount]
    funnel: Funnel
    causes: list[CauseCount]

    @property
    def first_day(self) -> date:
        return self.days[0].day

    @property
    def last_day(self) -> date:
        return self.days[-1].day


def _of_clients(actor: Actor, client: Client | None) -> ColumnElement[bool]:
    """Rows of ``client`` (which the actor must see), or of every client the actor sees."""
    actor.require(Permission.VIEW)
    if client is not None:
        if not actor.sees(client.id):
            raise scope.NotFound("client")
        return User.client_id == client.id
    return User.client_id.in_(scope.clients(actor).with_only_columns(Client.id))


def _first_day(now: datetime, days: int) -> date:
    """The first UTC day of the ``days`` days that end today."""
    return now.astimezone(UTC).date() - timedelta(days=days - 1)


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def resets_per_day(
    session: Session,
    actor: Actor,
    *,
    client: Client | None = None,
    days: int = DAYS,
    now: datetime | None = None,
) -> list[DayCount]:
    """Finished resets and unlocks per UTC day, done and failed, for the last ``days``
    days up to today (oldest first, every day present)."""
    where = _of_clients(actor, client)
    now = now or utcnow()
    first = _first_day(now, days)
    day = utc_day(ResetRequest.created_at)
    counts: dict[tuple[str, RequestStatus], int] = {
        (str(found_day), status): count
        for found_day, status, count in session.execute(
            select(day, ResetRequest.status, func.count())
            .join(User, User.id == ResetRequest.user_id)
            .where(
                where,
                ResetRequest.created_at >= _midnight(first),
                ResetRequest.status.in_([RequestStatus.DONE, RequestStatus.FAILED]),
            )
            .group_by(day, ResetRequest.status)
        )
    }
    series = []
    for offset in range(days):
        current = first + timedelta(days=offset)
        key = current.isoformat()
        series.append(
            DayCount(
                current,
                done=counts.get((key, RequestStatus.DONE), 0),
                failed=counts.get((key, RequestStatus.FAILED), 0),
            )
        )
    return series


def funnel(session: Session, actor: Actor, *, client: Client | None = None) -> Funnel:
    """How many users were imported, invited and are active now (one grouped query)."""
    where = _of_clients(actor, client)
    query = select(User.status, func.count()).where(where).group_by(User.status)
    by_status: dict[UserStatus, int] = {}
    for status, count in session.execute(query):
        by_status[status] = count
    active = by_status.get(UserStatus.ACTIVE, 0)
    invited = by_status.get(UserStatus.INVITED, 0) + active
    return Funnel(
        imported=invited + by_status.get(UserStatus.PENDING, 0),
        invited=invited,
        active=active,
        disabled=by_status.get(UserStatus.DISABLED, 0),
    )


def failures_by_cause(
    session: Session,
    actor: Actor,
    *,
    client: Client | None = None,
    days: int = DAYS,
    now: datetime | None = None,
) -> list[CauseCount]:
    """Failed resets and unlocks of the last ``days`` UTC days by error code, most first."""
    where = _of_clients(actor, client)
    now = now or utcnow()
    first = _midnight(_first_day(now, days))
    code = func.coalesce(ResetRequest.error_code, "unknown")
    rows = session.execute(
        select(code, func.count())
        .join(User, User.id == ResetRequest.user_id)
        .where(
            where,
            ResetRequest.created_at >= first,
            ResetRequest.status == RequestStatus.FAILED,
        )
        .group_by(code)
    ).all()
    return sorted(
        (CauseCount(str(found), count) for found, count in rows),
        key=lambda cause: (-cause.count, cause.code),
    )


def dashboard(
    session: Session,
    actor: Actor,
    *,
    client: Client | None = None,
    days: int = DAYS,
    now: datetime | None = None,
) -> Dashboard:
    """The three charts of a dashboard, for one client or every client the actor sees."""
    now = now or utcnow()
    return Dashboard(
        days=resets_per_day(session, actor, client=client, days=days, now=now),
        funnel=funnel(session, actor, client=client),
        causes=failures_by_cause(session, actor, client=client, days=days, now=now),
    )


def locked_now(app: Blink, session: Session, actor: Actor, client: Client) -> LockedNow:
    """Who is locked out in ``client``'s directory now: one query to the directory, one
    to match its answer to the gateway's users. A directory that cannot be asked gives
    ``error`` in plain words (the page still renders)."""
    _of_clients(actor, client)
    if client.disabled_at is not None:
        return LockedNow(error="the client is disabled, so nothing reaches its directory")
    if LOCKOUT_QUERY not in CAPABILITIES.get(client.directory_kind, frozenset()):
        return LockedNow(supported=False)
    try:
        entries = app.directories.for_client(client).locked_out_users()
    except DirectoryError as err:
        from .reset_job import error_code_of

        return LockedNow(error=cause_words(error_code_of(err)))
    except SecretBoxError:
        return LockedNow(error=cause_words("secret_key_mismatch"))
    ids = [entry.id for entry in entries]
    known = (
        {
            user.directory_id: user
            for user in session.execute(
                scope.users(actor).where(User.client_id == client.id, User.directory_id.in_(ids))
            ).scalars()
        }
        if ids
        else {}
    )
    users = []
    for entry in entries:
        user = known.get(entry.id)
        users.append(
            LockedUser(
                username=entry.username,
                display_name=entry.display_name,
                user_id=user.id if user else None,
                status=user.status.value if user else None,
            )
        )
    return LockedNow(users=users)
