"""Item 6 of issue 13: only the client's own number may act for its users."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import select

from blink_sms.models import AuditEvent, Client, ResetRequest
from tests.conftest import GATEWAY, Persona, World, reply_text, wait_for_jobs
from tests.support.fake_twilio import FakeTwilio

Send = Callable[..., Any]
SERVICE_SID = "MG" + "0" * 32


def test_a_reset_texted_to_another_clients_number_does_not_act(
    text_gateway: Send, alice: Persona, world: World, twilio: FakeTwilio
) -> None:
    other = world.another_client()
    reply = reply_text(text_gateway(alice.phone, "RESET", to=other.sender_number))
    wait_for_jobs(world.services)
    unknown = reply_text(text_gateway("+15559990001", "RESET"))
    assert reply == unknown  # the generic answer to a number that is not enrolled
    assert twilio.sent == []
    with world.services.db.session() as session:
        assert session.execute(select(ResetRequest)).first() is None
        [event] = session.execute(
            select(AuditEvent).where(AuditEvent.action == "sms.wrong_number")
        ).scalars()
        assert event.user_id == alice.user.id and event.client_id == world.client.id
        assert event.detail["to"] == other.sender_number
        assert alice.phone not in str(event.detail)


def test_a_stray_number_does_not_act_for_a_client_with_its_own_sender(
    text_gateway: Send, alice: Persona, world: World, twilio: FakeTwilio
) -> None:
    text_gateway(alice.phone, "RESET", to="+15005550009")
    wait_for_jobs(world.services)
    assert twilio.sent == []


def test_the_clients_own_number_acts(
    text_gateway: Send, alice: Persona, world: World, twilio: FakeTwilio
) -> None:
    text_gateway(alice.phone, "RESET", to=GATEWAY)
    wait_for_jobs(world.services)
    assert len(twilio.sent) == 1


def test_a_messaging_service_client_accepts_its_pool_but_not_another_clients_number(
    text_gateway: Send, alice: Persona, world: World, twilio: FakeTwilio
) -> None:
    other = world.another_client()
    with world.services.db.session() as session:
        client = session.get(Client, world.client.id)
        assert client is not None
        client.messaging_service_sid = SERVICE_SID
        session.commit()
    text_gateway(alice.phone, "RESET", to=other.sender_number)
    wait_for_jobs(world.services)
    assert twilio.sent == []
    text_gateway(alice.phone, "RESET", to="+15005550009")  # a number of the service's pool
    wait_for_jobs(world.services)
    assert len(twilio.sent) == 1 and twilio.sent[0]["From"] == "+15005550009"
