"""Password expiries from a real Samba AD domain controller, and a reminder end to end.

The domain's maximum password age is set with ``samba-tool`` and a fine-grained policy
(PSO) is made for one user; both are put back in a ``finally``, as other tests share the
DC. The adapter reads the DC's own ``msDS-UserPasswordExpiryTimeComputed`` in its paged
search, so the expiries asserted here are the DC's, computed from ``pwdLastSet``.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select

from blink_sms.actors import COMMAND_LINE
from blink_sms.context import Blink
from blink_sms.models import AuditEvent, User, UserStatus, utcnow
from blink_sms.services.clients import create_client, update_client
from blink_sms.services.expiry_reminders import DailyReminders
from directory_adapters.active_directory import ActiveDirectory
from directory_adapters.active_directory.values import filetime
from tests.conftest import GATEWAY, wait_for_jobs
from tests.directory_adapters.samba import SambaDC
from tests.support.fake_twilio import FakeTwilio

PASSWORD = "Own!Passw0rd-1"
DONT_EXPIRE_PASSWORD = 0x10000
NORMAL_ACCOUNT = 0x200


@pytest.fixture
def max_age_5_days(samba_dc: SambaDC) -> Iterator[None]:
    """The domain's passwords last 5 days while the test runs; then as before."""
    before = samba_dc.read(samba_dc.base_dn, "maxPwdAge")["maxPwdAge"][0]
    samba_dc.tool("domain", "passwordsettings", "set", "--max-pwd-age=5")
    try:
        yield
    finally:
        samba_dc.set(samba_dc.base_dn, maxPwdAge=before.decode())


@pytest.fixture
def ou(samba_dc: SambaDC) -> str:
    """An OU of this test's own, so that the adapter sees only its users."""
    return samba_dc.add_ou(f"Expiry{secrets.token_hex(3)}")


@pytest.fixture
def directory(samba_dc: SambaDC, ou: str) -> Iterator[ActiveDirectory]:
    adapter = ActiveDirectory.from_settings(samba_dc.settings(scopes=[ou]))
    yield adapter
    adapter.close()


def pwd_last_set(dc: SambaDC, dn: str) -> int:
    return int(dc.read(dn, "pwdLastSet")["pwdLastSet"][0])


def test_active_directory_reports_the_dcs_expiry_and_skips_passwords_that_never_expire(
    samba_dc: SambaDC, max_age_5_days: None, ou: str, directory: ActiveDirectory
) -> None:
    expiring = samba_dc.add_user("exp-ann", ou, PASSWORD)
    never = samba_dc.add_user("exp-ned", ou, PASSWORD)
    samba_dc.set(never, userAccountControl=str(NORMAL_ACCOUNT | DONT_EXPIRE_PASSWORD))
    samba_dc.add_user("exp-dis", ou, PASSWORD, disabled=True)
    must_change = samba_dc.add_user("exp-mc", ou, PASSWORD)
    samba_dc.set(must_change, pwdLastSet="0")  # must change at next logon: no expiry yet

    [expiry] = directory.password_expiries(utcnow() + timedelta(days=6))

    assert expiry.user.username == "exp-ann"
    assert expiry.user.id == samba_dc.guid(expiring)
    assert expiry.expires_at == filetime(pwd_last_set(samba_dc, expiring)) + timedelta(days=5)
    assert directory.password_expiries(utcnow() + timedelta(days=4)) == []  # not yet


def test_a_fine_grained_policy_shortens_one_users_expiry(
    samba_dc: SambaDC, max_age_5_days: None, ou: str, directory: ActiveDirectory
) -> None:
    samba_dc.add_user("exp-bea", ou, PASSWORD)
    short = samba_dc.add_user("exp-pso", ou, PASSWORD)
    pso = f"blink-expiry-{secrets.token_hex(3)}"
    samba_dc.tool("domain", "passwordsettings", "pso", "create", pso, "1", "--max-pwd-age=2")
    try:
        samba_dc.tool("domain", "passwordsettings", "pso", "apply", pso, "exp-pso")
        soon = directory.password_expiries(utcnow() + timedelta(days=3))
        both = directory.password_expiries(utcnow() + timedelta(days=6))
    finally:
        samba_dc.tool("domain", "passwordsettings", "pso", "delete", pso)

    assert [e.user.username for e in soon] == ["exp-pso"]
    assert soon[0].expires_at == filetime(pwd_last_set(samba_dc, short)) + timedelta(days=2)
    assert [e.user.username for e in both] == ["exp-pso", "exp-bea"]  # soonest first


def test_an_enrolled_active_directory_user_is_reminded_once_by_the_daily_job(
    samba_dc: SambaDC,
    max_age_5_days: None,
    ou: str,
    services: Blink,
    twilio: FakeTwilio,
) -> None:
    with services.db.session() as session:
        client = create_client(
            session, services.secrets, COMMAND_LINE, slug="northwind", name="Northwind",
            directory_kind="active_directory", directory_settings=samba_dc.settings(scopes=[ou]),
            sender_number=GATEWAY,
        )  # fmt: skip
        update_client(session, COMMAND_LINE, client, expiry_reminder_days="7,3")
    phones = {}
    for username, flags in (("exp-eve", 0), ("exp-fay", DONT_EXPIRE_PASSWORD)):
        dn = samba_dc.add_user(username, ou, PASSWORD)
        if flags:
            samba_dc.set(dn, userAccountControl=str(NORMAL_ACCOUNT | flags))
        phones[username] = f"+1555{secrets.randbelow(10**7):07d}"
        with services.db.session() as session:
            session.add(
                User(client_id=client.id, directory_id=samba_dc.guid(dn), username=username,
                     display_name=username, phone=phones[username], status=UserStatus.ACTIVE)
            )  # fmt: skip
            session.commit()

    assert DailyReminders()(services) == 1
    wait_for_jobs(services)

    [sms] = twilio.sent
    assert (sms["To"], sms["From"]) == (phones["exp-eve"], GATEWAY)
    assert sms["Body"] == (
        "Your password for exp-eve expires in 5 days. Reply RESET for a new password."
    )
    with services.db.session() as session:
        reminded = session.execute(
            select(AuditEvent).where(AuditEvent.action == "password.expiry_reminded")
        ).scalar_one()
    assert reminded.detail["days_before"] == 7
