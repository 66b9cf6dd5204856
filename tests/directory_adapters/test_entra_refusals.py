"""Entra ID accounts the gateway must not reset, through the services: a user import
skips them as protected and says why, and a RESET they text is refused before any
change with a text saying that this account cannot be reset by text (not the apology,
which invites a retry)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import responses
from sqlalchemy import select

from blink_sms.actors import COMMAND_LINE
from blink_sms.context import Blink
from blink_sms.messaging import texts
from blink_sms.messaging.i18n import translate
from blink_sms.models import Client, RequestStatus, ResetRequest, User, UserStatus
from blink_sms.services import users as users_service
from blink_sms.services.clients import create_client
from tests.conftest import ACCOUNT_SID, GATEWAY, wait_for_jobs
from tests.support.fake_graph import FakeEntra, FakeUser
from tests.support.fake_twilio import FakeTwilio

PASSWORD = "Old-Passw0rd-kept!"
SUPPORT = "Northwind IT, +31 20 555 0199"


@pytest.fixture
def fakes() -> Iterator[tuple[FakeTwilio, FakeEntra]]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield FakeTwilio(ACCOUNT_SID).install(rsps), FakeEntra().install(rsps)


@pytest.fixture
def tenant(fakes: tuple[FakeTwilio, FakeEntra]) -> FakeEntra:
    tenant = fakes[1]
    tenant.add_domain("fabrikam.example", federated=True)
    return tenant


@pytest.fixture
def client(services: Blink, tenant: FakeEntra) -> Client:
    with services.db.session() as session:
        made = create_client(
            session,
            services.secrets,
            COMMAND_LINE,
            slug="northwind",
            name="Northwind",
            directory_kind="entra_id",
            directory_settings=tenant.settings(),
            sender_number=GATEWAY,
            support_contact=SUPPORT,
            language="nl",
        )
        session.commit()
        return made


# Each kind of account that must not be reset, made in the tenant; its error code.
def _eligible(t: FakeEntra) -> FakeUser:
    user = t.add_user("pra", PASSWORD, mail="pra@northwind.example")
    t.assign_role(user.id, "Privileged Role Administrator", eligible=True)
    return user


def _au_scoped(t: FakeEntra) -> FakeUser:
    user = t.add_user("uad", PASSWORD, mail="uad@northwind.example")
    t.assign_role(user.id, "User Administrator", administrative_unit="au-1")
    return user


def _guest(t: FakeEntra) -> FakeUser:
    return t.add_user("gus", PASSWORD, mail="gus@fabrikam.example", guest=True)


def _restricted(t: FakeEntra) -> FakeUser:
    user = t.add_user("rex", PASSWORD, mail="rex@northwind.example")
    t.add_unit("Executives", members=[user.id], restricted=True)
    return user


def _federated(t: FakeEntra) -> FakeUser:
    return t.add_user("fed", PASSWORD, mail="fed@fabrikam.example", domain="fabrikam.example")


def _disabled(t: FakeEntra) -> FakeUser:
    return t.add_user("dis", PASSWORD, mail="dis@northwind.example", enabled=False)


# name: (how to make one, the failed request's error code, a word of its import reason)
KINDS: dict[str, tuple[Callable[[FakeEntra], FakeUser], str, str]] = {
    "pim eligible": (_eligible, "privileged_account", "eligible"),
    "au scoped": (_au_scoped, "privileged_account", "directory role"),
    "guest": (_guest, "guest_account", "guest account"),
    "restricted unit": (_restricted, "management_restricted", "restricted-management"),
    "federated": (_federated, "federated_domain", "connect the client's Active Directory"),
}


def test_import_skips_protected_users_and_says_why(
    services: Blink, tenant: FakeEntra, client: Client
) -> None:
    made = {name: make(tenant) for name, (make, _, _) in KINDS.items()}
    tenant.add_user("ann", PASSWORD, mail="ann@northwind.example")

    with services.db.session() as session:
        entries = users_service.directory_users(services, COMMAND_LINE, client)
        summary = users_service.import_users(session, COMMAND_LINE, client, entries)
        imported = list(session.execute(select(User.username)).scalars())

    assert (summary.new, summary.skipped_protected) == (1, len(KINDS))
    assert imported == [f"ann@{tenant.domain}"]
    reasons = dict(line.split(": ", 1) for line in summary.protected)
    assert set(reasons) == {user.user_principal_name for user in made.values()}
    for name, user in made.items():
        assert KINDS[name][2] in reasons[user.user_principal_name], name


@pytest.mark.parametrize("kind", [*KINDS, "disabled"])
def test_a_refused_reset_says_the_account_cannot_be_reset_by_text(
    services: Blink,
    tenant: FakeEntra,
    fakes: tuple[FakeTwilio, FakeEntra],
    client: Client,
    text_gateway: Callable[..., Any],
    kind: str,
) -> None:
    make, code, _ = KINDS.get(kind, (_disabled, "operation_refused", ""))
    entry = make(tenant)
    phone = "+31612345678"
    with services.db.session() as session:
        session.add(User(client_id=client.id, directory_id=entry.id,
                         username=entry.user_principal_name, display_name=entry.display_name,
                         email=entry.mail, phone=phone, status=UserStatus.ACTIVE))  # fmt: skip
        session.commit()

    text_gateway(phone, "RESET")
    wait_for_jobs(services)

    with services.db.session() as session:
        [request] = session.execute(select(ResetRequest)).scalars().all()
        assert (request.status, request.error_code) == (RequestStatus.FAILED, code)
    assert tenant.patches_of(entry.id) == []
    [sms] = fakes[0].sent
    refused = translate("nl", texts.RESET_REFUSED, support=SUPPORT)
    assert sms["Body"] == refused
    assert refused != translate("nl", texts.APOLOGY, support=SUPPORT)
    assert "sms" in refused and SUPPORT in refused  # Dutch, with whom to contact
