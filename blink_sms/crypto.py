"""Secrets at rest and one-way hashes.

Directory credentials are stored encrypted with Fernet (AES-128-CBC + HMAC-SHA256)
under a key derived from ``BLINK_SECRET_KEY`` by HKDF, so the database alone
reveals nothing. Phone numbers in logs and throttle keys, and enrollment codes, are
keyed hashes. Each purpose has its own key, derived by HKDF with the purpose as its
``info``: secrets at rest, keyed hashes, and the signature of session cookies and CSRF
tokens (:func:`session_key`); ``BLINK_SECRET_KEY`` itself is never used as a key.

Changing the secret key must not lose what was stored under the old one: the old
keys stay readable (``BLINK_SECRET_KEY_PREVIOUS``) until ``blink-sms secrets rotate``
has re-encrypted everything under the new one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Sequence
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

# Errors name the likely cause and the way out, never the key or the plaintext: they end
# up in logs and on an operator's terminal.
WRONG_KEY = (
    "stored secrets cannot be decrypted with this BLINK_SECRET_KEY"
    " (was it changed? set the old one as BLINK_SECRET_KEY_PREVIOUS)"
)
WRONG_KEYS = (
    "stored secrets cannot be decrypted with this BLINK_SECRET_KEY nor with"
    " BLINK_SECRET_KEY_PREVIOUS (is the key they were saved with among them?)"
)


class SecretBoxError(Exception):
    """Stored secrets cannot be decrypted: none of the keys is the one they were saved with
    (or the stored value is damaged). ``str()`` is one line fit to show an operator."""


# The purposes (HKDF's info). Renaming one changes its key: what was stored under it
# (encrypted settings, code hashes, session cookies) would no longer be recognised.
SECRETS_AT_REST = b"blink-sms:secrets"
KEYED_HASHES = b"blink-sms:hashes"
SESSIONS = b"blink-sms:sessions"


def _derive(secret_key: str, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(
        secret_key.encode("utf-8")
    )


def _fernet(secret_key: str) -> Fernet:
    return Fernet(base64.urlsafe_b64encode(_derive(secret_key, SECRETS_AT_REST)))


def session_key(secret_key: str) -> bytes:
    """The key Flask signs session cookies (and Flask-WTF its CSRF tokens) with.

    Derived, not ``BLINK_SECRET_KEY`` itself: a signature a browser holds is made with
    key material that neither encrypts the stored secrets nor keys the hashes."""
    return _derive(secret_key, SESSIONS)


class SecretBox:
    """Encrypts and decrypts small JSON documents (a client's directory settings).

    Encryption always uses ``secret_key``; decryption also accepts the ``previous`` keys,
    so a changed key leaves stored secrets readable until they are re-encrypted.
    """

    def __init__(self, secret_key: str, previous: Sequence[str] = ()) -> None:
        self._current = _fernet(secret_key)
        self._fernet = MultiFernet([self._current, *(_fernet(key) for key in previous)])
        self._wrong_key = WRONG_KEYS if previous else WRONG_KEY
        self._hash_key = _derive(secret_key, KEYED_HASHES)

    def encrypt_json(self, value: dict[str, Any]) -> str:
        return self._fernet.encrypt(json.dumps(value, sort_keys=True).encode()).decode("ascii")

    def decrypt_json(self, token: str) -> dict[str, Any]:
        try:
            data = json.loads(self._fernet.decrypt(token.encode("ascii")))
        # A damaged column (not ASCII, not base64) is the same failure as a wrong key.
        except (InvalidToken, ValueError) as err:
            raise SecretBoxError(self._wrong_key) from err
        if not isinstance(data, dict):
            raise SecretBoxError("stored secrets are not a JSON object")
        return data

    def is_current(self, token: str) -> bool:
        """Whether ``token`` is already under the current key: rotation skips it, so a
        second run rewrites nothing and audits nothing."""
        try:
            self._current.decrypt(token.encode("ascii"))
        except (InvalidToken, ValueError):
            return False
        return True

    def reencrypt(self, token: str) -> str:
        """The same secret under the current key (from the current or a previous one)."""
        try:
            return self._fernet.rotate(token.encode("ascii")).decode("ascii")
        except (InvalidToken, ValueError) as err:
            raise SecretBoxError(self._wrong_key) from err

    def keyed_hash(self, value: str) -> str:
        """A stable, non-reversible label for a phone number (logs, throttle keys).

        Only the current key: a hash is recomputed, never decrypted, so it simply
        follows the new key from the restart on."""
        return hmac.new(self._hash_key, value.encode("utf-8"), hashlib.sha256).hexdigest()[:24]


def mask_phone(e164: str | None) -> str | None:
    """+31612345678 -> +316******78: enough for a person to recognise their own number."""
    if not e164:
        return e164
    if len(e164) <= 6:
        return "*" * len(e164)
    return e164[:4] + "*" * (len(e164) - 6) + e164[-2:]
