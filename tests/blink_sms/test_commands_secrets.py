"""``blink-sms secrets rotate`` and what commands say when the secret key is wrong."""

from __future__ import annotations

import dataclasses
import os
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pyotp
import pytest
from click.testing import CliRunner, Result
from sqlalchemy import create_engine, select, text

from blink_sms.actors import COMMAND_LINE, Role
from blink_sms.cli import cli
from blink_sms.context import Blink
from blink_sms.crypto import SecretBox
from blink_sms.models import Admin, Client
from blink_sms.services import admins, audit, mail, second_factor, webhook_sender, webhooks
from blink_sms.settings import Settings, SettingsError
from directory_adapters.sandbox import SandboxDirectory
from tests.blink_sms.test_webhooks import Receiver, verify
from tests.conftest import ACCOUNT_SID, AUTH_TOKEN
from tests.enrollment.smtp import SmtpServer

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
        "clients' directory settings: 1 re-encrypted, 0 already current, 0 unreadable",
        "clients' SMTP settings: none stored",
        "admins' TOTP secrets: none stored",
        "webhooks' signing secrets: none stored",
        "1 re-encrypted, 0 already under the current key, 0 unreadable",
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
    assert len(lines) == 6, result.output
    assert lines[0].startswith("client fabrikam: directory settings: stored secrets cannot be")
    assert "BLINK_SECRET_KEY_PREVIOUS" in lines[0]
    assert lines[0].endswith("; left as it was")
    assert (
        lines[1] == "clients' directory settings: 1 re-encrypted, 1 already current, 1 unreadable"
    )
    assert lines[5] == "1 re-encrypted, 1 already under the current key, 1 unreadable"
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


# --- every sealed column: SMTP settings, TOTP secrets, webhook secrets ----------------------


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The services of these tests seal what they store under OLD, the key before the change."""
    return dataclasses.replace(settings, secret_key=OLD)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A PSA's webhook receiver on loopback (see test_webhooks)."""
    server = Receiver()
    yield server
    server.stop()


@dataclass(frozen=True)
class Sealed:
    """What :func:`_seal_everything` stored, in clear, to check it reads back."""

    contoso: int
    smtp_url: str
    totp: dict[str, tuple[int, str]]  # email: (admin id, TOTP secret)
    hooks: list[tuple[int, str]]  # (endpoint id, signing secret), MSP-wide first


def _seal_everything(services: Blink, smtp_url: str, hook_url: str) -> Sealed:
    """Through the services, under OLD: contoso's SMTP settings, the TOTP secrets of an MSP
    owner and of contoso's admin, and a webhook for every client (at ``hook_url``) and one
    for contoso (to another PSA, for an event that will not happen here)."""
    with services.db.session() as session:
        client = session.execute(select(Client).where(Client.slug == "contoso")).scalar_one()
        contoso = client.id
        mail.set_mail_settings(
            session, services.secrets, COMMAND_LINE, client, smtp_url, "it@contoso.example"
        )
        totp = {}
        for email, role, of in (
            ("ann@msp.example", Role.MSP_OWNER, None),
            ("bob@contoso.example", Role.CLIENT_ADMIN, client),
        ):
            admin, _ = admins.create_admin(
                services, session, COMMAND_LINE, email=email, role=role, client=of
            )
            enrolment = second_factor.begin_totp(services, admin)
            now = pyotp.TOTP(enrolment.secret).now()
            second_factor.confirm_totp(services, session, admin, enrolment.secret, now)
            totp[email] = (admin.id, enrolment.secret)
        hooks = []
        for url, of, events in (
            (hook_url, None, None),
            ("https://psa.example/hooks/contoso", client, ["unlock.failed"]),
        ):
            row, secret = webhooks.create_endpoint(
                session, services.secrets, COMMAND_LINE, url=url, client=of, events=events
            )
            hooks.append((row.id, secret))
    return Sealed(contoso, smtp_url, totp, hooks)


def _sealed(database_url: str) -> dict[str, str]:
    """Every sealed value in the database, named as the command names it."""
    found = {}
    sql = "SELECT slug, directory_settings_encrypted, smtp_settings_encrypted FROM clients"
    for row in _rows(database_url, sql):
        found[f"client {row.slug}: directory settings"] = row.directory_settings_encrypted
        if row.smtp_settings_encrypted is not None:
            found[f"client {row.slug}: SMTP settings"] = row.smtp_settings_encrypted
    sql = "SELECT email, totp_secret_encrypted FROM admins WHERE totp_secret_encrypted IS NOT NULL"
    for row in _rows(database_url, sql):
        found[f"admin {row.email}: TOTP secret"] = row.totp_secret_encrypted
    for row in _rows(database_url, "SELECT id, url, secret_encrypted FROM webhook_endpoints"):
        host = urlsplit(row.url).hostname
        found[f"webhook {row.id} ({host}): signing secret"] = row.secret_encrypted
    return found


def _reseal(database_url: str, table: str, column: str, where: str, value: dict[str, str]) -> None:
    """Seal ``value`` under STRANGER, a key the command is not given, in the rows ``where``."""
    sql = f"UPDATE {table} SET {column} = :token WHERE {where}"  # noqa: S608 -- the test's own
    engine = create_engine(database_url)
    with engine.begin() as connection:
        connection.execute(text(sql), {"token": SecretBox(STRANGER).encrypt_json(value)})
    engine.dispose()


def _events(database_url: str, action: str) -> list[int | None]:
    """The client ids of the audit events of ``action``, in order."""
    sql = "SELECT client_id FROM audit_events WHERE action = :action ORDER BY id"
    return [row.client_id for row in _rows(database_url, sql, action=action)]


def test_rotate_moves_every_sealed_column_so_the_previous_key_can_go(
    run: Run,
    services: Blink,
    database_url: str,
    tmp_path: Path,
    smtp: SmtpServer,
    receiver: Receiver,
) -> None:
    _add(run, "contoso", OLD, tmp_path / "contoso.sqlite")
    sealed = _seal_everything(services, smtp.url, receiver.url("/hook"))
    names = set(_sealed(database_url))
    assert len(names) == 6

    rotated = run("secrets", "rotate", key=NEW, previous=OLD)

    assert rotated.exit_code == 0, rotated.output
    assert rotated.output.splitlines() == [
        "clients' directory settings: 1 re-encrypted, 0 already current, 0 unreadable",
        "clients' SMTP settings: 1 re-encrypted, 0 already current, 0 unreadable",
        "admins' TOTP secrets: 2 re-encrypted, 0 already current, 0 unreadable",
        "webhooks' signing secrets: 2 re-encrypted, 0 already current, 0 unreadable",
        "6 re-encrypted, 0 already under the current key, 0 unreadable",
    ]
    # Every value reads with the new key alone.
    stored = _sealed(database_url)
    only_new = SecretBox(NEW)
    for name, token in stored.items():
        assert only_new.is_current(token), name
        only_new.decrypt_json(token)
    # One event per object: contoso once for both its settings; each under its client.
    assert _events(database_url, "client.secrets_reencrypted") == [sealed.contoso]
    assert _events(database_url, "admin.secrets_reencrypted") == [None, sealed.contoso]
    assert _events(database_url, "webhook.secrets_reencrypted") == [None, sealed.contoso]

    # A second run rewrites nothing and audits nothing.
    again = run("secrets", "rotate", key=NEW, previous=OLD)
    assert again.exit_code == 0, again.output
    assert again.output.splitlines()[-1] == (
        "0 re-encrypted, 6 already under the current key, 0 unreadable"
    )
    assert _sealed(database_url) == stored
    for action in ("client", "admin", "webhook"):
        assert (
            len(_events(database_url, f"{action}.secrets_reencrypted")) == (action != "client") + 1
        )

    # The previous key gone, the services read everything: the app restarted with NEW only.
    restarted = dataclasses.replace(services, secrets=only_new)
    assert run("clients", "test", "contoso", key=NEW).exit_code == 0
    with services.db.session() as session:
        client = session.get(Client, sealed.contoso)
        assert client is not None
        assert mail.stored_url(only_new, client) == smtp.url
        sent = mail.send_test_email(restarted, session, COMMAND_LINE, client, "ann@msp.example")
        assert sent.ok, sent.message
        assert len(smtp.mailbox.messages) == 1
        for admin_id, secret in sealed.totp.values():
            admin = session.get(Admin, admin_id)
            assert admin is not None
            # The next step's code: the enrolment spent this one.
            code = pyotp.TOTP(secret).at(time.time() + 30)
            assert second_factor.verify_totp(restarted, session, admin, code)
        audit.record(session, "reset.completed", actor="system", client_id=sealed.contoso)
        session.commit()
    claimed = webhook_sender.claim_due(restarted, limit=10)
    statuses = [webhook_sender.deliver(restarted, *delivery) for delivery in claimed]
    assert statuses == [webhook_sender.DELIVERED]
    [received] = receiver.at("/hook")
    assert verify(sealed.hooks[0][1], received.headers["Blink-Signature"], received.body)


def test_rotate_names_each_unreadable_value_and_leaves_it_as_it_was(
    run: Run, services: Blink, database_url: str, tmp_path: Path
) -> None:
    _add(run, "contoso", OLD, tmp_path / "contoso.sqlite")
    _add(run, "fabrikam", STRANGER, tmp_path / "fabrikam.sqlite")
    hook_url = "https://hooks.msp.example/blink/receivers-own-token"
    sealed = _seal_everything(services, "smtp://smtp.contoso.example:587", hook_url)
    with services.db.session() as session:
        fabrikam = session.execute(select(Client).where(Client.slug == "fabrikam")).scalar_one()
        url = "smtp://smtp.fabrikam.example:587"
        mail.set_mail_settings(
            session, services.secrets, COMMAND_LINE, fabrikam, url, "it@f.example"
        )
        fabrikam_id = fabrikam.id
    # Under a key the command is not given: contoso's SMTP settings, Ann's TOTP secret and
    # the MSP-wide webhook's secret (fabrikam's directory settings already are).
    _reseal(database_url, "clients", "smtp_settings_encrypted", "slug = 'contoso'", {"url": "x"})
    _reseal(
        database_url, "admins", "totp_secret_encrypted", "email = 'ann@msp.example'", {"totp": "x"}
    )
    msp_hook = sealed.hooks[0][0]
    _reseal(
        database_url, "webhook_endpoints", "secret_encrypted", f"id = {msp_hook}", {"secret": "x"}
    )
    before = _sealed(database_url)
    unreadable = [
        "client contoso: SMTP settings",
        "client fabrikam: directory settings",
        "admin ann@msp.example: TOTP secret",
        f"webhook {msp_hook} (hooks.msp.example): signing secret",
    ]

    result = run("secrets", "rotate", key=NEW, previous=OLD)

    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)
    lines = result.output.splitlines()
    assert [line.partition(": stored secrets")[0] for line in lines[:4]] == unreadable
    for line in lines[:4]:
        assert "cannot be decrypted with this BLINK_SECRET_KEY nor with" in line
        assert line.endswith("; left as it was")
    assert lines[4:] == [
        "clients' directory settings: 1 re-encrypted, 0 already current, 1 unreadable",
        "clients' SMTP settings: 1 re-encrypted, 0 already current, 1 unreadable",
        "admins' TOTP secrets: 1 re-encrypted, 0 already current, 1 unreadable",
        "webhooks' signing secrets: 1 re-encrypted, 0 already current, 1 unreadable",
        "4 re-encrypted, 0 already under the current key, 4 unreadable",
    ]
    after = _sealed(database_url)
    for name in unreadable:
        assert after[name] == before[name], name
        SecretBox(STRANGER).decrypt_json(after[name])
    for name in set(after) - set(unreadable):
        assert SecretBox(NEW).is_current(after[name]), name
    assert _events(database_url, "client.secrets_reencrypted") == [sealed.contoso, fabrikam_id]
    assert _events(database_url, "admin.secrets_reencrypted") == [sealed.contoso]
    assert _events(database_url, "webhook.secrets_reencrypted") == [sealed.contoso]
    for secret in (OLD, NEW, STRANGER, "receivers-own-token"):
        assert secret not in result.output


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
