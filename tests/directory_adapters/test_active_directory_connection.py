"""The Active Directory adapter's connections against a real Samba AD domain controller:
settings, TLS verification, failover across DCs, outages and connection reuse, the
diagnosis and ``blink-sms clients test``.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from blink_sms.cli import cli
from directory_adapters import ConfigurationError, DirectoryUnavailable, create_adapter
from directory_adapters.active_directory import ActiveDirectory, ADSettings, Finding, diagnose

from .contract import NEW_PASSWORD, OLD_PASSWORD
from .samba import Delegation, Person, SambaDC

# -- settings ------------------------------------------------------------------------------


def test_settings_have_safe_defaults() -> None:
    parsed = ADSettings.parse(
        {"hosts": "dc1.corp.example, dc2.corp.example:3269", "bind_user": "svc",
         "bind_password": "S3cret!Bind", "base_dn": "DC=corp,DC=example"}
    )  # fmt: skip
    assert parsed.hosts == (("dc1.corp.example", 636), ("dc2.corp.example", 3269))
    assert (parsed.verify_tls, parsed.protect_admins, parsed.use_starttls) == (True, True, False)
    assert parsed.user_attribute == "sAMAccountName"
    assert "S3cret!Bind" not in repr(parsed)
    starttls = ADSettings.parse(
        {"hosts": ["dc1"], "use_starttls": True, "bind_user": "svc", "bind_password": "x",
         "base_dn": "DC=corp,DC=example", "user_attribute": "userprincipalname"}
    )  # fmt: skip
    assert starttls.hosts == (("dc1", 389),)
    assert starttls.user_attribute == "userPrincipalName"


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ({"hosts": []}, "hosts"),
        ({"hosts": 5}, "hosts"),
        ({"bind_password": None}, "bind_password"),
        ({"base_dn": "example.test"}, "base_dn"),
        ({"scopes": ["Sales"]}, "scopes"),
        ({"user_attribute": "cn"}, "user_attribute"),
        ({"verify_tls": "no"}, "verify_tls"),
        ({"receive_timeout": 0}, "receive_timeout"),
        ({"page_size": "many"}, "page_size"),
        ({"ca_file": "/nonexistent/ca.pem"}, "CA file"),
        ({"ca_pem": "not a certificate"}, "ca_pem"),
    ],
)
def test_settings_refuse_malformed_values(override: dict[str, Any], named: str) -> None:
    settings = {"hosts": ["dc1"], "bind_user": "svc", "bind_password": "pw", "base_dn": "DC=x"}
    with pytest.raises(ConfigurationError, match=named):
        ADSettings.parse({**settings, **override})


def test_create_adapter_builds_the_active_directory_adapter(samba_dc: SambaDC) -> None:
    adapter = create_adapter("active_directory", samba_dc.settings())
    assert isinstance(adapter, ActiveDirectory)
    assert adapter.kind == "active_directory"
    adapter.check_connection()
    adapter.close()


# -- connection, TLS, failover -----------------------------------------------------------------


def test_a_wrong_service_password_is_a_permanent_configuration_error(
    connect: Callable[..., ActiveDirectory],
) -> None:
    with pytest.raises(ConfigurationError, match="password is wrong") as wrong:
        connect(bind_password="Not-The-Passw0rd!").check_connection()
    assert wrong.value.permanent
    assert "Not-The-Passw0rd!" not in str(wrong.value)


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ({"base_dn": "OU=Nope,DC=example,DC=test"}, "OU=Nope"),
        ({"scopes": ["OU=Gone,DC=example,DC=test"]}, "OU=Gone"),
    ],
)
def test_a_missing_base_dn_or_scope_is_a_configuration_error(
    connect: Callable[..., ActiveDirectory], override: dict[str, Any], named: str
) -> None:
    with pytest.raises(ConfigurationError, match=named):
        connect(**override).check_connection()


def test_an_untrusted_certificate_is_refused(connect: Callable[..., ActiveDirectory]) -> None:
    with pytest.raises(ConfigurationError, match="not trusted") as refused:
        connect(ca_file=None).check_connection()
    assert "ca_file" in str(refused.value)


def test_a_certificate_for_another_name_is_refused(
    connect: Callable[..., ActiveDirectory], samba_dc: SambaDC
) -> None:
    alias = samba_dc.facts["HOST_ALIAS"]  # the same DC, at an address its certificate lacks
    with pytest.raises(ConfigurationError, match=f"not valid for '{alias}'"):
        connect(hosts=[alias]).check_connection()


def test_turning_verification_off_works_and_is_logged(
    connect: Callable[..., ActiveDirectory], samba_dc: SambaDC, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        adapter = connect(hosts=[samba_dc.facts["HOST_ALIAS"]], ca_file=None, verify_tls=False)
    assert "verification is OFF" in caplog.text
    adapter.check_connection()


def test_starttls_on_389_works_with_a_verified_certificate(
    connect: Callable[..., ActiveDirectory], person: Callable[..., Person], samba_dc: SambaDC
) -> None:
    alice = person()
    adapter = connect(use_starttls=True)
    adapter.set_password(alice.id, NEW_PASSWORD, must_change=False, unlock=True)
    assert samba_dc.sign_in(alice.username, NEW_PASSWORD) == "ok"


def test_an_unreachable_dc_is_skipped_for_the_next(
    connect: Callable[..., ActiveDirectory], samba_dc: SambaDC, person: Callable[..., Person]
) -> None:
    alice = person()
    adapter = connect(hosts=[f"{samba_dc.host}:1", samba_dc.host], connect_timeout=2)
    assert adapter.find_user(alice.username).id == alice.id


@pytest.fixture
def silent_dc() -> Iterator[int]:
    """A port that accepts connections and never says a word (a hung DC)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield int(listener.getsockname()[1])
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    listener.close()


def test_a_dc_that_hangs_is_left_for_the_next(
    connect: Callable[..., ActiveDirectory],
    samba_dc: SambaDC,
    person: Callable[..., Person],
    silent_dc: int,
) -> None:
    alice = person()
    adapter = connect(hosts=[f"127.0.0.1:{silent_dc}", samba_dc.host], receive_timeout=1)
    started = time.monotonic()
    assert adapter.find_user(alice.username).id == alice.id
    assert time.monotonic() - started < 10


def test_every_dc_hanging_is_unavailable_and_retryable(
    connect: Callable[..., ActiveDirectory], silent_dc: int
) -> None:
    adapter = connect(hosts=[f"127.0.0.1:{silent_dc}"], receive_timeout=1)
    with pytest.raises(DirectoryUnavailable) as unavailable:
        adapter.check_connection()
    assert not unavailable.value.permanent


def test_one_bound_connection_is_reused_across_operations_and_threads(
    directory: ActiveDirectory, person: Callable[..., Person]
) -> None:
    users = [person() for _ in range(4)]
    directory.password_policy()
    with ThreadPoolExecutor(max_workers=8) as pool:
        found = list(pool.map(lambda p: directory.find_user(p.username).id, users * 6))
    assert found == [p.id for p in users * 6]
    directory.set_password(users[0].id, NEW_PASSWORD, must_change=False, unlock=True)
    assert directory.binds == 1
    directory.close()
    directory.get_user(users[0].id)
    assert directory.binds == 2


def test_a_stopped_dc_is_unavailable_and_the_same_adapter_works_after_a_restart(
    samba_dc: SambaDC, directory: ActiveDirectory, person: Callable[..., Person]
) -> None:
    alice = person()
    assert directory.get_user(alice.id).id == alice.id
    samba_dc.stop()
    try:
        with pytest.raises(DirectoryUnavailable) as down:
            directory.set_password(alice.id, NEW_PASSWORD, must_change=False, unlock=True)
        assert not down.value.permanent
        assert NEW_PASSWORD not in str(down.value)
    finally:
        samba_dc.restart()
    directory.set_password(alice.id, NEW_PASSWORD, must_change=False, unlock=True)
    assert samba_dc.sign_in(alice.username, NEW_PASSWORD) == "ok"
    assert directory.binds == 2


# -- diagnosis and `blink-sms clients test` ------------------------------------------------------


def levels(findings: list[Finding]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for finding in findings:
        grouped.setdefault(finding.level, []).append(f"{finding.topic}: {finding.message}")
    return grouped


def test_diagnose_finds_nothing_wrong_with_a_good_delegated_account(
    samba_dc: SambaDC, delegation: Delegation, person: Callable[..., Person]
) -> None:
    alice = person(ou=delegation.ou)
    findings = diagnose(
        samba_dc.settings(
            bind_user="svc-blink@example.test",
            bind_password=delegation.password,
            scopes=[delegation.ou],
        )
    )
    found = levels(findings)
    assert "problem" not in found, found
    assert any("Reset Password" in line and "Delegated" in line for line in found["ok"])
    assert samba_dc.sign_in(alice.username, OLD_PASSWORD) == "ok"  # nothing was changed


def test_diagnose_names_the_rights_a_service_account_lacks(
    samba_dc: SambaDC, delegation: Delegation, person: Callable[..., Person]
) -> None:
    alice = person(ou=delegation.elsewhere)
    person(ou=delegation.partial)  # rights are read on a user of each scope
    findings = diagnose(
        samba_dc.settings(
            bind_user="svc-blink@example.test",
            bind_password=delegation.password,
            scopes=[delegation.elsewhere, delegation.partial],
        )
    )
    problems = levels(findings)["problem"]
    elsewhere = next(line for line in problems if "OU=Elsewhere" in line)
    for right in ("Reset Password", "Write pwdLastSet", "Write lockoutTime"):
        assert right in elsewhere
    partial = next(line for line in problems if "OU=Partial" in line)
    assert "Write lockoutTime" in partial and 'Reset Password",' not in partial
    assert samba_dc.sign_in(alice.username, OLD_PASSWORD) == "ok"


@pytest.mark.parametrize(
    ("override", "topic", "words"),
    [
        ({"hosts": ["{host}:1"], "connect_timeout": 1}, "connection", "unreachable"),
        ({"hosts": ["no-such-dc.invalid"]}, "connection", "does not resolve"),
        ({"ca_file": None}, "TLS", "not trusted"),
        ({"hosts": ["{alias}"]}, "TLS", "not valid for '{alias}'"),
        ({"bind_password": "Wrong!Passw0rd"}, "service account", "password is wrong"),
        ({"base_dn": "OU=Nope,DC=example,DC=test"}, "base DN and scopes", "OU=Nope"),
        ({"hosts": "dc1 dc2", "user_attribute": "uid"}, "settings", "user_attribute"),
    ],
)
def test_diagnose_says_what_is_wrong(
    samba_dc: SambaDC, override: dict[str, Any], topic: str, words: str
) -> None:
    addresses = {"host": samba_dc.host, "alias": samba_dc.facts["HOST_ALIAS"]}
    if isinstance(override.get("hosts"), list):
        override = {**override, "hosts": [h.format(**addresses) for h in override["hosts"]]}
    findings = diagnose(samba_dc.settings(**override))
    problems = [f for f in findings if f.level == "problem"]
    assert problems, findings
    assert problems[0].topic == topic
    assert words.format(**addresses) in problems[0].message
    assert "Wrong!Passw0rd" not in repr(findings)


def test_diagnose_checks_every_dc_and_warns_when_verification_is_off(
    samba_dc: SambaDC,
) -> None:
    host = samba_dc.host
    findings = diagnose(
        samba_dc.settings(hosts=[host, f"{host}:1"], verify_tls=False, connect_timeout=1)
    )
    found = levels(findings)
    assert any("verification is off" in line for line in found["warning"])
    assert any(f"{host}:636 answers" in line for line in found["ok"])
    assert any(f"{host}:1 is unreachable" in line for line in found["problem"])


@pytest.fixture
def blink(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., Result]:
    """Run ``blink-sms`` with a fresh database."""
    monkeypatch.chdir(tmp_path)
    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("BLINK_")}
    env |= {"BLINK_SECRET_KEY": secrets.token_urlsafe(32), "BLINK_DATABASE_URL": database_url}

    def invoke(*args: str, stdin: str | None = None) -> Result:
        return CliRunner().invoke(cli, list(args), env=env, input=stdin)

    return invoke


def add_ad_client(
    blink: Callable[..., Result], samba_dc: SambaDC, slug: str, password: str
) -> None:
    result = blink(
        "clients", "add", "--slug", slug, "--name", slug.title(),
        "--directory", "active_directory",
        "--setting", f'hosts=["{samba_dc.host}"]',
        "--setting", f"ca_file={samba_dc.ca_file}",
        "--setting", f"bind_user={samba_dc.admin_dn}",
        "--setting", f"base_dn={samba_dc.base_dn}",
        "--secret", "bind_password",
        stdin=password + "\n",
    )  # fmt: skip
    assert result.exit_code == 0, result.output


def test_clients_test_command_reports_a_working_active_directory(
    blink: Callable[..., Result], samba_dc: SambaDC
) -> None:
    add_ad_client(blink, samba_dc, "contoso", samba_dc.admin_password)
    result = blink("clients", "test", "contoso")
    assert result.exit_code == 0, result.output
    assert "PROBLEM" not in result.output
    assert "Reset Password" in result.output
    assert "contoso: the directory connection works" in result.output


def test_clients_test_command_explains_a_bad_password_and_exits_non_zero(
    blink: Callable[..., Result], samba_dc: SambaDC
) -> None:
    add_ad_client(blink, samba_dc, "fabrikam", "Wrong!Passw0rd-9")
    result = blink("clients", "test", "fabrikam")
    assert result.exit_code == 1
    assert "PROBLEM service account" in result.output
    assert "the password is wrong" in result.output
    assert "Wrong!Passw0rd-9" not in result.output


def test_clients_test_command_checks_any_kind_of_directory(
    blink: Callable[..., Result], tmp_path: Path
) -> None:
    path = tmp_path / "sandbox.sqlite"
    added = blink(
        "clients", "add", "--slug", "demo", "--name", "Demo", "--directory", "sandbox",
        "--setting", f"path={path}",
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    result = blink("clients", "test", "demo")
    assert result.exit_code == 0, result.output
    assert "sandbox connection: the directory answers" in result.output
    missing = blink("clients", "test", "nobody")
    assert missing.exit_code == 1 and "no client" in missing.output
