"""The binding policy: any number, only the directory's, or with an admin's approval."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import select, update

from blink_sms.actors import COMMAND_LINE, Actor, Role
from blink_sms.context import Blink
from blink_sms.models import Client, Invitation, User, UserStatus
from blink_sms.services import enrollment as service
from blink_sms.services.errors import Conflict, NotFound
from tests.conftest import World, wait_for_jobs
from tests.support.fake_twilio import FakeTwilio

from .conftest import Invite, Walker, invitation_of, last_code
from .smtp import SmtpServer

Walk = Callable[..., Walker]
ON_FILE = "+12015550123"


def set_policy(services: Blink, client: Client, policy: str) -> None:
    with services.db.session() as session:
        session.execute(update(Client).where(Client.id == client.id).values(binding_policy=policy))
        session.commit()


def user_of(services: Blink, user_id: int) -> User:
    with services.db.session() as session:
        user = session.get(User, user_id)
        assert user is not None
        session.expunge(user)
        return user


def test_policy_directory_binds_only_the_directorys_mobile_number(
    invite: Invite, walker: Walk, world: World, services: Blink, twilio: FakeTwilio
) -> None:
    set_policy(services, world.client, "directory")
    invited = invite(mobile="(201) 555-0123")  # as the directory writes it, read as US
    page = walker(invited)
    other = page.number("+31612345678", "NL")
    assert other.status_code == 422
    assert "not the mobile number your organisation has on file" in other.get_data(as_text=True)
    assert twilio.sent == []
    assert invitation_of(services, invited.persona.user.id).code_failures == 1  # a try
    assert page.number("201 555 0123", "US").status_code == 303
    assert page.code(last_code(twilio, ON_FILE)).status_code == 303
    assert user_of(services, invited.persona.user.id).phone == ON_FILE


def test_policy_directory_locks_the_link_after_a_few_guesses(
    invite: Invite, walker: Walk, world: World, services: Blink, twilio: FakeTwilio
) -> None:
    set_policy(services, world.client, "directory")
    invited = invite(mobile=ON_FILE)
    page = walker(invited)
    answers = [page.number(f"+3161234567{i}", "NL").status_code for i in range(5)]
    assert answers == [422, 422, 422, 422, 410]
    assert page.get().status_code == 410  # locked: even the right number is too late
    assert twilio.sent == []


def test_policy_directory_without_a_mobile_in_the_directory_binds_nothing(
    invite: Invite, walker: Walk, world: World, services: Blink, twilio: FakeTwilio
) -> None:
    set_policy(services, world.client, "directory")
    response = walker(invite()).number(ON_FILE)
    assert response.status_code == 422 and twilio.sent == []


def test_policy_approval_waits_for_an_admin_then_binds_and_says_so(
    invite: Invite,
    walker: Walk,
    world: World,
    services: Blink,
    twilio: FakeTwilio,
    smtp: SmtpServer,
) -> None:
    set_policy(services, world.client, "approval")
    invited = invite()
    page = walker(invited)
    assert page.number(ON_FILE).status_code == 303
    confirmed = page.code(last_code(twilio, ON_FILE))
    assert confirmed.status_code == 303 and confirmed.location.endswith(invited.path)
    waiting = page.get()
    assert waiting.status_code == 200
    assert "waiting for your IT department to approve" in waiting.get_data(as_text=True)
    again = page.http.post(invited.path, data={"number": "+31612345678", "country": "NL"})
    assert again.status_code == 200 and "Waiting for approval" in again.get_data(as_text=True)
    assert len(twilio.sent) == 1  # the code only: no welcome yet
    user = user_of(services, invited.persona.user.id)
    assert user.phone is None and user.status is UserStatus.INVITED
    with services.db.session() as session:
        dana = session.get_one(User, invited.persona.user.id)
        assert service.pending_binding(session, dana) is not None
        assert service.approve_binding(services, session, COMMAND_LINE, dana) == "+120******23"
    wait_for_jobs(services)
    user = user_of(services, invited.persona.user.id)
    assert user.phone == ON_FILE and user.status is UserStatus.ACTIVE
    welcome = twilio.sent[-1]
    assert welcome["To"] == ON_FILE and "RESET" in welcome["Body"]
    assert smtp.mailbox.to(
        invited.persona.user.email or "",
        subject="A phone was registered for your password resets",
    )
    invitation = invitation_of(services, invited.persona.user.id)
    assert invitation.approved_by == COMMAND_LINE.label and invitation.used_at is not None
    assert page.get().status_code == 410  # the link is used up
    with services.db.session() as session, pytest.raises(Conflict):
        service.approve_binding(services, session, COMMAND_LINE, session.get_one(User, user.id))


def test_a_rejected_binding_binds_nothing_and_ends_the_link(
    invite: Invite, walker: Walk, world: World, services: Blink, twilio: FakeTwilio
) -> None:
    set_policy(services, world.client, "approval")
    invited = invite()
    page = walker(invited)
    page.number(ON_FILE)
    page.code(last_code(twilio, ON_FILE))
    with services.db.session() as session:
        dana = session.get_one(User, invited.persona.user.id)
        assert service.reject_binding(session, COMMAND_LINE, dana) == "+120******23"
    assert page.get().status_code == 410
    assert user_of(services, invited.persona.user.id).phone is None
    assert len(twilio.sent) == 1
    with services.db.session() as session:
        reasons = session.execute(select(Invitation.revoked_reason)).scalars().all()
    assert reasons == ["binding_rejected"]


def test_another_clients_admin_cannot_approve(
    invite: Invite, walker: Walk, world: World, services: Blink, twilio: FakeTwilio
) -> None:
    set_policy(services, world.client, "approval")
    invited = invite()
    page = walker(invited)
    page.number(ON_FILE)
    page.code(last_code(twilio, ON_FILE))
    fabrikam = world.another_client()
    stranger = Actor(kind="admin", label="admin:9", role=Role.CLIENT_ADMIN, client_id=fabrikam.id)
    with services.db.session() as session, pytest.raises(NotFound):
        service.approve_binding(
            services, session, stranger, session.get_one(User, invited.persona.user.id)
        )
    assert user_of(services, invited.persona.user.id).phone is None
