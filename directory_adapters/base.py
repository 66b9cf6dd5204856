"""The one interface every directory implements.

Adapters take plain settings (a mapping) and return plain data (the dataclasses
below) or raise :mod:`directory_adapters.errors`. They know nothing of Flask, SMS,
the database or the queue.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class DirectoryUser:
    """A user as the directory knows them. ``id`` is stable (objectGUID, object id)."""

    id: str
    username: str
    display_name: str
    email: str | None = None
    upn: str | None = None
    mobile: str | None = None
    disabled: bool = False
    protected: bool = False


@dataclass(frozen=True)
class LockoutState:
    locked: bool
    locked_at: datetime | None = None


@dataclass(frozen=True)
class PasswordPolicy:
    """What a new password must satisfy: minimum length, and 3 of 4 character classes."""

    min_length: int = 8
    complexity: bool = True


class DirectoryAdapter(Protocol):
    """A client's directory.

    Every method raises only :class:`~directory_adapters.errors.DirectoryError`
    subclasses; ``DirectoryUnavailable`` is the only retryable one.
    """

    kind: str

    def check_connection(self) -> None:
        """Prove the settings work (reach, TLS, credentials, rights); raise what is wrong."""

    def find_user(self, identifier: str) -> DirectoryUser:
        """Find a user by username, UPN, mail or stable id; ``UserNotFound`` if none."""

    def get_user(self, user_id: str) -> DirectoryUser:
        """Fetch a user by stable id; ``UserNotFound`` if gone."""

    def list_users(
        self, *, group: str | None = None, ou: str | None = None
    ) -> Iterator[DirectoryUser]:
        """Users of a group (nested) or an OU; all users in scope when neither is given."""

    def set_password(self, user_id: str, password: str, *, must_change: bool, unlock: bool) -> None:
        """Set a new password; optionally force a change at next logon and unlock.

        Raises ``PasswordRejected`` when policy refuses it and ``OperationRefused``
        for protected or disabled accounts.
        """

    def unlock(self, user_id: str) -> None:
        """Clear a lockout without touching the password."""

    def lockout_state(self, user_id: str) -> LockoutState:
        """Whether the account is locked out now."""

    def locked_out_users(self) -> list[DirectoryUser]:
        """Every locked-out user in scope, in one query."""

    def password_policy(self) -> PasswordPolicy:
        """The policy a new password must satisfy."""
