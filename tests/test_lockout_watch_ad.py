"""The lockout watch against a real Samba AD domain controller.

A domain lockout policy set with ``samba-tool`` (restored afterwards: the DC is shared),
a user locked by bad binds gets one SMS within one poll, replies UNLOCK through the
signed webhook, and binds again with their own password; a second poll sends nothing, a
new lockout later sends a new SMS, and an unlock by an administrator in the directory
closes the event. A fine-grained password policy's lockout duration is the one honoured.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from ldap3 import MODIFY_REPLACE
from sqlalchemy import select

from blink_sms.actors import COMMAND_LINE
from blink_sms.context import Blink
from blink_sms.models import Client, LockoutEvent, User, UserStatus
from blink_sms.services import lockout_watch
from blink_sms.services.clients import create_client
from directory_adapters.active_directory import ActiveDirectory
from tests.conftest import GATEWAY, reply_text, wait_for_jobs
from tests.directory_adapters.samba import SambaDC
from tests.support.fake_twilio import FakeTwilio

THRESHOLD = 2
LOCKED_NOTICE = re.compile(r"^Your account (\S+) is locked\. Reply UNLOCK")
# samba-tool's names for what it shows: (option, line shown by "show").
POLICY = {
    "--account-lockout-threshold": "Account lockout threshold (attempts)",
    "--account-lockout-duration": "Account lockout duration (mins)",
    "--reset-account-lockout-after": "Reset account lockout after (mins)",
}


def policy(dc: SambaDC) -> dict[str, str]:
    """The domain's lockout policy as samba-tool shows it: option -> value."""
    shown = dc.tool("domain", "passwordsettings", "show")
    found = {
        option: re.search(rf"{re.escape(label)}: (\d+)", shown) for option, label in POLICY.items()
    }
    return {option: match.group(1) for option, match in found.items() if match}


def set_policy(dc: SambaDC, values: dict[str, str]) -> None:
    dc.tool("domain", "passwordsettings", "set", *(f"{k}={v}" for k, v in values.items()))


@pytest.fixture(scope="module")
def lockout_policy(samba_dc: SambaDC) -> Iterator[None]:
    """The domain's policy: locked after 2 bad passwords, for 30 minutes; then restored."""
    before = policy(samba_dc)
    assert len(before) == len(POLICY)
    try:
        set_policy(samba_dc, dict(zip(POLICY, [str(THRESHOLD), "30", "30"], strict=True)))
        yield
    finally:
        set_policy(samba_dc, before)
    assert policy(samba_dc) == before


@pytest.fixture(scope="module")
def staff_ou(samba_dc: SambaDC) -> str:
    return samba_dc.add_ou(f"Watched{secrets.token_hex(3)}")


@pytest.fixture
def client(services: Blink, samba_dc: SambaDC, staff_ou: str) -> Client:
    with services.db.session() as session:
        client = create_client(
            session, services.secrets, COMMAND_LINE, slug="northwind", name="Northwind",
            directory_kind="active_directory",
            directory_settings=samba_dc.settings(scopes=[staff_ou]), sender_number=GATEWAY,
        )  # fmt: skip
        session.commit()
        return client


@dataclass
class Employee:
    username: str
    dn: str
    phone: str
    password: str


@pytest.fixture
def hire(
    services: Blink, client: Client, samba_dc: SambaDC, staff_ou: str
) -> Callable[..., Employee]:
    """A user in AD with a password of their own, enrolled in the gateway (or not)."""

    def make(*, enrolled: bool = True) -> Employee:
        username = f"lw{secrets.token_hex(4)}"
        phone = f"+1555{secrets.randbelow(10**7):07d}"
        password = "Own!Passw0rd-" + secrets.token_hex(3)
        dn = samba_dc.add_user(username, staff_ou, password, mobile=phone)
        with services.db.session() as session:
            session.add(
                User(
                    client_id=client.id, directory_id=samba_dc.guid(dn), username=username,
                    display_name=username, phone=phone if enrolled else None,
                    status=UserStatus.ACTIVE if enrolled else UserStatus.PENDING,
                )
            )  # fmt: skip
            session.commit()
        return Employee(username, dn, phone, password)

    return make


def lock(dc: SambaDC, employee: Employee) -> None:
    for attempt in range(THRESHOLD):
        assert dc.sign_in(employee.username, f"Wrong!Passw0rd{attempt}") == "bad"
    assert dc.is_locked(employee.dn)


def one_poll(services: Blink) -> None:
    """What the scheduler does at its next tick: the due poll, run by a worker."""
    assert lockout_watch.enqueue_due(services) == 1
    wait_for_jobs(services)


def events(services: Blink) -> list[LockoutEvent]:
    with services.db.session() as session:
        return list(session.execute(select(LockoutEvent).order_by(LockoutEvent.id)).scalars())


def notices(twilio: FakeTwilio) -> list[str]:
    return [m["Body"] for m in twilio.sent if LOCKED_NOTICE.match(m["Body"])]


def test_a_locked_user_is_texted_replies_unlock_and_signs_in_again(
    lockout_policy: None,
    samba_dc: SambaDC,
    hire: Callable[..., Employee],
    services: Blink,
    client: Client,
    twilio: FakeTwilio,
    text_gateway: Callable[..., Any],
) -> None:
    employee = hire()
    bystander = hire(enrolled=False)
    lock(samba_dc, employee)
    lock(samba_dc, bystander)

    one_poll(services)

    [sms] = twilio.sent
    assert sms["To"] == employee.phone and LOCKED_NOTICE.match(sms["Body"])
    assert employee.username in sms["Body"]
    [event] = events(services)
    assert event.locked_at is not None and event.notice == "sent"
    assert lockout_watch.poll(services, client.id).texted == 0  # a second poll: nothing

    ack = reply_text(text_gateway(employee.phone, "UNLOCK"))
    wait_for_jobs(services)

    assert ack is not None and "unlocked" in ack
    assert samba_dc.sign_in(employee.username, employee.password) == "ok"
    assert lockout_watch.poll(services, client.id).closed == 1
    assert [e.ended_reason for e in events(services)] == ["unlocked"]

    lock(samba_dc, employee)  # a new lockout, later: a new SMS
    assert lockout_watch.poll(services, client.id).texted == 1
    assert len(notices(twilio)) == 2

    samba_dc.set(employee.dn, lockoutTime="0")  # an administrator unlocks in AD
    assert lockout_watch.poll(services, client.id).closed == 1
    assert [e.ended_reason for e in events(services)] == ["unlocked", "ended"]
    assert samba_dc.sign_in(employee.username, employee.password) == "ok"
    assert len(notices(twilio)) == 2
    assert bystander.phone not in {m["To"] for m in twilio.sent}


def test_a_fine_grained_policys_lockout_duration_is_honoured(
    lockout_policy: None,
    samba_dc: SambaDC,
    staff_ou: str,
    hire: Callable[..., Employee],
    client: Client,
) -> None:
    short, domain = hire(), hire()
    ours = {short.username, domain.username}
    container = f"CN=Password Settings Container,CN=System,{samba_dc.base_dn}"
    pso = f"CN=blink-short-lockout-{secrets.token_hex(3)},{container}"
    second = -10_000_000  # 100 ns units, negative: an interval
    samba_dc.admin.add(
        pso,
        ["top", "msDS-PasswordSettings"],
        {
            "msDS-PasswordSettingsPrecedence": "1",
            "msDS-PasswordReversibleEncryptionEnabled": "FALSE",
            "msDS-PasswordHistoryLength": "0",
            "msDS-PasswordComplexityEnabled": "FALSE",
            "msDS-MinimumPasswordLength": "0",
            "msDS-MinimumPasswordAge": "0",
            "msDS-MaximumPasswordAge": str(42 * 86_400 * second),
            "msDS-LockoutThreshold": str(THRESHOLD),
            "msDS-LockoutObservationWindow": str(3 * second),
            "msDS-LockoutDuration": str(3 * second),  # 3 s instead of the domain's 30 min
            "msDS-PSOAppliesTo": short.dn,
        },
    )
    samba_dc.ok("add the PSO")
    directory = ActiveDirectory.from_settings(samba_dc.settings(scopes=[staff_ou]))
    try:
        lock(samba_dc, short)
        lock(samba_dc, domain)
        assert {lockout.user.username for lockout in directory.lockouts()} & ours == ours
        time.sleep(4)
        still = {lockout.user.username for lockout in directory.lockouts()} & ours
        assert still == {domain.username}
        assert samba_dc.sign_in(short.username, short.password) == "ok"
    finally:
        directory.close()
        samba_dc.admin.delete(pso)
        samba_dc.admin.modify(domain.dn, {"lockoutTime": [(MODIFY_REPLACE, ["0"])]})
