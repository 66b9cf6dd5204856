"""Directory settings forms generated from an adapter's schema (``SCHEMAS[kind]``).

Settings inputs are named ``dir_<key>`` so they cannot collide with the client's own
fields (an Entra ID ``client_id`` is not the console's). What a page shows back is a
dict of strings, never a secret. The add wizard carries typed secrets from one step to
the next *sealed*: encrypted with the deployment's key together with what they are for
(this wizard, this admin, this directory kind) and when they were typed, so a sealed
value is useless anywhere else, to anyone else, or after an hour.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from blink_sms.crypto import SecretBox, SecretBoxError
from directory_adapters import SettingsSchema

PREFIX = "dir_"
SEAL_PURPOSE = "console.new_client.secrets"
SEAL_SECONDS = 60 * 60
# A settings value longer than this is not a setting (a PEM certificate is a few kB).
MAX_VALUE = 20_000


def typed(schema: SettingsSchema, form: Mapping[str, str]) -> dict[str, str]:
    """The schema's settings as the form sent them, keyed by setting name (no prefix)."""
    values = {}
    for field in schema.fields:
        raw = form.get(PREFIX + field.name)
        if raw is not None:
            values[field.name] = raw[:MAX_VALUE]
    return values


def shown(schema: SettingsSchema, values: Mapping[str, str]) -> dict[str, str]:
    """``values`` without the secrets: what may go back into a page."""
    secrets = schema.secrets()
    return {name: value for name, value in values.items() if name not in secrets}


def _text(field_kind: str, one_per_line: bool, value: Any) -> str:
    if field_kind == "boolean":
        return "on" if value else "off"
    if isinstance(value, list | tuple):
        return ("\n" if one_per_line else ", ").join(str(item) for item in value)
    return "" if value is None else str(value)


def from_settings(schema: SettingsSchema, settings: Mapping[str, Any] | None) -> dict[str, str]:
    """Strings to show for stored (public) settings, or for a new form (``None``).

    Checkboxes and choices start at their defaults; other fields start empty and show
    the default as a placeholder, so an untouched field keeps following the adapter's.
    """
    values = {}
    for field in schema.fields:
        if field.secret:
            continue
        value = (settings or {}).get(field.name)
        if value is None and field.kind in ("boolean", "choice"):
            value = field.default
        values[field.name] = _text(field.kind, field.one_per_line, value)
    return values


def checkbox_values(schema: SettingsSchema, values: Mapping[str, str]) -> dict[str, str]:
    """A submitted form leaves an unticked box out: say "off" so hidden fields carry it."""
    return {
        **values,
        **{
            field.name: "on" if field.parse(values.get(field.name)) else "off"
            for field in schema.fields
            if field.kind == "boolean"
        },
    }


def field_of(schema: SettingsSchema, message: str) -> str:
    """The form field a settings error is about (its label or its quoted key is named)."""
    for field in schema.fields:
        if message.startswith(f"{field.label}:") or f"'{field.name}'" in message:
            return PREFIX + field.name
    return "directory_settings"


def labels(schema: SettingsSchema) -> dict[str, str]:
    return {PREFIX + field.name: field.label for field in schema.fields}


def seal(box: SecretBox, admin_id: int | None, kind: str, secrets: Mapping[str, Any]) -> str:
    """Typed secrets, encrypted for the next step of the add wizard ('' when none)."""
    kept = {name: value for name, value in secrets.items() if value}
    if not kept:
        return ""
    return box.encrypt_json(
        {
            "purpose": SEAL_PURPOSE,
            "admin": admin_id,
            "kind": kind,
            "at": int(time.time()),
            "secrets": kept,
        }
    )


def unseal(box: SecretBox, token: str, admin_id: int | None, kind: str) -> dict[str, Any]:
    """The secrets :func:`seal` carried, or nothing when the token is not for this step."""
    if not token:
        return {}
    try:
        data = box.decrypt_json(token[:MAX_VALUE])
    except SecretBoxError:
        return {}
    fresh = isinstance(data.get("at"), int) and time.time() - data["at"] < SEAL_SECONDS
    ours = (data.get("purpose"), data.get("admin"), data.get("kind")) == (
        SEAL_PURPOSE,
        admin_id,
        kind,
    )
    secrets = data.get("secrets")
    if not (fresh and ours and isinstance(secrets, dict)):
        return {}
    return secrets
