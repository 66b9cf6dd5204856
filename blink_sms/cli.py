"""The ``blink-sms`` command: serve, worker, scheduler, db upgrade, demo, sms simulate."""

from __future__ import annotations

import os
import secrets
import sys
import tempfile
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import click

from .settings import Settings, SettingsError

if TYPE_CHECKING:
    from flask import Flask


def _app(settings: Settings | None = None) -> Flask:
    from .app import create_app

    return create_app(settings)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Blink SMS: password resets by text message."""


@cli.command()
@click.option("--host", default="0.0.0.0", show_default=True)  # noqa: S104 - a server binds all
@click.option("--port", default=lambda: int(os.environ.get("PORT", "8000")), type=int)
@click.option("--workers", default=lambda: os.cpu_count() or 2, type=int)
def serve(host: str, port: int, workers: int) -> None:
    """Run the web app under gunicorn."""
    from gunicorn.app.base import BaseApplication

    app = _app()

    class Server(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("workers", workers)
            self.cfg.set("accesslog", "-")
            self.cfg.set("logger_class", "blink_sms.serving.GunicornLogger")

        def load(self) -> Flask:
            if app.extensions["blink_sms"].redis is None:
                # No Redis, no scheduler process: periodic work runs in each web worker.
                from .scheduler import start_in_thread

                start_in_thread(app.extensions["blink_sms"])
            return app

    Server().run()


@cli.command()
@click.option("--client", "clients", multiple=True, help="Client slug; default: every client.")
@click.option("--burst", is_flag=True, help="Stop when the queues are empty.")
@click.option(
    "--refresh",
    default=10,
    show_default=True,
    type=click.IntRange(min=1),
    help="Seconds between looks for clients added while the worker runs.",
)
def worker(clients: tuple[str, ...], burst: bool, refresh: int) -> None:
    """Run an RQ worker for the clients' directory queues (and the email queue)."""
    from .context import blink
    from .worker import queue_names, run

    app = _app()
    with app.app_context():
        services = blink()
        if services.redis is None:
            raise click.ClickException(
                "BLINK_REDIS_URL is not set: without Redis, jobs run in the web process"
            )
        try:
            names = queue_names(services, clients)
        except LookupError as missing:
            raise click.ClickException(f"no such client: {missing}") from None
        current = (lambda: names) if clients else (lambda: queue_names(services))
        run(current, connection=services.redis, refresh_every=refresh, burst=burst)


@cli.command()
def scheduler() -> None:
    """Run the scheduler: the one home of periodic work (run exactly one, or more for
    failover: only one is active at a time)."""
    import signal
    import threading

    from .context import blink
    from .scheduler import Scheduler

    app = _app()
    with app.app_context():
        services = blink()
        if services.redis is None:
            raise click.ClickException(
                "BLINK_REDIS_URL is not set: without Redis the web process runs the scheduler"
            )
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        Scheduler(services).run(stop)


@cli.group()
def db() -> None:
    """Database schema."""


@db.command()
def upgrade() -> None:
    """Apply every pending migration."""
    from sqlalchemy.exc import OperationalError

    from .db import upgrade as run_upgrade

    settings = Settings.from_env()
    try:
        run_upgrade(settings.database_url)
    except OperationalError as err:
        reason = str(err.orig).strip().splitlines()[0] if err.orig else type(err).__name__
        raise click.ClickException(f"cannot reach the database: {reason}") from None
    click.echo("database is up to date")


@cli.command()
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--data-dir", type=click.Path(file_okay=False), help="Keep demo data here.")
def demo(port: int, host: str, data_dir: str | None) -> None:
    """Start a self-contained demo: sandbox directory, SMS printed, phone simulator."""
    from .db import upgrade as run_upgrade
    from .demo.seed import api_key, seed

    started = time.perf_counter()
    folder = data_dir or tempfile.mkdtemp(prefix="blink-sms-demo-")
    os.makedirs(folder, exist_ok=True)
    settings = Settings(
        secret_key=secrets.token_urlsafe(32),
        env="development",
        database_url=f"sqlite:///{os.path.join(folder, 'blink-sms.sqlite')}",
        public_url=f"http://{host}:{port}",
        twilio_account_sid="AC" + "0" * 32,
        twilio_auth_token=secrets.token_hex(16),
        sms_backend="console",
        job_retry_intervals=(1, 2),
    )
    run_upgrade(settings.database_url)
    app = _app(settings)
    with app.app_context():
        seed(os.path.join(folder, "sandbox-directory.sqlite"))
        key = api_key()
    from .scheduler import start_in_thread

    start_in_thread(app.extensions["blink_sms"])
    click.echo(
        f"Blink SMS demo ready in {time.perf_counter() - started:.1f} s: "
        f"open http://{host}:{port}/ (the phone simulator, the mailbox, the console)"
        f"  (data in {folder}; Ctrl+C to stop)"
    )
    click.echo(
        f"REST API (docs at http://{host}:{port}/api/v1/docs):  curl -H "
        f"'Authorization: Bearer {key}' http://{host}:{port}/api/v1/clients"
    )
    app.run(host=host, port=port, threaded=True, use_reloader=False)


@cli.group()
def sms() -> None:
    """Tools for the SMS edge."""


# What a refusal of the simulated webhook means, for the operator who sent it.
SIMULATE_REFUSALS = {
    400: "the server refused the form: MessageSid, From, To or Body is missing or malformed",
    403: "the server refused the request: --url must be its BLINK_PUBLIC_URL (the address"
    " Twilio signs), the auth token its BLINK_TWILIO_AUTH_TOKEN and --account-sid its"
    " BLINK_TWILIO_ACCOUNT_SID",
    404: "no webhook at this address: give the server's base URL as --url",
    503: "the server has no Twilio credentials (BLINK_TWILIO_ACCOUNT_SID and"
    " BLINK_TWILIO_AUTH_TOKEN), so its webhooks are off",
}


@sms.command()
@click.option(
    "--url", required=True, help="The server's public base URL, e.g. https://sms.example.com"
)
@click.option("--from", "from_", required=True, help="Sender, E.164 (+31612345678).")
@click.option("--to", required=True, help="The gateway number, E.164.")
@click.option("--body", required=True)
@click.option(
    "--auth-token", help="Default: BLINK_TWILIO_AUTH_TOKEN, as the server reads it (.env too)."
)
@click.option(
    "--account-sid", help="Default: BLINK_TWILIO_ACCOUNT_SID, as the server reads it (.env too)."
)
def simulate(
    url: str, from_: str, to: str, body: str, auth_token: str | None, account_sid: str | None
) -> None:
    """Post a correctly signed inbound SMS webhook to a running server."""
    import requests
    from twilio.request_validator import RequestValidator

    from .settings import read_one

    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise click.BadParameter("must be an http(s) URL", param_hint="--url")
    auth_token = auth_token or read_one("TWILIO_AUTH_TOKEN")
    if not auth_token:
        raise click.UsageError(
            "no auth token: pass --auth-token, or set BLINK_TWILIO_AUTH_TOKEN (environment or .env)"
        )
    account_sid = account_sid or read_one("TWILIO_ACCOUNT_SID") or "AC" + "0" * 32
    endpoint = url.rstrip("/")
    if not endpoint.endswith("/webhooks/twilio/sms"):
        endpoint += "/webhooks/twilio/sms"
    params: dict[str, Any] = {
        "MessageSid": "SM" + secrets.token_hex(16),
        "AccountSid": account_sid,
        "From": from_,
        "To": to,
        "Body": body,
        "NumMedia": "0",
        "NumSegments": "1",
        "SmsStatus": "received",
        "ApiVersion": "2010-04-01",
    }
    signature = RequestValidator(auth_token).compute_signature(endpoint, params)
    try:
        response = requests.post(
            endpoint, data=params, headers={"X-Twilio-Signature": signature}, timeout=15
        )
    except requests.RequestException as err:
        raise click.ClickException(f"cannot reach {endpoint}: {type(err).__name__}") from None
    click.echo(f"HTTP {response.status_code}")
    if response.status_code < 400:
        click.echo(response.text)
        return
    click.echo(
        SIMULATE_REFUSALS.get(response.status_code, "the server failed to answer: its log says why")
    )
    sys.exit(1)


def _register() -> None:
    from .commands.admins import admins
    from .commands.api_keys import api_keys_group
    from .commands.audit import audit
    from .commands.branding import branding
    from .commands.clients import clients
    from .commands.lockouts import lockouts
    from .commands.reminders import reminders_group
    from .commands.reports import reports
    from .commands.sandbox import sandbox
    from .commands.secrets import secrets as secrets_
    from .commands.settings import settings_group
    from .commands.users import users
    from .commands.webhooks import webhooks_group

    cli.add_command(admins)
    cli.add_command(api_keys_group)
    cli.add_command(audit)
    cli.add_command(clients)
    cli.add_command(lockouts)
    cli.add_command(users)
    cli.add_command(branding)
    cli.add_command(secrets_)
    cli.add_command(settings_group)
    cli.add_command(reports)
    cli.add_command(reminders_group)
    cli.add_command(webhooks_group)
    cli.add_command(sandbox)


_register()


def main() -> None:
    """Console script entry point: settings errors, and a database without the schema,
    become one clear line instead of a traceback."""
    from sqlalchemy.exc import DBAPIError

    from .db import missing_schema

    try:
        cli(standalone_mode=True)
    except SettingsError as err:
        click.echo(f"blink-sms: {err}", err=True)
        sys.exit(2)
    except DBAPIError as err:
        if not missing_schema(err):
            raise
        click.echo(
            "blink-sms: the database has no schema yet, or an older one:"
            " run 'blink-sms db upgrade' first",
            err=True,
        )
        sys.exit(1)
