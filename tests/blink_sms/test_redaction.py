"""Item 7 of issue 13: the texted password is blanked at Twilio once delivered."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select, update

from blink_sms.messaging.sms import NOT_FINAL_YET, OutgoingSms, SmsError, TwilioSender
from blink_sms.models import OutboundMessage, utcnow
from blink_sms.scheduler import tasks
from blink_sms.services import redaction
from tests.conftest import ACCOUNT_SID, AUTH_TOKEN, PUBLIC_URL, Persona, World, sign, wait_for_jobs
from tests.support.fake_twilio import FakeTwilio

Send = Callable[..., Any]
STATUS = "/webhooks/twilio/status"


def status_callback(http: FlaskClient, sid: str, status: str) -> None:
    params = {"MessageSid": sid, "MessageStatus": status, "AccountSid": ACCOUNT_SID}
    response = http.post(
        STATUS, data=params, headers={"X-Twilio-Signature": sign(PUBLIC_URL + STATUS, params)}
    )
    assert response.status_code == 204


def texts(world: World) -> dict[str, OutboundMessage]:
    with world.services.db.session() as session:
        rows = session.execute(select(OutboundMessage)).scalars().all()
        return {row.purpose: row for row in rows}


def reset(text_gateway: Send, alice: Persona, world: World, twilio: FakeTwilio) -> str:
    text_gateway(alice.phone, "RESET")
    wait_for_jobs(world.services)
    [sent] = [m for m in twilio.sent if m["To"] == alice.phone]
    assert twilio.resource(sent["Sid"])["body"] != ""
    return str(sent["Sid"])


def test_a_delivered_password_is_redacted_at_twilio(
    text_gateway: Send, alice: Persona, world: World, twilio: FakeTwilio, http: FlaskClient
) -> None:
    sid = reset(text_gateway, alice, world, twilio)
    assert redaction.sweep(world.services) == redaction.RedactionResult(0, 0)  # not final yet
    twilio.set_status(sid, "delivered")
    status_callback(http, sid, "delivered")
    assert redaction.sweep(world.services) == redaction.RedactionResult(1, 0)
    assert twilio.resource(sid)["body"] == ""
    assert texts(world)["otp"].redacted_at is not None
    assert redaction.sweep(world.services) == redaction.RedactionResult(0, 0)  # done once


def test_a_message_twilio_still_sends_is_retried_until_it_can_be_redacted(
    text_gateway: Send, alice: Persona, world: World, twilio: FakeTwilio
) -> None:
    sid = reset(text_gateway, alice, world, twilio)
    later = utcnow() + redaction.REDACT_AFTER + timedelta(seconds=1)
    # No status callback came; Twilio still has it queued and refuses (20009).
    assert redaction.sweep(world.services, now=later) == redaction.RedactionResult(0, 1)
    assert twilio.resource(sid)["body"] != ""
    assert texts(world)["otp"].redacted_at is None
    twilio.failures.append((503, 20500))  # then Twilio is down once
    assert redaction.sweep(world.services, now=later) == redaction.RedactionResult(0, 1)
    twilio.set_status(sid, "sent")  # the carrier never reports delivery
    assert redaction.sweep(world.services, now=later) == redaction.RedactionResult(1, 0)
    assert twilio.resource(sid)["body"] == ""


def test_only_one_time_passwords_are_redacted(
    text_gateway: Send, alice: Persona, world: World, twilio: FakeTwilio, http: FlaskClient
) -> None:
    text_gateway(alice.phone, "RESET")
    wait_for_jobs(world.services)
    with world.services.db.session() as session:
        session.execute(update(OutboundMessage).values(purpose="welcome"))
        session.commit()
    [sent] = twilio.sent
    twilio.set_status(sent["Sid"], "delivered")
    status_callback(http, sent["Sid"], "delivered")
    assert redaction.sweep(world.services) == redaction.RedactionResult(0, 0)
    assert twilio.resource(sent["Sid"])["body"] != ""


def test_the_fake_answers_like_twilio(twilio: FakeTwilio) -> None:
    sender = TwilioSender(ACCOUNT_SID, AUTH_TOKEN, api_base_url="https://api.twilio.com")
    sid = sender.send(OutgoingSms(to="+15551230001", body="Pw", from_="+15005550006"))
    with pytest.raises(SmsError) as refused:
        sender.redact(sid)
    assert refused.value.code == NOT_FINAL_YET and not refused.value.permanent
    twilio.set_status(sid, "delivered")
    sender.redact(sid)
    resource = twilio.resource(sid)
    assert resource["body"] == "" and resource["status"] == "delivered"
    assert resource["sid"] == sid and resource["direction"] == "outbound-api"


def test_the_scheduler_runs_the_redaction(world: World) -> None:
    assert any(task.name == "redaction" for task in tasks(world.services))
