"""Item 4 of issue 13: an optional or required reset PIN, against spoofed senders.

The texts' side: a PIN chosen at enrollment (tests/enrollment/test_reset_pin.py walks
those pages) is then needed, counted and blocked; a text can never set one."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import select, update

from blink_sms.actors import COMMAND_LINE
from blink_sms.cli import cli
from blink_sms.context import Blink
from blink_sms.messaging import texts
from blink_sms.models import AuditEvent, Client, ResetRequest, User, utcnow
from blink_sms.services import invitations, pins
from blink_sms.services.clients import update_client
from blink_sms.services.errors import Invalid
from blink_sms.settings import Settings
from tests.conftest import Persona, SmtpServer, World, reply_text, wait_for_jobs
from tests.support.fake_twilio import FakeTwilio

Send = Callable[..., Any]
PIN = "4821"


@pytest.fixture
def settings(settings: Settings, smtp: SmtpServer) -> Settings:
    return settings.with_changes(smtp_url=smtp.url, mail_from="it@msp.example")


def set_policy(world: World, policy: str) -> None:
    with world.services.db.session() as session:
        update_client(session, COMMAND_LINE, session.get_one(Client, world.client.id),
                      reset_pin=policy)  # fmt: skip
        session.commit()


def give_pin(world: World, persona: Persona, pin: str = PIN) -> None:
    """The PIN as the activation page sets it."""
    with world.services.db.session() as session:
        user = session.get_one(User, persona.user.id)
        pins.set_at_enrollment(session, user, pin, actor=f"enrollment:user:{user.id}")
        session.commit()


def user_row(services: Blink, persona: Persona) -> User:
    with services.db.session() as session:
        return session.get_one(User, persona.user.id)


def requests(services: Blink) -> int:
    with services.db.session() as session:
        return len(session.execute(select(ResetRequest.id)).all())


def test_optional_without_a_pin_resets_as_before(
    text_gateway: Send, alice: Persona, world: World, twilio: FakeTwilio
) -> None:
    set_policy(world, "optional")
    assert reply_text(text_gateway(alice.phone, "RESET")) == texts.ACK_RESET
    wait_for_jobs(world.services)
    assert len(twilio.sent) == 1


def test_a_pin_chosen_at_enrollment_is_then_needed_and_no_text_replaces_it(
    text_gateway: Send, alice: Persona, world: World, twilio: FakeTwilio
) -> None:
    set_policy(world, "optional")
    give_pin(world, alice)
    stored = user_row(world.services, alice).pin_hash
    assert stored and stored.startswith("$argon2id$") and PIN not in stored
    assert reply_text(text_gateway(alice.phone, "RESET")) == texts.PIN_WRONG  # no PIN: refused
    assert reply_text(text_gateway(alice.phone, "RESET 1234")) == texts.PIN_WRONG
    assert requests(world.services) == 0
    assert reply_text(text_gateway(alice.phone, f"reset {PIN} please")) == texts.ACK_RESET
    wait_for_jobs(world.services)
    assert len(twilio.sent) == 1
    # A right PIN clears the count; a PIN text never replaces the PIN.
    assert user_row(world.services, alice).pin_failures == 0
    reply = reply_text(text_gateway(alice.phone, "PIN 9999"))
    assert reply is not None and reply.startswith("Reset PINs are chosen on the activation page")
    assert user_row(world.services, alice).pin_hash == stored


def test_required_without_a_pin_a_spoofed_pin_text_sets_nothing(
    text_gateway: Send, alice: Persona, world: World, twilio: FakeTwilio
) -> None:
    """Enrolled before the client asked for PINs: a new activation link, never a text."""
    set_policy(world, "required")
    reply = reply_text(text_gateway(alice.phone, "UNLOCK"))
    assert reply is not None and reply.startswith("Your organisation now asks for a reset PIN")
    assert "activation link" in reply
    # Whoever forges Alice's number cannot choose her PIN and then use it.
    text_gateway(alice.phone, f"PIN {PIN}")
    assert user_row(world.services, alice).pin_hash is None
    assert reply_text(text_gateway(alice.phone, f"RESET {PIN}")) == reply
    assert requests(world.services) == 0 and twilio.sent == []


def test_off_ignores_pins(text_gateway: Send, alice: Persona, world: World) -> None:
    assert reply_text(text_gateway(alice.phone, f"PIN {PIN}")) == texts.HELP
    assert user_row(world.services, alice).pin_hash is None
    assert reply_text(text_gateway(alice.phone, "RESET 0000")) == texts.ACK_RESET


def test_five_wrong_pins_in_a_day_block_texted_resets_for_a_day(
    text_gateway: Send, alice: Persona, world: World, twilio: FakeTwilio
) -> None:
    set_policy(world, "required")
    give_pin(world, alice)
    replies = [reply_text(text_gateway(alice.phone, f"RESET 000{n}")) for n in range(5)]
    assert replies[:4] == [texts.PIN_WRONG] * 4
    assert replies[4] is not None and replies[4].startswith("Too many wrong PINs")
    # Blocked: even the right PIN does nothing now.
    assert reply_text(text_gateway(alice.phone, f"RESET {PIN}")) == replies[4]
    assert requests(world.services) == 0
    row = user_row(world.services, alice)
    assert row.pin_blocked_until is not None
    assert row.pin_blocked_until > utcnow() + timedelta(hours=23)
    with world.services.db.session() as session:
        actions = session.execute(
            select(AuditEvent.action, AuditEvent.detail).where(AuditEvent.user_id == alice.user.id)
        ).all()
    names = [a for a, _ in actions]
    assert names.count("user.pin_failed") == 4
    assert "user.pin_blocked" in names and "user.pin_set" in names
    assert all(PIN not in str(detail) for _, detail in actions)
    # A day later the block is over.
    with world.services.db.session() as session:
        session.execute(update(User).values(pin_blocked_until=utcnow() - timedelta(seconds=1)))
        session.commit()
    assert reply_text(text_gateway(alice.phone, f"RESET {PIN}")) == texts.ACK_RESET


def test_failures_older_than_a_day_start_a_new_count(
    text_gateway: Send, alice: Persona, world: World
) -> None:
    set_policy(world, "optional")
    give_pin(world, alice)
    for n in range(4):
        text_gateway(alice.phone, f"RESET 000{n}")
    with world.services.db.session() as session:
        session.execute(update(User).values(pin_failed_since=utcnow() - timedelta(hours=25)))
        session.commit()
    assert reply_text(text_gateway(alice.phone, "RESET 0009")) == texts.PIN_WRONG
    assert user_row(world.services, alice).pin_failures == 1


def test_reset_user_clears_the_pin_and_the_block(
    text_gateway: Send, alice: Persona, world: World, twilio: FakeTwilio
) -> None:
    set_policy(world, "optional")
    give_pin(world, alice)
    for n in range(5):
        text_gateway(alice.phone, f"RESET 000{n}")
    with world.services.db.session() as session:
        invitations.reset_user(
            world.services, session, COMMAND_LINE, session.get_one(User, alice.user.id)
        )
    row = user_row(world.services, alice)
    assert (row.pin_hash, row.pin_failures, row.pin_blocked_until) == (None, 0, None)


def test_the_option_is_validated_and_editable_from_the_command_line(world: World) -> None:
    with world.services.db.session() as session, pytest.raises(Invalid):
        update_client(session, COMMAND_LINE, session.get_one(Client, world.client.id),
                      reset_pin="sometimes")  # fmt: skip
    settings = world.services.settings
    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("BLINK_")}
    env |= {"BLINK_SECRET_KEY": settings.secret_key, "BLINK_DATABASE_URL": settings.database_url}
    result = CliRunner().invoke(
        cli,
        ["clients", "edit", "contoso", "--reset-pin", "required", "--sim-swap", "warn",
         "--sim-swap-days", "3"],
        env=env,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    with world.services.db.session() as session:
        client = session.get_one(Client, world.client.id)
        assert (client.reset_pin, client.sim_swap_policy, client.sim_swap_days) == (
            "required",
            "warn",
            3,
        )
