"""Passwords in the sandbox: scrypt hashes, the policy check, and why a sign-in failed."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from ..base import PasswordPolicy

# scrypt cost (log2 of N): ~30-55 ms a hash, a real hash, cheap enough for tests. A
# benchmark that simulates a remote directory (``latency_ms``) sets ``hash_cost`` low:
# a real directory hashes on its own CPU, not on the worker's.
HASH_COST = 14
_SCRYPT_R, _SCRYPT_P = 8, 1


class SignInError(Exception):
    """A sandbox sign-in failed; the subclass says why, as Active Directory would."""


class InvalidCredentials(SignInError):
    """Unknown user or wrong password (counted towards the lockout)."""


class MustChangePassword(SignInError):
    """The password is right but must be changed before signing in."""


class AccountLocked(SignInError):
    """The account is locked out, whatever the password."""


class AccountDisabled(SignInError):
    """The account is disabled."""


def hash_password(password: str, cost: int = HASH_COST) -> str:
    """A scrypt hash that carries its own parameters (so any cost verifies later)."""
    salt, n = secrets.token_bytes(16), 2**cost
    digest = hashlib.scrypt(password.encode(), salt=salt, n=n, r=_SCRYPT_R, p=_SCRYPT_P)
    return f"scrypt${n}${_SCRYPT_R}${_SCRYPT_P}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str | None) -> bool:
    """Whether ``password`` matches the stored hash (never, without one)."""
    if stored is None:  # an account created without a usable password
        return False
    _, n, r, p, salt, digest = stored.split("$")
    candidate = hashlib.scrypt(
        password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p)
    )
    return hmac.compare_digest(candidate, bytes.fromhex(digest))


def password_problem(policy: PasswordPolicy, username: str, password: str) -> str | None:
    """Why ``password`` breaks ``policy`` for ``username``, or ``None`` if it is fine.

    Like Active Directory, the username check is part of complexity and applies
    to usernames of three characters or more. The reason never quotes the password.
    """
    if len(password) < policy.min_length:
        return f"too short: at least {policy.min_length} characters are required"
    if not policy.complexity:
        return None
    classes = {
        "lower" if c.islower() else "upper" if c.isupper() else "digit" if c.isdigit() else "other"
        for c in password
    }
    if len(classes) < 3:
        return (
            "not complex enough: use 3 of 4 kinds of character "
            "(lowercase, uppercase, digits, symbols)"
        )
    if len(username) >= 3 and username.casefold() in password.casefold():
        return "contains the username"
    return None
