"""``blink-sms clients``: add, edit, test, disable and remove client organisations.

Thin over :mod:`blink_sms.services.clients`, acting as the command line.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
from sqlalchemy import select
from sqlalchemy.orm import Session

from directory_adapters import ADAPTERS

from ..actors import COMMAND_LINE
from ..context import blink
from ..liveness import queue_health
from ..models import Client
from ..services import clients as clients_service
from ..services import scope
from ..services.clients import create_client
from .base import refusals, with_app


def _settings_pairs(pairs: tuple[str, ...]) -> dict[str, object]:
    values: dict[str, object] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--setting")
        try:
            values[key] = json.loads(raw)  # numbers, true/false, lists
        except json.JSONDecodeError:
            values[key] = raw
    return values


@click.group()
def clients() -> None:
    """Client organisations and their directories."""


def read_secrets(names: tuple[str, ...], files: tuple[str, ...]) -> dict[str, str]:
    """Secret settings: prompted for on a terminal (not echoed); read from standard input,
    one line each in the order given, when it is a pipe (no prompt, no getpass warning);
    or read from files (``NAME=PATH``, one trailing newline dropped)."""
    secrets: dict[str, str] = {}
    piped = not sys.stdin.isatty()
    for name in names:
        if piped:
            value = sys.stdin.readline().removesuffix("\n").removesuffix("\r")
        else:
            value = click.prompt(name, hide_input=True)
        if not value:
            raise click.UsageError(f"--secret {name}: no value was given")
        secrets[name] = value
    for pair in files:
        name, sep, path = pair.partition("=")
        if not sep or not name or not path:
            raise click.UsageError(f"--secret-file {pair!r}: give NAME=PATH")
        try:
            value = Path(path).read_text(encoding="utf-8").removesuffix("\n")
        except OSError as err:
            raise click.UsageError(
                f"--secret-file {name}: cannot read {path}: {err.strerror}"
            ) from None
        if not value:
            raise click.UsageError(f"--secret-file {name}: {path} is empty")
        secrets[name] = value
    return secrets


@clients.command("add")
@click.option("--slug", required=True, help="Short id: lowercase letters, digits, dashes.")
@click.option("--name", required=True)
@click.option("--directory", "kind", required=True, type=click.Choice(sorted(ADAPTERS)))
@click.option("--setting", "pairs", multiple=True, help="Directory setting KEY=VALUE (repeat).")
@click.option(
    "--secret",
    "secrets_",
    multiple=True,
    help="Name of a secret directory setting to prompt for (not echoed), e.g. bind_password;"
    " piped in, one line each.",
)
@click.option(
    "--secret-file",
    "secret_files",
    multiple=True,
    help="A secret setting read from a file: NAME=PATH (e.g. a Docker or systemd secret).",
)
@click.option("--region", default="US", show_default=True, help="Default phone region (ISO).")
@click.option("--language", default="en", show_default=True)
@click.option("--sender", help="Gateway number in E.164 that texts this client's users.")
@click.option("--support", default="your IT support desk", help="Shown in apology texts.")
@with_app
def add(
    slug: str,
    name: str,
    kind: str,
    pairs: tuple[str, ...],
    secrets_: tuple[str, ...],
    secret_files: tuple[str, ...],
    region: str,
    language: str,
    sender: str | None,
    support: str,
) -> None:
    """Add a client; directory settings are stored encrypted."""
    settings = {**_settings_pairs(pairs), **read_secrets(secrets_, secret_files)}
    client_options: dict[str, Any] = {
        "slug": slug,
        "name": name,
        "directory_kind": kind,
        "directory_settings": settings,
        "default_region": region,
        "language": language,
        "sender_number": sender,
        "support_contact": support,
    }
    app = blink()
    with app.db.session() as session, refusals():
        # Every bad option at once, one line each, rather than one per attempt.
        problems = clients_service.onboarding_problems(session, **client_options)
        if problems:
            for problem in problems:
                click.echo(f"Error: {problem}", err=True)
            sys.exit(1)
        client = create_client(session, app.secrets, COMMAND_LINE, **client_options)
        session.commit()
    click.echo(
        f"added client {slug} ({kind}); its jobs go on queue {client.queue_name}"
        " (running workers started without --client pick it up by themselves)"
    )


@clients.command("list")
@with_app
def list_() -> None:
    """List clients."""
    with blink().db.session() as session:
        rows = session.execute(scope.clients(COMMAND_LINE).order_by(Client.slug)).scalars().all()
    if not rows:
        click.echo("no clients yet: add one with 'blink-sms clients add'")
        return
    workers = _worker_health()
    for client in rows:
        click.echo(
            f"{client.slug:<20} {client.name:<30} {client.directory_kind:<18} "
            f"{client.sender_number or '-':<16} {client.default_region:<3} "
            f"{workers.get(client.slug, '')}".rstrip()
        )


def _worker_health() -> dict[str, str]:
    """slug -> what is known of its queue's workers ('' without Redis: jobs run in-process)."""
    services = blink()
    if services.redis is None:
        return {}
    try:
        return {h.client: h.describe() for h in queue_health(services)}
    except Exception as err:  # listing clients must work while Redis is down
        return dict.fromkeys(_all_slugs(), f"workers unknown ({type(err).__name__})")


def _all_slugs() -> list[str]:
    with blink().db.session() as session:
        return list(session.execute(select(Client.slug)).scalars())


_MARKS = {"ok": "ok     ", "warning": "WARNING", "problem": "PROBLEM"}


def _client(session: Session, slug: str) -> Client:
    try:
        return scope.client(session, COMMAND_LINE, slug)
    except scope.NotFound:
        raise click.ClickException(f"no client with slug {slug!r}") from None


@clients.command("test")
@click.argument("slug")
@with_app
def test(slug: str) -> None:
    """Check a client's directory connection and say what is wrong (exit 1 if anything is).

    Every kind of directory gets its adapter's own connection check. Active Directory
    also gets a step-by-step diagnosis (DCs reachable, TLS, the service account, base
    DN and scopes, the rights on a real user of each scope); Entra ID the token, its
    application permissions and roles, and whether the lockout watch can work.
    """
    app = blink()
    with app.db.session() as session:
        report = clients_service.test_connection(app, COMMAND_LINE, _client(session, slug))
    if report.findings and report.findings[0].topic == "settings":
        # The operator's next step is about the key, not the directory: one line.
        click.echo(f"{slug}: {report.findings[0].message}")
        raise SystemExit(1)
    for finding in report.findings:
        grant = f" (grant: {finding.missing})" if finding.missing else ""
        click.echo(f"{_MARKS[finding.level]} {finding.topic}: {finding.message}{grant}")
    if report.problems:
        click.echo(f"{slug}: {report.problems} problem(s) to fix")
        raise SystemExit(1)
    click.echo(f"{slug}: the directory connection works")


@clients.command("edit")
@click.argument("slug")
@click.option("--name")
@click.option("--region", help="Default phone region (ISO), e.g. NL.")
@click.option("--language", help="Language of texts and pages: en, nl, es, de, fr.")
@click.option("--sender", help="Gateway number in E.164 ('' for none).")
@click.option("--support", help="Shown in apology texts.")
@click.option("--resets-per-hour", type=int)
@click.option("--resets-per-day", type=int)
@click.option("--password-length", type=int)
@click.option("--lockout-watch/--no-lockout-watch", default=None, help="Text users when locked.")
@click.option("--lockout-poll-seconds", help="Seconds between lockout polls ('' for default).")
@click.option("--lockout-alert-email", help="Email a digest of locked users here ('' for none).")
@click.option("--reset-notices/--no-reset-notices", default=None, help="Email after resets.")
@click.option("--expiry-reminders", help="Days before expiry to text, e.g. 7,3,1 ('' for off).")
@click.option("--countries", help="Where enrollment codes may go, e.g. US,CA ('' for the region).")
@click.option(
    "--binding-policy",
    type=click.Choice(["any", "directory", "approval"]),
    help="Which number a user may bind: any, the directory's, or with an admin's approval.",
)
@click.option(
    "--reset-pin", type=click.Choice(["off", "optional", "required"]), help="PIN in texts."
)
@click.option("--sim-swap", type=click.Choice(["off", "warn", "block"]), help="SIM swap check.")
@click.option("--sim-swap-days", type=int, help="Days a SIM swap counts as recent (1-90).")
@with_app
def edit(
    slug: str,
    name: str | None,
    region: str | None,
    language: str | None,
    sender: str | None,
    support: str | None,
    resets_per_hour: int | None,
    resets_per_day: int | None,
    password_length: int | None,
    lockout_watch: bool | None,
    lockout_poll_seconds: str | None,
    lockout_alert_email: str | None,
    reset_notices: bool | None,
    expiry_reminders: str | None,
    countries: str | None,
    binding_policy: str | None,
    reset_pin: str | None,
    sim_swap: str | None,
    sim_swap_days: int | None,
) -> None:
    """Change a client's options; only the ones given change."""
    options = {
        key: value
        for key, value in (
            ("name", name),
            ("default_region", region),
            ("language", language),
            ("sender_number", sender),
            ("support_contact", support),
            ("resets_per_hour", resets_per_hour),
            ("resets_per_day", resets_per_day),
            ("password_length", password_length),
            ("lockout_watch", lockout_watch),
            ("lockout_poll_seconds", lockout_poll_seconds),
            ("lockout_alert_email", lockout_alert_email),
            ("reset_notices", reset_notices),
            ("expiry_reminder_days", expiry_reminders),
            ("allowed_countries", countries),
            ("binding_policy", binding_policy),
            ("reset_pin", reset_pin),
            ("sim_swap_policy", sim_swap),
            ("sim_swap_days", sim_swap_days),
        )
        if value is not None
    }
    if not options:
        raise click.UsageError("give at least one option to change")
    with blink().db.session() as session, refusals():
        changed = clients_service.update_client(
            session, COMMAND_LINE, _client(session, slug), **options
        )
    click.echo(f"{slug}: changed {', '.join(changed)}" if changed else f"{slug}: nothing changed")


@clients.command("set-directory")
@click.argument("slug")
@click.option("--setting", "pairs", multiple=True, help="Directory setting KEY=VALUE (repeat).")
@click.option(
    "--secret",
    "secrets_",
    multiple=True,
    help="A secret setting to prompt for (not echoed): rotate bind_password or client_secret;"
    " piped in, one line each.",
)
@click.option(
    "--secret-file",
    "secret_files",
    multiple=True,
    help="A secret setting read from a file: NAME=PATH.",
)
@click.option("--replace", is_flag=True, help="Replace all settings instead of changing some.")
@with_app
def set_directory(
    slug: str,
    pairs: tuple[str, ...],
    secrets_: tuple[str, ...],
    secret_files: tuple[str, ...],
    replace: bool,
) -> None:
    """Change directory settings or rotate a secret (secrets are never printed)."""
    changes = {**_settings_pairs(pairs), **read_secrets(secrets_, secret_files)}
    if not changes:
        raise click.UsageError("give --setting KEY=VALUE, --secret NAME or --secret-file NAME=PATH")
    app = blink()
    with app.db.session() as session, refusals():
        client = _client(session, slug)
        settings = {} if replace else clients_service.public_settings(app.secrets, client)
        settings.update(changes)
        changed = clients_service.set_directory_settings(
            session, app.secrets, COMMAND_LINE, client, settings
        )
    click.echo(f"{slug}: changed {', '.join(changed)}" if changed else f"{slug}: nothing changed")


@clients.command()
@click.argument("slug")
@click.option("--enable", is_flag=True, help="Enable the client again instead.")
@with_app
def disable(slug: str, enable: bool) -> None:
    """Stop resets for a client: its users are told by SMS, nothing reaches its directory."""
    with blink().db.session() as session, refusals():
        changed = clients_service.set_disabled(
            session, COMMAND_LINE, _client(session, slug), disabled=not enable
        )
    state = "enabled" if enable else "disabled"
    click.echo(f"{slug}: {state}" if changed else f"{slug}: already {state}")


@clients.command()
@click.argument("slug")
@click.option("--confirm", help="The slug again, to confirm without a prompt.")
@with_app
def remove(slug: str, confirm: str | None) -> None:
    """Remove a client, its users and their phones from the gateway (the audit stays)."""
    if confirm is None:
        confirm = click.prompt(f"type {slug} to remove it with all its users")
    with blink().db.session() as session, refusals():
        clients_service.remove_client(
            session, COMMAND_LINE, _client(session, slug), confirm=confirm
        )
    click.echo(f"{slug}: removed")
