"""Re-encryption of stored secrets under the current secret key (after changing it).

Every column sealed with the :class:`~blink_sms.crypto.SecretBox` is covered: each
client's directory settings and SMTP settings, each admin's authenticator (TOTP) secret
and each webhook endpoint's signing secret. Once a run reports nothing unreadable, no
stored value needs ``BLINK_SECRET_KEY_PREVIOUS`` any more.

A value that no key can read is reported and left exactly as it was: it may still be
recovered with the right key, and overwriting it would lose it for good.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..crypto import SecretBox, SecretBoxError
from ..models import Admin, Client, WebhookEndpoint
from . import admins, audit

# The kinds of sealed value, in the order a run reports them.
DIRECTORY = "directory settings"
SMTP = "SMTP settings"
TOTP = "TOTP secret"
WEBHOOK = "signing secret"
KINDS = (DIRECTORY, SMTP, TOTP, WEBHOOK)
# Each kind in the plural, naming its owner (the command's summary lines).
KIND_WORDS = {
    DIRECTORY: "clients' directory settings",
    SMTP: "clients' SMTP settings",
    TOTP: "admins' TOTP secrets",
    WEBHOOK: "webhooks' signing secrets",
}


@dataclass
class Counts:
    """What a run did with the values of one kind."""

    reencrypted: int = 0
    current: int = 0
    unreadable: int = 0


@dataclass
class Result:
    """What a run did: counts of values (in all, and by kind), and each unreadable value
    by name ("client contoso: SMTP settings") with the reason."""

    reencrypted: int = 0
    current: int = 0
    unreadable: dict[str, str] = field(default_factory=dict)
    by_kind: dict[str, Counts] = field(default_factory=lambda: {kind: Counts() for kind in KINDS})


def _rotate(box: SecretBox, result: Result, kind: str, owner: str, token: str | None) -> str | None:
    """``token`` under the current key, or None when there is nothing to write: no value,
    a value already under the current key, or one no key can read (then reported)."""
    if not token:
        return None
    counts = result.by_kind[kind]
    try:
        # Decrypt in full first: a token whose key is known but whose content is not a
        # JSON object is as unreadable to the services as one under an unknown key.
        box.decrypt_json(token)
    except SecretBoxError as err:
        result.unreadable[f"{owner}: {kind}"] = str(err)
        counts.unreadable += 1
        return None
    if box.is_current(token):
        result.current += 1
        counts.current += 1
        return None
    result.reencrypted += 1
    counts.reencrypted += 1
    return box.reencrypt(token)


def webhook_name(endpoint: WebhookEndpoint) -> str:
    """An endpoint by id and host: its path may carry the receiver's own token."""
    return f"webhook {endpoint.id} ({urlsplit(endpoint.url).hostname or '?'})"


def reencrypt_all(session: Session, box: SecretBox, *, actor: str) -> Result:
    """Re-encrypt every sealed value under ``box``'s current key.

    One audit event per object rewritten: ``client.secrets_reencrypted`` (once per client,
    whichever of its settings moved), ``admin.secrets_reencrypted`` and
    ``webhook.secrets_reencrypted``, each under the object's client where it has one.
    Flushes, does not commit: the caller commits the new tokens and their audit events
    together. Values already under the current key are not rewritten, so a second run
    changes nothing.
    """
    result = Result()

    for client in session.execute(select(Client).order_by(Client.slug)).scalars():
        owner = f"client {client.slug}"
        moved = []
        directory = _rotate(box, result, DIRECTORY, owner, client.directory_settings_encrypted)
        if directory is not None:
            client.directory_settings_encrypted = directory
            moved.append("directory")
        smtp = _rotate(box, result, SMTP, owner, client.smtp_settings_encrypted)
        if smtp is not None:
            client.smtp_settings_encrypted = smtp
            moved.append("smtp")
        if moved:
            audit.record(
                session,
                "client.secrets_reencrypted",
                actor=actor,
                client_id=client.id,
                fields=moved,
            )

    for admin in session.execute(select(Admin).order_by(Admin.email)).scalars():
        totp = _rotate(box, result, TOTP, f"admin {admin.email}", admin.totp_secret_encrypted)
        if totp is not None:
            admin.totp_secret_encrypted = totp
            admins.audit_admin(session, "admin.secrets_reencrypted", actor, admin)

    endpoints = select(WebhookEndpoint).order_by(WebhookEndpoint.id)
    for endpoint in session.execute(endpoints).scalars():
        secret = _rotate(box, result, WEBHOOK, webhook_name(endpoint), endpoint.secret_encrypted)
        if secret is not None:
            endpoint.secret_encrypted = secret
            audit.record(
                session,
                "webhook.secrets_reencrypted",
                actor=actor,
                client_id=endpoint.client_id,
                webhook_id=endpoint.id,
            )

    session.flush()
    return result
