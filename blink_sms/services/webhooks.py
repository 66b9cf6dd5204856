"""Outbound event webhooks: a PSA hears of resets, unlocks, lockouts and enrollments.

**Endpoints.** An endpoint is MSP-wide (every client's events; MSP staff who may onboard
clients manage these) or one client's (its client admins manage it too). Each has a
signing secret, ``whsec_`` and 256 random bits, shown once and stored encrypted
(:mod:`blink_sms.crypto`): signing needs it in clear, so it cannot be a hash. Addresses
are https; plain http only to this machine (a local relay, the tests).

**Events come from the audit trail**: :mod:`blink_sms.services.webhook_events` queues
them in the same transaction as the change (a transactional outbox).

Sending them, signed and retried, is :mod:`blink_sms.services.webhook_sender`.
"""

from __future__ import annotations

import ipaddress
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from ..actors import Actor, Forbidden, Permission
from ..crypto import SecretBox
from ..models import Client, WebhookDelivery, WebhookEndpoint, utcnow
from . import audit
from .errors import Conflict, Invalid
from .scope import NotFound
from .webhook_events import EVENT_TYPES, PENDING, timestamp

TEST_EVENT = "webhook.test"  # sent by "send test", whatever the endpoint subscribes to

SECRET_PREFIX = "whsec_"  # noqa: S105 -- a prefix, not a secret
MAX_ENDPOINTS = 10  # per client, and MSP-wide: each event is one row per endpoint
MAX_URL = 500
MAX_DESCRIPTION = 200


# --- endpoints ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Listed:
    """An endpoint as listed, with its most recent delivery (None: nothing sent yet)."""

    endpoint: WebhookEndpoint
    last: WebhookDelivery | None


def _scoped(actor: Actor) -> Select[WebhookEndpoint]:
    """The endpoints the actor may see: a client admin only their client's own."""
    query = select(WebhookEndpoint)
    if actor.client_id is not None:
        query = query.where(WebhookEndpoint.client_id == actor.client_id)
    return query


def _require(actor: Actor, client_id: int | None) -> None:
    """Client endpoints: whoever manages the client; MSP-wide ones: MSP staff who onboard."""
    actor.require(Permission.MANAGE_CLIENT)
    if client_id is None:
        if not actor.msp_wide:
            raise Forbidden("only MSP staff manage webhooks for every client")
        actor.require(Permission.ONBOARD)


def _endpoint(session: Session, actor: Actor, endpoint_id: Any) -> WebhookEndpoint:
    try:
        number = int(endpoint_id)
    except (TypeError, ValueError):
        raise NotFound("webhook endpoint") from None
    if not 0 < number < 2**31:  # PostgreSQL refuses to compare an INTEGER with more
        raise NotFound("webhook endpoint")
    found = session.execute(_scoped(actor).where(WebhookEndpoint.id == number)).scalar_one_or_none()
    if found is None:
        raise NotFound("webhook endpoint")
    _require(actor, found.client_id)
    return found


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def clean_url(url: str) -> str:
    """An endpoint address as stored, or :class:`Invalid` saying what is wrong."""
    url = url.strip()
    if not url or len(url) > MAX_URL or any(c.isspace() or ord(c) < 32 for c in url):
        raise Invalid("url", f"give the endpoint's https address (at most {MAX_URL} characters)")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- raises on a port that is not a number
    except ValueError:
        raise Invalid("url", "this is not a valid address") from None
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise Invalid("url", "an https:// address, like https://psa.example.com/hooks/blink")
    if parts.username is not None or parts.password is not None:
        raise Invalid("url", "no user name or password in the address: the signature proves us")
    if parts.fragment:
        raise Invalid("url", "no #fragment: it is never sent")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise Invalid("url", "https is required (plain http only to localhost)")
    return url


def _clean_events(events: Sequence[str] | None) -> list[str]:
    chosen = sorted({event.strip() for event in events or () if event.strip()})
    unknown = [event for event in chosen if event not in EVENT_TYPES]
    if unknown:
        raise Invalid("events", f"unknown event {unknown[0]!r}: one of {', '.join(EVENT_TYPES)}")
    return chosen


def create_endpoint(
    session: Session,
    box: SecretBox,
    actor: Actor,
    *,
    url: str,
    client: Client | None = None,
    events: Sequence[str] | None = None,
    description: str = "",
) -> tuple[WebhookEndpoint, str]:
    """A new endpoint (``client`` None: every client's events; ``events`` empty: all), and
    its signing secret to show once. Commits."""
    if client is not None and not actor.sees(client.id):
        raise NotFound("client")
    client_id = client.id if client else None
    _require(actor, client_id)
    url = clean_url(url)
    chosen = _clean_events(events)
    description = description.strip()
    if len(description) > MAX_DESCRIPTION:
        raise Invalid("description", f"at most {MAX_DESCRIPTION} characters")
    same_scope = (
        WebhookEndpoint.client_id.is_(None)
        if client_id is None
        else WebhookEndpoint.client_id == client_id
    )
    count = session.execute(
        select(func.count()).select_from(WebhookEndpoint).where(same_scope)
    ).scalar_one()
    if count >= MAX_ENDPOINTS:
        raise Conflict(f"at most {MAX_ENDPOINTS} webhook endpoints here: remove one first")
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    row = WebhookEndpoint(
        client_id=client_id,
        url=url,
        description=description,
        secret_encrypted=box.encrypt_json({"secret": secret}),
        events=chosen,
        created_by=actor.label,
    )
    session.add(row)
    session.flush()
    # The host, not the address: a path may carry the receiver's own token.
    audit.record(
        session,
        "webhook.created",
        actor=actor,
        client_id=client_id,
        webhook_id=row.id,
        host=urlsplit(url).hostname,
        events=chosen or "all",
    )
    session.commit()
    return row, secret


def list_endpoints(session: Session, actor: Actor, *, client: Client | None = None) -> list[Listed]:
    """The endpoints the actor may see (MSP-wide first), or ``client``'s own ones."""
    actor.require(Permission.MANAGE_CLIENT)
    query = _scoped(actor).order_by(WebhookEndpoint.client_id.is_not(None), WebhookEndpoint.id)
    if client is not None:
        query = query.where(WebhookEndpoint.client_id == client.id)
    endpoints = list(session.execute(query).scalars())
    latest = (
        select(func.max(WebhookDelivery.id))
        .where(WebhookDelivery.endpoint_id.in_([e.id for e in endpoints]))
        .group_by(WebhookDelivery.endpoint_id)
    )
    last = {
        d.endpoint_id: d
        for d in session.execute(
            select(WebhookDelivery).where(WebhookDelivery.id.in_(latest))
        ).scalars()
    }
    return [Listed(endpoint, last.get(endpoint.id)) for endpoint in endpoints]


def get_endpoint(session: Session, actor: Actor, endpoint_id: Any) -> Listed:
    """One endpoint the actor may see and manage, with its most recent delivery."""
    row = _endpoint(session, actor, endpoint_id)
    last = session.execute(
        select(WebhookDelivery)
        .where(WebhookDelivery.endpoint_id == row.id)
        .order_by(WebhookDelivery.id.desc())
        .limit(1)
    ).scalar_one_or_none()
    return Listed(row, last)


def remove_endpoint(session: Session, actor: Actor, endpoint_id: Any) -> WebhookEndpoint:
    """Remove an endpoint and whatever was still to be sent to it. Commits."""
    row = _endpoint(session, actor, endpoint_id)
    audit.record(
        session, "webhook.removed", actor=actor, client_id=row.client_id, webhook_id=row.id
    )
    session.delete(row)  # its deliveries go with it (ON DELETE CASCADE)
    session.commit()
    return row


def set_disabled(
    session: Session, actor: Actor, endpoint_id: Any, *, disabled: bool
) -> WebhookEndpoint:
    """Pause an endpoint (no new events; what is queued waits) or resume it. Commits."""
    row = _endpoint(session, actor, endpoint_id)
    if (row.disabled_at is not None) == disabled:
        raise Conflict(f"this endpoint is {'disabled' if disabled else 'enabled'} already")
    row.disabled_at = utcnow() if disabled else None
    action = "webhook.disabled" if disabled else "webhook.enabled"
    audit.record(session, action, actor=actor, client_id=row.client_id, webhook_id=row.id)
    session.commit()
    return row


def send_test(session: Session, actor: Actor, endpoint_id: Any) -> WebhookDelivery:
    """Queue a ``webhook.test`` event to the endpoint (sent within seconds). Commits."""
    row = _endpoint(session, actor, endpoint_id)
    if row.disabled_at is not None:
        raise Conflict("this endpoint is disabled: enable it to send a test")
    client = session.get(Client, row.client_id) if row.client_id else None
    now = utcnow()
    payload = {
        "type": TEST_EVENT,
        "created_at": timestamp(now),
        "client": {"slug": client.slug, "name": client.name} if client else None,
        "user": None,
        "request_id": None,
    }
    event_id = str(uuid.uuid4())
    delivery = WebhookDelivery(
        endpoint_id=row.id,
        event_id=event_id,
        event=TEST_EVENT,
        payload={"id": event_id, **payload},
        status=PENDING,
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )
    session.add(delivery)
    audit.record(session, "webhook.tested", actor=actor, client_id=row.client_id, webhook_id=row.id)
    session.commit()
    return delivery
