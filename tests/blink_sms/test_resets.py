"""RESET end to end with jobs in-process: the password, limits, single flight, failures."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, text, update

from blink_sms.context import Blink
from blink_sms.crypto import mask_phone
from blink_sms.models import (
    AuditEvent,
    Client,
    OutboundMessage,
    RequestKind,
    RequestOrigin,
    RequestStatus,
    ResetRequest,
    User,
)
from blink_sms.queue import InProcessQueue
from blink_sms.services import reset_job
from tests.conftest import GATEWAY, Persona, World, reply_text, wait_for_jobs
from tests.support.fake_twilio import FakeTwilio

Send = Callable[..., Any]
PASSWORD_IN_SMS = re.compile(r":\s*(\S+)")


def password_from(body: str) -> str:
    match = PASSWORD_IN_SMS.search(body)
    assert match, body
    return match.group(1)


def requests_of(services: Blink) -> list[ResetRequest]:
    with services.db.session() as session:
        return list(session.execute(select(ResetRequest).order_by(ResetRequest.id)).scalars())


def test_reset_texts_a_password_the_directory_accepts_and_flags_must_change(
    text_gateway: Send, alice: Persona, world: World, twilio: FakeTwilio
) -> None:
    ack = reply_text(text_gateway(alice.phone, "Reset."))
    wait_for_jobs(world.services)
    assert ack is not None and "password" in ack.lower()
    [sms] = twilio.sent
    assert sms["To"] == alice.phone and sms["From"] == GATEWAY
    password = password_from(sms["Body"])
    assert world.sign_in(alice.username, password) == "must_change"
    assert world.sign_in(alice.username, alice.password) == "bad"
    [request] = requests_of(world.services)
    assert request.status is RequestStatus.DONE
    assert request.outbound_sid == sms["Sid"]
    with world.services.db.session() as session:
        events = {e.action: e for e in session.execute(select(AuditEvent)).scalars()}
    assert "reset.requested" in events and "reset.completed" in events
    # The trail says where the text came from, masked like the console shows numbers.
    assert events["reset.requested"].detail["source"] == mask_phone(alice.phone)
    assert events["reset.requested"].actor == f"sms:user:{alice.user.id}"


def test_reset_unlocks_a_locked_account(
    text_gateway: Send, alice: Persona, world: World, twilio: FakeTwilio
) -> None:
    world.lock(alice.username)
    assert world.sign_in(alice.username, alice.password) == "locked"
    text_gateway(alice.phone, "RESET")
    wait_for_jobs(world.services)
    password = password_from(twilio.sent[0]["Body"])
    assert world.sign_in(alice.username, password) == "must_change"


def test_unlock_keeps_the_password(
    text_gateway: Send, alice: Persona, world: World, twilio: FakeTwilio
) -> None:
    world.lock(alice.username)
    ack = reply_text(text_gateway(alice.phone, "unlock please"))
    wait_for_jobs(world.services)
    assert ack is not None and "unlock" in ack.lower()
    assert world.sign_in(alice.username, alice.password) == "ok"
    assert "unlocked" in twilio.sent[0]["Body"]


def test_the_password_comes_from_the_number_the_user_texted(
    text_gateway: Send, alice: Persona, world: World, twilio: FakeTwilio
) -> None:
    # A Messaging Service client: +15005550009 is one of its pool's numbers.
    with world.services.db.session() as session:
        client = session.get(Client, world.client.id)
        assert client is not None
        client.messaging_service_sid = "MG" + "0" * 32
        session.commit()
    text_gateway(alice.phone, "RESET", to="+15005550009")
    wait_for_jobs(world.services)
    assert twilio.sent[0]["From"] == "+15005550009"


def test_a_second_reset_while_one_is_pending_starts_no_second_job(
    text_gateway: Send,
    alice: Persona,
    world: World,
    twilio: FakeTwilio,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    held: list[tuple[Any, ...]] = []
    monkeypatch.setattr(InProcessQueue, "enqueue", lambda self, *args, **kw: held.append(args))
    first = reply_text(text_gateway(alice.phone, "RESET"))
    second = reply_text(text_gateway(alice.phone, "RESET"))
    assert first is not None and "on its way" not in first
    assert second is not None and "already on its way" in second
    assert len(held) == 1
    assert len(requests_of(world.services)) == 1


def test_the_database_refuses_two_pending_requests_for_one_user(
    alice: Persona, world: World
) -> None:
    from sqlalchemy.exc import IntegrityError

    with world.services.db.session() as session:
        for _ in range(2):
            session.add(
                ResetRequest(
                    user_id=alice.user.id, kind=RequestKind.RESET, origin=RequestOrigin.SMS
                )
            )
        with pytest.raises(IntegrityError):
            session.commit()


def test_resets_are_limited_per_hour_and_the_user_is_told_when_to_retry(
    text_gateway: Send, alice: Persona, world: World, twilio: FakeTwilio
) -> None:
    for _ in range(3):
        assert "arrive" in (reply_text(text_gateway(alice.phone, "RESET")) or "")
        wait_for_jobs(world.services)
    limited = reply_text(text_gateway(alice.phone, "RESET"))
    assert limited is not None and "try again in 1 hour" in limited
    assert len(twilio.sent) == 3
    assert len(requests_of(world.services)) == 3


def test_the_daily_limit_counts_the_last_24_hours(
    text_gateway: Send, alice: Persona, world: World, twilio: FakeTwilio
) -> None:
    from blink_sms.models import utcnow

    with world.services.db.session() as session:
        for hours in range(2, 12):
            session.add(
                ResetRequest(
                    user_id=alice.user.id,
                    kind=RequestKind.RESET,
                    origin=RequestOrigin.SMS,
                    status=RequestStatus.DONE,
                    created_at=utcnow() - timedelta(hours=hours),
                )
            )
        session.commit()
    limited = reply_text(text_gateway(alice.phone, "RESET"))
    assert limited is not None and "hours" in limited
    assert twilio.sent == []


def test_limits_are_configurable_per_client(
    text_gateway: Send, alice: Persona, world: World, twilio: FakeTwilio
) -> None:
    from blink_sms.models import Client

    with world.services.db.session() as session:
        session.execute(update(Client).values(resets_per_hour=1))
        session.commit()
    text_gateway(alice.phone, "RESET")
    wait_for_jobs(world.services)
    assert "try again" in (reply_text(text_gateway(alice.phone, "RESET")) or "")


def test_a_transient_directory_outage_is_retried_and_recovers(
    text_gateway: Send, alice: Persona, world: World, twilio: FakeTwilio
) -> None:
    world.directory.set_outage(1)
    text_gateway(alice.phone, "RESET")
    wait_for_jobs(world.services)
    [request] = requests_of(world.services)
    assert request.status is RequestStatus.DONE and request.attempts == 2
    password = password_from(twilio.sent[0]["Body"])
    assert world.sign_in(alice.username, password) == "must_change"


def test_an_outage_that_outlasts_the_retries_ends_in_an_apology(
    text_gateway: Send, alice: Persona, world: World, twilio: FakeTwilio
) -> None:
    world.directory.set_outage(None)
    text_gateway(alice.phone, "RESET")
    wait_for_jobs(world.services)
    [request] = requests_of(world.services)
    assert request.status is RequestStatus.FAILED
    assert request.error_code == "directory_unavailable"
    assert request.attempts == 3
    [apology] = twilio.sent
    assert "Sorry" in apology["Body"] and "Contoso IT" in apology["Body"]
    assert world.sign_in(alice.username, alice.password) == "ok"


def test_a_refused_reset_is_not_retried_and_says_the_account_cannot_be_reset(
    text_gateway: Send, world: World, twilio: FakeTwilio
) -> None:
    boss = world.person("boss", "+15551230777", protected=True)
    text_gateway(boss.phone, "RESET")
    wait_for_jobs(world.services)
    [request] = requests_of(world.services)
    assert request.status is RequestStatus.FAILED and request.attempts == 1
    assert request.error_code == "operation_refused"
    body = twilio.sent[0]["Body"]  # not the apology, which invites a retry
    assert "cannot be reset by text" in body and "Sorry" not in body


def test_twilio_errors_are_mapped_retryable_and_permanent(
    text_gateway: Send, alice: Persona, world: World, twilio: FakeTwilio
) -> None:
    twilio.failures = [(503, 20500)]
    text_gateway(alice.phone, "RESET")
    wait_for_jobs(world.services)
    [request] = requests_of(world.services)
    assert request.status is RequestStatus.DONE and request.attempts == 2
    new_password = password_from(twilio.sent[0]["Body"])
    assert world.sign_in(alice.username, new_password) == "must_change"


def test_an_invalid_number_fails_permanently(
    text_gateway: Send, alice: Persona, world: World, twilio: FakeTwilio
) -> None:
    twilio.failures = [(400, 21211), (400, 21211)]
    text_gateway(alice.phone, "RESET")
    wait_for_jobs(world.services)
    [request] = requests_of(world.services)
    assert request.status is RequestStatus.FAILED and request.error_code == "sms_21211"
    assert request.attempts == 1


def _abandoned_request(world: World, alice: Persona) -> int:
    """A request whose worker died during the SMS call: running, its lease run out,
    its OTP message recorded as 'sending'."""
    from blink_sms.models import utcnow

    past = utcnow() - timedelta(minutes=1)
    with world.services.db.session() as session:
        request = ResetRequest(
            user_id=alice.user.id,
            kind=RequestKind.RESET,
            origin=RequestOrigin.SMS,
            status=RequestStatus.RUNNING,
            attempts=1,
            lease_token="0" * 32,
            lease_holder="dead-host:1",
            lease_expires_at=past,
            created_at=past,
        )
        session.add(request)
        session.flush()
        session.add(
            OutboundMessage(
                request_id=request.id,
                user_id=alice.user.id,
                purpose="otp",
                status="sending",
                created_at=past,
            )
        )
        session.commit()
        return request.id


def test_a_request_whose_sms_left_before_the_crash_is_done_without_a_second_sms(
    alice: Persona, world: World, twilio: FakeTwilio
) -> None:
    from blink_sms.messaging.sms import OutgoingSms

    _abandoned_request(world, alice)
    assert world.services.sms is not None
    # The dead worker's message reached Twilio; its answer never reached us.
    sid = world.services.sms.send(OutgoingSms(to=alice.phone or "", body="x", from_=GATEWAY))
    result = reset_job.sweep(world.services)
    wait_for_jobs(world.services)
    assert (result.abandoned, result.enqueued) == (1, 1)
    [request] = requests_of(world.services)
    assert (request.status, request.outbound_sid, request.attempts) == (
        RequestStatus.DONE, sid, 2,
    )  # fmt: skip
    assert len(twilio.sent) == 1  # only the one that left before the crash


def test_a_request_whose_sms_never_left_gets_a_new_password_and_one_sms(
    alice: Persona, world: World, twilio: FakeTwilio
) -> None:
    _abandoned_request(world, alice)
    reset_job.sweep(world.services)
    wait_for_jobs(world.services)
    [request] = requests_of(world.services)
    assert request.status is RequestStatus.DONE
    [sms] = twilio.sent
    assert world.sign_in(alice.username, password_from(sms["Body"])) == "must_change"
    with world.services.db.session() as session:
        statuses = sorted(session.execute(select(OutboundMessage.status)).scalars())
    assert statuses == ["failed", "sent"]  # the lost attempt, then the one that left


def test_a_request_held_by_a_live_job_is_not_taken_over(
    alice: Persona, world: World, twilio: FakeTwilio
) -> None:
    from blink_sms.models import utcnow

    request_id = _abandoned_request(world, alice)
    with world.services.db.session() as session:
        session.execute(
            update(ResetRequest)
            .where(ResetRequest.id == request_id)
            .values(lease_expires_at=utcnow() + timedelta(hours=1))
        )
        session.commit()
    assert reset_job.sweep(world.services).abandoned == 0
    reset_job.perform(world.services, request_id)  # a duplicate job finds nothing to claim
    wait_for_jobs(world.services)
    [request] = requests_of(world.services)
    assert request.status is RequestStatus.RUNNING and twilio.sent == []


def test_a_finished_request_run_again_does_nothing(
    text_gateway: Send, alice: Persona, world: World, twilio: FakeTwilio
) -> None:
    text_gateway(alice.phone, "RESET")
    wait_for_jobs(world.services)
    [request] = requests_of(world.services)
    reset_job.perform(world.services, request.id)
    assert len(twilio.sent) == 1


def test_job_arguments_are_ids_only(services: Blink) -> None:
    with pytest.raises(TypeError):
        services.queue.enqueue("client-x", print, "Secret!Pw1", job_id="x")  # type: ignore[arg-type]


def test_a_user_of_another_client_uses_that_clients_sender_and_policy(
    text_gateway: Send, world: World, twilio: FakeTwilio
) -> None:
    other = world.another_client()
    bob = world.person("bob", "+15551230002", client=other)
    text_gateway(bob.phone, "RESET", to="+15005550007")
    wait_for_jobs(world.services)
    assert twilio.sent[0]["From"] == "+15005550007"
    with world.services.db.session() as session:
        user = session.get(User, bob.user.id)
        assert user is not None and user.client_id == other.id


def test_no_password_in_the_database_after_a_reset(
    text_gateway: Send, alice: Persona, world: World, twilio: FakeTwilio
) -> None:
    text_gateway(alice.phone, "RESET")
    wait_for_jobs(world.services)
    password = password_from(twilio.sent[0]["Body"])
    with world.services.db.session() as session:
        for table in (
            "clients",
            "users",
            "reset_requests",
            "outbound_messages",
            "inbound_messages",
            "audit_events",
            "sms_throttles",
        ):
            rows = session.execute(text(f"SELECT * FROM {table}")).all()  # noqa: S608
            assert password not in repr(rows), table


def test_a_messaging_service_is_used_alongside_the_number_texted(
    text_gateway: Send, alice: Persona, world: World, twilio: FakeTwilio
) -> None:
    from blink_sms.models import Client

    with world.services.db.session() as session:
        session.execute(update(Client).values(messaging_service_sid="MG" + "c3" * 16))
        session.commit()
    text_gateway(alice.phone, "RESET")
    wait_for_jobs(world.services)
    assert twilio.sent[0]["MessagingServiceSid"] == "MG" + "c3" * 16
    assert twilio.sent[0]["From"] == GATEWAY


def test_a_request_stuck_for_15_minutes_no_longer_blocks_a_new_one(
    text_gateway: Send, alice: Persona, world: World, twilio: FakeTwilio
) -> None:
    from blink_sms.models import utcnow

    with world.services.db.session() as session:
        session.add(
            ResetRequest(
                user_id=alice.user.id,
                kind=RequestKind.RESET,
                origin=RequestOrigin.SMS,
                status=RequestStatus.RUNNING,
                created_at=utcnow() - timedelta(minutes=16),
            )
        )
        session.commit()
    ack = reply_text(text_gateway(alice.phone, "RESET"))
    wait_for_jobs(world.services)
    assert ack is not None and "arrive" in ack
    stuck, fresh = requests_of(world.services)
    assert stuck.status is RequestStatus.FAILED and stuck.error_code == "stale"
    assert fresh.status is RequestStatus.DONE
    assert len(twilio.sent) == 1


def test_a_recent_pending_request_still_blocks(
    text_gateway: Send, alice: Persona, world: World, twilio: FakeTwilio
) -> None:
    from blink_sms.models import utcnow

    with world.services.db.session() as session:
        session.add(
            ResetRequest(
                user_id=alice.user.id,
                kind=RequestKind.RESET,
                origin=RequestOrigin.SMS,
                status=RequestStatus.QUEUED,
                created_at=utcnow() - timedelta(minutes=14),
            )
        )
        session.commit()
    assert "already on its way" in (reply_text(text_gateway(alice.phone, "RESET")) or "")
    assert len(requests_of(world.services)) == 1


# --- no transaction across a directory or Twilio call -----------------------------------------


@pytest.mark.parametrize("blocked", ["directory", "twilio"])
def test_a_webhook_is_answered_while_a_job_waits_on_the_directory_or_twilio(
    text_gateway: Send,
    alice: Persona,
    world: World,
    twilio: FakeTwilio,
    monkeypatch: pytest.MonkeyPatch,
    blocked: str,
) -> None:
    """On SQLite an open transaction holds the write lock: a job that kept one open
    through its directory or Twilio call would make this webhook wait, then fail."""
    import threading

    from directory_adapters.sandbox import SandboxDirectory

    entered, release = threading.Event(), threading.Event()

    def blocking(original: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            entered.set()
            assert release.wait(30)
            return original(*args, **kwargs)

        return call

    if blocked == "directory":
        monkeypatch.setattr(
            SandboxDirectory, "set_password", blocking(SandboxDirectory.set_password)
        )
    else:
        twilio.before_create = blocking(lambda: None)
    bob = world.person("bob", "+15551230002")
    try:
        text_gateway(alice.phone, "RESET")
        assert entered.wait(10)
        reply = text_gateway(bob.phone, "RESET")  # while alice's job is blocked
        assert reply.status_code == 200 and "arrive" in (reply_text(reply) or "")
    finally:
        release.set()
    wait_for_jobs(world.services)
    assert sorted(m["To"] for m in twilio.sent) == [alice.phone, bob.phone]


# --- the retry policy ------------------------------------------------------------------------


def test_a_directory_asking_to_come_back_later_is_retried_no_sooner(
    text_gateway: Send,
    alice: Persona,
    world: World,
    twilio: FakeTwilio,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from blink_sms.models import utcnow
    from directory_adapters import DirectoryUnavailable
    from directory_adapters.sandbox import SandboxDirectory

    def throttled(*args: Any, **kwargs: Any) -> None:
        raise DirectoryUnavailable("throttled (HTTP 429)", retry_after=120)

    original = SandboxDirectory.set_password
    monkeypatch.setattr(SandboxDirectory, "set_password", throttled)
    text_gateway(alice.phone, "RESET")
    wait_for_jobs(world.services)
    [request] = requests_of(world.services)
    assert request.status is RequestStatus.QUEUED
    assert request.enqueued_at is None and request.next_attempt_at is not None
    wait = (request.next_attempt_at - utcnow()).total_seconds()
    assert 100 < wait <= 120  # Retry-After (120 s) beats the interval (0 s)
    assert reset_job.sweep(world.services).enqueued == 0  # not due yet
    reset_job.perform(world.services, request.id)  # a stray copy of the job: too early
    assert requests_of(world.services)[0].status is RequestStatus.QUEUED
    monkeypatch.setattr(SandboxDirectory, "set_password", original)
    with world.services.db.session() as session:  # two minutes pass
        session.execute(update(ResetRequest).values(next_attempt_at=utcnow()))
        session.commit()
    assert reset_job.sweep(world.services).enqueued == 1
    wait_for_jobs(world.services)
    [done] = requests_of(world.services)
    assert (done.status, done.attempts) == (RequestStatus.DONE, 2)
    [sms] = twilio.sent
    assert world.sign_in(alice.username, password_from(sms["Body"])) == "must_change"


def test_the_last_failed_attempt_sends_the_apology_once(
    text_gateway: Send,
    alice: Persona,
    world: World,
    twilio: FakeTwilio,
) -> None:
    world.directory.set_outage(10)
    text_gateway(alice.phone, "RESET")
    wait_for_jobs(world.services)
    [request] = requests_of(world.services)
    assert (request.status, request.attempts) == (RequestStatus.FAILED, 3)  # (0, 0): 3 in all
    assert request.error_code == "directory_unavailable"
    [apology] = twilio.sent
    assert "Contoso IT" in apology["Body"]


def test_a_client_whose_settings_the_key_cannot_read_fails_once_with_a_clear_reason(
    text_gateway: Send,
    alice: Persona,
    world: World,
    twilio: FakeTwilio,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from blink_sms.crypto import SecretBox
    from blink_sms.models import Client

    other_key = SecretBox("another-key-that-is-long-enough-0123456789")
    with world.services.db.session() as session:
        session.execute(
            update(Client).values(
                directory_settings_encrypted=other_key.encrypt_json({"path": "x"})
            )
        )
        session.commit()
    text_gateway(alice.phone, "RESET")
    wait_for_jobs(world.services)
    [request] = requests_of(world.services)
    assert (request.status, request.error_code, request.attempts) == (
        RequestStatus.FAILED, "secret_key_mismatch", 1,
    )  # fmt: skip
    [apology] = twilio.sent
    assert "Contoso IT" in apology["Body"]
    with world.services.db.session() as session:
        event = session.execute(
            select(AuditEvent).where(AuditEvent.action == "reset.failed")
        ).scalar_one()
    assert "BLINK_SECRET_KEY" in event.detail["cause"]
    assert "contoso" in caplog.text and "BLINK_SECRET_KEY_PREVIOUS" in caplog.text


def test_a_database_error_carries_no_statement_parameters(alice: Persona, world: World) -> None:
    from sqlalchemy.exc import IntegrityError

    from blink_sms.models import User

    copy = User(
        client_id=world.client.id, directory_id="x-1", username="copy", display_name="Copy",
        phone=alice.phone,
    )  # fmt: skip
    with world.services.db.session() as session:
        session.add(copy)
        with pytest.raises(IntegrityError) as failed:
            session.commit()  # the phone is unique: refused
    # The statement's parameters (the phone, the email) stay out of the error's text.
    assert "[parameters:" not in str(failed.value)
    assert "parameters hidden" in str(failed.value)
