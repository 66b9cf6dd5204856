"""``blink-sms clients add/list``: clients with encrypted directory settings."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path

import pytest
import responses
from click.testing import CliRunner, Result
from sqlalchemy import create_engine, text

from blink_sms.cli import cli
from blink_sms.crypto import SecretBox
from tests.support.fake_graph import FULL_PERMISSIONS, FakeEntra

KEY = secrets.token_urlsafe(32)
Run = Callable[..., Result]


@pytest.fixture
def run(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Run:
    monkeypatch.chdir(tmp_path)
    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("BLINK_")}
    env |= {"BLINK_SECRET_KEY": KEY, "BLINK_DATABASE_URL": database_url}

    def invoke(*args: str, stdin: str | None = None) -> Result:
        return CliRunner().invoke(cli, list(args), env=env, input=stdin)

    return invoke


def test_add_stores_settings_encrypted_and_prompts_for_secrets(run: Run, database_url: str) -> None:
    result = run(
        "clients",
        "add",
        "--slug",
        "contoso",
        "--name",
        "Contoso",
        "--directory",
        "sandbox",
        "--setting",
        "min_length=10",
        # The sandbox has no secret setting: its path, prompted for, stands in for one.
        "--secret",
        "path",
        "--sender",
        "+15005550006",
        stdin="/tmp/S3rvice!Secret.sqlite\n",
    )
    assert result.exit_code == 0, result.output
    assert "client-contoso" in result.output
    assert "S3rvice!Secret" not in result.output
    engine = create_engine(database_url)
    with engine.connect() as connection:
        row = connection.execute(text("SELECT * FROM clients")).one()
    engine.dispose()
    assert "S3rvice!Secret" not in repr(row)
    stored = SecretBox(KEY).decrypt_json(row.directory_settings_encrypted)
    assert stored == {"path": "/tmp/S3rvice!Secret.sqlite", "min_length": 10}
    listing = run("clients", "list")
    assert "contoso" in listing.output and "+15005550006" in listing.output


def test_add_refuses_a_duplicate_slug_and_bad_settings(run: Run) -> None:
    base = ("clients", "add", "--slug", "acme", "--name", "Acme", "--directory", "sandbox")
    assert run(*base, "--setting", "path=/tmp/a.sqlite").exit_code == 0
    again = run(*base, "--setting", "path=/tmp/a.sqlite")
    assert again.exit_code == 1 and "exists already" in again.output
    bad = run(
        "clients",
        "add",
        "--slug",
        "x",
        "--name",
        "X",
        "--directory",
        "sandbox",
        "--setting",
        "oops",
    )
    assert bad.exit_code == 2 and "KEY=VALUE" in bad.output
    slug = run("clients", "add", "--slug", "Not Valid", "--name", "X", "--directory", "sandbox")
    assert slug.exit_code == 1 and "slug" in slug.output


def test_list_says_how_to_start(run: Run) -> None:
    assert "clients add" in run("clients", "list").output


def _add_entra_client(run: Run, tenant: FakeEntra) -> None:
    pairs = [f"--setting={k}={v}" for k, v in tenant.settings().items() if k != "client_secret"]
    added = run(
        "clients", "add", "--slug", "fabrikam", "--name", "Fabrikam", "--directory", "entra_id",
        *pairs, "--secret", "client_secret", stdin=tenant.settings()["client_secret"] + "\n",
    )  # fmt: skip
    assert added.exit_code == 0, added.output


def test_clients_test_passes_for_a_well_configured_entra_tenant(run: Run) -> None:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        tenant = FakeEntra().install(rsps)
        _add_entra_client(run, tenant)
        result = run("clients", "test", "fabrikam")
    assert result.exit_code == 0, result.output
    assert "fabrikam: the directory connection works" in result.output


def test_clients_test_names_the_missing_entra_permission(run: Run) -> None:
    granted = set(FULL_PERMISSIONS) - {"User-PasswordProfile.ReadWrite.All"}
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        tenant = FakeEntra(permissions=granted).install(rsps)
        _add_entra_client(run, tenant)
        result = run("clients", "test", "fabrikam")
    assert result.exit_code == 1, result.output
    assert "PROBLEM" in result.output
    assert "grant: User-PasswordProfile.ReadWrite.All" in result.output


def test_a_secret_comes_from_a_pipe_or_a_file_without_a_prompt(
    run: Run, database_url: str, tmp_path: Path
) -> None:
    piped = run(
        "clients", "add", "--slug", "acme", "--name", "Acme", "--directory", "sandbox",
        "--secret", "path", stdin="/tmp/Piped!Secret1.sqlite\n",
    )  # fmt: skip
    assert piped.exit_code == 0, piped.output
    # Read from the pipe: no prompt text, no "Password input may be echoed" warning.
    assert "path" not in piped.output and "echoed" not in piped.output
    secret_file = tmp_path / "path"
    secret_file.write_text("/tmp/From!File22.sqlite\n")
    rotated = run("clients", "set-directory", "acme", "--secret-file", f"path={secret_file}")
    assert rotated.exit_code == 0, rotated.output
    engine = create_engine(database_url)
    with engine.connect() as connection:
        row = connection.execute(text("SELECT * FROM clients")).one()
    engine.dispose()
    assert SecretBox(KEY).decrypt_json(row.directory_settings_encrypted)["path"] == (
        "/tmp/From!File22.sqlite"
    )
    missing = run("clients", "set-directory", "acme", "--secret-file", "path=/nope")
    assert missing.exit_code == 2 and "cannot read /nope" in missing.output
    empty = run("clients", "set-directory", "acme", "--secret", "path", stdin="\n")
    assert empty.exit_code == 2 and "no value was given" in empty.output


def test_add_names_every_bad_option_at_once_one_line_each(run: Run, database_url: str) -> None:
    result = run(
        "clients", "add", "--slug", "Not A Slug", "--name", "Acme", "--directory", "sandbox",
        "--setting", "path=/tmp/acme.sqlite", "--setting", "colour=blue",
        "--region", "XX", "--language", "zz", "--sender", "call me",
    )  # fmt: skip
    assert result.exit_code == 1
    errors = [line for line in result.output.splitlines() if line.startswith("Error: ")]
    fields = [line.removeprefix("Error: ").split(":")[0] for line in errors]
    assert fields == ["slug", "directory_settings", "default_region", "language", "sender_number"]
    assert "sandbox has no setting 'colour'" in result.output
    engine = create_engine(database_url)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM clients")).scalar_one() == 0
    engine.dispose()
