"""A client's branding: the name, logo, colour, text and support contact users see."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from ..actors import Actor, Permission
from ..messaging.pages import HEX_COLOR
from ..models import Client
from . import audit
from .errors import Invalid
from .scope import NotFound
from .users import EMAIL

FIELDS = ("brand_name", "brand_logo_url", "brand_color", "email_message", "support_email")


def _clean(name: str, value: Any) -> str | None:
    text = str(value).strip() if value is not None else ""
    if not text:
        return None  # back to the MSP's default
    if name == "brand_name" and len(text) > 100:
        raise Invalid(name, "at most 100 characters")
    if name == "brand_logo_url" and (not text.startswith("https://") or len(text) > 500):
        raise Invalid(name, "must be an https:// address (at most 500 characters)")
    if name == "brand_color" and not HEX_COLOR.fullmatch(text):
        raise Invalid(name, "must look like #1f5fbf")
    if name == "email_message" and len(text) > 2000:
        raise Invalid(name, "at most 2,000 characters")
    if name == "support_email" and (len(text) > 320 or not EMAIL.fullmatch(text)):
        raise Invalid(name, "not an email address")
    return text


def set_branding(session: Session, actor: Actor, client: Client, **changes: Any) -> list[str]:
    """Change branding fields; an empty value goes back to the default. Commits.

    ``invitation_hours`` (how long an activation link works) may be given too.
    Returns the names of the fields that changed.
    """
    if not actor.sees(client.id):
        raise NotFound("client")
    actor.require(Permission.MANAGE_CLIENT)
    cleaned: dict[str, Any] = {}
    for name, value in changes.items():
        if name == "invitation_hours":
            try:
                hours = int(value)
            except (TypeError, ValueError):
                raise Invalid(name, "a whole number of hours from 1 to 720") from None
            if not 1 <= hours <= 24 * 30:
                raise Invalid(name, "a whole number of hours from 1 to 720")
            cleaned[name] = hours
        elif name in FIELDS:
            cleaned[name] = _clean(name, value)
        else:
            raise Invalid(name, "is not a branding field")
    changed = sorted(name for name, value in cleaned.items() if getattr(client, name) != value)
    if not changed:
        return []
    for name in changed:
        setattr(client, name, cleaned[name])
    audit.record(
        session, "client.branding_changed", actor=actor, client_id=client.id, fields=changed
    )
    session.commit()
    return changed
