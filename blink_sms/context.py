"""The services of one running app, built once by the app factory.

Views, jobs and commands reach them with :func:`blink` inside an app context.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from flask import current_app

from directory_adapters import DirectoryAdapter, create_adapter

from .crypto import SecretBox
from .db import Database
from .messaging.email import EmailSender
from .messaging.sms import SmsSender
from .queue import JobQueue
from .settings import Settings

if TYPE_CHECKING:
    from redis import Redis

EXTENSION = "blink_sms"


class ClientDirectory(Protocol):
    """A client's directory as stored: a ``Client``, or a :class:`StoredDirectory`."""

    @property
    def id(self) -> int: ...

    @property
    def directory_kind(self) -> str: ...

    @property
    def directory_settings_encrypted(self) -> str: ...


@dataclass(frozen=True)
class StoredDirectory:
    """A client's directory as plain values (a job's snapshot, no database session)."""

    id: int
    directory_kind: str
    directory_settings_encrypted: str


class Directories:
    """One adapter per client, kept for the process so connections are reused."""

    def __init__(self, secrets: SecretBox) -> None:
        self._secrets = secrets
        self._lock = threading.Lock()
        self._adapters: dict[tuple[int, str], DirectoryAdapter] = {}

    def for_client(self, client: ClientDirectory) -> DirectoryAdapter:
        key = (client.id, client.directory_settings_encrypted)
        with self._lock:
            adapter = self._adapters.get(key)
            if adapter is None:
                settings = self._secrets.decrypt_json(client.directory_settings_encrypted)
                adapter = create_adapter(client.directory_kind, settings)
                self._adapters = {k: v for k, v in self._adapters.items() if k[0] != client.id}
                self._adapters[key] = adapter
            return adapter


@dataclass
class Blink:
    settings: Settings
    db: Database
    secrets: SecretBox
    queue: JobQueue
    sms: SmsSender | None
    redis: Redis[bytes] | None = None
    email: EmailSender | None = None
    directories: Directories = field(init=False)

    def __post_init__(self) -> None:
        self.directories = Directories(self.secrets)

    @property
    def status_callback_url(self) -> str:
        return f"{self.settings.public_url}/webhooks/twilio/status"


def blink() -> Blink:
    """The services of the current app."""
    services: Blink = current_app.extensions[EXTENSION]
    return services
