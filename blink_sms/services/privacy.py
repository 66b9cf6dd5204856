"""GDPR: export everything held about one user, or erase their personal data.

The export (:func:`export_user`) is plain JSON-able data: the user's row, their
invitations, verification codes, reset requests, the SMS sent to them (bodies are never
stored) and the audit events about them. Token and code hashes are left out: they are
secrets, not data about the person.

The erasure (:func:`erase_user`) keeps the user's row as a tombstone named
``erased-<id>`` (disabled, no email, phone or directory id), so that the audit events
about them keep their link and monthly reports keep their counts, and pseudonymises the
trail: in the detail of each event about the user, names become the pseudonym and
emails and phone numbers (masked ones too) become ``[erased]``; other events of the
client lose the user's email and phone numbers wherever they appear (a test email sent to
them, say). No event is deleted. Webhook deliveries about the user get the pseudonym.
On PostgreSQL this runs under the ``erasure`` setting, which lets the append-only
trigger pass a rewrite of an event's detail, and nothing else of it.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Table, Text, bindparam, cast, func, or_, select, update
from sqlalchemy.orm import Session

from ..actors import Actor, Permission
from ..crypto import mask_phone
from ..models import (
    PENDING_STATUSES,
    AuditEvent,
    Invitation,
    OutboundMessage,
    ResetRequest,
    User,
    UserStatus,
    VerificationCode,
    WebhookDelivery,
    utcnow,
)
from . import audit
from .errors import Conflict
from .retention import allow_audit_maintenance
from .scope import NotFound

ERASED = "[erased]"
# Keys of an event's detail whose value names or reaches the person: replaced whole.
NAME_KEYS = frozenset({"username", "display_name"})
CONTACT_KEYS = frozenset({"email", "to", "phone"})
EVENTS: Table = AuditEvent.__table__  # type: ignore[assignment]
_REWRITE = (
    update(EVENTS)
    .where(EVENTS.c.id == bindparam("event_id"))
    .values(detail=bindparam("new_detail", type_=EVENTS.c.detail.type))
)
DELIVERIES: Table = WebhookDelivery.__table__  # type: ignore[assignment]
_REWRITE_PAYLOAD = (
    update(DELIVERIES)
    .where(DELIVERIES.c.id == bindparam("delivery_id"))
    .values(payload=bindparam("new_payload", type_=DELIVERIES.c.payload.type))
)


def _check(actor: Actor, user: User) -> None:
    if not actor.sees(user.client_id):
        raise NotFound("user")
    actor.require(Permission.MANAGE_USERS)


def pseudonym(user_id: int) -> str:
    """What an erased user is called from then on."""
    return f"erased-{user_id}"


def is_erased(user: User) -> bool:
    return user.directory_id == f"erased:{user.id}"


# --- export -----------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    return value


def _row(obj: object, names: Iterable[str]) -> dict[str, Any]:
    return {name: _plain(getattr(obj, name)) for name in names}


USER_FIELDS = (
    "id", "directory_id", "username", "display_name", "email", "phone", "previous_phone",
    "status", "language", "sms_opted_out", "created_at", "updated_at",
)  # fmt: skip
INVITATION_FIELDS = (
    "id", "actor", "created_at", "expires_at", "email_status", "email_error",
    "email_sent_at", "phone", "code_failures", "used_at", "revoked_at", "revoked_reason",
)  # fmt: skip
CODE_FIELDS = ("id", "invitation_id", "phone", "created_at", "expires_at", "ended_at", "outcome")
REQUEST_FIELDS = (
    "id", "kind", "origin", "status", "actor", "reply_from", "inbound_sid", "outbound_sid",
    "attempts", "error_code", "delivery_status", "created_at", "started_at", "finished_at",
)  # fmt: skip
MESSAGE_FIELDS = (
    "id", "sid", "request_id", "purpose", "status", "error_code", "price", "price_unit",
    "created_at", "updated_at",
)  # fmt: skip
EVENT_FIELDS = ("id", "at", "actor", "action", "request_id", "detail")


def export_user(session: Session, actor: Actor, user: User) -> dict[str, Any]:
    """Everything held about ``user``, as JSON-able data. Audited; commits.

    Left out: token and code hashes, leases (secrets of the gateway, not data about the
    person). SMS bodies are never stored, so only what was sent and when is listed.
    """
    _check(actor, user)
    invitations = session.execute(
        select(Invitation).where(Invitation.user_id == user.id).order_by(Invitation.id)
    ).scalars()
    codes = session.execute(
        select(VerificationCode)
        .join(Invitation, Invitation.id == VerificationCode.invitation_id)
        .where(Invitation.user_id == user.id)
        .order_by(VerificationCode.id)
    ).scalars()
    requests = session.execute(
        select(ResetRequest).where(ResetRequest.user_id == user.id).order_by(ResetRequest.id)
    ).scalars()
    messages = session.execute(
        select(OutboundMessage)
        .where(OutboundMessage.user_id == user.id)
        .order_by(OutboundMessage.id)
    ).scalars()
    events = session.execute(
        select(AuditEvent).where(AuditEvent.user_id == user.id).order_by(AuditEvent.id)
    ).scalars()
    data = {
        "exported_at": utcnow().isoformat(),
        "client": {"slug": user.client.slug, "name": user.client.name},
        "user": _row(user, USER_FIELDS),
        "invitations": [_row(row, INVITATION_FIELDS) for row in invitations],
        "verification_codes": [_row(row, CODE_FIELDS) for row in codes],
        "reset_requests": [_row(row, REQUEST_FIELDS) for row in requests],
        "messages": [_row(row, MESSAGE_FIELDS) for row in messages],
        "audit_events": [_row(row, EVENT_FIELDS) for row in events],
    }
    audit.record(session, "user.exported", actor=actor, client_id=user.client_id, user_id=user.id)
    session.commit()
    return data


# --- erasure ----------------------------------------------------------------------------------


class _Scrubber:
    """Replaces one person's names, emails and phone numbers in an event's detail."""

    def __init__(self, name: str, names: Iterable[str], contacts: Iterable[str]) -> None:
        self.name = name
        # Contacts (emails, phone numbers) are distinctive: replaced wherever they appear.
        self.contacts = [
            re.compile(re.escape(text), re.IGNORECASE)
            for text in sorted(set(contacts), key=len, reverse=True)
            if text
        ]
        # Names only as whole words ("al" must not eat "invalid"), in events about them.
        self.names = [
            re.compile(rf"(?<!\w){re.escape(text)}(?!\w)", re.IGNORECASE)
            for text in sorted(set(names), key=len, reverse=True)
            if text
        ]

    def text(self, value: str, *, about: bool) -> str:
        for pattern in self.contacts:
            value = pattern.sub(ERASED, value)
        if about:
            for pattern in self.names:
                value = pattern.sub(self.name, value)
        return value

    def value(self, value: Any, *, about: bool, key: str | None = None) -> Any:
        if about and key in NAME_KEYS and value is not None:
            return self.name
        if about and key in CONTACT_KEYS and value is not None:
            return ERASED
        if isinstance(value, str):
            return self.text(value, about=about)
        if isinstance(value, dict):
            return {k: self.value(v, about=about, key=k) for k, v in value.items()}
        if isinstance(value, list):
            return [self.value(item, about=about) for item in value]
        return value


def _like_any(column: Any, texts: Iterable[str]) -> Any:
    """Rows whose stored JSON ``column`` contains any of ``texts`` (as JSON writes them)."""
    stored = func.lower(cast(column, Text))
    conditions = []
    for text in texts:
        needle = json.dumps(text.lower())[1:-1]
        escaped = needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        conditions.append(stored.like(f"%{escaped}%", escape="\\"))
    return or_(*conditions)


def _scrub_webhook_payloads(session: Session, user: User, scrub: _Scrubber) -> None:
    """Webhook deliveries name the user they are about (``payload.user``): kept for the
    delivery log, they get the pseudonym too."""
    rows = session.execute(
        select(WebhookDelivery.id, WebhookDelivery.payload).where(
            _like_any(WebhookDelivery.payload, [user.username])
        )
    ).all()
    changes = [
        {"delivery_id": delivery_id, "new_payload": scrub.value(payload, about=True)}
        for delivery_id, payload in rows
        if isinstance(payload.get("user"), dict) and payload["user"].get("id") == user.id
    ]
    if changes:
        session.connection().execute(_REWRITE_PAYLOAD, changes)


def erase_user(session: Session, actor: Actor, user: User) -> None:
    """Remove ``user``'s personal data; keep their audit events, pseudonymised. Commits.

    ``Conflict`` while a reset or unlock of theirs is on its way, or when they were erased
    already. The directory account is not touched: if the user stays in the group or OU
    the client imports, a later import brings them back as a new user.
    """
    _check(actor, user)
    if is_erased(user):
        raise Conflict("this user's personal data is erased already")
    pending = session.execute(
        select(ResetRequest.id).where(
            ResetRequest.user_id == user.id, ResetRequest.status.in_(PENDING_STATUSES)
        )
    ).first()
    if pending is not None:
        raise Conflict(f"a reset or unlock for {user.username} is on its way: erase when done")
    name = pseudonym(user.id)
    invitations = list(
        session.execute(
            select(Invitation).where(Invitation.user_id == user.id).with_for_update()
        ).scalars()
    )
    codes = list(
        session.execute(
            select(VerificationCode).where(
                VerificationCode.invitation_id.in_([row.id for row in invitations])
            )
        ).scalars()
    )
    typed = [row.phone for row in invitations] + [row.phone for row in codes]
    phones = {phone for phone in (user.phone, user.previous_phone, *typed) if phone}
    emails = {user.email} if user.email else set()
    scrub = _Scrubber(
        name,
        names=(user.username, user.display_name),
        contacts=(*emails, *phones, *(mask_phone(p) or "" for p in phones)),
    )

    # The trail first, while the old values are still known.
    allow_audit_maintenance(session, "erasure")
    about = session.execute(
        select(AuditEvent.id, AuditEvent.detail).where(AuditEvent.user_id == user.id)
    ).all()
    others = session.execute(
        select(AuditEvent.id, AuditEvent.detail).where(
            AuditEvent.client_id == user.client_id,
            or_(AuditEvent.user_id.is_(None), AuditEvent.user_id != user.id),
            _like_any(AuditEvent.detail, (*emails, *phones)),
        )
    ).all() if emails or phones else []  # fmt: skip
    rewrites = [
        {"event_id": event_id, "new_detail": new}
        for rows, is_about in ((about, True), (others, False))
        for event_id, detail in rows
        if (new := scrub.value(detail or {}, about=is_about)) != (detail or {})
    ]
    if rewrites:
        session.connection().execute(_REWRITE, rewrites)
    _scrub_webhook_payloads(session, user, scrub)

    now = utcnow()
    revoked = 0
    for invitation in invitations:
        if invitation.used_at is None and invitation.revoked_at is None:
            invitation.revoked_at, invitation.revoked_reason = now, "erased"
            revoked += 1
        invitation.phone = None
        # A bounce message may quote the address.
        invitation.email_error = None
    for code in codes:
        code.phone = ""  # the column is required; the number is not kept
        if code.ended_at is None:
            code.ended_at, code.outcome = now, "erased"
    user.username = user.display_name = name
    user.email = user.phone = user.previous_phone = user.language = None
    user.directory_id = f"erased:{user.id}"
    user.status = UserStatus.DISABLED
    audit.record(
        session,
        "user.erased",
        actor=actor,
        client_id=user.client_id,
        user_id=user.id,
        events_pseudonymised=len(rewrites),
        invitations_revoked=revoked,
    )
    session.commit()
