"""``blink-sms sandbox``: a sandbox client's users from the command line."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import create_engine, text

from blink_sms.cli import cli
from directory_adapters.sandbox import AccountLocked, SandboxDirectory

Run = Callable[..., Result]


@pytest.fixture
def run(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Run:
    monkeypatch.chdir(tmp_path)
    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("BLINK_")}
    env |= {"BLINK_SECRET_KEY": secrets.token_urlsafe(32), "BLINK_DATABASE_URL": database_url}

    def invoke(*args: str) -> Result:
        return CliRunner().invoke(cli, list(args), env=env)

    added = invoke(
        "clients", "add", "--slug", "trial", "--name", "Trial", "--directory", "sandbox",
        "--setting", f"path={tmp_path / 'trial.sqlite'}", "--setting", "lockout_threshold=3",
        "--sender", "+15005550006", "--region", "NL",
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    return invoke


def said(result: Result) -> list[str]:
    """The command's own lines (not the app's start-up warnings)."""
    return [line for line in result.output.splitlines() if "[warning" not in line]


def test_add_list_lock_and_unlock_sandbox_users(run: Run, tmp_path: Path) -> None:
    added = run(
        "sandbox", "add-user", "--client", "trial", "ann", "--name", "Ann Archer",
        "--email", "ann@trial.example", "--mobile", "+31612345678", "--password", "Start!Pass1",
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    assert "sandbox user ann added to trial" in added.output
    directory = SandboxDirectory(tmp_path / "trial.sqlite")
    ann = directory.find_user("ann@trial.example")
    assert (ann.display_name, ann.mobile) == ("Ann Archer", "+31612345678")
    assert directory.authenticate("ann", "Start!Pass1").id == ann.id

    taken = run("sandbox", "add-user", "--client", "trial", "ann", "--name", "Other Ann")
    assert taken.exit_code == 1
    assert "already taken" in taken.output

    locked = run("sandbox", "lock", "--client", "trial", "ann")
    assert locked.exit_code == 0, locked.output
    assert directory.is_locked("ann")
    with pytest.raises(AccountLocked):
        directory.authenticate("ann", "Start!Pass1")  # the right password no longer works
    listed = run("sandbox", "list", "--client", "trial")
    assert listed.exit_code == 0, listed.output
    assert said(listed)[1].split() == [
        "ann", "Ann", "Archer", "ann@trial.example", "+31612345678", "locked",
    ]  # fmt: skip

    unlocked = run("sandbox", "unlock", "--client", "trial", "ann")
    assert unlocked.exit_code == 0, unlocked.output
    assert not directory.is_locked("ann")
    assert directory.authenticate("ann", "Start!Pass1").id == ann.id

    unknown = run("sandbox", "lock", "--client", "trial", "nobody")
    assert unknown.exit_code == 1
    assert "nobody: no user" in unknown.output


def test_the_new_user_can_be_imported(run: Run) -> None:
    run(
        "sandbox", "add-user", "--client", "trial", "ben", "--name", "Ben", "--email", "b@t.example"
    )
    imported = run("users", "import", "--client", "trial", "--all")
    assert imported.exit_code == 0, imported.output
    listed = run("users", "list", "--client", "trial")
    assert "b@t.example" in listed.output


def test_a_client_whose_directory_is_not_the_sandbox_is_refused(
    run: Run, database_url: str
) -> None:
    engine = create_engine(database_url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE clients SET directory_kind = 'ldap' WHERE slug = 'trial'"))
    engine.dispose()
    for args in (("list",), ("add-user", "ann", "--name", "Ann"), ("lock", "ann")):
        refused = run("sandbox", args[0], "--client", "trial", *args[1:])
        assert refused.exit_code == 1
        assert said(refused) == [
            "Error: client trial uses a ldap directory, not the sandbox:"
            " manage its users in that directory"
        ]
    unknown = run("sandbox", "list", "--client", "nope")
    assert unknown.exit_code == 1
    assert len(said(unknown)) == 1
