"""``blink-sms secrets rotate`` and what commands say when the secret key is wrong."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import create_engine, text

from blink_sms.cli import cli
from blink_sms.crypto import SecretBox
from blink_sms.settings import Settings, SettingsError
from directory_adapters.sandbox import SandboxDirectory
from tests.conftest import ACCOUNT_SID, AUTH_TOKEN

OLD = secrets.token_urlsafe(32)
NEW = secrets.token_urlsafe(32)
STRANGER = secrets.token_urlsafe(32)
Run = Callable[..., Result]


@pytest.fixture
def run(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Run:
    """The command under BLINK_SECRET_KEY=key (and _PREVIOUS=previous), nothing else."""
    monkeypatch.chdir(tmp_path)
    base: dict[str, str | None] = {k: None for k in os.environ if k.startswith("BLINK_")}
    # Twilio configured, so that no "SMS sending is off" warning joins the output.
    base |= {
        "BLINK_DATABASE_URL": database_url,
        "BLINK_TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "BLINK_TWILIO_AUTH_TOKEN": AUTH_TOKEN,
    }

    def invoke(*args: str, key: str, previous: str | None = None) -> Result:
        env = base | {"BLINK_SECRET_KEY": key, "BLINK_SECRET_KEY_PREVIOUS": previous}
        return CliRunner().invoke(cli, list(args), env=env)

    return invoke


def _add(run: Run, slug: str, key: str, directory: Path) -> None:
    SandboxDirectory(directory)  # a real, empty directory: `clients test` passes on it
    added = run(
        "clients", "add", "--slug", slug, "--name", slug.title(), "--directory", "sandbox",
        "--setting", f"path={directory}", key=key,
    )  # fmt: skip
    assert added.exit_code == 0, added.output


def _rows(database_url: str, sql: str, **params: object) -> list[Any]:
    engine = create_engine(database_url)
    with engine.connect() as connection:
        rows = list(connection.execute(text(sql), params))
    engine.dispose()
    return rows


def _stored(database_url: str) -> dict[str, str]:
    rows = _rows(database_url, "SELECT slug, directory_settings_encrypted FROM clients")
    return {row.slug: row.directory_settings_encrypted for row in rows}


def _rotation_events(database_url: str) -> list[int]:
    """The client ids of the audit events of re-encryption, in order."""
    sql = "SELECT client_id FROM audit_events WHERE action = :action ORDER BY id"
    return [row.client_id for row in _rows(database_url, sql, action="client.secrets_reencrypted")]


def _client_id(database_url: str, slug: str) -> int:
    [row] = _rows(database_url, "SELECT id FROM clients WHERE slug = :slug", slug=slug)
    return int(row.id)


def test_rotate_moves_every_client_to_the_new_key_once(
    run: Run, database_url: str, tmp_path: Path
) -> None:
    _add(run, "contoso", OLD, tmp_path / "contoso.sqlite")
    assert run("clients", "test", "contoso", key=NEW, previous=OLD).exit_code == 0

    rotated = run("secrets", "rotate", key=NEW, previous=OLD)
    assert rotated.exit_code == 0, rotated.output
    assert rotated.output.splitlines() == [
        "1 re-encrypted, 0 already under the current key, 0 unreadable"
    ]
    token = _stored(database_url)["contoso"]
    assert SecretBox(NEW).decrypt_json(token) == {"path": str(tmp_path / "contoso.sqlite")}
    assert _rotation_events(database_url) == [_client_id(database_url, "contoso")]

    again = run("secrets", "rotate", key=NEW, previous=OLD)
    assert again.exit_code == 0, again.output
    assert "0 re-encrypted, 1 already under the current key, 0 unreadable" in again.output
    assert _stored(database_url)["contoso"] == token
    assert len(_rotation_events(database_url)) == 1

    # The previous key can go now.
    checked = run("clients", "test", "contoso", key=NEW)
    assert checked.exit_code == 0, checked.output


def test_rotate_reports_unreadable_clients_by_slug_and_leaves_them_as_they_were(
    run: Run, database_url: str, tmp_path: Path
) -> None:
    _add(run, "contoso", OLD, tmp_path / "contoso.sqlite")
    _add(run, "fabrikam", STRANGER, tmp_path / "fabrikam.sqlite")
    _add(run, "northwind", NEW, tmp_path / "northwind.sqlite")
    before = _stored(database_url)

    result = run("secrets", "rotate", key=NEW, previous=OLD)

    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)
    lines = result.output.splitlines()
    assert len(lines) == 2, result.output
    assert lines[0].startswith("fabrikam: stored secrets cannot be decrypted")
    assert "BLINK_SECRET_KEY_PREVIOUS" in lines[0]
    assert lines[1] == "1 re-encrypted, 1 already under the current key, 1 unreadable"
    after = _stored(database_url)
    assert after["fabrikam"] == before["fabrikam"]
    assert SecretBox(STRANGER).decrypt_json(after["fabrikam"])["path"].endswith("fabrikam.sqlite")
    assert after["northwind"] == before["northwind"]
    assert SecretBox(NEW).is_current(after["contoso"])
    assert _rotation_events(database_url) == [_client_id(database_url, "contoso")]
    for key in (OLD, NEW, STRANGER):
        assert key not in result.output


@pytest.mark.parametrize(
    "command",
    [("clients", "test", "contoso"), ("users", "import", "--client", "contoso", "--all")],
)
def test_a_command_that_cannot_decrypt_the_settings_says_why_in_one_line(
    run: Run, tmp_path: Path, command: tuple[str, ...]
) -> None:
    _add(run, "contoso", OLD, tmp_path / "contoso.sqlite")

    result = run(*command, key=NEW)

    # CliRunner catches any exception: only SystemExit means the command itself stopped.
    assert isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert "contoso: stored secrets cannot be decrypted with this BLINK_SECRET_KEY" in lines[0]
    assert "set the old one as BLINK_SECRET_KEY_PREVIOUS" in lines[0]
    assert OLD not in result.output and NEW not in result.output


# --- the setting ---------------------------------------------------------------------------


def _settings(**variables: str) -> Settings:
    environ = {"BLINK_SECRET_KEY": NEW} | {f"BLINK_{k}": v for k, v in variables.items()}
    return Settings.from_env(environ, dotenv=None)


def test_previous_keys_are_separated_by_commas_and_stay_out_of_repr() -> None:
    settings = _settings(SECRET_KEY_PREVIOUS=f" {OLD} , {STRANGER},")
    assert settings.secret_key_previous == (OLD, STRANGER)
    assert OLD not in repr(settings) and STRANGER not in repr(settings)
    assert _settings().secret_key_previous == ()


def test_previous_keys_can_come_from_a_file(tmp_path: Path) -> None:
    (tmp_path / "previous").write_text(f"{OLD}\n{STRANGER}\n")
    settings = _settings(SECRET_KEY_PREVIOUS_FILE=str(tmp_path / "previous"))
    assert settings.secret_key_previous == (OLD, STRANGER)


def test_a_short_previous_key_is_refused_naming_the_variable_not_the_key() -> None:
    short = "tooShort" + "x" * 23
    with pytest.raises(SettingsError) as caught:
        _settings(SECRET_KEY_PREVIOUS=f"{OLD},{short}")
    assert str(caught.value).startswith("BLINK_SECRET_KEY_PREVIOUS: key 2 of 2 is too short")
    assert caught.value.variable == "BLINK_SECRET_KEY_PREVIOUS"
    assert short not in str(caught.value) and OLD not in str(caught.value)
