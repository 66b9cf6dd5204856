"""The one interface every directory implements.

Adapters take plain settings (a mapping) and return plain data (the dataclasses
below) or raise :mod:`directory_adapters.errors`. They know nothing of Flask, SMS,
the database or the queue.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

# What an adapter can do beyond what every directory does (find users, list them, set
# passwords). An admin console shows or hides actions by these; the registry's
# ``CAPABILITIES`` says which kind has which. A method whose capability is absent raises
# ``OperationNotSupported``, except ``password_policy``, which then returns a fixed rule.
UNLOCK = "unlock"  # unlock() clears a lockout without a reset
LOCKOUT_QUERY = "lockout_query"  # lockout_state() and locked_out_users() see lockouts
LIST_GROUPS = "list_groups"  # list_groups(), and list_users(group=...) on what it lists
LIST_OUS = "list_ous"  # list_ous(), and list_users(ou=...) on what it lists
# password_policy() reads the directory's own policy (S105: a capability, not a password)
PASSWORD_POLICY = "password_policy"  # noqa: S105
DIAGNOSE = "diagnose"  # diagnose(kind, settings) explains, step by step, what is wrong
# password_expiries() says whose password expires soon (S105: a capability, not a password)
PASSWORD_EXPIRY = "password_expiry"  # noqa: S105
CAPABILITY_NAMES: frozenset[str] = frozenset(
    {UNLOCK, LOCKOUT_QUERY, LIST_GROUPS, LIST_OUS, PASSWORD_POLICY, DIAGNOSE, PASSWORD_EXPIRY}
)


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
    protected_reason: str | None = None  # why it is protected, in words, when it says


@dataclass(frozen=True)
class LockoutState:
    locked: bool
    locked_at: datetime | None = None


@dataclass(frozen=True)
class Lockout:
    """A locked-out account as a lockout poll (``lockouts``) sees it.

    ``locked_at`` is when the lockout began, as the directory says (aware UTC; ``None``
    if it does not say). ``kind`` is "lockout" (too many bad passwords: an unlock or a
    new password ends it) or "blocked_ip" (Entra ID refused sign-ins from an address
    with malicious activity: a new password is the remedy to offer, never an unlock).
    """

    user: DirectoryUser
    locked_at: datetime | None = None
    kind: Literal["lockout", "blocked_ip"] = "lockout"


@dataclass(frozen=True)
class PasswordPolicy:
    """What a new password must satisfy: minimum length, and 3 of 4 character classes."""

    min_length: int = 8
    complexity: bool = True


@dataclass(frozen=True)
class DirectoryGroup:
    """A group or an organisational unit to import users from.

    ``id`` is what ``list_users(group=...)`` (or ``ou=...``) and ``count_users`` take:
    a DN in Active Directory, an object id in Entra ID, the group's key or the OU's path
    in the sandbox. ``path`` says where it is, to tell apart two of the same name.
    """

    id: str
    name: str
    path: str | None = None
    kind: Literal["group", "ou"] = "group"


@dataclass(frozen=True)
class PasswordExpiry:
    """When a user's password expires (``password_expiries``): an aware UTC datetime."""

    user: DirectoryUser
    expires_at: datetime


class Finding(Protocol):
    """One step of a diagnosis (``diagnose``): how it went, what was checked, what to grant."""

    @property
    def level(self) -> Literal["ok", "warning", "problem"]: ...

    @property
    def topic(self) -> str: ...

    @property
    def message(self) -> str: ...

    @property
    def missing(self) -> str | None: ...


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

    def lockouts(self, since: datetime | None = None) -> list[Lockout]:
        """Every account in scope that is locked out now, one entry per user, in one
        (paged) query, never one per user. Directories that keep the state (Active
        Directory, the sandbox) ignore ``since``; Entra ID reads its sign-in logs from
        ``since`` (the caller's cursor: the previous poll's start), or at least its
        lockout window, so that no lockout between two polls is missed."""

    def password_policy(self) -> PasswordPolicy:
        """The policy a new password must satisfy."""

    def list_groups(self, search: str = "", *, limit: int = 50) -> list[DirectoryGroup]:
        """Groups whose name contains ``search`` (ignoring case), sorted by name, at most
        ``limit``, within the client's scope. Entra ID matches words that start with
        ``search`` (Graph's tokenised search), then keeps the names that contain it."""

    def list_ous(self, search: str = "", *, limit: int = 50) -> list[DirectoryGroup]:
        """Organisational units whose name contains ``search``, as :meth:`list_groups`;
        ``OperationNotSupported`` where the directory has none (Entra ID)."""

    def count_users(self, *, group: str | None = None, ou: str | None = None) -> int:
        """How many users ``list_users`` with the same arguments would give (an import's
        preview); ``ConfigurationError`` for an unknown group, as ``list_users``."""

    def password_expiries(self, until: datetime) -> list[PasswordExpiry]:
        """The enabled users in scope whose password has not expired yet and expires
        before ``until``, in one (paged) query, never one per user. Passwords that never
        expire (by policy or by a flag on the account) and passwords that must be changed
        at next logon are left out."""
