"""Client organisations: creation with encrypted directory settings."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from ..crypto import SecretBox
from ..models import Client
from . import audit

_SLUG = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")


def create_client(
    session: Session,
    secrets: SecretBox,
    *,
    slug: str,
    name: str,
    directory_kind: str,
    directory_settings: Mapping[str, Any],
    actor: str,
    **options: Any,
) -> Client:
    """Add a client; its directory settings are stored encrypted."""
    if not _SLUG.fullmatch(slug):
        raise ValueError("slug: lowercase letters, digits and dashes, at most 63 characters")
    client = Client(
        slug=slug,
        name=name,
        directory_kind=directory_kind,
        directory_settings_encrypted=secrets.encrypt_json(dict(directory_settings)),
        **options,
    )
    session.add(client)
    session.flush()
    audit.record(session, "client.created", actor=actor, client_id=client.id, slug=slug)
    return client
