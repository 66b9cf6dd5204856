"""The spine with an Entra ID client: a signed RESET webhook, the job (in-process queue),
Microsoft Graph (faked with ``responses``, stateful) and Twilio, in one process.

The PATCH that reaches Graph must carry the very password that was texted, with
``forceChangePasswordNextSignIn``; UNLOCK is answered with an offer of RESET; synced
and privileged users are refused with a reason the admin can read.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import responses
from sqlalchemy import select

from blink_sms.actors import COMMAND_LINE
from blink_sms.context import Blink
from blink_sms.messaging import texts
from blink_sms.messaging.i18n import translate
from blink_sms.models import (
    AuditEvent,
    Client,
    OutboundMessage,
    RequestStatus,
    ResetRequest,
    User,
    UserStatus,
)
from blink_sms.services.clients import create_client
from tests.conftest import ACCOUNT_SID, GATEWAY, reply_text, wait_for_jobs
from tests.support.fake_graph import EntraProbe, FakeEntra, FakeUser
from tests.support.fake_twilio import FakeTwilio

Send = Callable[..., Any]
OLD_PASSWORD = "Old-Passw0rd-kept!"
SUPPORT = "Northwind IT, +1 555 0199"


@pytest.fixture
def fakes() -> Iterator[tuple[FakeTwilio, FakeEntra]]:
    """Twilio and the Entra tenant on one RequestsMock: a job calls both."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield FakeTwilio(ACCOUNT_SID).install(rsps), FakeEntra().install(rsps)


@pytest.fixture
def twilio(fakes: tuple[FakeTwilio, FakeEntra]) -> FakeTwilio:
    return fakes[0]


@pytest.fixture
def tenant(fakes: tuple[FakeTwilio, FakeEntra]) -> FakeEntra:
    return fakes[1]


@pytest.fixture
def northwind(services: Blink, tenant: FakeEntra) -> Client:
    with services.db.session() as session:
        client = create_client(
            session,
            services.secrets,
            COMMAND_LINE,
            slug="northwind",
            name="Northwind",
            directory_kind="entra_id",
            directory_settings=tenant.settings(),
            sender_number=GATEWAY,
            support_contact=SUPPORT,
        )
        session.commit()
        return client


@dataclass
class EntraPerson:
    user: User
    entry: FakeUser
    phone: str


@pytest.fixture
def enrol(services: Blink, northwind: Client, tenant: FakeEntra) -> Callable[..., EntraPerson]:
    """Make a tenant user and enrol them (active, phone bound)."""

    def make(username: str, phone: str, **options: Any) -> EntraPerson:
        entry = tenant.add_user(
            username, OLD_PASSWORD, mail=f"{username}@northwind.example", mobile=phone, **options
        )
        with services.db.session() as session:
            user = User(
                client_id=northwind.id,
                directory_id=entry.id,
                username=entry.user_principal_name,
                display_name=entry.display_name,
                email=entry.mail,
                phone=phone,
                status=UserStatus.ACTIVE,
            )
            session.add(user)
            session.commit()
        return EntraPerson(user, entry, phone)

    return make


def only_request(services: Blink) -> ResetRequest:
    with services.db.session() as session:
        [request] = session.execute(select(ResetRequest)).scalars().all()
        return request


def purposes(services: Blink) -> list[str]:
    with services.db.session() as session:
        return list(session.execute(select(OutboundMessage.purpose)).scalars())


def test_reset_sets_the_texted_password_in_entra_and_forces_a_change(
    text_gateway: Send,
    enrol: Callable[..., EntraPerson],
    services: Blink,
    twilio: FakeTwilio,
    tenant: FakeEntra,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    megan = enrol("megan", "+15551230101")

    ack = reply_text(text_gateway(megan.phone, "RESET"))
    wait_for_jobs(services)

    assert ack is not None and "password" in ack.lower()
    [sms] = twilio.sent
    assert (sms["To"], sms["From"]) == (megan.phone, GATEWAY)
    match = re.search(r"password: (\S+)", sms["Body"])
    assert match, sms["Body"]
    password = match.group(1)
    assert tenant.patches_of(megan.entry.id) == [
        {"passwordProfile": {"forceChangePasswordNextSignIn": True, "password": password}}
    ]
    probe = EntraProbe(tenant, adapter=None)
    assert probe.sign_in(megan.entry.user_principal_name, password) == "must_change"
    assert probe.sign_in(megan.entry.user_principal_name, OLD_PASSWORD) == "bad"
    request = only_request(services)
    assert request.status is RequestStatus.DONE
    assert request.outbound_sid == sms["Sid"]
    with services.db.session() as session:
        actions = [e.action for e in session.execute(select(AuditEvent)).scalars()]
    assert "reset.completed" in actions
    assert any("graph.microsoft.com" in r.getMessage() for r in caplog.records)  # logs ran
    assert password not in caplog.text
    assert tenant.client_secret not in caplog.text
    assert all(password not in repr(record.__dict__) for record in caplog.records)


def test_a_graph_outage_is_retried_by_the_job(
    text_gateway: Send,
    enrol: Callable[..., EntraPerson],
    services: Blink,
    twilio: FakeTwilio,
    tenant: FakeEntra,
) -> None:
    nina = enrol("nina", "+15551230102")
    # Three 503s exhaust the adapter's own attempts; the job's retry then succeeds.
    tenant.fail_next(3, status=503, code="serviceNotAvailable", retry_after="0", method="PATCH")
    text_gateway(nina.phone, "RESET")
    wait_for_jobs(services)
    request = only_request(services)
    assert (request.status, request.attempts) == (RequestStatus.DONE, 2)
    assert len(tenant.patches_of(nina.entry.id)) == 4
    assert len(twilio.sent) == 1


def test_unlock_for_an_entra_user_is_answered_at_once_with_an_offer_of_reset(
    text_gateway: Send,
    enrol: Callable[..., EntraPerson],
    services: Blink,
    twilio: FakeTwilio,
    tenant: FakeEntra,
) -> None:
    otto = enrol("otto", "+15551230103")
    reply = reply_text(text_gateway(otto.phone, "UNLOCK"))
    wait_for_jobs(services)
    assert reply == translate("en", texts.UNLOCK_NOT_SUPPORTED)
    assert twilio.sent == []
    assert purposes(services) == []
    assert tenant.patches_of(otto.entry.id) == []


def test_an_admin_unlock_for_an_entra_user_fails_with_an_offer_of_reset(
    enrol: Callable[..., EntraPerson],
    services: Blink,
    twilio: FakeTwilio,
    tenant: FakeEntra,
) -> None:
    from blink_sms.models import RequestKind, RequestOrigin, User
    from blink_sms.services.resets import Target, request_reset

    otto = enrol("otto", "+15551230103")
    with services.db.session() as session:
        user = session.get(User, otto.user.id)
        assert user is not None
        request_reset(
            services, session, Target.of(user), kind=RequestKind.UNLOCK,
            origin=RequestOrigin.ADMIN, actor="admin:test",
        )  # fmt: skip
    wait_for_jobs(services)
    assert [m["Body"] for m in twilio.sent] == [translate("en", texts.UNLOCK_NOT_SUPPORTED)]
    request = only_request(services)
    assert (request.status, request.error_code) == (RequestStatus.FAILED, "unlock_not_supported")
    assert purposes(services) == ["unlock_not_supported"]
    assert tenant.patches_of(otto.entry.id) == []


@pytest.mark.parametrize(
    ("options", "error_code"),
    [
        ({"synced": True}, "synced_from_active_directory"),
        ({"role": "Global Administrator"}, "privileged_account"),
    ],
)
def test_synced_and_privileged_users_are_refused_with_a_reason(
    text_gateway: Send,
    enrol: Callable[..., EntraPerson],
    services: Blink,
    twilio: FakeTwilio,
    tenant: FakeEntra,
    options: dict[str, Any],
    error_code: str,
) -> None:
    role = options.pop("role", None)
    pia = enrol("pia", "+15551230104", **options)
    if role:
        tenant.assign_role(pia.entry.id, role)
    text_gateway(pia.phone, "RESET")
    wait_for_jobs(services)
    request = only_request(services)
    assert (request.status, request.error_code) == (RequestStatus.FAILED, error_code)
    assert tenant.patches_of(pia.entry.id) == []
    [apology] = twilio.sent
    assert SUPPORT in apology["Body"]


def test_graph_throttling_puts_the_retry_after_the_wait_graph_asked_for(
    text_gateway: Send,
    enrol: Callable[..., EntraPerson],
    services: Blink,
    twilio: FakeTwilio,
    tenant: FakeEntra,
) -> None:
    from datetime import timedelta

    from blink_sms.models import utcnow
    from blink_sms.services import reset_job

    rita = enrol("rita", "+15551230105")
    tenant.fail_next(status=429, code="TooManyRequests", retry_after="300")
    text_gateway(rita.phone, "RESET")
    wait_for_jobs(services)
    request = only_request(services)
    assert (request.status, request.error_code) == (RequestStatus.QUEUED, "directory_unavailable")
    assert request.next_attempt_at is not None and request.enqueued_at is None
    assert request.next_attempt_at - utcnow() > timedelta(seconds=280)  # not the 0 s interval
    assert twilio.sent == [] and tenant.patches_of(rita.entry.id) == []
    assert reset_job.sweep(services).enqueued == 0  # Graph asked for five minutes
    assert reset_job.sweep(services, now=utcnow() + timedelta(seconds=301)).enqueued == 1
