"""Item 5 of issue 13: no password by text to a number whose SIM was just swapped."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from blink_sms.actors import COMMAND_LINE
from blink_sms.messaging import texts
from blink_sms.messaging.i18n import translate
from blink_sms.messaging.lookup import parse
from blink_sms.models import AuditEvent, Client, RequestStatus, ResetRequest
from blink_sms.services.clients import update_client
from blink_sms.services.errors import Invalid
from blink_sms.settings import Settings
from tests.conftest import Persona, SmtpServer, World, reply_text, wait_for_jobs
from tests.support.fake_twilio import FakeTwilio, lookup_resource

Send = Callable[..., Any]
ALERTS = "it-alerts@contoso.example"


@pytest.fixture
def settings(settings: Settings, smtp: SmtpServer) -> Settings:
    return settings.with_changes(smtp_url=smtp.url, mail_from="gateway@msp.example")


def set_client(world: World, **options: Any) -> None:
    with world.services.db.session() as session:
        update_client(session, COMMAND_LINE, session.get_one(Client, world.client.id), **options)
        session.commit()


def swapped(twilio: FakeTwilio, persona: Persona, days_ago: float, **fields: Any) -> None:
    when = datetime.now(UTC) - timedelta(days=days_ago)
    phone = persona.phone or ""
    twilio.lookups[phone] = lookup_resource(
        phone, swapped_at=when, swapped_period="PT24H", swapped_in_period=days_ago < 1, **fields
    )


def outcome(world: World) -> tuple[RequestStatus, str | None, list[str]]:
    with world.services.db.session() as session:
        [request] = session.execute(select(ResetRequest)).scalars()
        actions = session.execute(
            select(AuditEvent.action).where(AuditEvent.action.like("reset.sim_swap%"))
        ).scalars()
        return request.status, request.error_code, list(actions)


def reset(text_gateway: Send, persona: Persona, world: World) -> None:
    assert reply_text(text_gateway(persona.phone, "RESET")) == texts.ACK_RESET
    wait_for_jobs(world.services)


def test_block_refuses_a_recent_swap_alerts_and_keeps_the_password(
    text_gateway: Send, alice: Persona, world: World, twilio: FakeTwilio, smtp: SmtpServer
) -> None:
    set_client(world, sim_swap_policy="block", sim_swap_days=7, lockout_alert_email=ALERTS)
    swapped(twilio, alice, days_ago=2)
    reset(text_gateway, alice, world)
    assert twilio.looked_up == [alice.phone]
    support = "Contoso IT, +1 555 0100"
    assert [m["Body"] for m in twilio.sent] == [translate("en", texts.APOLOGY, support=support)]
    assert world.sign_in(alice.username, alice.password) == "ok"  # the directory untouched
    wait_for_jobs(world.services)
    assert outcome(world) == (
        RequestStatus.FAILED,
        "sim_swap",
        ["reset.sim_swap_blocked", "reset.sim_swap_alert_sent"],
    )
    [alert] = smtp.mailbox.messages
    assert alert.rcpt_tos == [ALERTS] and "alice" in alert.text and "SIM" in alert.text
    assert (alice.phone or "") not in alert.text


def test_an_older_swap_does_not_count(
    text_gateway: Send, alice: Persona, world: World, twilio: FakeTwilio
) -> None:
    set_client(world, sim_swap_policy="block", sim_swap_days=7)
    swapped(twilio, alice, days_ago=30)
    reset(text_gateway, alice, world)
    assert outcome(world) == (RequestStatus.DONE, None, [])
    assert "Your new password" in twilio.sent[0]["Body"]


def test_without_a_date_a_swap_in_the_carriers_period_counts(
    text_gateway: Send, alice: Persona, world: World, twilio: FakeTwilio
) -> None:
    set_client(world, sim_swap_policy="block")
    phone = alice.phone or ""
    twilio.lookups[phone] = lookup_resource(phone, swapped_period="PT48H", swapped_in_period=True)
    reset(text_gateway, alice, world)
    assert outcome(world)[:2] == (RequestStatus.FAILED, "sim_swap")


def test_a_number_moved_to_an_internet_phone_counts(
    text_gateway: Send, alice: Persona, world: World, twilio: FakeTwilio
) -> None:
    set_client(world, sim_swap_policy="block")
    phone = alice.phone or ""
    twilio.lookups[phone] = lookup_resource(
        phone, swapped_in_period=False, line_type="nonFixedVoip"
    )
    reset(text_gateway, alice, world)
    assert outcome(world)[:2] == (RequestStatus.FAILED, "sim_swap")


def test_warn_texts_the_password_and_audits(
    text_gateway: Send, alice: Persona, world: World, twilio: FakeTwilio
) -> None:
    set_client(world, sim_swap_policy="warn")
    swapped(twilio, alice, days_ago=0.5)
    reset(text_gateway, alice, world)
    assert outcome(world) == (RequestStatus.DONE, None, ["reset.sim_swap_warning"])
    assert "Your new password" in twilio.sent[0]["Body"]


def test_off_asks_nobody(
    text_gateway: Send, alice: Persona, world: World, twilio: FakeTwilio
) -> None:
    swapped(twilio, alice, days_ago=0.5)
    reset(text_gateway, alice, world)
    assert twilio.looked_up == []
    assert outcome(world)[0] is RequestStatus.DONE


def test_block_fails_closed_when_lookup_is_down_after_its_retries(
    text_gateway: Send, alice: Persona, world: World, twilio: FakeTwilio
) -> None:
    set_client(world, sim_swap_policy="block")
    twilio.lookup_down = True
    reset(text_gateway, alice, world)
    assert outcome(world)[:2] == (RequestStatus.FAILED, "sim_swap_unchecked")
    with world.services.db.session() as session:
        [request] = session.execute(select(ResetRequest)).scalars()
        assert request.attempts == 3  # job_retry_intervals=(0, 0): three tries
    assert [m["Body"] for m in twilio.sent] == [
        translate("en", texts.APOLOGY, support="Contoso IT, +1 555 0100")
    ]
    assert world.sign_in(alice.username, alice.password) == "ok"


def test_warn_goes_on_when_lookup_is_down(
    text_gateway: Send, alice: Persona, world: World, twilio: FakeTwilio
) -> None:
    set_client(world, sim_swap_policy="warn")
    twilio.lookup_down = True
    reset(text_gateway, alice, world)
    assert outcome(world) == (RequestStatus.DONE, None, ["reset.sim_swap_unchecked"])


def test_a_carrier_without_swap_data_is_unchecked_not_refused(
    text_gateway: Send, alice: Persona, world: World, twilio: FakeTwilio
) -> None:
    set_client(world, sim_swap_policy="block")
    phone = alice.phone or ""
    twilio.lookups[phone] = lookup_resource(phone, sim_swap=False)
    reset(text_gateway, alice, world)
    assert outcome(world) == (RequestStatus.DONE, None, ["reset.sim_swap_unchecked"])


def test_twilios_documented_example_parses() -> None:
    result = parse(
        {
            "phone_number": "+447772000001",
            "valid": True,
            "sim_swap": {
                "last_sim_swap": {
                    "last_sim_swapped_date": "2020-04-27T10:18:50Z",
                    "swapped_period": "PT15282H33M44S",
                    "swapped_in_period": True,
                },
                "carrier_name": "Vodafone UK",
                "mobile_country_code": "276",
                "mobile_network_code": "02",
                "error_code": None,
            },
            "line_type_intelligence": {"type": "mobile", "error_code": None},
        }
    )
    assert result.last_swapped_at == datetime(2020, 4, 27, 10, 18, 50, tzinfo=UTC)
    assert result.swapped_period == timedelta(hours=15282, minutes=33, seconds=44)
    assert (result.swapped_in_period, result.line_type) == (True, "mobile")


def test_the_options_are_validated(world: World) -> None:
    for bad in ({"sim_swap_policy": "maybe"}, {"sim_swap_days": 0}, {"sim_swap_days": 91}):
        with world.services.db.session() as session, pytest.raises(Invalid):
            update_client(session, COMMAND_LINE, session.get_one(Client, world.client.id), **bad)
