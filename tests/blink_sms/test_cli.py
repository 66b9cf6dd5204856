"""The blink-sms command: help, db upgrade, sms simulate against a running server, worker."""

from __future__ import annotations

import os
import secrets
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy
from click.testing import CliRunner, Result
from werkzeug.serving import BaseWSGIServer, make_server

from blink_sms.app import create_app
from blink_sms.cli import cli
from blink_sms.context import Blink
from blink_sms.settings import Settings
from tests.conftest import ACCOUNT_SID, AUTH_TOKEN, GATEWAY, Persona

TABLES = {"clients", "users", "reset_requests", "inbound_messages", "audit_events"}


@pytest.fixture(autouse=True)
def _in_a_folder_without_dotenv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def run(*args: str, env: dict[str, str | None] | None = None) -> Result:
    """The command with no BLINK_* variable but these."""
    unset: dict[str, str | None] = {k: None for k in os.environ if k.startswith("BLINK_")}
    return CliRunner().invoke(cli, list(args), env=unset | (env or {}))


def test_help_lists_every_command() -> None:
    result = run("--help")
    assert result.exit_code == 0, result.output
    commands = result.output.split("Commands:")[1].split()
    for command in ("serve", "worker", "db", "demo", "sms"):
        assert command in commands


# --- db upgrade ------------------------------------------------------------------------------


@pytest.fixture
def empty_database_url(database_template: Any, tmp_path: Path) -> str:
    """A database with no tables: a fresh SQLite file, or a new PostgreSQL database."""
    if isinstance(database_template, Path):
        return f"sqlite:///{tmp_path / 'fresh.sqlite'}"
    server, engine = database_template
    name = "fresh_" + secrets.token_hex(6)
    with engine.connect() as connection:
        connection.exec_driver_sql(f"CREATE DATABASE {name}")
    return str(server.url(name))


def table_names(url: str) -> set[str]:
    engine = sqlalchemy.create_engine(url)
    try:
        return set(sqlalchemy.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_db_upgrade_creates_the_tables_and_can_run_again(empty_database_url: str) -> None:
    env: dict[str, str | None] = {
        "BLINK_SECRET_KEY": secrets.token_urlsafe(32),
        "BLINK_DATABASE_URL": empty_database_url,
    }
    assert not table_names(empty_database_url) & TABLES
    first = run("db", "upgrade", env=env)
    assert first.exit_code == 0, first.output
    assert "database is up to date" in first.output
    assert table_names(empty_database_url) >= TABLES
    second = run("db", "upgrade", env=env)
    assert second.exit_code == 0, second.output
    assert table_names(empty_database_url) >= TABLES


# --- sms simulate ------------------------------------------------------------------------------


class _Mount:
    """A WSGI app set after the server has bound its port (the app needs to know it)."""

    app: Any = None

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        return self.app(environ, start_response)


@pytest.fixture
def live_url(settings: Settings, services: Blink) -> Iterator[str]:
    """A real HTTP server on 127.0.0.1 whose BLINK_PUBLIC_URL is its own address.

    It shares the database of the ``services`` fixture, so personas enrolled through
    ``world`` are known to it.
    """
    mount = _Mount()
    server: BaseWSGIServer = make_server("127.0.0.1", 0, mount, threaded=True)
    url = f"http://127.0.0.1:{server.server_port}"
    app = create_app(settings.with_changes(public_url=url))
    mount.app = app
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield url
    server.shutdown()
    thread.join(timeout=10)
    server.server_close()
    live: Blink = app.extensions["blink_sms"]
    join = getattr(live.queue, "join", None)
    if join is not None:
        join()
    live.db.dispose()


def simulate(url: str, sender: str, body: str, *, token: str = AUTH_TOKEN) -> Result:
    return run(
        "sms",
        "simulate",
        "--url",
        url,
        "--from",
        sender,
        "--to",
        GATEWAY,
        "--body",
        body,
        "--auth-token",
        token,
        "--account-sid",
        ACCOUNT_SID,
    )


def test_sms_simulate_posts_a_signed_webhook_to_a_running_server(
    live_url: str, alice: Persona
) -> None:
    result = simulate(live_url, alice.phone or "", "HELP")
    assert result.exit_code == 0, result.output
    assert "HTTP 200" in result.output
    assert "<Message>" in result.output
    assert "RESET" in result.output and "UNLOCK" in result.output


def test_sms_simulate_accepts_the_full_webhook_url(live_url: str, alice: Persona) -> None:
    result = simulate(live_url + "/webhooks/twilio/sms", alice.phone or "", "HELP")
    assert result.exit_code == 0, result.output
    assert "HTTP 200" in result.output


def test_sms_simulate_with_the_wrong_auth_token_is_refused(live_url: str, alice: Persona) -> None:
    result = simulate(live_url, alice.phone or "", "HELP", token="0" * 32)
    assert result.exit_code == 1, result.output
    assert "HTTP 403" in result.output
    assert "RESET" not in result.output
    assert "--url must be its BLINK_PUBLIC_URL" in result.output  # says what to check
    assert "<html" not in result.output.lower()  # not the server's error page


def test_sms_simulate_reads_the_token_and_account_from_dotenv_as_the_server_does(
    live_url: str, alice: Persona, tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text(
        f"BLINK_TWILIO_AUTH_TOKEN={AUTH_TOKEN}\nBLINK_TWILIO_ACCOUNT_SID={ACCOUNT_SID}\n"
    )
    result = run(
        "sms", "simulate", "--url", live_url, "--from", alice.phone or "", "--to", GATEWAY,
        "--body", "HELP",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "HTTP 200" in result.output and "RESET" in result.output


def test_sms_simulate_without_a_token_says_where_to_put_one(live_url: str) -> None:
    result = run("sms", "simulate", "--url", live_url, "--from", "+15551230001", "--to", GATEWAY,
                 "--body", "HELP")  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "BLINK_TWILIO_AUTH_TOKEN (environment or .env)" in result.output


def test_sms_simulate_explains_a_server_without_twilio_credentials(
    settings: Settings, services: Blink, alice: Persona
) -> None:
    mount = _Mount()
    with make_server("127.0.0.1", 0, mount, threaded=True) as server:
        url = f"http://127.0.0.1:{server.server_port}"
        mount.app = create_app(
            settings.with_changes(public_url=url, twilio_auth_token=None, twilio_account_sid=None)
        )
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            result = simulate(url, alice.phone or "", "HELP")
        finally:
            server.shutdown()
            thread.join(timeout=10)
    assert result.exit_code == 1, result.output
    assert "HTTP 503" in result.output
    assert "has no Twilio credentials" in result.output


@pytest.mark.parametrize("url", ["127.0.0.1:8000", "ftp://127.0.0.1", "http://"])
def test_sms_simulate_refuses_a_malformed_url_as_a_usage_error(url: str) -> None:
    result = simulate(url, "+15551230001", "HELP")
    assert result.exit_code == 2, result.output
    assert "--url" in result.output and "must be an http(s) URL" in result.output
    assert "Traceback" not in result.output


def test_sms_simulate_says_when_the_server_cannot_be_reached() -> None:
    with make_server("127.0.0.1", 0, _Mount()) as closed:
        port = closed.server_port
    result = simulate(f"http://127.0.0.1:{port}", "+15551230001", "HELP")
    assert result.exit_code == 1, result.output
    assert f"cannot reach http://127.0.0.1:{port}/webhooks/twilio/sms" in result.output


# --- worker ----------------------------------------------------------------------------------


def test_worker_without_redis_says_so(database_url: str) -> None:
    result = run(
        "worker",
        "--burst",
        env={"BLINK_SECRET_KEY": secrets.token_urlsafe(32), "BLINK_DATABASE_URL": database_url},
    )
    assert result.exit_code == 1, result.output
    assert "Error: BLINK_REDIS_URL is not set" in result.output
    assert "Traceback" not in result.output


def test_db_upgrade_says_in_one_line_when_the_database_is_unreachable() -> None:
    result = run(
        "db",
        "upgrade",
        env={
            "BLINK_SECRET_KEY": secrets.token_urlsafe(32),
            "BLINK_DATABASE_URL": "postgresql+psycopg://blink@127.0.0.1:1/blink",
        },
    )
    assert result.exit_code == 1, result.output
    assert result.output.startswith("Error: cannot reach the database:")
    assert len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize("command", [["clients", "list"], ["worker", "--burst"]])
def test_a_database_without_the_schema_is_one_line_naming_db_upgrade(
    tmp_path: Path, command: list[str]
) -> None:
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("BLINK_")}
    env |= {
        "BLINK_SECRET_KEY": secrets.token_urlsafe(32),
        "BLINK_DATABASE_URL": f"sqlite:///{tmp_path / 'empty.sqlite'}",
        "BLINK_REDIS_URL": "redis://127.0.0.1:1/0",  # never reached: the schema check is first
    }
    result = subprocess.run(
        [sys.executable, "-m", "blink_sms", *command],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert "run 'blink-sms db upgrade' first" in result.stderr.splitlines()[-1]
