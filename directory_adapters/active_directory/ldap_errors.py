"""LDAP result codes and Active Directory's bind reasons, mapped in one table to our errors.

Every LDAP failure of the Active Directory adapter goes through
:func:`bind_error` (the service account's bind) or :func:`result_error` (any other
operation). The error classes carry ``permanent``: a configuration, rights or policy
problem is permanent; a busy, unavailable or timed-out directory is retryable.
Messages are for an administrator: they name the cause and never contain a password.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ..errors import (
    ConfigurationError,
    DirectoryError,
    DirectoryUnavailable,
    OperationRefused,
    PasswordRejected,
    PermissionDenied,
    UserNotFound,
)

# The rights a delegated service account needs on the users' OU, as named in
# Active Directory's "Delegation of Control" and "Advanced Security" dialogs.
RESET_PASSWORD = "Reset Password"  # noqa: S105 - the name of a right, not a password
WRITE_PWD_LAST_SET = "Write pwdLastSet"  # noqa: S105 - the name of a right
WRITE_LOCKOUT_TIME = "Write lockoutTime"
RIGHT_FOR_ATTRIBUTE = {"pwdLastSet": WRITE_PWD_LAST_SET, "lockoutTime": WRITE_LOCKOUT_TIME}

# Active Directory's "data" code in a failed bind's message (AcceptSecurityContext error).
BIND_REASONS: dict[str, str] = {
    "525": "the account does not exist",
    "52e": "the password is wrong",
    "530": "the account may not sign in at this time of day",
    "531": "the account may not sign in from this computer",
    "532": "the account's password has expired",
    "533": "the account is disabled",
    "701": "the account has expired",
    "773": "the account's password must be changed before it can sign in",
    "775": "the account is locked out",
}

# Result code -> (error class, what it means). 19, 32, 49 and 50 need the context
# of the operation and are handled in the functions below.
RESULTS: dict[int, tuple[type[DirectoryError], str]] = {
    1: (DirectoryUnavailable, "the domain controller reported an internal error"),
    2: (ConfigurationError, "the domain controller did not understand the request"),
    3: (DirectoryUnavailable, "the domain controller ran out of time for the request"),
    4: (ConfigurationError, "the answer was larger than the domain controller allows"),
    7: (ConfigurationError, "the domain controller refused the authentication method"),
    8: (ConfigurationError, "the domain controller requires LDAPS or StartTLS"),
    11: (DirectoryUnavailable, "the domain controller hit an administrative limit"),
    13: (ConfigurationError, "the domain controller requires an encrypted connection"),
    21: (ConfigurationError, "a value has the wrong syntax"),
    34: (ConfigurationError, "a distinguished name (DN) in the settings is malformed"),
    51: (DirectoryUnavailable, "the domain controller is busy"),
    52: (DirectoryUnavailable, "the domain controller is unavailable"),
    53: (OperationRefused, "the domain controller is unwilling to perform the change"),
    54: (DirectoryUnavailable, "the domain controller detected a loop"),
    80: (DirectoryUnavailable, "the domain controller reported an unknown error"),
}

_DATA_CODE = re.compile(r"\bdata ([0-9a-fA-F]+)")
PASSWORD_POLICY_CODE = "0000052D"  # noqa: S105 - AD's error code for a policy refusal


def data_code(message: str | None) -> str | None:
    """The ``data NNN`` code of an Active Directory bind failure, lower case."""
    match = _DATA_CODE.search(message or "")
    return match.group(1).lower() if match else None


def _detail(result: Mapping[str, Any]) -> str:
    description = result.get("description") or "error"
    message = str(result.get("message") or "").strip()
    return f"LDAP {result.get('result')} {description}" + (f": {message}" if message else "")


def scrub(text: str, secrets: tuple[str, ...]) -> str:
    """``text`` with every non-empty secret replaced, for a message that may echo input."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    return text


def bind_error(result: Mapping[str, Any], account: str) -> DirectoryError:
    """The error for a failed bind of the service account ``account``.

    Wrong credentials, a locked or disabled service account: permanent configuration
    errors (retrying with the same settings cannot help, and would lock it out).
    """
    code = result.get("result")
    if code == 49:
        reason = BIND_REASONS.get(data_code(result.get("message")) or "", "bad credentials")
        return ConfigurationError(
            f"the service account {account} cannot sign in: {reason} ({_detail(result)})"
        )
    return result_error(result, doing=f"signing in as {account}")


def result_error(
    result: Mapping[str, Any],
    *,
    doing: str,
    missing_right: str | None = None,
    not_found: type[DirectoryError] = UserNotFound,
) -> DirectoryError:
    """The error for a failed operation.

    ``doing`` says what was attempted ("resetting the password of CN=..."),
    ``missing_right`` names the right a 50 insufficientAccessRights means here, and
    ``not_found`` is what a 32 noSuchObject means (a user gone, or a wrong DN setting).
    """
    code = result.get("result")
    detail = f"{doing}: {_detail(result)}"
    if code == 19:
        if PASSWORD_POLICY_CODE in str(result.get("message") or "").upper():
            return PasswordRejected(f"the domain's password policy refused the password ({detail})")
        return OperationRefused(f"the domain controller refused a value ({detail})")
    if code == 32:
        return not_found(f"no such object ({detail})")
    if code == 49:
        return ConfigurationError(f"the service account's sign-in was refused ({detail})")
    if code == 50:
        right = missing_right or "the right to do this"
        return PermissionDenied(
            f"the service account lacks the right {right!r} ({detail})", missing_right=right
        )
    error_class, meaning = RESULTS.get(code if isinstance(code, int) else -1, (DirectoryError, ""))
    return error_class(f"{meaning or 'the directory refused the request'} ({detail})")
