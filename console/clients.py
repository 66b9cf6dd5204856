"""Onboarding a client (a two-step wizard) and a client's settings page.

The wizard works without JavaScript: step 1 picks the directory kind and the client's
details, step 2 shows the settings form generated from that kind's schema, with "Test
connection" (the typed settings, nothing saved) and "Save". Values travel between the
steps in hidden fields; typed secrets travel sealed (see :mod:`console.directory_form`),
so the admin never types a password twice and no page ever holds one in clear.

The settings page edits the client's options and directory settings (secrets are
write-only: an empty box keeps the stored one), rotates a secret on its own, tests the
stored connection, disables or enables the client, and removes it. Branding and mail
have their own pages (:mod:`console.branding`, :mod:`console.mail`).
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from flask import flash, redirect, render_template, request, url_for
from sqlalchemy.orm import Session
from werkzeug.wrappers.response import Response

from blink_sms.actors import Actor, Permission
from blink_sms.context import blink
from blink_sms.crypto import SecretBoxError
from blink_sms.messaging.i18n import SUPPORTED_LANGUAGES
from blink_sms.models import Client
from blink_sms.services import clients, scope
from blink_sms.services.errors import Conflict, Invalid
from directory_adapters import SCHEMAS, ConfigurationError, SettingsSchema

from . import directory_form as dirform
from .auth import actor, needs
from .blueprint import bp

# Step 1 of the wizard, in form order, with what the page calls them.
DETAILS = {
    "name": "Name",
    "slug": "Short name (slug)",
    "sender_number": "Gateway number",
    "default_region": "Phone region",
    "language": "Language",
    "support_contact": "Support contact",
}
NEW_DEFAULTS = {"default_region": "US", "language": "en"}
# The options of the settings page: text boxes, then checkboxes.
OPTIONS = {
    "name": "Name",
    "support_contact": "Support contact",
    "sender_number": "Gateway number",
    "messaging_service_sid": "Messaging service SID",
    "default_region": "Phone region",
    "language": "Language",
    "password_length": "One-time password length",
    "resets_per_hour": "Resets per user per hour",
    "resets_per_day": "Resets per user per day",
    "lockout_poll_seconds": "Lockout watch: seconds between polls",
    "lockout_alert_email": "Lockout digest to",
    "expiry_reminder_days": "Password-expiry reminders (days before)",
    "allowed_countries": "Countries enrollment codes may go to",
    "binding_policy": "Phone binding (any, directory, approval)",
    "reset_pin": "Reset PIN (off, optional, required)",
    "sim_swap_policy": "SIM swap check (off, warn, block)",
    "sim_swap_days": "SIM swap: days that count as recent",
}
FLAGS = {
    "unlock_on_reset": "Unlock the account on every reset",
    "must_change_at_next_logon": "Users must change the one-time password at next sign-in",
    "lockout_watch": "Watch for lockouts and text the user (reply UNLOCK or RESET)",
    "reset_notices": "Email the user after every reset or unlock",
}
MAX_INPUT = 400


def _onboarder(who: Actor) -> bool:
    return who.msp_wide and who.may(Permission.ONBOARD)


def suggest_slug(name: str) -> str:
    """A slug from a name: "Café Contoso B.V." → "cafe-contoso-b-v"."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:63].strip("-")


def _details(form: Any) -> dict[str, str]:
    return {name: form.get(name, "").strip()[:MAX_INPUT] for name in DETAILS}


def _admin_id() -> int | None:
    return actor().admin_id


# --- the add wizard ----------------------------------------------------------------------------


def _step1(
    details: dict[str, str],
    kind: str,
    *,
    carried: dict[str, str] | None = None,
    sealed: str = "",
    errors: dict[str, str] | None = None,
) -> tuple[str, int]:
    return render_template(
        "console/clients/new_step1.html",
        schemas=SCHEMAS,
        details=details,
        kind=kind,
        carried=carried or {},
        sealed=sealed,
        languages=SUPPORTED_LANGUAGES,
        errors=errors or {},
        labels={**DETAILS, "directory_kind": "Directory"},
    ), (400 if errors else 200)


def _step2(
    details: dict[str, str],
    schema: SettingsSchema,
    values: dict[str, str],
    *,
    sealed: str = "",
    kept: frozenset[str] = frozenset(),
    errors: dict[str, str] | None = None,
    report: clients.ConnectionReport | None = None,
) -> tuple[str, int]:
    errors = errors or {}
    return render_template(
        "console/clients/new_step2.html",
        schema=schema,
        details=details,
        values=values,
        sealed=sealed,
        kept=kept,
        languages=SUPPORTED_LANGUAGES,
        errors=errors,
        details_open=bool(set(errors) & set(DETAILS)),
        report=report,
        labels={**DETAILS, **dirform.labels(schema), "directory_settings": "Directory settings"},
    ), (400 if errors else 200)


@bp.route("/clients/new", methods=["GET", "POST"])
@needs(_onboarder)
def new_client() -> Any:
    """Add a client: its directory kind and details, then its directory settings."""
    if request.method == "GET":
        return _step1(dict(NEW_DEFAULTS), "")
    app = blink()
    form = request.form
    action = form.get("action", "")
    details = _details(form)
    kind = form.get("directory_kind", "")
    schema = SCHEMAS.get(kind)
    if schema is None:
        return _step1(details, kind, errors={"directory_kind": "choose the kind of directory"})
    # Settings typed for another kind (the admin went back and changed it) do not apply.
    same_kind = form.get("carried_kind", kind) == kind
    values = dirform.typed(schema, form) if same_kind else {}
    # The secrets typed on an earlier step (sealed) and just now: the newest win.
    secrets = dirform.unseal(app.secrets, form.get("sealed", ""), _admin_id(), kind)
    for name in schema.secrets():
        typed_now = schema.field(name).parse(values.get(name))
        if typed_now is not None:
            secrets[name] = typed_now
    sealed = dirform.seal(app.secrets, _admin_id(), kind, secrets)
    if action == "back":
        carried = dirform.shown(schema, dirform.checkbox_values(schema, values))
        return _step1(details, kind, carried=carried, sealed=sealed)
    if action == "next":
        details["slug"] = details["slug"] or suggest_slug(details["name"])
        shown = dirform.shown(schema, values) if values else dirform.from_settings(schema, None)
        return _step2(details, schema, shown, sealed=sealed, kept=frozenset(secrets))
    return _test_or_save(action, details, schema, values, secrets, sealed)


def _test_or_save(
    action: str,
    details: dict[str, str],
    schema: SettingsSchema,
    values: dict[str, str],
    secrets: dict[str, Any],
    sealed: str,
) -> Any:
    """Step 2's buttons: "Test connection" (nothing saved) and "Save"."""
    app = blink()
    shown = dirform.shown(schema, values)
    kept = frozenset(secrets)
    try:
        settings = schema.parse_form(values, previous=secrets)
    except ConfigurationError as err:
        errors = {dirform.field_of(schema, err.message): err.message}
        return _step2(details, schema, shown, errors=errors, sealed=sealed, kept=kept)
    if action == "test":
        report = clients.check_settings(schema.kind, settings)
        return _step2(details, schema, shown, report=report, sealed=sealed, kept=kept)
    with app.db.session() as db:
        try:
            client = clients.create_client(
                db,
                app.secrets,
                actor(),
                directory_kind=schema.kind,
                directory_settings=settings,
                **details,
            )
            db.commit()
        except Invalid as err:
            db.rollback()
            field = err.field
            if field == "directory_settings":
                field = dirform.field_of(schema, err.message)
            errors = {field: err.message}
            return _step2(details, schema, shown, errors=errors, sealed=sealed, kept=kept)
        flash(f"{client.name} added. Next: import the users who may reset by text.", "success")
        return redirect(url_for("console.client", slug=client.slug), 303)


# --- the settings page -------------------------------------------------------------------------


def _stored_secret_names(client: Client, schema: SettingsSchema | None) -> frozenset[str]:
    """Which secrets are set (their names only: the values never reach a page)."""
    if schema is None:
        return frozenset()
    try:
        stored = clients.directory_settings(blink().secrets, client)
    except SecretBoxError:
        return frozenset()
    return frozenset(name for name in schema.secrets() if stored.get(name))


def _option_values(client: Client) -> dict[str, str]:
    values = {
        name: "" if getattr(client, name) is None else str(getattr(client, name))
        for name in OPTIONS
    }
    values.update({name: "on" if getattr(client, name) else "" for name in FLAGS})
    return values


def _render_settings(
    db: Session,
    client: Client,
    *,
    options: dict[str, str] | None = None,
    settings: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    report: clients.ConnectionReport | None = None,
) -> tuple[str, int]:
    """The settings page; ``options``/``settings`` are what the admin typed, if anything."""
    app = blink()
    schema = SCHEMAS.get(client.directory_kind)
    unreadable = None
    if settings is None and schema is not None:
        try:
            settings = dirform.from_settings(schema, clients.public_settings(app.secrets, client))
        except SecretBoxError as err:
            unreadable = f"The stored directory settings cannot be read ({err}): enter them again."
            settings = dirform.from_settings(schema, None)
    errors = errors or {}
    return render_template(
        "console/clients/settings.html",
        client=client,
        schema=schema,
        options=options if options is not None else _option_values(client),
        option_labels=OPTIONS,
        flags=FLAGS,
        languages=SUPPORTED_LANGUAGES,
        values=settings or {},
        kept=_stored_secret_names(client, schema),
        unreadable=unreadable,
        errors=errors,
        report=report,
        labels={
            **OPTIONS,
            **FLAGS,
            **(dirform.labels(schema) if schema else {}),
            "directory_settings": "Directory settings",
            "confirm": "Confirmation",
            "rotate": "New secret",
        },
    ), (400 if errors else 200)


def _settings_client(db: Session, slug: str) -> Client:
    client = scope.client(db, actor(), slug)
    actor().require(Permission.ONBOARD)  # a client admin sees their client, not this page
    return client


@bp.route("/clients/<slug>/settings", methods=["GET", "POST"])
def edit_client(slug: str) -> Any:
    """The client's options (form=options) and its directory settings (form=directory)."""
    app = blink()
    with app.db.session() as db:
        client = _settings_client(db, slug)
        if request.method == "GET":
            return _render_settings(db, client)
        if request.form.get("form") == "directory":
            return _save_directory(db, client)
        typed = {name: request.form.get(name, "").strip()[:MAX_INPUT] for name in OPTIONS}
        flags = {name: request.form.get(name) == "on" for name in FLAGS}
        try:
            changed = clients.update_client(db, actor(), client, **typed, **flags)
        except Invalid as err:
            db.rollback()
            shown = {**typed, **{name: "on" if on else "" for name, on in flags.items()}}
            return _render_settings(db, client, options=shown, errors={err.field: err.message})
        flash(
            f"Saved: {', '.join(OPTIONS.get(n, FLAGS.get(n, n)) for n in changed)}"
            if changed
            else "Nothing changed",
            "success",
        )
    return redirect(url_for("console.edit_client", slug=slug), 303)


# Parsing a secret left empty as "keep": the schema takes ``previous`` for that, and
# set_directory_settings keeps an absent secret, so the view never holds the stored one.
_KEEP = object()


def _save_directory(db: Session, client: Client) -> Any:
    app = blink()
    schema = SCHEMAS.get(client.directory_kind)
    if schema is None:
        raise Conflict(f"this deployment does not know the {client.directory_kind} directory")
    values = dirform.typed(schema, request.form)
    shown = dirform.shown(schema, values)
    try:
        parsed = schema.parse_form(values, previous=dict.fromkeys(schema.secrets(), _KEEP))
        settings = {name: value for name, value in parsed.items() if value is not _KEEP}
        changed = clients.set_directory_settings(db, app.secrets, actor(), client, settings)
    except (ConfigurationError, Invalid) as err:
        db.rollback()
        message = err.message
        return _render_settings(
            db, client, settings=shown, errors={dirform.field_of(schema, message): message}
        )
    flash(
        f"Directory settings saved: {', '.join(changed)}" if changed else "Nothing changed",
        "success",
    )
    return redirect(url_for("console.edit_client", slug=client.slug), 303)


@bp.post("/clients/<slug>/rotate-secret")
def rotate_secret(slug: str) -> Any:
    """Replace only the directory's secrets (a service account's new password)."""
    app = blink()
    with app.db.session() as db:
        client = _settings_client(db, slug)
        schema = SCHEMAS.get(client.directory_kind)
        if schema is None or not schema.secrets():
            raise Conflict("this directory has no secret to rotate")
        new = {}
        for name in schema.secrets():
            value = schema.field(name).parse(request.form.get(dirform.PREFIX + name))
            if value is not None:
                new[name] = value
        if not new:
            return _render_settings(db, client, errors={"rotate": "type the new secret"})
        try:
            settings = {**clients.public_settings(app.secrets, client), **new}
            changed = clients.set_directory_settings(db, app.secrets, actor(), client, settings)
        except SecretBoxError:
            message = "the stored settings cannot be read: enter all of them in the form below"
            return _render_settings(db, client, errors={"rotate": message})
        except Invalid as err:
            db.rollback()
            return _render_settings(db, client, errors={"rotate": err.message})
    labels = [schema.field(name).label for name in changed if name in schema.secrets()]
    flash(
        f"New {', '.join(labels)} saved: the next directory call uses it"
        if labels
        else "That is the secret already stored: nothing changed",
        "success",
    )
    return redirect(url_for("console.edit_client", slug=slug), 303)


@bp.post("/clients/<slug>/test")
def test_client(slug: str) -> Any:
    """Test the stored directory settings and show each finding (nothing is changed)."""
    app = blink()
    with app.db.session() as db:
        client = _settings_client(db, slug)
        report = clients.test_connection(app, actor(), client)
        return _render_settings(db, client, report=report)


@bp.post("/clients/<slug>/disable")
def disable_client(slug: str) -> Response:
    """Disable (disabled=1) or enable again (disabled=0) a client."""
    disable = request.form.get("disabled", "1") != "0"
    with blink().db.session() as db:
        client = _settings_client(db, slug)
        changed = clients.set_disabled(db, actor(), client, disabled=disable)
        if not changed:
            flash(f"{client.name} was already {'disabled' if disable else 'enabled'}", "info")
        elif disable:
            flash(
                f"{client.name} is disabled: users who text RESET or UNLOCK are told so by "
                "text, and nothing reaches the directory",
                "success",
            )
        else:
            flash(f"{client.name} is enabled again: resets by text work", "success")
    return redirect(url_for("console.edit_client", slug=slug), 303)


@bp.post("/clients/<slug>/remove")
def remove_client(slug: str) -> Any:
    """Remove the client once the admin typed its slug; its audit trail stays."""
    with blink().db.session() as db:
        client = _settings_client(db, slug)
        name = client.name
        try:
            clients.remove_client(
                db, actor(), client, confirm=request.form.get("confirm", "")[:MAX_INPUT]
            )
        except Invalid as err:
            db.rollback()
            return _render_settings(db, client, errors={err.field: err.message})
    flash(f"{name} removed, with its users and their requests. Its audit trail is kept.", "success")
    return redirect(url_for("console.home"), 303)


# The branding and mail pages of a client, in their own modules.
from . import branding, mail  # noqa: E402, F401  -- registers their routes on the blueprint
