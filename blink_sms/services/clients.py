"""Client organisations: onboard, edit, rotate a secret, disable, remove, test the directory.

Every function takes the acting :class:`~blink_sms.actors.Actor`, authorises, checks
its input (``Invalid`` names the field), does the work and writes one audit event.
Directory settings are stored encrypted; secrets among them are write-only: an edit
that leaves a secret empty keeps the stored one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import phonenumbers
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from directory_adapters import ADAPTERS, DirectoryError, create_adapter

from ..actors import Actor, Permission
from ..context import Blink
from ..crypto import SecretBox, SecretBoxError
from ..messaging.i18n import SUPPORTED_LANGUAGES
from ..models import Client, utcnow
from . import audit
from .errors import Conflict, Invalid
from .scope import NotFound

SLUG = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
# Words of the console's URLs under /admin/clients/ that cannot name a client.
RESERVED_SLUGS = frozenset({"new"})

# Editable options and their checks (below). Branding is in services.branding.
_INT_LIMITS: dict[str, tuple[int, int]] = {
    "resets_per_hour": (1, 100),
    "resets_per_day": (1, 1000),
    "password_length": (10, 64),
    "invitation_hours": (1, 24 * 30),
}


def _e164(value: str) -> str:
    try:
        number = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_possible_number(number):
        raise Invalid("sender_number", "must be a phone number in E.164, like +15005550006")
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


def _text(name: str, value: Any, limit: int, what: str) -> str:
    text = str(value or "").strip()
    if not 1 <= len(text) <= limit:
        raise Invalid(name, f"{what} (at most {limit} characters)")
    if not text.isprintable():  # control or invisible characters: texts and emails show it
        raise Invalid(name, "may only contain printable characters")
    return text


def _region(name: str, value: Any) -> str:
    region = str(value or "").strip().upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise Invalid(name, "must be a two-letter country code, like US or NL")
    return region


def _language(name: str, value: Any) -> str:
    language = str(value or "").strip().lower()
    if language not in SUPPORTED_LANGUAGES:
        raise Invalid(name, "must be one of " + ", ".join(SUPPORTED_LANGUAGES))
    return language


def _service_sid(name: str, value: Any) -> str | None:
    if value and not re.fullmatch(r"MG[0-9a-f]{32}", str(value)):
        raise Invalid(name, "must look like MG followed by 32 hex digits")
    return str(value) if value else None


def _number(name: str, value: Any) -> int:
    low, high = _INT_LIMITS[name]
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = low - 1
    if not low <= number <= high:
        raise Invalid(name, f"must be a whole number from {low} to {high}")
    return number


def _flag(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise Invalid(name, "must be true or false")
    return value


def _poll_seconds(name: str, value: Any) -> int | None:
    """Seconds between lockout polls; empty: the deployment's BLINK_LOCKOUT_POLL_SECONDS."""
    if value is None or str(value).strip() == "":
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = 0
    if not 15 <= number <= 86_400:
        raise Invalid(name, "must be a whole number of seconds from 15 to 86400, or empty")
    return number


def _email(name: str, value: Any) -> str | None:
    text = str(value or "").strip()
    if not text:
        return None
    if len(text) > 320 or not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", text):
        raise Invalid(name, "must be an email address, or empty")
    return text


def _reminder_days(name: str, value: Any) -> str | None:
    """Days before a password expires to remind, "7,3,1" (normalised, largest first)."""
    text = str(value or "").replace(" ", "")
    if not text:
        return None
    parts = text.split(",")
    if not all(part.isdigit() for part in parts):
        raise Invalid(name, "days separated by commas, e.g. 7,3,1 (empty: no reminders)")
    days = sorted({int(part) for part in parts}, reverse=True)
    if len(days) > 5 or not all(1 <= day <= 60 for day in days):
        raise Invalid(name, "at most 5 days, each from 1 to 60")
    return ",".join(str(day) for day in days)


def _countries(name: str, value: Any) -> str | None:
    """Where enrollment codes may go, "US,CA" (normalised, sorted); empty: the default region."""
    text = str(value or "").replace(" ", "").upper()
    if not text:
        return None
    regions = sorted(set(text.split(",")))
    if len(regions) > 50 or not all(r in phonenumbers.SUPPORTED_REGIONS for r in regions):
        raise Invalid(name, "two-letter country codes separated by commas, e.g. US,CA (at most 50)")
    return ",".join(regions)


def _policy(*choices: str) -> Callable[[str, Any], str]:
    """A choice among ``choices``; empty: the first (the default)."""

    def check(name: str, value: Any) -> str:
        text = str(value or "").strip().lower() or choices[0]
        if text not in choices:
            raise Invalid(name, "must be one of " + ", ".join(choices))
        return text

    return check


def _sim_swap_days(name: str, value: Any) -> int:
    """How many days a SIM swap counts as recent, 1 to 90; empty: 7."""
    if value is None or str(value).strip() == "":
        return 7
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = 0
    if not 1 <= number <= 90:
        raise Invalid(name, "must be a whole number from 1 to 90")
    return number


def reminder_days(client: Client) -> list[int]:
    """The days before expiry a client's users are reminded on (none: reminders off)."""
    return [int(day) for day in (client.expiry_reminder_days or "").split(",") if day]


_CHECKS: dict[str, Callable[[str, Any], Any]] = {
    "name": lambda n, v: _text(n, v, 200, "give the organisation's name"),
    "support_contact": lambda n, v: _text(n, v, 200, "say whom users should call"),
    "default_region": _region,
    "language": _language,
    "sender_number": lambda n, v: _e164(str(v).strip()) if v else None,
    "messaging_service_sid": _service_sid,
    "unlock_on_reset": _flag,
    "must_change_at_next_logon": _flag,
    "lockout_watch": _flag,
    "lockout_poll_seconds": _poll_seconds,
    "lockout_alert_email": _email,
    "reset_notices": _flag,
    "expiry_reminder_days": _reminder_days,
    "allowed_countries": _countries,
    "binding_policy": _policy("any", "directory", "approval"),
    "reset_pin": _policy("off", "optional", "required"),
    "sim_swap_policy": _policy("off", "warn", "block"),
    "sim_swap_days": _sim_swap_days,
    **dict.fromkeys(_INT_LIMITS, _number),
}
OPTIONS = frozenset(_CHECKS)


def _clean_option(name: str, value: Any) -> Any:
    """One option checked and normalised; ``Invalid`` says what is wrong in plain words."""
    check = _CHECKS.get(name)
    if check is None:
        raise Invalid(name, "is not a client option")
    return check(name, value)


def _check_directory(kind: str, settings: Mapping[str, Any]) -> None:
    if kind not in ADAPTERS:
        raise Invalid("directory_kind", "must be one of " + ", ".join(sorted(ADAPTERS)))
    from directory_adapters import SCHEMAS, validate

    schema = SCHEMAS.get(kind)
    unknown = sorted(set(settings) - set(schema.names())) if schema else []
    if unknown:
        known = ", ".join(schema.names()) if schema else ""
        raise Invalid(
            "directory_settings", f"{kind} has no setting {unknown[0]!r} (it has: {known})"
        )
    try:
        validate(kind, settings)
    except DirectoryError as err:
        raise Invalid("directory_settings", err.message) from None


def onboarding_problems(
    session: Session,
    *,
    slug: str,
    name: str,
    directory_kind: str,
    directory_settings: Mapping[str, Any],
    **options: Any,
) -> list[Invalid]:
    """Every problem :func:`create_client` would refuse, not just the first: the command
    line names each bad option in one line."""
    checks: list[Callable[[], object]] = [
        lambda: _check_slug(session, slug),
        lambda: _check_directory(directory_kind, directory_settings),
        *(
            (lambda key=key, value=value: _clean_option(key, value))
            for key, value in {"name": name, **options}.items()
        ),
    ]
    found = []
    for check in checks:
        try:
            check()
        except Invalid as err:
            found.append(err)
    return found


def _check_slug(session: Session, slug: str) -> None:
    if not SLUG.fullmatch(slug) or slug in RESERVED_SLUGS:
        raise Invalid("slug", "lowercase letters, digits and dashes, at most 63 characters")
    if session.execute(select(Client.id).where(Client.slug == slug)).first():
        raise Invalid("slug", f"a client with slug {slug!r} exists already")


def create_client(
    session: Session,
    secrets: SecretBox,
    actor: Actor,
    *,
    slug: str,
    name: str,
    directory_kind: str,
    directory_settings: Mapping[str, Any],
    **options: Any,
) -> Client:
    """Onboard a client; its directory settings are stored encrypted. Flushes, no commit."""
    if not actor.msp_wide:
        raise NotFound("client")  # a client's own admin cannot create clients
    actor.require(Permission.ONBOARD)
    _check_slug(session, slug)
    _check_directory(directory_kind, directory_settings)
    values = {key: _clean_option(key, value) for key, value in {"name": name, **options}.items()}
    client = Client(
        slug=slug,
        directory_kind=directory_kind,
        directory_settings_encrypted=secrets.encrypt_json(dict(directory_settings)),
        **values,
    )
    session.add(client)
    session.flush()
    audit.record(
        session, "client.created", actor=actor, client_id=client.id, slug=slug, kind=directory_kind
    )
    return client


def _visible(actor: Actor, client: Client) -> None:
    if not actor.sees(client.id):
        raise NotFound("client")


def update_client(session: Session, actor: Actor, client: Client, **options: Any) -> list[str]:
    """Change a client's options (name, region, language, sender, limits...). Commits.

    Returns the names of the options that changed (none: nothing is written).
    """
    _visible(actor, client)
    actor.require(Permission.ONBOARD)
    cleaned = {key: _clean_option(key, value) for key, value in options.items()}
    changed = sorted(key for key, value in cleaned.items() if getattr(client, key) != value)
    if not changed:
        return []
    for key in changed:
        setattr(client, key, cleaned[key])
    audit.record(session, "client.updated", actor=actor, client_id=client.id, fields=changed)
    session.commit()
    return changed


def directory_settings(secrets: SecretBox, client: Client) -> dict[str, Any]:
    """The stored directory settings, secrets included: for the services, never a page."""
    settings: dict[str, Any] = secrets.decrypt_json(client.directory_settings_encrypted)
    return settings


def set_directory_settings(
    session: Session,
    secrets: SecretBox,
    actor: Actor,
    client: Client,
    settings: Mapping[str, Any],
    *,
    kind: str | None = None,
) -> list[str]:
    """Replace a client's directory settings (and kind). Commits; returns changed names.

    A secret that is absent from ``settings`` keeps its stored value (forms never show
    secrets back); rotating a service-account password is giving only that secret.
    The audit event names the changed settings, never their values.
    """
    _visible(actor, client)
    actor.require(Permission.ONBOARD)
    kind = kind or client.directory_kind
    try:
        previous = directory_settings(secrets, client)
    except SecretBoxError:
        previous = {}  # settings under a lost key: the new ones must be complete
    merged = dict(settings)
    if kind == client.directory_kind:
        for name, value in previous.items():
            if name not in merged and _is_secret(kind, name):
                merged[name] = value
    _check_directory(kind, merged)
    changed = sorted(
        name for name in {*previous, *merged} if previous.get(name) != merged.get(name)
    )
    if not changed and kind == client.directory_kind:
        return []
    client.directory_kind = kind
    client.directory_settings_encrypted = secrets.encrypt_json(merged)
    secret_names = sorted(name for name in changed if _is_secret(kind, name))
    audit.record(
        session,
        "client.directory_changed",
        actor=actor,
        client_id=client.id,
        kind=kind,
        settings=[name for name in changed if name not in secret_names],
        rotated=secret_names,
    )
    session.commit()
    return changed


def public_settings(secrets: SecretBox, client: Client) -> dict[str, Any]:
    """The directory settings without their secrets: what a page or a prompt may show."""
    from directory_adapters import SCHEMAS

    settings = directory_settings(secrets, client)
    schema = SCHEMAS.get(client.directory_kind)
    hidden = schema.secrets() if schema is not None else frozenset(settings)
    return {name: value for name, value in settings.items() if name not in hidden}


def _is_secret(kind: str, name: str) -> bool:
    from directory_adapters import SCHEMAS

    schema = SCHEMAS.get(kind)
    return schema is not None and name in schema.secrets()


def set_disabled(session: Session, actor: Actor, client: Client, *, disabled: bool) -> bool:
    """Disable (or enable again) a client. Commits; False when it already was.

    Users of a disabled client who text RESET or UNLOCK are told so by SMS, and nothing
    reaches the directory; invitations cannot be sent.
    """
    _visible(actor, client)
    actor.require(Permission.ONBOARD)
    if (client.disabled_at is not None) == disabled:
        return False
    client.disabled_at = utcnow() if disabled else None
    audit.record(
        session,
        "client.disabled" if disabled else "client.enabled",
        actor=actor,
        client_id=client.id,
    )
    session.commit()
    return True


def remove_client(session: Session, actor: Actor, client: Client, *, confirm: str) -> None:
    """Remove a client with its users and requests; ``confirm`` must repeat its slug. Commits.

    The audit trail is kept: its events stay (without the client link) and one more
    names the removed client and who removed it.
    """
    _visible(actor, client)
    actor.require(Permission.ONBOARD)
    if confirm.strip() != client.slug:
        raise Invalid("confirm", f"type the client's slug ({client.slug}) to confirm")
    audit.record(
        session,
        "client.removed",
        actor=actor,
        client_id=None,
        slug=client.slug,
        name=client.name,
        removed_client_id=client.id,
    )
    # The foreign keys cascade: users, their requests and invitations, its admins go too.
    session.execute(delete(Client).where(Client.id == client.id))
    session.commit()
    session.expunge(client)


@dataclass(frozen=True)
class Finding:
    level: str  # "ok" | "warning" | "problem"
    topic: str
    message: str
    missing: str | None = None  # the right to grant, when that is the fix


@dataclass(frozen=True)
class ConnectionReport:
    kind: str
    findings: list[Finding] = field(default_factory=list)

    @property
    def problems(self) -> int:
        return sum(finding.level == "problem" for finding in self.findings)


def test_connection(app: Blink, actor: Actor, client: Client) -> ConnectionReport:
    """Check the client's directory and say, step by step, what is wrong in plain words.

    Every kind gets its adapter's connection check; Active Directory and Entra ID also
    their step-by-step diagnosis. Nothing changes, so nothing is audited.
    """
    _visible(actor, client)
    actor.require(Permission.ONBOARD)
    kind = client.directory_kind
    try:
        settings = directory_settings(app.secrets, client)
    except SecretBoxError as err:
        return ConnectionReport(kind, [Finding("problem", "settings", str(err))])
    return check_settings(kind, settings)


def check_settings(kind: str, settings: Mapping[str, Any]) -> ConnectionReport:
    """The findings for directory settings that are not stored yet (the add wizard)."""
    from directory_adapters import diagnose

    findings: list[Finding] = []
    try:
        adapter = create_adapter(kind, settings)
        try:
            adapter.check_connection()
        finally:
            close = getattr(adapter, "close", None)  # adapters that hold a connection
            if callable(close):
                close()
    except DirectoryError as err:
        findings.append(Finding("problem", f"{kind} connection", err.message))
    else:
        findings.append(
            Finding("ok", f"{kind} connection", "the directory answers to these settings")
        )
    for found in diagnose(kind, settings):
        findings.append(
            Finding(found.level, found.topic, found.message, getattr(found, "missing", None))
        )
    return ConnectionReport(kind, findings)


def require_enabled(client: Client) -> None:
    """Refuse work that would reach a disabled client's directory or users."""
    if client.disabled_at is not None:
        raise Conflict(f"client {client.slug} is disabled: enable it first")
