"""Re-encryption of stored secrets under the current secret key (after changing it).

A row that no key can read is reported and left exactly as it was: its settings may
still be recovered with the right key, and overwriting them would lose them for good.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..crypto import SecretBox, SecretBoxError
from ..models import Client
from . import audit


@dataclass
class Result:
    """What a run did: counts, and each unreadable client's slug with the reason."""

    reencrypted: int = 0
    current: int = 0
    unreadable: dict[str, str] = field(default_factory=dict)


def reencrypt_all(session: Session, box: SecretBox, *, actor: str) -> Result:
    """Re-encrypt every client's directory settings under ``box``'s current key.

    Flushes, does not commit: the caller commits the new tokens and their audit events
    together. Settings already under the current key are not rewritten, so a second run
    changes nothing.
    """
    result = Result()
    clients = session.execute(select(Client).order_by(Client.slug)).scalars()
    for client in clients:
        token = client.directory_settings_encrypted
        try:
            # Decrypt in full first: a token whose key is known but whose content is not
            # settings is as unreadable to the workers as one under an unknown key.
            box.decrypt_json(token)
        except SecretBoxError as err:
            result.unreadable[client.slug] = str(err)
            continue
        if box.is_current(token):
            result.current += 1
            continue
        client.directory_settings_encrypted = box.reencrypt(token)
        audit.record(session, "client.secrets_reencrypted", actor=actor, client_id=client.id)
        result.reencrypted += 1
    session.flush()
    return result
