"""``blink-sms admins create/list/reset-2fa``: the first account and the way back in."""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import create_engine, select, update
from sqlalchemy.orm import Session

from blink_sms.actors import COMMAND_LINE
from blink_sms.cli import cli
from blink_sms.crypto import SecretBox
from blink_sms.models import Admin, AdminToken
from blink_sms.services import admins
from blink_sms.services.clients import create_client

KEY = secrets.token_urlsafe(32)
PUBLIC = "https://console.msp.example"
LINK = re.compile(re.escape(PUBLIC) + r"/admin/setup/([A-Za-z0-9_-]{43})")
Run = Callable[..., Result]


@pytest.fixture
def run(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Run:
    monkeypatch.chdir(tmp_path)
    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("BLINK_")}
    env |= {
        "BLINK_SECRET_KEY": KEY,
        "BLINK_DATABASE_URL": database_url,
        "BLINK_PUBLIC_URL": PUBLIC,
    }

    def invoke(*args: str) -> Result:
        return CliRunner().invoke(cli, list(args), env=env)

    return invoke


@pytest.fixture
def db(database_url: str) -> Iterator[Session]:
    engine = create_engine(database_url)
    session = Session(engine, expire_on_commit=False)
    yield session
    session.close()
    engine.dispose()


def last_line(result: Result) -> str:
    return result.output.splitlines()[-1]


def test_create_prints_a_working_setup_link(run: Run, db: Session) -> None:
    result = run("admins", "create", "--email", "Ann@MSP.example", "--role", "msp-owner")
    assert result.exit_code == 0, result.output
    assert "set-up link for ann@msp.example (MSP owner)" in result.output
    assert re.search(r"until \d{4}-\d\d-\d\d \d\d:\d\d UTC \(72 hours\)", result.output)
    match = LINK.search(result.output)
    assert match, result.output
    link = admins.check_setup_token(db, match.group(1))
    assert db.get(Admin, link.admin_id).email == "ann@msp.example"  # type: ignore[union-attr]
    assert match.group(1) not in str(db.execute(select(AdminToken.token_hash)).all())


def test_create_refuses_in_one_plain_line(run: Run, db: Session) -> None:
    assert run("admins", "create", "--email", "a@msp.example", "--role", "msp-owner").exit_code == 0
    duplicate = run("admins", "create", "--email", "A@msp.example", "--role", "auditor")
    assert duplicate.exit_code == 1
    assert last_line(duplicate) == "Error: email: an admin with this email address exists already"
    no_client = run("admins", "create", "--email", "c@contoso.example", "--role", "client-admin")
    assert no_client.exit_code == 1 and "client admin needs a client" in no_client.output
    unknown = run(
        "admins", "create", "--email", "c@contoso.example", "--role", "client-admin",
        "--client", "nope",
    )  # fmt: skip
    assert unknown.exit_code == 1 and "no such client" in unknown.output
    bad_role = run("admins", "create", "--email", "x@msp.example", "--role", "boss")
    assert bad_role.exit_code == 2


def test_create_a_client_admin_and_list(run: Run, db: Session) -> None:
    assert "admins create" in run("admins", "list").output
    create_client(
        db, SecretBox(KEY), COMMAND_LINE, slug="contoso", name="Contoso",
        directory_kind="sandbox", directory_settings={"path": "/tmp/contoso.sqlite"},
    )  # fmt: skip
    db.commit()
    assert run("admins", "create", "--email", "o@msp.example", "--role", "msp-owner").exit_code == 0
    made = run(
        "admins", "create", "--email", "ca@contoso.example", "--role", "client-admin",
        "--client", "contoso", "--name", "Carl",
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    listing = run("admins", "list")
    assert listing.exit_code == 0, listing.output
    lines = listing.stdout.splitlines()  # the log's warnings go to stderr
    assert lines[0].split() == ["EMAIL", "ROLE", "CLIENT", "2FA", "STATUS", "LAST"]
    assert lines[1].split() == ["ca@contoso.example", "client-admin", "contoso", "no", "set-up",
                                "pending", "-"]  # fmt: skip
    assert lines[2].split()[:3] == ["o@msp.example", "msp-owner", "-"]


def test_reset_2fa_prints_a_new_link_and_clears_the_factor(run: Run, db: Session) -> None:
    first = LINK.search(
        run("admins", "create", "--email", "o@msp.example", "--role", "msp-owner").output
    )
    assert first
    db.execute(
        update(Admin).values(
            password_hash=admins.HASHER.hash("correct horse battery"),
            totp_secret_encrypted="x",
            totp_confirmed_at=Admin.created_at,
        )
    )
    db.commit()
    result = run("admins", "reset-2fa", "--email", "O@msp.example")
    assert result.exit_code == 0, result.output
    assert "cleared" in result.output
    second = LINK.search(result.output)
    assert second and second.group(1) != first.group(1)
    db.expire_all()
    admin = db.execute(select(Admin)).scalar_one()
    assert admin.totp_secret_encrypted is None and admin.password_hash is None
    assert admins.check_setup_token(db, second.group(1)).admin_id == admin.id
    missing = run("admins", "reset-2fa", "--email", "nobody@msp.example")
    assert missing.exit_code == 1
    assert last_line(missing) == "Error: no admin with email nobody@msp.example"
