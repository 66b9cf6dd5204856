"""Directory adapters: one interface (:mod:`.base`), several directories.

``create_adapter(kind, settings)`` picks the implementation by name. This package
imports nothing from the rest of Blink SMS.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .base import DirectoryAdapter, DirectoryUser, LockoutState, PasswordPolicy
from .errors import (
    ConfigurationError,
    DirectoryError,
    DirectoryUnavailable,
    OperationNotSupported,
    OperationRefused,
    PasswordRejected,
    PermissionDenied,
    UserNotFound,
)


def _sandbox(settings: Mapping[str, Any]) -> DirectoryAdapter:
    from .sandbox import SandboxDirectory

    return SandboxDirectory.from_settings(settings)


def _entra_id(settings: Mapping[str, Any]) -> DirectoryAdapter:
    from .entra_id import EntraIdDirectory

    return EntraIdDirectory.from_settings(settings)


def _active_directory(settings: Mapping[str, Any]) -> DirectoryAdapter:
    from .active_directory import ActiveDirectory

    return ActiveDirectory.from_settings(settings)


# name -> factory; an adapter's heavy imports happen only when a client uses it.
ADAPTERS: dict[str, Callable[[Mapping[str, Any]], DirectoryAdapter]] = {
    "sandbox": _sandbox,
    "active_directory": _active_directory,
    "entra_id": _entra_id,
}


# Directories that have no unlock operation (Entra ID ends a lockout only with a
# reset): an UNLOCK text for their users is answered at once with an offer of RESET.
WITHOUT_UNLOCK: frozenset[str] = frozenset({"entra_id"})


def create_adapter(kind: str, settings: Mapping[str, Any]) -> DirectoryAdapter:
    """Build the adapter named ``kind``; ``ConfigurationError`` for an unknown kind."""
    try:
        factory = ADAPTERS[kind]
    except KeyError:
        known = ", ".join(sorted(ADAPTERS))
        raise ConfigurationError(f"unknown directory kind {kind!r} (known: {known})") from None
    return factory(settings)


__all__ = [
    "ADAPTERS",
    "WITHOUT_UNLOCK",
    "ConfigurationError",
    "DirectoryAdapter",
    "DirectoryError",
    "DirectoryUnavailable",
    "DirectoryUser",
    "LockoutState",
    "OperationNotSupported",
    "OperationRefused",
    "PasswordPolicy",
    "PasswordRejected",
    "PermissionDenied",
    "UserNotFound",
    "create_adapter",
]
