"""Secrets at rest and one-way hashes.

Directory credentials are stored encrypted with Fernet (AES-128-CBC + HMAC-SHA256)
under a key derived from ``BLINK_SECRET_KEY`` by HKDF, so the database alone
reveals nothing. Phone numbers in logs and throttle keys are keyed hashes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


class SecretBoxError(Exception):
    """Stored secrets cannot be decrypted: BLINK_SECRET_KEY is not the one they were saved with."""


def _derive(secret_key: str, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(
        secret_key.encode("utf-8")
    )


class SecretBox:
    """Encrypts and decrypts small JSON documents (a client's directory settings)."""

    def __init__(self, secret_key: str) -> None:
        self._fernet = Fernet(base64.urlsafe_b64encode(_derive(secret_key, b"blink-sms:secrets")))
        self._hash_key = _derive(secret_key, b"blink-sms:hashes")

    def encrypt_json(self, value: dict[str, Any]) -> str:
        return self._fernet.encrypt(json.dumps(value, sort_keys=True).encode()).decode("ascii")

    def decrypt_json(self, token: str) -> dict[str, Any]:
        try:
            data = json.loads(self._fernet.decrypt(token.encode("ascii")))
        # A damaged column (not ASCII, not base64) is the same failure as a wrong key.
        except (InvalidToken, ValueError) as err:
            raise SecretBoxError(
                "stored secrets cannot be decrypted with this BLINK_SECRET_KEY"
            ) from err
        if not isinstance(data, dict):
            raise SecretBoxError("stored secrets are not a JSON object")
        return data

    def keyed_hash(self, value: str) -> str:
        """A stable, non-reversible label for a phone number (logs, throttle keys)."""
        return hmac.new(self._hash_key, value.encode("utf-8"), hashlib.sha256).hexdigest()[:24]


def mask_phone(e164: str | None) -> str | None:
    """+31612345678 -> +316******78: enough for a person to recognise their own number."""
    if not e164:
        return e164
    if len(e164) <= 6:
        return "*" * len(e164)
    return e164[:4] + "*" * (len(e164) - 6) + e164[-2:]
