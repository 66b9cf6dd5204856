"""The spine's flow end to end against a real Samba AD domain controller.

Signed webhook RESET → Redis → a real RQ worker process → the Active Directory adapter
→ Samba → Twilio's REST API (faked with ``responses``): the texted password is refused
with 773 until the user changes it, then the user's own password signs in. Also UNLOCK
through the worker, and a DC outage that the retried job survives.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

import pytest
from redis import Redis
from rq import Queue
from sqlalchemy import select

from blink_sms.actors import COMMAND_LINE
from blink_sms.context import Blink
from blink_sms.models import Client, RequestStatus, ResetRequest, User, UserStatus
from blink_sms.services import reset_job
from blink_sms.services.clients import create_client
from blink_sms.settings import Settings
from tests.conftest import GATEWAY, reply_text
from tests.directory_adapters.samba import SambaDC, data_code
from tests.support.fake_twilio import FakeTwilio
from tests.support.worker import Send, password_in, run_worker

SLUG = "northwind"


@pytest.fixture(scope="session")
def staff_ou(samba_dc: SambaDC) -> str:
    return samba_dc.add_ou("Northwind")


@pytest.fixture
def settings(settings: Settings, redis_url: str) -> Settings:
    return settings.with_changes(redis_url=redis_url, job_retry_intervals=(0, 0, 0))


@pytest.fixture
def client(services: Blink, samba_dc: SambaDC, staff_ou: str) -> Client:
    """A client on Active Directory, scoped to its OU (settings stored encrypted)."""
    with services.db.session() as session:
        client = create_client(
            session,
            services.secrets,
            COMMAND_LINE,
            slug=SLUG,
            name="Northwind",
            directory_kind="active_directory",
            directory_settings=samba_dc.settings(scopes=[staff_ou]),
            sender_number=GATEWAY,
            support_contact="Northwind IT",
        )
        session.commit()
        return client


@dataclass
class Employee:
    username: str
    dn: str
    phone: str
    password: str


@pytest.fixture
def employee(services: Blink, client: Client, samba_dc: SambaDC, staff_ou: str) -> Employee:
    """An enrolled user: in AD with a password of their own, and active in the gateway."""
    username = f"nw{secrets.token_hex(4)}"
    phone = f"+1555{secrets.randbelow(10**7):07d}"
    password = "Own!Passw0rd-" + secrets.token_hex(3)
    dn = samba_dc.add_user(username, staff_ou, password, mobile=phone, displayName="Nancy Wood")
    with services.db.session() as session:
        session.add(
            User(
                client_id=client.id,
                directory_id=samba_dc.guid(dn),
                username=username,
                display_name="Nancy Wood",
                phone=phone,
                status=UserStatus.ACTIVE,
            )
        )
        session.commit()
    return Employee(username, dn, phone, password)


def the_request(services: Blink) -> ResetRequest:
    with services.db.session() as session:
        request: ResetRequest = session.execute(select(ResetRequest)).scalar_one()
        return request


def test_a_texted_reset_sets_a_password_in_active_directory_that_must_be_changed(
    text_gateway: Send,
    employee: Employee,
    samba_dc: SambaDC,
    services: Blink,
    settings: Settings,
    tmp_path: Path,
) -> None:
    redis: Redis[bytes] = Redis.from_url(settings.redis_url or "")
    ack = reply_text(text_gateway(employee.phone, "RESET"))
    assert ack is not None and "arrive" in ack
    assert Queue(f"client-{SLUG}", connection=redis).count == 1

    sent, worker_logs = run_worker(settings, tmp_path)

    [sms] = sent
    assert (sms["To"], sms["From"]) == (employee.phone, GATEWAY)
    password = password_in(sms["Body"])
    ok, result = samba_dc.bind(employee.dn, password)
    assert not ok and data_code(result["message"]) == "773"  # must change at next logon
    assert samba_dc.sign_in(employee.username, employee.password) == "bad"
    changed = samba_dc.change_password(employee.username, password, "Chosen!Passw0rd-9")
    assert changed["result"] == 0, changed
    assert samba_dc.sign_in(employee.username, "Chosen!Passw0rd-9") == "ok"
    assert the_request(services).status is RequestStatus.DONE
    assert "request completed" in worker_logs
    assert password not in worker_logs
    assert samba_dc.admin_password not in worker_logs


def test_a_texted_reset_unlocks_a_locked_out_account(
    text_gateway: Send,
    employee: Employee,
    samba_dc: SambaDC,
    settings: Settings,
    tmp_path: Path,
) -> None:
    for attempt in range(3):
        samba_dc.sign_in(employee.username, f"Wrong!{attempt}xx")
    assert samba_dc.sign_in(employee.username, employee.password) == "locked"
    text_gateway(employee.phone, "RESET")
    [sms], _ = run_worker(settings, tmp_path)
    assert samba_dc.sign_in(employee.username, password_in(sms["Body"])) == "must_change"


def test_unlock_by_text_keeps_the_users_own_password(
    text_gateway: Send,
    employee: Employee,
    samba_dc: SambaDC,
    settings: Settings,
    tmp_path: Path,
) -> None:
    for attempt in range(3):
        samba_dc.sign_in(employee.username, f"Wrong!{attempt}xx")
    assert samba_dc.sign_in(employee.username, employee.password) == "locked"
    text_gateway(employee.phone, "UNLOCK")
    [sms], _ = run_worker(settings, tmp_path)
    assert "unlocked" in sms["Body"]
    assert samba_dc.sign_in(employee.username, employee.password) == "ok"


def test_a_reset_during_a_dc_outage_is_retried_and_succeeds_after_the_restart(
    text_gateway: Send,
    employee: Employee,
    samba_dc: SambaDC,
    services: Blink,
    client: Client,
    twilio: FakeTwilio,
) -> None:
    text_gateway(employee.phone, "RESET")
    request_id = the_request(services).id
    # The jobs' adapter is kept for the process, with a bound connection the outage breaks.
    services.directories.for_client(client).check_connection()
    samba_dc.stop()
    try:
        reset_job.perform(services, request_id)
        failed_attempt = the_request(services)
        assert failed_attempt.status is RequestStatus.QUEUED
        assert failed_attempt.error_code == "directory_unavailable"
        assert twilio.sent == []
    finally:
        samba_dc.restart()
    reset_job.perform(services, request_id)
    done = the_request(services)
    assert (done.status, done.attempts) == (RequestStatus.DONE, 2)
    [sms] = twilio.sent
    assert samba_dc.sign_in(employee.username, password_in(sms["Body"])) == "must_change"
