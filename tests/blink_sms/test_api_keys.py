"""API keys: shown once, stored hashed, scoped, revoked at once."""

from __future__ import annotations

import hashlib

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from blink_sms.actors import COMMAND_LINE, Forbidden, Permission, Role, admin_actor
from blink_sms.cli import cli
from blink_sms.context import Blink
from blink_sms.services import api_keys, scope

from ..conftest import World


def test_a_key_is_shown_once_and_stored_only_as_a_hash(world: World, services: Blink) -> None:
    with services.db.session() as session:
        row, key = api_keys.create_key(
            session, COMMAND_LINE, name="PSA", client=world.client, writes=True
        )
        assert key.startswith(f"blk_{row.prefix}_")
        assert row.key_hash == hashlib.sha256(key.encode()).hexdigest()
    secret = key.rsplit("_", 1)[1]
    with services.db.engine.connect() as connection:
        stored = " ".join(
            str(value) for value in connection.execute(text("SELECT * FROM api_keys")).one()
        )
        trail = " ".join(
            str(value) for row in connection.execute(text("SELECT * FROM audit_events"))
            for value in row
        )  # fmt: skip
    assert secret not in stored and secret not in trail and key not in stored


def test_a_key_acts_within_its_scope_and_access(world: World, services: Blink) -> None:
    fabrikam = world.another_client("fabrikam")
    with services.db.session() as session:
        _, writer = api_keys.create_key(
            session, COMMAND_LINE, name="PSA", client=world.client, writes=True
        )
        _, reader = api_keys.create_key(session, COMMAND_LINE, name="BI", client=None, writes=False)
        acting = api_keys.authenticate(session, writer)
        assert acting is not None and acting.role is Role.CLIENT_ADMIN
        assert acting.client_id == world.client.id and acting.may(Permission.MANAGE_USERS)
        with pytest.raises(scope.NotFound):
            scope.client(session, acting, fabrikam.slug)
        looking = api_keys.authenticate(session, reader)
        assert looking is not None and looking.role is Role.AUDITOR and looking.msp_wide
        with pytest.raises(Forbidden):
            looking.require(Permission.MANAGE_USERS)


def test_a_wrong_malformed_or_revoked_key_is_refused_at_once(world: World, services: Blink) -> None:
    with services.db.session() as session:
        row, key = api_keys.create_key(session, COMMAND_LINE, name="PSA", client=None, writes=True)
        forged = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")
        for presented in (forged, "blk_nothing", "", key + "x", f"Bearer {key}"):
            assert api_keys.authenticate(session, presented) is None, presented
        assert api_keys.authenticate(session, key) is not None
        api_keys.revoke_key(session, COMMAND_LINE, row.id)
        assert api_keys.authenticate(session, key) is None


def test_only_msp_owners_manage_keys(world: World, services: Blink) -> None:
    technician = admin_actor(3, "tech@msp.example", Role.MSP_TECHNICIAN, None)
    with services.db.session() as session, pytest.raises(Forbidden):
        api_keys.create_key(session, technician, name="PSA", client=None, writes=True)


def test_api_keys_from_the_command_line(world: World, services: Blink) -> None:
    env = {
        "BLINK_SECRET_KEY": services.settings.secret_key,
        "BLINK_DATABASE_URL": services.settings.database_url,
        "BLINK_PUBLIC_URL": services.settings.public_url,
    }
    runner = CliRunner()
    made = runner.invoke(
        cli, ["api-keys", "create", "--name", "PSA", "--client", "contoso", "--access",
              "read-write"], env=env,
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    key = next(line for line in made.output.splitlines() if line.startswith("blk_"))
    listed = runner.invoke(cli, ["api-keys", "list"], env=env)
    assert "PSA" in listed.output and "contoso" in listed.output and "never" in listed.output
    assert key not in listed.output
    with services.db.session() as session:
        assert api_keys.authenticate(session, key) is not None
    revoked = runner.invoke(cli, ["api-keys", "revoke", "1"], env=env)
    assert revoked.exit_code == 0 and "revoked" in revoked.output
    again = runner.invoke(cli, ["api-keys", "revoke", "1"], env=env)
    assert again.exit_code == 1 and "revoked already" in again.output
    with services.db.session() as session:
        assert api_keys.authenticate(session, key) is None
    unknown = runner.invoke(cli, ["api-keys", "create", "--name", "X", "--client", "nope"], env=env)
    assert unknown.exit_code == 1 and "no such client" in unknown.output
