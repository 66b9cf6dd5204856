"""The monthly client report: what the gateway did for one client in one UTC month.

Resets (self-service and admin), unlocks, the median time from a text to the password,
failures by cause, users imported and enrolled, and the SMS sent with what Twilio said
they cost. The MSP bills its clients from it, so every number is defined here once:

- a request belongs to the month it was *made* in (``created_at``); only finished ones
  count: "done" as a reset or unlock, "failed" as a failure (by its error code);
- self-service: texted by the user (origin ``sms``, or ``lockout``: a reply to a lockout
  notice); admin: pushed from the console, the CLI or the API (origin ``admin``);
- median time to password: ``finished_at - created_at`` of the month's done self-service
  resets (the job finishes when Twilio accepts the text with the password);
- users imported: the client's users created before the month ended; enrolled: those of
  them active now; enrolled this month: ``enrollment.phone_bound`` events in the month;
- SMS sent: texts to the client's users that Twilio accepted (they have a message id),
  by purpose; cost: the sum of the prices Twilio reported in status callbacks, per
  currency (Twilio reports a charge as a negative amount; the report shows it positive).

A handful of grouped queries whatever the month's size, never one per day or per user.
Months are UTC months, like the dashboards' days.
"""

from __future__ import annotations

import csv
import io
import re
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from ..actors import Actor, Permission
from ..models import (
    AuditEvent,
    Client,
    OutboundMessage,
    RequestKind,
    RequestOrigin,
    RequestStatus,
    ResetRequest,
    User,
    UserStatus,
    utcnow,
)
from .errors import Invalid, NotFound
from .reports import CauseCount, utc_day

SELF_SERVICE = (RequestOrigin.SMS, RequestOrigin.LOCKOUT)
PHONE_BOUND = "enrollment.phone_bound"

# What each kind of text is for, in plain words (``OutboundMessage.purpose``).
PURPOSES: dict[str, str] = {
    "otp": "one-time passwords",
    "unlocked": "unlock confirmations",
    "apology": "could not reset: apologies",
    "unlock_not_supported": "cannot unlock: reset instead",
    "disabled": "service disabled notices",
    "verification": "enrollment codes",
    "welcome": "welcome texts",
    "lockout_notice": "lockout notices",
    "expiry_reminder": "password-expiry reminders",
    "phone_changed": "notices to a replaced number",
}

_MONTH = re.compile(r"(\d{4})-(\d{2})")


def purpose_words(purpose: str) -> str:
    return PURPOSES.get(purpose, purpose.replace("_", " "))


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def first_of(day: date) -> date:
    return day.replace(day=1)


def next_month(month: date) -> date:
    return (month.replace(day=28) + timedelta(days=4)).replace(day=1)


def previous_month(month: date) -> date:
    return (month.replace(day=1) - timedelta(days=1)).replace(day=1)


def current_month(now: datetime | None = None) -> date:
    return first_of((now or utcnow()).date())


def last_month(now: datetime | None = None) -> date:
    """The month before this one (UTC): the default report, the last complete month."""
    return previous_month(current_month(now))


def month_of(text: str, *, now: datetime | None = None) -> date:
    """The first day of the month ``YYYY-MM`` names; ``Invalid("month")`` for anything
    else, and for a month that has not begun (this month, so far, is allowed)."""
    found = _MONTH.fullmatch(text.strip())
    if found is None:
        raise Invalid("month", "a month like 2025-01")
    try:
        month = date(int(found.group(1)), int(found.group(2)), 1)
    except ValueError:
        raise Invalid("month", "a month like 2025-01") from None
    _not_future(month, now)
    return month


def _not_future(month: date, now: datetime | None) -> None:
    if month > current_month(now):
        raise Invalid("month", f"{month:%Y-%m} has not begun yet")


@dataclass(frozen=True)
class MonthDay:
    """One UTC day of the month: done resets, done unlocks and failures (of both)."""

    day: date
    resets: int = 0
    unlocks: int = 0
    failures: int = 0


@dataclass(frozen=True)
class Cost:
    """What the month's texts cost in one currency (a positive amount)."""

    unit: str
    amount: Decimal


@dataclass(frozen=True)
class MonthlyReport:
    client: str  # the client's slug
    month: date  # its first day
    resets_self_service: int
    resets_admin: int
    unlocks: int
    median_seconds_to_password: float | None  # None: no self-service reset was done
    failures: tuple[CauseCount, ...]  # most first
    users_imported: int
    users_enrolled: int
    enrolled_this_month: int
    sms_by_purpose: dict[str, int]  # by purpose name, sorted
    cost: tuple[Cost, ...]  # by currency
    days: tuple[MonthDay, ...]  # every day of the month, in order

    @property
    def resets(self) -> int:
        return self.resets_self_service + self.resets_admin

    @property
    def failed(self) -> int:
        return sum(cause.count for cause in self.failures)

    @property
    def sms_sent(self) -> int:
        return sum(self.sms_by_purpose.values())

    @property
    def label(self) -> str:
        return f"{self.month:%Y-%m}"

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON-able data (the REST API's and ``--json``'s shape)."""
        return {
            "client": self.client,
            "month": self.label,
            "resets": {
                "self_service": self.resets_self_service,
                "admin": self.resets_admin,
                "total": self.resets,
            },
            "unlocks": self.unlocks,
            "median_seconds_to_password": self.median_seconds_to_password,
            "failures": [
                {"cause": cause.code, "words": cause.words, "count": cause.count}
                for cause in self.failures
            ],
            "users": {
                "imported": self.users_imported,
                "enrolled": self.users_enrolled,
                "enrolled_this_month": self.enrolled_this_month,
            },
            "sms": {
                "sent": self.sms_sent,
                "by_purpose": dict(self.sms_by_purpose),
                "cost": [{"unit": cost.unit, "amount": str(cost.amount)} for cost in self.cost],
            },
            "days": [
                {
                    "day": day.day.isoformat(),
                    "resets": day.resets,
                    "unlocks": day.unlocks,
                    "failures": day.failures,
                }
                for day in self.days
            ],
        }


def report(session: Session, actor: Actor, client: Client, month: date) -> MonthlyReport:
    """The report of ``client`` (already looked up for ``actor``) for ``month``'s UTC month."""
    actor.require(Permission.VIEW)
    if not actor.sees(client.id):
        raise NotFound("client")
    month = first_of(month)
    _not_future(month, None)
    start, end = _midnight(month), _midnight(next_month(month))
    requests = _requests(session, client, start, end)
    users_imported, users_enrolled = _users(session, client, end)
    by_purpose, cost = _sms(session, client, start, end)
    return MonthlyReport(
        client=client.slug,
        month=month,
        resets_self_service=requests.self_service,
        resets_admin=requests.admin,
        unlocks=requests.unlocks,
        median_seconds_to_password=_median_seconds(session, client, start, end),
        failures=tuple(
            sorted(
                (CauseCount(code, count) for code, count in requests.causes.items()),
                key=lambda cause: (-cause.count, cause.code),
            )
        ),
        users_imported=users_imported,
        users_enrolled=users_enrolled,
        enrolled_this_month=_enrolled(session, client, start, end),
        sms_by_purpose=by_purpose,
        cost=cost,
        days=requests.days(month),
    )


@dataclass
class _Requests:
    """The month's finished requests, counted (see :func:`_requests`)."""

    self_service: int = 0
    admin: int = 0
    unlocks: int = 0
    causes: Counter[str] = field(default_factory=Counter)
    by_day: defaultdict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))

    def days(self, month: date) -> tuple[MonthDay, ...]:
        """Every day of ``month`` in order, days without requests included (zeros)."""
        series = []
        day = month
        while day.month == month.month:
            counts = self.by_day.get(day.isoformat(), Counter())
            series.append(MonthDay(day, counts["resets"], counts["unlocks"], counts["failures"]))
            day += timedelta(days=1)
        return tuple(series)


def _requests(session: Session, client: Client, start: datetime, end: datetime) -> _Requests:
    """The month's finished requests, one grouped query: by day, kind, origin, outcome."""
    day = utc_day(ResetRequest.created_at)
    code = func.coalesce(ResetRequest.error_code, "unknown")
    rows = session.execute(
        select(day, ResetRequest.kind, ResetRequest.origin, ResetRequest.status, code, func.count())
        .join(User, User.id == ResetRequest.user_id)
        .where(
            User.client_id == client.id,
            ResetRequest.created_at >= start,
            ResetRequest.created_at < end,
            ResetRequest.status.in_([RequestStatus.DONE, RequestStatus.FAILED]),
        )
        .group_by(day, ResetRequest.kind, ResetRequest.origin, ResetRequest.status, code)
    )
    found = _Requests()
    for on, kind, origin, status, error_code, count in rows:
        today = found.by_day[str(on)]
        if status is RequestStatus.FAILED:
            found.causes[str(error_code)] += count
            today["failures"] += count
        elif kind is RequestKind.UNLOCK:
            found.unlocks += count
            today["unlocks"] += count
        else:
            if origin is RequestOrigin.ADMIN:
                found.admin += count
            else:
                found.self_service += count
            today["resets"] += count
    return found


def _median_seconds(
    session: Session, client: Client, start: datetime, end: datetime
) -> float | None:
    """The median of the month's done self-service resets' durations (one query; the
    median is taken here: a month holds thousands of resets at most)."""
    rows = session.execute(
        select(ResetRequest.created_at, ResetRequest.finished_at)
        .join(User, User.id == ResetRequest.user_id)
        .where(
            User.client_id == client.id,
            ResetRequest.created_at >= start,
            ResetRequest.created_at < end,
            ResetRequest.status == RequestStatus.DONE,
            ResetRequest.kind == RequestKind.RESET,
            ResetRequest.origin.in_(SELF_SERVICE),
            ResetRequest.finished_at.is_not(None),
        )
    ).all()
    durations = [(finished - created).total_seconds() for created, finished in rows if finished]
    return round(statistics.median(durations), 1) if durations else None


def _users(session: Session, client: Client, end: datetime) -> tuple[int, int]:
    """The client's users created before ``end``, and how many of them are active now."""
    active = func.count().filter(User.status == UserStatus.ACTIVE)
    imported, enrolled = session.execute(
        select(func.count(), active).where(User.client_id == client.id, User.created_at < end)
    ).one()
    return int(imported), int(enrolled)


def _enrolled(session: Session, client: Client, start: datetime, end: datetime) -> int:
    return int(
        session.execute(
            select(func.count()).where(
                AuditEvent.client_id == client.id,
                AuditEvent.action == PHONE_BOUND,
                AuditEvent.at >= start,
                AuditEvent.at < end,
            )
        ).scalar_one()
    )


def _sms(
    session: Session, client: Client, start: datetime, end: datetime
) -> tuple[dict[str, int], tuple[Cost, ...]]:
    """Texts Twilio accepted, by purpose, and their cost per currency: one grouped query
    (prices are text, as Twilio sends them, so they are summed here as decimals)."""
    rows = session.execute(
        select(
            OutboundMessage.purpose,
            OutboundMessage.price_unit,
            OutboundMessage.price,
            func.count(),
        )
        .join(User, and_(User.id == OutboundMessage.user_id, User.client_id == client.id))
        .where(
            OutboundMessage.sid.is_not(None),
            OutboundMessage.created_at >= start,
            OutboundMessage.created_at < end,
        )
        .group_by(OutboundMessage.purpose, OutboundMessage.price_unit, OutboundMessage.price)
    )
    by_purpose: Counter[str] = Counter()
    cost: dict[str, Decimal] = defaultdict(Decimal)
    for purpose, unit, price, count in rows:
        by_purpose[purpose] += count
        if price is not None and unit:
            cost[unit] += abs(Decimal(price)) * count
    return (
        dict(sorted(by_purpose.items())),
        tuple(Cost(unit, amount) for unit, amount in sorted(cost.items())),
    )


CSV_HEADER = ("metric", "item", "value", "description")


def csv_rows(found: MonthlyReport) -> Iterator[tuple[str, str, str, str]]:
    """The report as (metric, item, value, description) rows: one table, easy to pivot."""
    median = found.median_seconds_to_password
    yield "client", "", found.client, ""
    yield "month", "", found.label, "UTC"
    yield "resets", "self_service", str(found.resets_self_service), "texted by the user"
    yield "resets", "admin", str(found.resets_admin), "pushed by an admin"
    yield "resets", "total", str(found.resets), ""
    yield "unlocks", "", str(found.unlocks), ""
    yield "median_seconds_to_password", "", "" if median is None else str(median), ""
    for cause in found.failures:
        yield "failures", cause.code, str(cause.count), cause.words
    yield "users", "imported", str(found.users_imported), "users at the month's end"
    yield "users", "enrolled", str(found.users_enrolled), "of them, active now"
    yield "users", "enrolled_this_month", str(found.enrolled_this_month), "phones bound"
    yield "sms_sent", "total", str(found.sms_sent), ""
    for purpose, count in found.sms_by_purpose.items():
        yield "sms_sent", purpose, str(count), purpose_words(purpose)
    for cost in found.cost:
        yield "sms_cost", cost.unit, str(cost.amount), "as reported by Twilio"
    for day in found.days:
        on = day.day.isoformat()
        yield "day_resets", on, str(day.resets), ""
        yield "day_unlocks", on, str(day.unlocks), ""
        yield "day_failures", on, str(day.failures), ""


def csv_lines(found: MonthlyReport) -> Iterator[str]:
    """The report as CSV text, a line at a time, the header first."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for row in (CSV_HEADER, *csv_rows(found)):
        writer.writerow(row)
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
