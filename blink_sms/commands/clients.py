"""``blink-sms clients``: add, list and check client organisations."""

from __future__ import annotations

import json
from typing import Any

import click
from sqlalchemy import select

from directory_adapters import ADAPTERS

from ..context import blink
from ..crypto import SecretBoxError
from ..liveness import queue_health
from ..models import Client
from ..services.clients import create_client
from .base import with_app


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


@clients.command("add")
@click.option("--slug", required=True, help="Short id: lowercase letters, digits, dashes.")
@click.option("--name", required=True)
@click.option("--directory", "kind", required=True, type=click.Choice(sorted(ADAPTERS)))
@click.option("--setting", "pairs", multiple=True, help="Directory setting KEY=VALUE (repeat).")
@click.option(
    "--secret",
    "secrets_",
    multiple=True,
    help="Name of a secret directory setting to prompt for (not echoed), e.g. bind_password.",
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
    region: str,
    language: str,
    sender: str | None,
    support: str,
) -> None:
    """Add a client; directory settings are stored encrypted."""
    settings = _settings_pairs(pairs)
    for secret in secrets_:
        settings[secret] = click.prompt(secret, hide_input=True)
    app = blink()
    with app.db.session() as session:
        if session.execute(select(Client.id).where(Client.slug == slug)).first():
            raise click.ClickException(f"a client with slug {slug!r} exists already")
        try:
            client = create_client(
                session,
                app.secrets,
                slug=slug,
                name=name,
                directory_kind=kind,
                directory_settings=settings,
                actor="cli",
                default_region=region.upper(),
                language=language,
                sender_number=sender,
                support_contact=support,
            )
        except ValueError as err:
            raise click.ClickException(str(err)) from None
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
        rows = session.execute(select(Client).order_by(Client.slug)).scalars().all()
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


def _diagnosis(kind: str, settings: dict[str, Any]) -> list[Any]:
    """The step-by-step findings of directories that offer them (AD, Entra ID)."""
    if kind == "active_directory":
        from directory_adapters.active_directory import diagnose as diagnose_ad

        return list(diagnose_ad(settings))
    if kind == "entra_id":
        from directory_adapters.entra_id import diagnose as diagnose_entra

        return list(diagnose_entra(settings))
    return []


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
    from directory_adapters import DirectoryError, create_adapter

    app = blink()
    with app.db.session() as session:
        client = session.execute(select(Client).where(Client.slug == slug)).scalar_one_or_none()
        if client is None:
            raise click.ClickException(f"no client with slug {slug!r}")
        kind = client.directory_kind
        try:
            settings = app.secrets.decrypt_json(client.directory_settings_encrypted)
        except SecretBoxError as err:
            # The operator's next step is about the key, not the directory: one line.
            click.echo(f"{slug}: {err}")
            raise SystemExit(1) from None
    problems = 0
    try:
        adapter = create_adapter(kind, settings)
        try:
            adapter.check_connection()
        finally:
            close = getattr(adapter, "close", None)  # adapters that hold a connection
            if callable(close):
                close()
    except DirectoryError as err:
        problems += 1
        click.echo(f"{_MARKS['problem']} {kind} connection: {err.message}")
    else:
        click.echo(f"{_MARKS['ok']} {kind} connection: the directory answers to these settings")
    for finding in _diagnosis(kind, settings):
        problems += finding.level == "problem"
        missing = getattr(finding, "missing", None)
        grant = f" (grant: {missing})" if missing else ""
        click.echo(f"{_MARKS[finding.level]} {finding.topic}: {finding.message}{grant}")
    if problems:
        click.echo(f"{slug}: {problems} problem(s) to fix")
        raise SystemExit(1)
    click.echo(f"{slug}: the directory connection works")
