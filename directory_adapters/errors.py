"""Errors of the directory boundary.

Every adapter raises only these. Each class says whether retrying can help
(``permanent``); callers decide on retries from that flag, never from the message.
The message is log detail for an administrator; it never contains a password.
"""

from __future__ import annotations


class DirectoryError(Exception):
    """Base of every directory failure."""

    permanent: bool = True

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


class ConfigurationError(DirectoryError):
    """The connection settings are wrong (bad service account password, bad base DN)."""


class UserNotFound(DirectoryError):
    """No user with that identifier in the client's scope."""


class PasswordRejected(DirectoryError):
    """The directory's password policy refused the new password."""


class PermissionDenied(DirectoryError):
    """The service account lacks a right; ``missing_right`` names it for the admin."""

    def __init__(self, message: str, *, missing_right: str | None = None) -> None:
        super().__init__(message)
        self.missing_right = missing_right


class OperationRefused(DirectoryError):
    """The gateway refuses by policy: a protected, privileged or disabled account."""


class OperationNotSupported(DirectoryError):
    """The directory has no such operation (for example, unlock in Entra ID)."""


class DirectoryUnavailable(DirectoryError):
    """The directory could not be reached or timed out; trying again may work."""

    permanent = False
