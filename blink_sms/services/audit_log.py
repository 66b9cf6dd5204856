"""Reading the audit trail: filtered, newest first, a page at a time, scoped to the actor.

The console's audit pages, its CSV and JSON-lines exports and the command line read through
:func:`query_events` (one page) or :func:`iter_events` (every matching event, in pages).
Rows come from :func:`blink_sms.services.scope.events`, so a client admin or a client
auditor sees only their client's events, and only MSP-wide actors see the events that
belong to no client. Paging is by keyset (``before_id``, the last id of the page
before), so a page stays right while new events arrive.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from itertools import chain
from typing import Any

from sqlalchemy import ColumnElement, or_
from sqlalchemy.orm import Session

from ..actors import Actor, Permission
from ..models import AuditEvent, Client, User
from . import scope
from .errors import Invalid

PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000

# Every action the services record, in words, by topic (the filter's select groups them
# so). An action missing here still shows, as its name in words (see ``action_words``).
ACTION_GROUPS: dict[str, dict[str, str]] = {
    "Resets and unlocks": {
        "reset.requested": "password reset asked for",
        "reset.completed": "password reset done",
        "reset.failed": "password reset failed",
        "reset.rate_limited": "password reset refused: too many",
        "unlock.requested": "unlock asked for",
        "unlock.completed": "account unlocked",
        "unlock.failed": "unlock failed",
        "request.requeued": "request queued again (its worker was gone)",
        "notice.reset_sent": "user emailed: password reset",
        "notice.reset_failed": "email to the user about a reset failed",
        "notice.unlock_sent": "user emailed: account unlocked",
        "notice.unlock_failed": "email to the user about an unlock failed",
        "sms.opted_out": "user stopped texts (STOP)",
        "sms.opted_in": "user allowed texts again (START)",
    },
    "Users": {
        "user.imported": "user imported",
        "user.updated": "user updated from the directory",
        "user.email_changed": "user's email changed",
        "user.disabled": "user disabled",
        "user.enabled": "user enabled",
        "user.removed": "user removed",
        "user.phone_unbound": "user's phone unbound (Reset User)",
        "users.import_run": "users imported (a group, an OU or everyone)",
        "password.set_by_admin": "password set by an admin (shown once)",
        "user.exported": "user's personal data exported (GDPR)",
        "user.erased": "user's personal data erased (GDPR)",
    },
    "Activation": {
        "invitation.created": "activation email queued",
        "invitation.email_sent": "activation email sent",
        "invitation.email_failed": "activation email failed",
        "invitation.revoked": "activation link withdrawn",
        "enrollment.number_refused": "mobile number refused",
        "enrollment.code_sent": "verification code texted",
        "enrollment.code_not_sent": "verification code could not be texted",
        "enrollment.code_rate_limited": "verification code refused: too many",
        "enrollment.code_expired": "verification code expired",
        "enrollment.code_rejected": "wrong verification code",
        "enrollment.locked": "activation locked: too many wrong codes",
        "enrollment.phone_bound": "phone bound: user active",
        "enrollment.approval_requested": "phone confirmed: binding waits for approval",
        "enrollment.binding_approved": "phone binding approved by an admin",
        "enrollment.binding_rejected": "phone binding rejected by an admin",
        "enrollment.breaker_tripped": "all verification codes stopped: too many a minute",
        "notice.phone_bound_sent": "welcome notice sent",
        "notice.phone_changed_sent": "old phone texted: the number was changed",
        "notice.phone_changed_not_sent": "old phone not texted about the change",
    },
    "Clients": {
        "client.created": "client added",
        "client.updated": "client settings changed",
        "client.directory_changed": "client directory changed",
        "client.branding_changed": "client branding changed",
        "client.disabled": "client disabled",
        "client.enabled": "client enabled",
        "client.removed": "client removed",
        "client.secrets_reencrypted": "client secrets re-encrypted",
        "webhook.secrets_reencrypted": "webhook signing secret re-encrypted (new secret key)",
        "client.mail_changed": "client mail server changed",
        "client.mail_tested": "client test email sent",
    },
    "MSP": {
        "msp.branding_changed": "MSP branding changed",
        "msp.settings_changed": "MSP settings changed",
        "audit.pruned": "old audit events deleted (retention)",
        "retention.pruned": "old requests, texts and activation links deleted (retention)",
    },
    "Admins": {
        "admin.created": "admin account created",
        "admin.setup_link_issued": "admin set-up link issued",
        "admin.setup_completed": "admin account set up",
        "admin.invitation_email_sent": "admin invitation sent",
        "admin.invitation_email_failed": "admin invitation failed",
        "admin.signed_in": "admin signed in",
        "admin.sign_in_failed": "admin sign-in failed",
        "admin.signed_out_everywhere": "admin signed out everywhere",
        "admin.role_changed": "admin role changed",
        "admin.disabled": "admin disabled",
        "admin.enabled": "admin enabled",
        "admin.removed": "admin removed",
        "admin.totp_enrolled": "admin set up an authenticator app",
        "admin.second_factor_verified": "admin passed the second factor",
        "admin.second_factor_failed": "admin failed the second factor",
        "admin.recovery_codes_generated": "admin recovery codes made",
        "admin.passkey_registered": "admin passkey added",
        "admin.passkey_removed": "admin passkey removed",
        "admin.second_factors_reset": "admin second factors reset",
        "admin.secrets_reencrypted": "admin's authenticator secret re-encrypted (new secret key)",
    },
}
ACTIONS: dict[str, str] = {
    action: words for group in ACTION_GROUPS.values() for action, words in group.items()
}
# Actions that record something going wrong, beyond those whose name ends in "failed".
PROBLEMS = frozenset(
    {
        "reset.rate_limited",
        "enrollment.number_refused",
        "enrollment.code_not_sent",
        "enrollment.code_rate_limited",
        "enrollment.code_expired",
        "enrollment.code_rejected",
        "enrollment.locked",
        "request.requeued",
        "notice.phone_changed_not_sent",
    }
)
OUTCOMES = {"problem": "went wrong", "ok": "went right"}
# An action name as the services write it; a filter may also name a topic ("reset.*").
ACTION_NAME = re.compile(r"[a-z_]{1,32}(\.[a-z_]{1,32}|\.\*)")
# What the "client" filter takes for the events that belong to no client.
NO_CLIENT = "-"


def action_words(action: str) -> str:
    """An action in plain words (an unknown one: its name, dots and underscores as spaces)."""
    return ACTIONS.get(action) or action.replace(".", ": ", 1).replace("_", " ")


def actor_words(label: str) -> str:
    """Who acted, in words: an admin's email, "the user, by text", "the system", ..."""
    kind, _, rest = label.partition(":")
    if kind == "admin" and rest.count(":") >= 1:
        return rest.split(":", 1)[1] or label
    return {
        "sms": "the user, by text",
        "enrollment": "the user, activating",
        "system": "the system",
        "cli": "the command line",
        "anonymous": "someone not signed in",
    }.get(kind, label)


def is_problem(action: str) -> bool:
    return action in PROBLEMS or action.endswith("failed")


@dataclass(frozen=True)
class EventRow:
    """One audit event with the names it refers to (ids only where the object is gone)."""

    id: int
    at: datetime
    actor: str
    action: str
    client_id: int | None
    client_slug: str | None
    client_name: str | None
    user_id: int | None
    username: str | None
    request_id: int | None
    detail: dict[str, Any]

    @property
    def words(self) -> str:
        return action_words(self.action)

    @property
    def who(self) -> str:
        return actor_words(self.actor)

    @property
    def problem(self) -> bool:
        return is_problem(self.action)


@dataclass(frozen=True)
class EventPage:
    """A page of events, newest first; ``older`` is the ``before_id`` of the next page."""

    events: list[EventRow]
    older: int | None


def parse_day(field: str, text: str | None) -> date | None:
    """A day typed in a form (``YYYY-MM-DD``, as a date input sends it); None if empty."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise Invalid(field, "a date like 2025-01-31") from None


def _start(value: datetime | date) -> datetime:
    """A bound as a UTC datetime: a day starts at midnight UTC."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetime given as an audit bound")
        return value
    return datetime.combine(value, time.min, tzinfo=UTC)


def _end(value: datetime | date) -> datetime:
    """An upper bound, exclusive: a day counts whole (up to the next midnight UTC)."""
    if isinstance(value, datetime):
        return _start(value)
    return _start(value + timedelta(days=1))


def _contains(text: str) -> str:
    """A LIKE pattern for ``text`` anywhere, its wildcards taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _conditions(
    actor: Actor,
    *,
    client: Client | None,
    without_client: bool,
    username: str | None,
    user_id: int | None,
    actor_text: str | None,
    action: str | None,
    outcome: str | None,
    since: datetime | date | None,
    until: datetime | date | None,
) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if client is not None:
        if not actor.sees(client.id):
            raise scope.NotFound("client")
        where.append(AuditEvent.client_id == client.id)
    elif without_client:
        where.append(AuditEvent.client_id.is_(None))
    if username and username.strip():
        where.append(User.username.ilike(_contains(username.strip()), escape="\\"))
    if user_id is not None:
        where.append(AuditEvent.user_id == user_id)
    if actor_text and actor_text.strip():
        where.append(AuditEvent.actor.ilike(_contains(actor_text.strip()), escape="\\"))
    where.extend(_what(action, outcome))
    where.extend(_when(since, until))
    return where


def _what(action: str | None, outcome: str | None) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if action:
        if not ACTION_NAME.fullmatch(action):
            raise Invalid("action", "not an action name")
        if action.endswith(".*"):
            topic = action.removesuffix("*").replace("_", "\\_")
            where.append(AuditEvent.action.like(topic + "%", escape="\\"))
        else:
            where.append(AuditEvent.action == action)
    if outcome:
        if outcome not in OUTCOMES:
            raise Invalid("outcome", "one of " + ", ".join(OUTCOMES))
        went_wrong = or_(AuditEvent.action.in_(sorted(PROBLEMS)), AuditEvent.action.like("%failed"))
        where.append(went_wrong if outcome == "problem" else ~went_wrong)
    return where


def _when(
    since: datetime | date | None, until: datetime | date | None
) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if since is not None and until is not None and _start(since) >= _end(until):
        raise Invalid("until", "must not be before the start")
    if since is not None:
        where.append(AuditEvent.at >= _start(since))
    if until is not None:
        where.append(AuditEvent.at < _end(until))
    return where


def query_events(
    session: Session,
    actor: Actor,
    *,
    client: Client | None = None,
    without_client: bool = False,
    username: str | None = None,
    user_id: int | None = None,
    actor_text: str | None = None,
    action: str | None = None,
    outcome: str | None = None,
    since: datetime | date | None = None,
    until: datetime | date | None = None,
    before_id: int | None = None,
    limit: int = PAGE_SIZE,
) -> EventPage:
    """One page of the events the actor may see, newest first.

    Filters: ``client`` (a client the actor sees, else ``NotFound``), ``without_client``
    (the MSP's own events), ``username`` and ``actor_text`` (contained, ignoring case),
    ``user_id`` (the events about one user: exact, where a username may match several),
    ``action`` (an action name, or a topic such as ``"reset.*"``), ``outcome``
    (``"problem"`` or ``"ok"``), ``since``/``until`` (a date counts whole, in UTC; a
    datetime is an exact bound, ``until`` exclusive), ``before_id`` (the keyset: events
    older than that id). Bad values raise :class:`Invalid` naming the filter.
    """
    actor.require(Permission.VIEW)
    limit = max(1, min(limit, MAX_PAGE_SIZE))
    where = _conditions(
        actor,
        client=client,
        without_client=without_client,
        username=username,
        user_id=user_id,
        actor_text=actor_text,
        action=action,
        outcome=outcome,
        since=since,
        until=until,
    )
    if before_id is not None:
        where.append(AuditEvent.id < before_id)
    query = (
        scope.events(actor)
        .add_columns(User.username, Client.slug, Client.name)
        .outerjoin(User, User.id == AuditEvent.user_id)
        .outerjoin(Client, Client.id == AuditEvent.client_id)
        .where(*where)
        .order_by(AuditEvent.id.desc())
        .limit(limit + 1)
    )
    rows = [
        EventRow(
            id=event.id,
            at=event.at,
            actor=event.actor,
            action=event.action,
            client_id=event.client_id,
            client_slug=slug,
            client_name=name,
            user_id=event.user_id,
            username=username_,
            request_id=event.request_id,
            detail=dict(event.detail or {}),
        )
        for event, username_, slug, name in session.execute(query).all()
    ]
    more = len(rows) > limit
    rows = rows[:limit]
    return EventPage(rows, rows[-1].id if more and rows else None)


def iter_events(
    session: Session, actor: Actor, *, batch: int = 500, **filters: Any
) -> Iterator[EventRow]:
    """Every event :func:`query_events` would page through, newest first, read in batches
    (for the CSV export and the command line). Filters as for :func:`query_events`."""
    before: int | None = filters.pop("before_id", None)
    while True:
        page = query_events(session, actor, before_id=before, limit=batch, **filters)
        yield from page.events
        if page.older is None:
            return
        before = page.older


def visible_clients(session: Session, actor: Actor) -> list[Client]:
    """The clients the actor may filter the trail by, by name."""
    actor.require(Permission.VIEW)
    return list(session.execute(scope.clients(actor).order_by(Client.name)).scalars())


# --- CSV ------------------------------------------------------------------------------------

CSV_HEADER = (
    "id",
    "at_utc",
    "client",
    "actor",
    "action",
    "action_in_words",
    "user",
    "request_id",
    "detail",
)


def _cell(value: object) -> str:
    """A CSV cell that a spreadsheet shows as text, never runs as a formula."""
    text = "" if value is None else str(value)
    if text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + text
    return text


def csv_row(event: EventRow) -> list[str]:
    return [
        _cell(value)
        for value in (
            event.id,
            event.at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            event.client_slug or ("" if event.client_id is None else f"#{event.client_id}"),
            event.actor,
            event.action,
            event.words,
            event.username or ("" if event.user_id is None else f"#{event.user_id}"),
            event.request_id,
            json.dumps(event.detail, sort_keys=True, default=str) if event.detail else "",
        )
    ]


def csv_lines(events: Iterable[EventRow]) -> Iterator[str]:
    """The events as CSV text, a line at a time (the header first), to stream."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for row in chain([list(CSV_HEADER)], (csv_row(event) for event in events)):
        writer.writerow(row)
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()


# --- JSON lines -----------------------------------------------------------------------------


def json_line(event: EventRow) -> str:
    """One event as one line of JSON (no newline inside: the detail is escaped)."""
    return json.dumps(
        {
            "id": event.id,
            "at": event.at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "client": event.client_slug,
            "client_id": event.client_id,
            "user_id": event.user_id,
            "username": event.username,
            "actor": event.actor,
            "action": event.action,
            "outcome": "problem" if event.problem else "ok",
            "request_id": event.request_id,
            "detail": event.detail,
        },
        sort_keys=True,
        default=str,
        ensure_ascii=False,
    )


def json_lines(events: Iterable[EventRow]) -> Iterator[str]:
    """The events as JSON lines (one object per line, newline-terminated), to stream."""
    for event in events:
        yield json_line(event) + "\n"
