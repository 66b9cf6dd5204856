"""The sandbox directory: the shared contract, then what only the sandbox does."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from directory_adapters import (
    ConfigurationError,
    DirectoryAdapter,
    DirectoryUnavailable,
    DirectoryUser,
    OperationRefused,
    PasswordPolicy,
    PasswordRejected,
    UserNotFound,
    create_adapter,
)
from directory_adapters.sandbox import (
    OUTAGE_MESSAGE,
    AccountDisabled,
    AccountLocked,
    InvalidCredentials,
    MustChangePassword,
    SandboxDirectory,
    SignInError,
    store,
)
from tests.support.sandbox_probe import SandboxProbe

from .contract import OLD_PASSWORD, DirectoryContract, OrganisationalUnitContract, unique

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "Correct-Horse-7"
OTHER_PASSWORD = "Battery-Staple-8"


@pytest.fixture
def directory(tmp_path: Path) -> SandboxDirectory:
    return SandboxDirectory(tmp_path / "directory.sqlite", lockout_threshold=3)


class SandboxOuProbe(SandboxProbe):
    """The contract's probe, with OUs: a sandbox OU is a path its users are placed in."""

    def create_ou(self, name: str, parent: str | None = None) -> str:
        return f"{parent}/{name}" if parent else name

    def create_user_in(self, ou: str) -> DirectoryUser:
        username = unique("ou")
        return self.directory.add_user(username, username.title(), ou=ou, password=OLD_PASSWORD)


@pytest.fixture
def probe(directory: SandboxDirectory) -> SandboxOuProbe:
    return SandboxOuProbe(directory)


@pytest.fixture
def alice(directory: SandboxDirectory) -> DirectoryUser:
    return directory.add_user(
        "alice", "Alice Liddell", email="alice@example.test", password=PASSWORD
    )


class TestSandboxContract(DirectoryContract, OrganisationalUnitContract):
    """The sandbox keeps the contract every directory keeps, OUs included."""


def child_process(path: Path, code: str, **options: int) -> subprocess.Popen[str]:
    """Start a new Python process running ``code`` with ``d``, a SandboxDirectory
    on ``path`` built with ``options``; its stdout is piped."""
    script = (
        "import sys\n"
        "from directory_adapters import DirectoryUnavailable\n"
        "from directory_adapters.sandbox import InvalidCredentials, SandboxDirectory\n"
        f"d = SandboxDirectory(sys.argv[1], **{options!r})\n{code}"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-c", script, str(path)], env=env, stdout=subprocess.PIPE, text=True
    )


def printed(process: subprocess.Popen[str]) -> list[str]:
    """What ``process`` printed, once it has exited successfully."""
    out, _ = process.communicate(timeout=60)
    assert process.returncode == 0
    return out.split()


# -- simulated outage --------------------------------------------------------------


def test_an_outage_of_n_calls_fails_n_calls_then_recovers(
    directory: SandboxDirectory, alice: DirectoryUser
) -> None:
    directory.set_outage(2)
    with pytest.raises(DirectoryUnavailable, match="simulated outage") as first:
        directory.find_user("alice")
    with pytest.raises(DirectoryUnavailable):
        directory.check_connection()
    assert first.value.permanent is False
    assert first.value.message == OUTAGE_MESSAGE
    assert directory.find_user("alice") == alice
    directory.check_connection()


PROTOCOL_CALLS: dict[str, Callable[[SandboxDirectory, str], Any]] = {
    "check_connection": lambda d, _: d.check_connection(),
    "find_user": lambda d, _: d.find_user("alice"),
    "get_user": lambda d, uid: d.get_user(uid),
    "list_users": lambda d, _: d.list_users(),
    "set_password": lambda d, uid: d.set_password(
        uid, OTHER_PASSWORD, must_change=False, unlock=False
    ),
    "unlock": lambda d, uid: d.unlock(uid),
    "lockout_state": lambda d, uid: d.lockout_state(uid),
    "locked_out_users": lambda d, _: d.locked_out_users(),
    "password_policy": lambda d, _: d.password_policy(),
}


@pytest.mark.parametrize("method", PROTOCOL_CALLS)
def test_an_open_ended_outage_fails_every_protocol_method_until_cleared(
    directory: SandboxDirectory, alice: DirectoryUser, method: str
) -> None:
    call = PROTOCOL_CALLS[method]
    directory.set_outage()
    for _ in range(3):
        with pytest.raises(DirectoryUnavailable):
            call(directory, alice.id)
    # Test controls keep working during an outage.
    assert directory.authenticate("alice", PASSWORD) == alice
    directory.clear_outage()
    call(directory, alice.id)


def test_an_outage_needs_a_positive_count(directory: SandboxDirectory) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        directory.set_outage(0)


def test_an_outage_is_shared_with_another_process(
    directory: SandboxDirectory, tmp_path: Path
) -> None:
    path = tmp_path / "directory.sqlite"
    directory.set_outage(2)
    child = """
for _ in range(3):
    try:
        d.check_connection()
        print("ok")
    except DirectoryUnavailable:
        print("down")
d.set_outage()
"""
    assert printed(child_process(path, child)) == ["down", "down", "ok"]
    with pytest.raises(DirectoryUnavailable):
        directory.check_connection()
    directory.clear_outage()
    directory.check_connection()


# -- shared state ------------------------------------------------------------------


def test_bad_sign_ins_from_several_processes_are_all_counted(tmp_path: Path) -> None:
    path = tmp_path / "directory.sqlite"
    directory = SandboxDirectory(path, lockout_threshold=6)
    directory.add_user("bob", "Bob", password=PASSWORD)
    child = """
for _ in range(2):
    try:
        d.authenticate("bob", "wrong")
    except InvalidCredentials:
        print("bad")
"""
    children = [child_process(path, child, lockout_threshold=6) for _ in range(3)]
    assert [printed(c) for c in children] == [["bad", "bad"]] * 3
    assert directory.is_locked("bob")


def test_bad_sign_ins_from_several_threads_are_all_counted(tmp_path: Path) -> None:
    directory = SandboxDirectory(tmp_path / "directory.sqlite", lockout_threshold=8)
    directory.add_user("bob", "Bob", password=PASSWORD)

    def wrong_sign_in(_: int) -> str:
        try:
            directory.authenticate("bob", "wrong")
        except SignInError as err:
            return type(err).__name__
        return "ok"

    with ThreadPoolExecutor(max_workers=7) as pool:
        assert set(pool.map(wrong_sign_in, range(7))) == {"InvalidCredentials"}
    assert not directory.is_locked("bob")
    assert wrong_sign_in(0) == "InvalidCredentials"
    assert directory.is_locked("bob")


def test_passwords_are_not_stored_in_clear(tmp_path: Path) -> None:
    path = tmp_path / "directory.sqlite"
    directory = SandboxDirectory(path)
    user = directory.add_user("carol", "Carol", password="Initial-Secret-1")
    directory.set_password(user.id, "Reset-Secret-22", must_change=True, unlock=False)
    directory.change_password("carol", "Reset-Secret-22", "Chosen-Secret-333")
    assert directory.authenticate("carol", "Chosen-Secret-333") == user

    stored = b"".join(p.read_bytes() for p in tmp_path.glob("directory.sqlite*"))
    assert b"carol" in stored  # the files do hold the user...
    for secret in ("Initial-Secret-1", "Reset-Secret-22", "Chosen-Secret-333"):
        assert secret.encode() not in stored  # ...but no password
    with sqlite3.connect(path) as conn:
        (hashed,) = conn.execute("SELECT password_hash FROM users").fetchone()
    assert hashed.startswith("scrypt$")


# -- settings ----------------------------------------------------------------------


def test_from_settings_without_a_path_raises_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="'path'"):
        SandboxDirectory.from_settings({"min_length": 8})


def test_create_adapter_builds_a_sandbox_from_settings(tmp_path: Path) -> None:
    settings = {
        "path": str(tmp_path / "d.sqlite"),
        "min_length": 12,
        "complexity": False,
        "lockout_threshold": 2,
    }
    adapter = create_adapter("sandbox", settings)
    assert isinstance(adapter, SandboxDirectory)
    assert adapter.kind == "sandbox"
    assert adapter.password_policy() == PasswordPolicy(min_length=12, complexity=False)
    user = adapter.add_user("dave", "Dave", password=PASSWORD)
    adapter.set_password(user.id, "lowercaseonly", must_change=False, unlock=False)
    SandboxProbe(adapter).lock("dave")  # after 2 bad sign-ins
    assert adapter.lockout_threshold == 2


@pytest.mark.parametrize(
    "override",
    [
        {"path": ""},
        {"min_length": "8"},
        {"min_length": 0},
        {"complexity": "yes"},
        {"lockout_threshold": 2.5},
        {"lockout_threshold": -1},
        {"latency_ms": -1},
        {"latency_ms": "50"},
        {"latency_ms": 0.5},
        {"latency_ms": True},
        {"hash_cost": 0},
        {"hash_cost": 21},
    ],
)
def test_from_settings_refuses_malformed_values(tmp_path: Path, override: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        SandboxDirectory.from_settings({"path": str(tmp_path / "d.sqlite"), **override})


def test_hash_cost_sets_the_scrypt_work_and_sign_in_still_checks_it(tmp_path: Path) -> None:
    cheap = SandboxDirectory.from_settings(
        {"path": str(tmp_path / "directory.sqlite"), "hash_cost": 4}
    )
    entry = cheap.add_user("alice", "Alice", email=None, mobile=None, password="Start!Pass1")
    cheap.set_password(entry.id, "New!Passw0rd", must_change=False, unlock=True)
    conn = sqlite3.connect(cheap.path)
    [stored] = conn.execute("SELECT password_hash FROM users").fetchone()
    conn.close()
    assert stored.startswith("scrypt$16$")
    assert cheap.authenticate("alice", "New!Passw0rd").username == "alice"
    # The default directory reads a cheap hash too: the cost travels with the hash.
    assert SandboxDirectory(cheap.path).authenticate("alice", "New!Passw0rd").username == "alice"


# -- simulated latency ---------------------------------------------------------------


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[tuple[float, bool]]:
    """Each sleep of the sandbox's store: (seconds, whether the file's write lock was free)."""
    seen: list[tuple[float, bool]] = []

    def sleep(seconds: float) -> None:
        probe = sqlite3.connect(tmp_path / "directory.sqlite", timeout=0, isolation_level=None)
        try:
            probe.execute("BEGIN IMMEDIATE")  # fails at once if another holds the lock
            probe.execute("ROLLBACK")
            seen.append((seconds, True))
        except sqlite3.OperationalError:
            seen.append((seconds, False))
        finally:
            probe.close()

    monkeypatch.setattr(store, "time", SimpleNamespace(sleep=sleep))
    return seen


@pytest.mark.parametrize("method", PROTOCOL_CALLS)
def test_latency_delays_each_protocol_call_before_it_takes_the_file(
    tmp_path: Path, sleeps: list[tuple[float, bool]], method: str
) -> None:
    directory = SandboxDirectory(tmp_path / "directory.sqlite", latency_ms=50)
    alice = directory.add_user("alice", "Alice Liddell", password=PASSWORD)
    assert sleeps == []  # test controls answer at once
    PROTOCOL_CALLS[method](directory, alice.id)
    assert sleeps == [(0.05, True)]


def test_latency_does_not_slow_test_controls(
    tmp_path: Path, sleeps: list[tuple[float, bool]]
) -> None:
    directory = SandboxDirectory(tmp_path / "directory.sqlite", latency_ms=50)
    directory.add_user("alice", "Alice", password=PASSWORD)
    directory.add_group("Staff")
    directory.authenticate("alice", PASSWORD)
    directory.set_outage(1)
    directory.clear_outage()
    assert not directory.is_locked("alice")
    assert sleeps == []


def test_no_latency_by_default(tmp_path: Path, sleeps: list[tuple[float, bool]]) -> None:
    directory = SandboxDirectory(tmp_path / "directory.sqlite")
    directory.check_connection()
    assert directory.latency_ms == 0 and sleeps == []


def test_latency_from_settings_is_real_time_and_calls_overlap(tmp_path: Path) -> None:
    adapter = create_adapter(
        "sandbox", {"path": str(tmp_path / "directory.sqlite"), "latency_ms": 300}
    )
    assert isinstance(adapter, SandboxDirectory)
    users = [adapter.add_user(f"user{n}", f"User {n}").id for n in range(4)]
    started = time.perf_counter()
    adapter.get_user(users[0])
    assert time.perf_counter() - started >= 0.3
    # Four workers' round trips overlap: the sleep holds no lock (serialised: >= 1.2 s).
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(adapter.unlock, users))
    assert 0.3 <= time.perf_counter() - started < 0.9


def test_a_path_that_cannot_hold_a_database_raises_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="cannot open"):
        SandboxDirectory(tmp_path / "missing-folder" / "d.sqlite")
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"this is not a database" * 100)
    with pytest.raises(ConfigurationError):
        SandboxDirectory(garbage)


# -- password policy ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("Sh0rt!", "too short"),
        ("lowercase-only", "not complex enough"),
        ("ALICE-Wonder-9", "contains the username"),
    ],
)
def test_a_rejected_password_says_why_without_quoting_it(
    directory: SandboxDirectory, alice: DirectoryUser, password: str, reason: str
) -> None:
    with pytest.raises(PasswordRejected, match=reason) as rejected:
        directory.set_password(alice.id, password, must_change=False, unlock=False)
    assert password not in rejected.value.message
    assert directory.authenticate("alice", PASSWORD) == alice


def test_three_kinds_of_character_are_enough(
    directory: SandboxDirectory, alice: DirectoryUser
) -> None:
    directory.set_password(alice.id, "lower-and-digits-9", must_change=False, unlock=False)
    assert directory.authenticate("alice", "lower-and-digits-9") == alice


def test_set_password_resets_the_bad_password_count(
    directory: SandboxDirectory, alice: DirectoryUser
) -> None:
    for _ in range(2):
        with pytest.raises(InvalidCredentials):
            directory.authenticate("alice", "wrong")
    directory.set_password(alice.id, OTHER_PASSWORD, must_change=False, unlock=False)
    for _ in range(2):
        with pytest.raises(InvalidCredentials):
            directory.authenticate("alice", "wrong")
    assert not directory.is_locked("alice")


def test_set_password_clears_a_pending_must_change_when_not_asked(
    directory: SandboxDirectory, alice: DirectoryUser
) -> None:
    directory.set_password(alice.id, OTHER_PASSWORD, must_change=True, unlock=False)
    assert directory.must_change("alice")
    directory.set_password(alice.id, PASSWORD, must_change=False, unlock=False)
    assert not directory.must_change("alice")


def test_unlock_refuses_a_protected_account(directory: SandboxDirectory) -> None:
    admin = directory.add_user("admin", "Admin", password=PASSWORD, protected=True)
    with pytest.raises(OperationRefused, match="protected"):
        directory.unlock(admin.id)


# -- sign-in (authenticate) and the user's own change -----------------------------


def test_authenticate_accepts_the_right_password_by_username_or_upn(
    directory: SandboxDirectory,
) -> None:
    user = directory.add_user("erin", "Erin", upn="erin@corp.test", password=PASSWORD)
    assert directory.authenticate("ERIN", PASSWORD) == user
    assert directory.authenticate("erin@corp.test", PASSWORD) == user


def test_authenticate_locks_at_the_threshold_then_refuses_even_the_right_password(
    directory: SandboxDirectory, alice: DirectoryUser
) -> None:
    for _ in range(3):
        assert not directory.is_locked("alice")
        with pytest.raises(InvalidCredentials):
            directory.authenticate("alice", "wrong")
    assert directory.is_locked("alice")
    with pytest.raises(AccountLocked):
        directory.authenticate("alice", PASSWORD)
    assert [u.id for u in directory.locked_out_users()] == [alice.id]


def test_a_successful_sign_in_resets_the_bad_password_count(
    directory: SandboxDirectory, alice: DirectoryUser
) -> None:
    for password in ["wrong", "wrong", PASSWORD, "wrong", "wrong"]:
        with contextlib.suppress(InvalidCredentials):
            directory.authenticate("alice", password)
    assert not directory.is_locked("alice")


def test_a_lockout_threshold_of_zero_never_locks(tmp_path: Path) -> None:
    directory = SandboxDirectory(tmp_path / "d.sqlite", lockout_threshold=0)
    directory.add_user("frank", "Frank", password=PASSWORD)
    for _ in range(20):
        with pytest.raises(InvalidCredentials):
            directory.authenticate("frank", "wrong")
    assert directory.authenticate("frank", PASSWORD).username == "frank"


@pytest.mark.parametrize(
    ("username", "password", "error"),
    [
        ("nobody", PASSWORD, InvalidCredentials),
        ("nopass", PASSWORD, InvalidCredentials),
        ("disabled", PASSWORD, AccountDisabled),
        ("disabled", "wrong", InvalidCredentials),
        ("changeme", PASSWORD, MustChangePassword),
        ("changeme", "wrong", InvalidCredentials),
    ],
)
def test_authenticate_refusals(
    directory: SandboxDirectory, username: str, password: str, error: type[SignInError]
) -> None:
    directory.add_user("nopass", "No Password")
    directory.add_user("disabled", "Disabled", password=PASSWORD, disabled=True)
    changeme = directory.add_user("changeme", "Change Me", password=OTHER_PASSWORD)
    directory.set_password(changeme.id, PASSWORD, must_change=True, unlock=False)
    with pytest.raises(error):
        directory.authenticate(username, password)


def test_change_password_clears_must_change(
    directory: SandboxDirectory, alice: DirectoryUser
) -> None:
    directory.set_password(alice.id, OTHER_PASSWORD, must_change=True, unlock=False)
    with pytest.raises(MustChangePassword):
        directory.authenticate("alice", OTHER_PASSWORD)
    directory.change_password("alice", OTHER_PASSWORD, "Brand-New-Choice-4")
    assert not directory.must_change("alice")
    assert directory.authenticate("alice", "Brand-New-Choice-4") == alice


@pytest.mark.parametrize(
    ("old", "new", "error"),
    [
        ("wrong", OTHER_PASSWORD, InvalidCredentials),
        (PASSWORD, PASSWORD, PasswordRejected),
        (PASSWORD, "weak", PasswordRejected),
    ],
)
def test_change_password_refusals_keep_the_old_password(
    directory: SandboxDirectory,
    alice: DirectoryUser,
    old: str,
    new: str,
    error: type[Exception],
) -> None:
    directory.set_password(alice.id, PASSWORD, must_change=True, unlock=False)
    with pytest.raises(error):
        directory.change_password("alice", old, new)
    assert directory.must_change("alice")
    with pytest.raises(MustChangePassword):
        directory.authenticate("alice", PASSWORD)


def test_change_password_on_a_locked_account_is_refused(
    probe: SandboxProbe, alice: DirectoryUser
) -> None:
    probe.lock("alice")
    with pytest.raises(AccountLocked):
        probe.directory.change_password("alice", PASSWORD, OTHER_PASSWORD)


# -- lookups -----------------------------------------------------------------------


def test_find_user_refuses_an_email_shared_by_two_users(directory: SandboxDirectory) -> None:
    directory.add_user("gina", "Gina", email="team@example.test")
    directory.add_user("hugo", "Hugo", email="team@example.test")
    with pytest.raises(UserNotFound, match="ambiguous"):
        directory.find_user("team@example.test")


def test_a_username_is_unique_ignoring_case(directory: SandboxDirectory) -> None:
    directory.add_user("ivan", "Ivan")
    with pytest.raises(ValueError, match="already taken"):
        directory.add_user("IVAN", "Ivan Again")


def test_list_users_by_ou_includes_the_subtree(directory: SandboxDirectory) -> None:
    sales = directory.add_user("sam", "Sam", ou="Staff/Sales")
    staff = directory.add_user("sue", "Sue", ou="Staff")
    directory.add_user("stu", "Stu", ou="Staffing")
    directory.add_user("sid", "Sid")
    assert list(directory.list_users(ou="staff")) == [sales, staff]
    assert list(directory.list_users(ou="Staff/Sales")) == [sales]
    assert list(directory.list_users(group=directory.add_group("G"), ou="Staff")) == []


def test_list_users_survives_a_cycle_of_groups(directory: SandboxDirectory) -> None:
    directory.add_group("A", member_of=["B"])
    directory.add_group("B", member_of=["A"])
    user = directory.add_user("jo", "Jo", groups=["a"])
    assert list(directory.list_users(group="B")) == [user]


def test_list_users_of_an_unknown_group_raises_configuration_error(
    directory: SandboxDirectory,
) -> None:
    with pytest.raises(ConfigurationError, match="no group"):
        directory.list_users(group="Nope")


def test_the_sandbox_satisfies_the_protocol(directory: SandboxDirectory) -> None:
    adapter: DirectoryAdapter = directory  # checked by mypy
    users: Iterator[DirectoryUser] = adapter.list_users()
    assert list(users) == []
