"""Directory adapters: one interface (:mod:`.base`), several directories.

``create_adapter(kind, settings)`` picks the implementation by name. Each kind declares
its settings (``SCHEMAS[kind]``, a :class:`SettingsSchema` an admin console builds its
forms from) and what it can do (``CAPABILITIES[kind]``, names from :mod:`.base`);
``validate(kind, settings)`` checks settings without connecting and ``diagnose(kind,
settings)`` explains, step by step, what is wrong with a connection. This package
imports nothing from the rest of Blink SMS, and ldap3 and the HTTP stack only when a
client of their kind is used.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .active_directory.settings import CAPABILITIES as _AD_CAPABILITIES
from .active_directory.settings import SCHEMA as _AD_SCHEMA
from .base import (
    CAPABILITY_NAMES,
    DIAGNOSE,
    LIST_GROUPS,
    LIST_OUS,
    LOCKOUT_QUERY,
    PASSWORD_EXPIRY,
    PASSWORD_POLICY,
    UNLOCK,
    DirectoryAdapter,
    DirectoryGroup,
    DirectoryUser,
    Finding,
    Lockout,
    LockoutState,
    PasswordExpiry,
    PasswordPolicy,
)
from .entra_id.settings import CAPABILITIES as _ENTRA_CAPABILITIES
from .entra_id.settings import SCHEMA as _ENTRA_SCHEMA
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
from .sandbox.settings import CAPABILITIES as _SANDBOX_CAPABILITIES
from .sandbox.settings import SCHEMA as _SANDBOX_SCHEMA
from .schema import Field, SettingsSchema


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

# name -> its settings, declared beside the code that parses them.
SCHEMAS: dict[str, SettingsSchema] = {
    "sandbox": _SANDBOX_SCHEMA,
    "active_directory": _AD_SCHEMA,
    "entra_id": _ENTRA_SCHEMA,
}

# name -> what it can do beyond the operations every directory has (see .base).
CAPABILITIES: dict[str, frozenset[str]] = {
    "sandbox": _SANDBOX_CAPABILITIES,
    "active_directory": _AD_CAPABILITIES,
    "entra_id": _ENTRA_CAPABILITIES,
}

# Directories that have no unlock operation (Entra ID ends a lockout only with a
# reset): an UNLOCK text for their users is answered at once with an offer of RESET.
WITHOUT_UNLOCK: frozenset[str] = frozenset(
    kind for kind, capabilities in CAPABILITIES.items() if UNLOCK not in capabilities
)


def _known(kind: str) -> None:
    if kind not in ADAPTERS:
        known = ", ".join(sorted(ADAPTERS))
        raise ConfigurationError(f"unknown directory kind {kind!r} (known: {known})")


def create_adapter(kind: str, settings: Mapping[str, Any]) -> DirectoryAdapter:
    """Build the adapter named ``kind``; ``ConfigurationError`` for an unknown kind."""
    _known(kind)
    return ADAPTERS[kind](settings)


def validate(kind: str, settings: Mapping[str, Any]) -> None:
    """Check ``settings`` for a directory of ``kind`` without connecting, creating or
    changing anything: the adapter's own settings parser runs on them.

    ``ConfigurationError`` names the first bad setting (or the unknown kind). What only
    the directory can tell (a wrong password, a missing right) is for ``diagnose``.
    """
    _known(kind)
    if kind == "active_directory":
        from .active_directory.settings import ADSettings

        ADSettings.parse(settings)
    elif kind == "entra_id":
        from .entra_id.settings import EntraSettings

        EntraSettings.parse(settings)
    else:
        from .sandbox.settings import SandboxSettings

        SandboxSettings.parse(settings)


def diagnose(kind: str, settings: Mapping[str, Any]) -> list[Finding]:
    """Step-by-step findings on a connection (reach, TLS, credentials, rights, licences)
    for the kinds with the ``diagnose`` capability; ``[]`` for the others. Never raises
    a ``DirectoryError``: a problem is a finding. It connects, so it can take seconds."""
    if DIAGNOSE not in CAPABILITIES.get(kind, frozenset()):
        return []
    if kind == "active_directory":
        from .active_directory import diagnose as diagnose_ad

        return list(diagnose_ad(settings))
    if kind == "entra_id":
        from .entra_id import diagnose as diagnose_entra

        return list(diagnose_entra(settings))
    raise AssertionError(f"{kind} declares the diagnose capability but has no diagnosis")


__all__ = [
    "ADAPTERS",
    "CAPABILITIES",
    "CAPABILITY_NAMES",
    "DIAGNOSE",
    "LIST_GROUPS",
    "LIST_OUS",
    "LOCKOUT_QUERY",
    "PASSWORD_EXPIRY",
    "PASSWORD_POLICY",
    "SCHEMAS",
    "UNLOCK",
    "WITHOUT_UNLOCK",
    "ConfigurationError",
    "DirectoryAdapter",
    "DirectoryError",
    "DirectoryGroup",
    "DirectoryUnavailable",
    "DirectoryUser",
    "Field",
    "Finding",
    "Lockout",
    "LockoutState",
    "OperationNotSupported",
    "OperationRefused",
    "PasswordExpiry",
    "PasswordPolicy",
    "PasswordRejected",
    "PermissionDenied",
    "SettingsSchema",
    "UserNotFound",
    "create_adapter",
    "diagnose",
    "validate",
]
