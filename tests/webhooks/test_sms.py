"""The inbound SMS webhook: signatures, bad input, keywords, replies, opt-out."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from blink_sms.actors import COMMAND_LINE
from blink_sms.context import Blink
from blink_sms.models import InboundMessage, RequestStatus, ResetRequest, User, UserStatus
from blink_sms.services.clients import create_client
from tests.conftest import (
    AUTH_TOKEN,
    PUBLIC_URL,
    SMS_URL,
    Persona,
    World,
    inbound_params,
    reply_text,
    sign,
    wait_for_jobs,
)
from tests.support.fake_twilio import FakeTwilio

Send = Callable[..., Any]


def count_requests(services: Blink) -> int:
    with services.db.session() as session:
        return int(session.execute(select(func.count(ResetRequest.id))).scalar_one())


# --- signatures ----------------------------------------------------------------------------


def test_it_accepts_a_correctly_signed_webhook(
    text_gateway: Send, alice: Persona, twilio: FakeTwilio
) -> None:
    assert reply_text(text_gateway(alice.phone, "HELP")) is not None


def test_it_rejects_a_forged_signature(http: FlaskClient, alice: Persona, services: Blink) -> None:
    params = inbound_params(alice.phone or "", "RESET")
    forged = sign(PUBLIC_URL + SMS_URL, params, token="not-the-real-token-0000000000000")
    response = http.post(SMS_URL, data=params, headers={"X-Twilio-Signature": forged})
    assert response.status_code == 403
    assert count_requests(services) == 0


def test_it_rejects_an_unsigned_webhook(http: FlaskClient, alice: Persona, services: Blink) -> None:
    response = http.post(SMS_URL, data=inbound_params(alice.phone or "", "RESET"))
    assert response.status_code == 403
    assert count_requests(services) == 0


def test_it_rejects_a_signature_over_tampered_parameters(http: FlaskClient, alice: Persona) -> None:
    params = inbound_params("+15559990000", "HELP")
    signature = sign(PUBLIC_URL + SMS_URL, params)
    params["From"] = alice.phone or ""
    response = http.post(SMS_URL, data=params, headers={"X-Twilio-Signature": signature})
    assert response.status_code == 403


def test_it_verifies_against_the_public_url_behind_a_proxy(
    http: FlaskClient, alice: Persona, twilio: FakeTwilio
) -> None:
    # Twilio signed https://sms.example.com/...; the request reaches us as http://10.0.0.5:8000.
    params = inbound_params(alice.phone or "", "HELP")
    response = http.post(
        SMS_URL,
        data=params,
        base_url="http://10.0.0.5:8000",
        headers={"X-Twilio-Signature": sign(PUBLIC_URL + SMS_URL, params)},
    )
    assert response.status_code == 200


def test_it_rejects_a_signature_made_for_another_url(http: FlaskClient, alice: Persona) -> None:
    params = inbound_params(alice.phone or "", "HELP")
    signature = sign("http://10.0.0.5:8000" + SMS_URL, params)
    response = http.post(
        SMS_URL,
        data=params,
        base_url="http://10.0.0.5:8000",
        headers={"X-Twilio-Signature": signature},
    )
    assert response.status_code == 403


# --- bad input -----------------------------------------------------------------------------


def signed_post(http: FlaskClient, params: dict[str, str]) -> Any:
    return http.post(
        SMS_URL, data=params, headers={"X-Twilio-Signature": sign(PUBLIC_URL + SMS_URL, params)}
    )


@pytest.mark.parametrize("missing", ["MessageSid", "From", "To", "Body"])
def test_it_answers_400_when_a_field_is_missing(
    http: FlaskClient, alice: Persona, services: Blink, missing: str
) -> None:
    params = inbound_params(alice.phone or "", "RESET")
    del params[missing]
    assert signed_post(http, params).status_code == 400
    assert count_requests(services) == 0


def test_it_answers_400_for_a_malformed_message_sid(http: FlaskClient, alice: Persona) -> None:
    params = inbound_params(alice.phone or "", "RESET", sid="SM-not-a-sid")
    assert signed_post(http, params).status_code == 400


@pytest.mark.parametrize("suffix", ["\n", "\r\n", " ", "0"])
def test_a_message_sid_with_anything_after_its_32_digits_is_refused(
    http: FlaskClient, alice: Persona, services: Blink, suffix: str
) -> None:
    params = inbound_params(alice.phone or "", "RESET", sid="SM" + "ab" * 16 + suffix)
    assert signed_post(http, params).status_code == 400  # not a 500 from a too-long column
    assert count_requests(services) == 0


def test_a_status_callback_sid_with_a_trailing_newline_is_refused(http: FlaskClient) -> None:
    params = {"MessageSid": "SM" + "0" * 32 + "\n", "MessageStatus": "sent"}
    url = PUBLIC_URL + "/webhooks/twilio/status"
    response = http.post(
        "/webhooks/twilio/status", data=params, headers={"X-Twilio-Signature": sign(url, params)}
    )
    assert response.status_code == 400


def test_sixty_resets_through_one_web_process_all_succeed(
    http: FlaskClient, world: World, services: Blink, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On PostgreSQL a prepared INSERT ... ON CONFLICT switches to a generic plan after
    five runs on a connection; its index predicate must still match the partial index."""
    from blink_sms.queue import InProcessQueue

    queued: list[tuple[Any, ...]] = []
    monkeypatch.setattr(InProcessQueue, "enqueue", lambda self, *a, **kw: queued.append(a))
    people = [world.person(f"user{n:02}", f"+1555123{n:04}") for n in range(60)]
    answers = [signed_post(http, inbound_params(p.phone or "", "RESET")) for p in people]
    assert [a.status_code for a in answers] == [200] * 60
    assert all("arrive" in (reply_text(a) or "") for a in answers)
    assert count_requests(services) == 60 and len(queued) == 60
    # A second RESET from each is still refused by the same statement, not an error.
    again = [signed_post(http, inbound_params(p.phone or "", "RESET")) for p in people[:12]]
    assert all("already on its way" in (reply_text(a) or "") for a in again)


@pytest.mark.parametrize("sender", ["alice", "12345", "+", "+1555abc", "CONTOSO"])
def test_it_ignores_a_sender_that_is_not_a_phone_number(
    http: FlaskClient, world: World, services: Blink, sender: str
) -> None:
    response = signed_post(http, inbound_params(sender, "RESET"))
    assert reply_text(response) is None
    assert count_requests(services) == 0


def test_it_ignores_an_over_long_body(http: FlaskClient, alice: Persona, services: Blink) -> None:
    response = signed_post(http, inbound_params(alice.phone or "", "RESET " + "x" * 5000))
    assert reply_text(response) is None
    assert count_requests(services) == 0


def test_it_refuses_an_oversized_request(http: FlaskClient, alice: Persona) -> None:
    params = inbound_params(alice.phone or "", "RESET")
    params["Padding"] = "x" * 100_000
    assert signed_post(http, params).status_code == 413


def test_it_survives_invalid_utf8(http: FlaskClient, alice: Persona, services: Blink) -> None:
    # Werkzeug leaves undecodable escapes as they came; sign what the server will see.
    params = inbound_params(alice.phone or "", "%FF%FE%FA")
    raw = (
        "&".join(f"{k}={quote(v)}" for k, v in params.items() if k != "Body").encode()
        + b"&Body=%FF%FE%FA"
    )
    response = http.post(
        SMS_URL,
        data=raw,
        content_type="application/x-www-form-urlencoded",
        headers={"X-Twilio-Signature": sign(PUBLIC_URL + SMS_URL, params)},
    )
    assert response.status_code == 200
    assert count_requests(services) == 0


def test_an_emoji_message_gets_the_help_text(text_gateway: Send, alice: Persona) -> None:
    text = reply_text(text_gateway(alice.phone, "🙂🙂🔥"))
    assert text is not None and "RESET" in text


def test_a_message_for_another_twilio_account_is_refused(
    http: FlaskClient, alice: Persona, services: Blink
) -> None:
    from structlog.testing import capture_logs

    params = inbound_params(alice.phone or "", "RESET")
    params["AccountSid"] = "AC" + "b2" * 16
    with capture_logs() as logs:
        assert signed_post(http, params).status_code == 403
    assert count_requests(services) == 0
    assert [e["event"] for e in logs if "AccountSid" in e["event"]] == [
        "inbound SMS refused: AccountSid is not this deployment's account"
    ]


def test_it_answers_503_when_twilio_is_not_configured(settings: Any, world: World) -> None:
    from blink_sms.app import create_app

    app = create_app(settings.with_changes(twilio_auth_token=None))
    params = inbound_params("+15551230001", "RESET")
    response = app.test_client().post(
        SMS_URL, data=params, headers={"X-Twilio-Signature": sign(PUBLIC_URL + SMS_URL, params)}
    )
    assert response.status_code == 503


# --- duplicates, replies -------------------------------------------------------------------


def test_a_repeated_message_sid_starts_one_job(
    text_gateway: Send, alice: Persona, services: Blink, twilio: FakeTwilio
) -> None:
    sid = "SM" + secrets.token_hex(16)
    first = text_gateway(alice.phone, "RESET", sid=sid)
    second = text_gateway(alice.phone, "RESET", sid=sid)
    wait_for_jobs(services)
    assert reply_text(first) is not None
    assert reply_text(second) is None
    assert count_requests(services) == 1
    assert len(twilio.bodies_to(alice.phone or "")) == 1
    with services.db.session() as session:
        assert session.get(InboundMessage, sid) is not None


@pytest.mark.parametrize("body", ["HELP", "info", "what is this?", "hola"])
def test_help_and_unrecognised_texts_get_the_help_reply(
    text_gateway: Send, alice: Persona, body: str
) -> None:
    text = reply_text(text_gateway(alice.phone, body))
    assert text is not None
    assert "RESET" in text and "UNLOCK" in text


def test_the_reply_is_in_the_users_language(
    text_gateway: Send, world: World, twilio: FakeTwilio
) -> None:
    bram = world.person("bram", "+31612345678", language="nl")
    text = reply_text(text_gateway(bram.phone, "wachtwoord"))
    wait_for_jobs(world.services)
    assert text is not None and "wachtwoord" in text.lower()


def test_an_unknown_sender_gets_one_generic_reply_a_day(
    text_gateway: Send, world: World, services: Blink
) -> None:
    stranger = "+15559876543"
    first = reply_text(text_gateway(stranger, "RESET"))
    second = reply_text(text_gateway(stranger, "RESET"))
    third = reply_text(text_gateway(stranger, "HELP"))
    assert first is not None and "registered" in first
    assert second is None and third is None
    assert count_requests(services) == 0


def test_the_unknown_sender_reply_does_not_reveal_other_users(
    text_gateway: Send, world: World, alice: Persona
) -> None:
    pending = world.person("pat", "+15551230099", status=UserStatus.INVITED)
    stranger_reply = reply_text(text_gateway("+15559876543", "RESET"))
    pending_reply = reply_text(text_gateway(pending.phone, "RESET"))
    assert stranger_reply == pending_reply
    assert "alice" not in (stranger_reply or "").lower()


def test_stop_opts_out_and_is_honoured(
    text_gateway: Send, alice: Persona, services: Blink, twilio: FakeTwilio
) -> None:
    assert reply_text(text_gateway(alice.phone, "STOP")) is None
    with services.db.session() as session:
        assert session.get(User, alice.user.id).sms_opted_out is True  # type: ignore[union-attr]
    assert reply_text(text_gateway(alice.phone, "RESET")) is None
    assert reply_text(text_gateway(alice.phone, "HELP")) is None
    wait_for_jobs(services)
    assert count_requests(services) == 0
    assert twilio.sent == []
    assert reply_text(text_gateway(alice.phone, "START")) is None
    assert reply_text(text_gateway(alice.phone, "RESET")) is not None
    wait_for_jobs(services)
    assert len(twilio.bodies_to(alice.phone or "")) == 1


def test_replies_other_than_resets_are_rate_limited(
    text_gateway: Send, alice: Persona, settings: Any
) -> None:
    replies = [
        reply_text(text_gateway(alice.phone, "HELP")) for _ in range(settings.replies_per_hour + 2)
    ]
    assert all(r is not None for r in replies[: settings.replies_per_hour])
    assert replies[-1] is None


def test_status_callback_records_delivery(
    http: FlaskClient, text_gateway: Send, alice: Persona, services: Blink, twilio: FakeTwilio
) -> None:
    text_gateway(alice.phone, "RESET")
    wait_for_jobs(services)
    sid = twilio.sent[0]["Sid"]
    assert twilio.sent[0]["StatusCallback"] == PUBLIC_URL + "/webhooks/twilio/status"
    params = {
        "MessageSid": sid,
        "MessageStatus": "delivered",
        "AccountSid": "AC" + "a1" * 16,
        "To": alice.phone or "",
        "From": "+15005550006",
    }
    url = PUBLIC_URL + "/webhooks/twilio/status"
    response = http.post(
        "/webhooks/twilio/status", data=params, headers={"X-Twilio-Signature": sign(url, params)}
    )
    assert response.status_code == 204
    with services.db.session() as session:
        request = session.execute(select(ResetRequest)).scalar_one()
        assert request.delivery_status == "delivered"
        assert request.status is RequestStatus.DONE


def test_status_callback_must_be_signed(http: FlaskClient) -> None:
    response = http.post(
        "/webhooks/twilio/status", data={"MessageSid": "SM" + "0" * 32, "MessageStatus": "sent"}
    )
    assert response.status_code == 403


def test_health_endpoints(http: FlaskClient) -> None:
    assert http.get("/healthz").json == {"status": "ok"}
    ready = http.get("/readyz")
    assert ready.status_code == 200
    assert ready.json["checks"] == {"database": "ok", "queue": "ok"}


def test_auth_token_is_never_in_a_reply(text_gateway: Send, alice: Persona) -> None:
    response = text_gateway(alice.phone, "HELP")
    assert AUTH_TOKEN.encode() not in response.data


def test_an_unknown_number_is_answered_in_its_countrys_language_where_a_client_speaks_it(
    text_gateway: Send, world: World, services: Blink
) -> None:
    # No client speaks Dutch yet: a Dutch number gets English.
    assert "registered" in (reply_text(text_gateway("+31612340001", "RESET")) or "")
    with services.db.session() as session:
        create_client(
            session, services.secrets, COMMAND_LINE, slug="gouda", name="Gouda",
            directory_kind="sandbox", directory_settings={"path": str(world.directory.path)},
            default_region="NL", language="nl", sender_number="+15005550009",
        )  # fmt: skip
        session.commit()
    dutch = reply_text(text_gateway("+31612340002", "RESET")) or ""
    assert dutch.startswith("Dit nummer is alleen voor geregistreerde gebruikers"), dutch
    # A word that tells its language still wins: a German word gets German.
    german = reply_text(text_gateway("+31612340003", "Passwort")) or ""
    assert german.startswith("Diese Nummer ist nur für registrierte Benutzer"), german
