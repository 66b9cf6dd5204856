"""A disabled client: its users are told so by SMS, and nothing reaches its directory."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import select

from blink_sms.actors import COMMAND_LINE
from blink_sms.context import Blink
from blink_sms.models import RequestKind, RequestStatus, ResetRequest
from blink_sms.services import clients, scope, users
from blink_sms.services.reset_job import perform

from ..conftest import Persona, World, reply_text, wait_for_jobs
from ..support.fake_twilio import FakeTwilio


def _disable(services: Blink) -> None:
    with services.db.session() as session:
        client = scope.client(session, COMMAND_LINE, "contoso")
        clients.set_disabled(session, COMMAND_LINE, client, disabled=True)


def test_reset_from_a_disabled_clients_user_gets_a_clear_sms_and_no_password(
    text_gateway: Callable[..., Any],
    alice: Persona,
    world: World,
    services: Blink,
    twilio: FakeTwilio,
) -> None:
    _disable(services)
    for keyword in ("RESET", "UNLOCK"):
        reply = reply_text(text_gateway(alice.phone, keyword))
        assert reply is not None
        assert "turned off for your organisation" in reply and "Contoso IT" in reply
    with services.db.session() as session:
        assert session.execute(select(ResetRequest)).first() is None
    assert world.sign_in(alice.username, alice.password) == "ok"  # password untouched
    assert twilio.bodies_to(alice.phone or "") == []


def test_a_request_accepted_before_the_client_was_disabled_does_not_run(
    alice: Persona, world: World, services: Blink, twilio: FakeTwilio, monkeypatch: Any
) -> None:
    from blink_sms.queue import InProcessQueue

    monkeypatch.setattr(InProcessQueue, "enqueue", lambda self, *a, **kw: None)
    with services.db.session() as session:
        user = scope.find_user(session, COMMAND_LINE, world.client, "alice")
        request_id = users.request(services, session, COMMAND_LINE, user, kind=RequestKind.RESET)
    _disable(services)
    perform(services, request_id)
    wait_for_jobs(services)
    with services.db.session() as session:
        request = session.get(ResetRequest, request_id)
        assert request is not None
        assert (request.status, request.error_code) == (RequestStatus.FAILED, "client_disabled")
    assert world.sign_in(alice.username, alice.password) == "ok"
    [body] = twilio.bodies_to(alice.phone or "")
    assert "turned off for your organisation" in body
