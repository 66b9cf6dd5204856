"""Item 4 of issue 13: the reset PIN is chosen on the activation page, with the code.

Never by text: a text's sender can be forged, and whoever texted ``PIN 4821`` first
would own the PIN. The holder of the link *and* the phone chooses it, typed twice."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select, update

from blink_sms.actors import COMMAND_LINE
from blink_sms.context import Blink
from blink_sms.messaging import texts
from blink_sms.models import AuditEvent, Base, Client, User, UserStatus
from blink_sms.services import enrollment as service
from blink_sms.services import pins
from tests.conftest import World, reply_text, wait_for_jobs
from tests.support.fake_twilio import FakeTwilio

from .conftest import Invite, Walker, invitation_of, last_code

Walk = Callable[..., Walker]
Send = Callable[..., Any]
PHONE = "+12015550123"
PIN = "7305"


def set_client(services: Blink, client: Client, **values: str) -> None:
    with services.db.session() as session:
        session.execute(update(Client).where(Client.id == client.id).values(**values))
        session.commit()


def user_of(services: Blink, user_id: int) -> User:
    with services.db.session() as session:
        user = session.get_one(User, user_id)
        session.expunge(user)
        return user


@pytest.mark.parametrize(
    ("pin", "again", "policy", "expected"),
    [
        ("4821", "4821", "required", "4821"),
        (" 4821 ", "4821", "optional", "4821"),
        ("30571946", "30571946", "required", "30571946"),
        ("", "", "optional", None),
        (None, None, "optional", None),
        ("", "", "required", pins.PinProblem.MISSING),
        ("4821", "", "optional", pins.PinProblem.MISMATCH),
        ("4821", "4812", "required", pins.PinProblem.MISMATCH),
        ("482", "482", "required", pins.PinProblem.MALFORMED),
        ("123456789", "123456789", "required", pins.PinProblem.MALFORMED),
        ("48a1", "48a1", "required", pins.PinProblem.MALFORMED),
        ("٤٨٢١", "٤٨٢١", "required", pins.PinProblem.MALFORMED),  # Arabic-Indic digits
        ("0000", "0000", "required", pins.PinProblem.EASY),
        ("1234", "1234", "required", pins.PinProblem.EASY),
        ("98765", "98765", "optional", pins.PinProblem.EASY),
        ("4821", "4821", "off", None),  # no PIN where the client asks for none
    ],
)
def test_choosing_a_pin(pin: str | None, again: str | None, policy: str, expected: object) -> None:
    assert pins.choose(pin, again, policy=policy) == expected


def test_required_the_pin_is_chosen_with_the_code_and_then_needed(
    invite: Invite,
    walker: Walk,
    world: World,
    services: Blink,
    twilio: FakeTwilio,
    text_gateway: Send,
) -> None:
    set_client(services, world.client, reset_pin="required")
    invited = invite()
    page = walker(invited)
    assert page.number(PHONE).status_code == 303
    form = page.get("/code").get_data(as_text=True)
    assert 'name="pin"' in form and 'name="pin_again"' in form and "Choose a reset PIN<" in form
    code = last_code(twilio, PHONE)
    # A refused PIN costs no try and leaves the code live: the user types again.
    for pin, again, says in [
        ("", "", "Choose a reset PIN: your organisation asks for one."),
        (PIN, "7350", "The two PINs are not the same."),
        ("1111", "1111", "This PIN is too easy to guess."),
        ("12ab", "12ab", "A reset PIN is 4 to 8 digits"),
    ]:
        refused = page.code(code, pin=pin, pin_again=again)
        assert refused.status_code == 422
        html = refused.get_data(as_text=True)
        assert says in html and 'id="pin"' in html
        assert PIN not in html  # nothing typed is echoed back
        assert user_of(services, invited.persona.user.id).phone is None
    assert invitation_of(services, invited.persona.user.id).code_failures == 0
    bound = page.code(code, pin=PIN, pin_again=PIN)
    assert bound.status_code == 303 and bound.location.endswith("/enroll/done")
    user = user_of(services, invited.persona.user.id)
    assert user.status is UserStatus.ACTIVE and user.phone == PHONE
    assert user.pin_hash is not None and user.pin_hash.startswith("$argon2id$")
    assert PIN not in user.pin_hash
    done = page.http.get("/enroll/done").get_data(as_text=True)
    assert "text RESET and your PIN to:" in done and "RESET%20" in done
    card = page.http.get("/enroll/done/contact.vcf").get_data(as_text=True)
    assert "Text RESET and your PIN" in card
    assert twilio.sent[-1]["Body"] == texts.WELCOME_PIN
    # The PIN is needed now; a text cannot replace it.
    assert reply_text(text_gateway(PHONE, "RESET")) == texts.PIN_WRONG
    reply = reply_text(text_gateway(PHONE, "PIN 9999"))
    assert reply is not None and reply.startswith("Reset PINs are chosen on the activation page")
    assert user_of(services, invited.persona.user.id).pin_hash == user.pin_hash
    assert reply_text(text_gateway(PHONE, f"RESET {PIN}")) == texts.ACK_RESET
    wait_for_jobs(services)
    with services.db.session() as session:
        events = session.execute(
            select(AuditEvent.action, AuditEvent.actor, AuditEvent.detail).where(
                AuditEvent.user_id == invited.persona.user.id
            )
        ).all()
        stored = [  # every text value in the database
            value
            for table in Base.metadata.sorted_tables
            for row in session.execute(select(table)).all()
            for value in row
            if isinstance(value, str)
        ]
    actions = [action for action, _, _ in events]
    assert actions.count("enrollment.pin_refused") == 4
    assert ("user.pin_set", f"enrollment:user:{invited.persona.user.id}") in {
        (action, actor) for action, actor, _ in events
    }
    assert all(PIN not in str(detail) for _, _, detail in events)
    assert stored and all(PIN not in value for value in stored)


def test_optional_an_empty_pin_binds_without_one(
    invite: Invite, walker: Walk, world: World, services: Blink, twilio: FakeTwilio
) -> None:
    set_client(services, world.client, reset_pin="optional")
    invited = invite()
    page = walker(invited)
    page.number(PHONE)
    form = page.get("/code").get_data(as_text=True)
    assert "Choose a reset PIN (optional)" in form
    assert page.code(last_code(twilio, PHONE), pin="", pin_again="").status_code == 303
    assert user_of(services, invited.persona.user.id).pin_hash is None
    done = page.http.get("/enroll/done").get_data(as_text=True)
    assert "text RESET to:" in done and "your PIN" not in done
    assert twilio.sent[-1]["Body"] == texts.WELCOME


def test_off_asks_for_no_pin_and_ignores_one(
    invite: Invite, walker: Walk, services: Blink, twilio: FakeTwilio
) -> None:
    invited = invite()
    page = walker(invited)
    page.number(PHONE)
    assert 'name="pin"' not in page.get("/code").get_data(as_text=True)
    assert page.code(last_code(twilio, PHONE), pin=PIN, pin_again=PIN).status_code == 303
    assert user_of(services, invited.persona.user.id).pin_hash is None


def test_a_taken_number_gets_the_same_pin_step(
    invite: Invite, walker: Walk, world: World, services: Blink, twilio: FakeTwilio
) -> None:
    """The PIN is checked before the code, alike for a free and a taken number."""
    set_client(services, world.client, reset_pin="required")
    taken = world.person("erin", PHONE).user.phone
    assert taken == PHONE
    page = walker(invite())
    assert page.number(PHONE).status_code == 303
    assert twilio.sent == []  # the decoy: no text to the bound number
    refused = page.code("123456", pin=PIN, pin_again="4812")
    assert refused.status_code == 422
    assert "The two PINs are not the same." in refused.get_data(as_text=True)


def test_with_approval_the_pin_waits_with_the_binding_and_goes_with_a_rejection(
    invite: Invite, walker: Walk, world: World, services: Blink, twilio: FakeTwilio
) -> None:
    set_client(services, world.client, reset_pin="required", binding_policy="approval")
    invited, rejected = invite(), invite("erin")
    for person in (invited, rejected):
        page = walker(person)
        number = PHONE if person is invited else "+12015550199"
        page.number(number)
        assert page.code(last_code(twilio, number), pin=PIN, pin_again=PIN).status_code == 303
    with services.db.session() as session:
        dana = session.get_one(User, invited.persona.user.id)
        service.approve_binding(services, session, COMMAND_LINE, dana)
        erin = session.get_one(User, rejected.persona.user.id)
        service.reject_binding(session, COMMAND_LINE, erin)
    dana, erin = (user_of(services, p.persona.user.id) for p in (invited, rejected))
    assert dana.phone == PHONE and dana.pin_hash is not None
    assert pins.HASHER.verify(dana.pin_hash, PIN)
    assert erin.phone is None and erin.pin_hash is None
    assert twilio.sent[-1]["Body"] == texts.WELCOME_PIN
