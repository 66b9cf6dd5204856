"""The lockout watch on the sandbox directory: one SMS per lockout to enrolled users,
events that end, replies that work, the scheduler's one poll per due client on the
client's own queue, the admin digest, health and ``blink-sms lockouts``; and on a fake
Entra ID tenant, the watch that is off without a licence."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import responses
from click.testing import CliRunner
from redis import Redis
from rq import Queue
from sqlalchemy import select, update

from blink_sms.actors import COMMAND_LINE
from blink_sms.cli import cli
from blink_sms.context import Blink
from blink_sms.models import (
    AuditEvent,
    Client,
    LockoutEvent,
    LockoutWatch,
    OutboundMessage,
    RequestOrigin,
    ResetRequest,
    User,
    UserStatus,
    utcnow,
)
from blink_sms.services import lockout_digest, lockout_watch, overview
from blink_sms.services.clients import create_client
from blink_sms.settings import Settings
from tests.conftest import ACCOUNT_SID, GATEWAY, Persona, World, reply_text, wait_for_jobs
from tests.enrollment.smtp import SmtpServer
from tests.support.fake_graph import FULL_PERMISSIONS, FakeEntra
from tests.support.fake_twilio import FakeTwilio

LATER = timedelta(minutes=5)


@pytest.fixture
def settings(settings: Settings, smtp: SmtpServer) -> Settings:
    """Email on (the digest), through the suite's SMTP server."""
    return settings.with_changes(smtp_url=smtp.url, mail_from="reset@msp.example")


def events(services: Blink) -> list[LockoutEvent]:
    with services.db.session() as session:
        return list(session.execute(select(LockoutEvent).order_by(LockoutEvent.id)).scalars())


def watch(services: Blink, client: Client) -> LockoutWatch:
    with services.db.session() as session:
        found = session.get(LockoutWatch, client.id)
        assert found is not None
        return found


def audited(services: Blink, action: str) -> list[dict[str, Any]]:
    with services.db.session() as session:
        rows = session.execute(select(AuditEvent).where(AuditEvent.action == action)).scalars()
        return [{"user_id": row.user_id, **row.detail} for row in rows]


def change_client(services: Blink, client: Client, **values: Any) -> None:
    with services.db.session() as session:
        session.execute(update(Client).where(Client.id == client.id).values(**values))
        session.commit()


# -- one SMS per lockout ----------------------------------------------------------------------


def test_a_locked_enrolled_user_gets_one_sms_per_lockout(
    world: World, alice: Persona, twilio: FakeTwilio, services: Blink
) -> None:
    bob = world.person("bob", "+15551230002")  # enrolled, not locked
    world.lock(alice.username)

    first = lockout_watch.poll(services, world.client.id)

    assert (first.status, first.locked, first.detected, first.texted) == ("ok", 1, 1, 1)
    [sms] = twilio.sent
    assert (sms["To"], sms["From"]) == (alice.phone, GATEWAY)
    assert sms["Body"] == (
        "Your account alice is locked. Reply UNLOCK to unlock it, or RESET for a new password."
    )
    [event] = events(services)
    assert (event.user_id, event.kind, event.notice, event.ended_at) == (
        alice.user.id, "lockout", "sent", None,
    )  # fmt: skip
    assert event.locked_at is not None and event.notified_at is not None
    assert audited(services, "lockout.detected") == [
        {"user_id": alice.user.id, "kind": "lockout", "notice": "sent"}
    ]
    with services.db.session() as session:
        purposes = session.execute(select(OutboundMessage.purpose)).scalars().all()
    assert purposes == ["lockout_notice"]

    second = lockout_watch.poll(services, world.client.id)
    assert (second.detected, second.texted, len(twilio.sent)) == (0, 0, 1)
    assert bob.phone not in {m["To"] for m in twilio.sent}

    world.directory.unlock(alice.user.directory_id)  # an admin unlocks in the directory
    ended = lockout_watch.poll(services, world.client.id)
    assert ended.closed == 1
    [event] = events(services)
    assert event.ended_at is not None and event.ended_reason == "ended"

    world.lock(alice.username)  # a new lockout is a new event, and a new SMS
    lockout_watch.poll(services, world.client.id)
    assert len(twilio.sent) == 2
    assert [e.ended_at is None for e in events(services)] == [False, True]


def test_a_reply_unlock_to_the_notice_unlocks_and_closes_the_event(
    world: World,
    alice: Persona,
    twilio: FakeTwilio,
    services: Blink,
    text_gateway: Callable[..., Any],
) -> None:
    world.lock(alice.username)
    lockout_watch.poll(services, world.client.id)

    ack = reply_text(text_gateway(alice.phone, "UNLOCK"))
    wait_for_jobs(services)

    assert ack is not None and "unlocked" in ack
    assert world.sign_in(alice.username, alice.password) == "ok"
    assert "unlocked" in twilio.sent[-1]["Body"]
    result = lockout_watch.poll(services, world.client.id)
    assert (result.closed, result.texted, len(twilio.sent)) == (1, 0, 2)
    [event] = events(services)
    assert event.ended_reason == "unlocked"
    # The reply answered the notice: the report counts it as a reply to a lockout.
    with services.db.session() as session:
        [request] = session.execute(select(ResetRequest)).scalars().all()
    assert request.origin is RequestOrigin.LOCKOUT


def test_a_lockout_after_a_completed_reset_is_a_new_one_even_between_polls(
    world: World,
    alice: Persona,
    twilio: FakeTwilio,
    services: Blink,
    text_gateway: Callable[..., Any],
) -> None:
    world.lock(alice.username)
    lockout_watch.poll(services, world.client.id)
    text_gateway(alice.phone, "RESET")
    wait_for_jobs(services)
    world.lock(alice.username)  # locked again before the next poll

    result = lockout_watch.poll(services, world.client.id)

    assert (result.closed, result.detected, result.texted) == (1, 1, 1)
    first, second = events(services)
    assert first.ended_reason == "reset" and second.ended_at is None
    assert [m["Body"].startswith("Your account alice is locked") for m in twilio.sent] == [
        True, False, True,
    ]  # fmt: skip


def test_opted_out_and_not_enrolled_users_get_nothing(
    world: World, twilio: FakeTwilio, services: Blink
) -> None:
    opted_out = world.person("olga", "+15551230003")
    invited = world.person("ivan", None, status=UserStatus.INVITED)
    disabled = world.person("dora", "+15551230004", status=UserStatus.DISABLED)
    world.directory.add_user("uma", "Uma Unknown", password="Start!Pass123")  # not imported
    with services.db.session() as session:
        session.execute(update(User).where(User.id == opted_out.user.id).values(sms_opted_out=True))
        session.commit()
    for username in ("olga", "ivan", "dora", "uma"):
        world.lock(username)

    result = lockout_watch.poll(services, world.client.id)

    assert (result.locked, result.detected, result.texted) == (4, 1, 0)
    assert twilio.sent == []
    [event] = events(services)
    assert (event.user_id, event.notice) == (opted_out.user.id, "opted_out")
    assert audited(services, "lockout.detected") == [
        {"user_id": opted_out.user.id, "kind": "lockout", "notice": "opted_out"}
    ]
    assert {invited.user.id, disabled.user.id}.isdisjoint(e.user_id for e in events(services))


def test_notices_count_against_the_hourly_reply_limit(
    world: World, alice: Persona, twilio: FakeTwilio, services: Blink, settings: Settings
) -> None:
    services.settings = settings.with_changes(replies_per_hour=1)
    world.lock(alice.username)
    lockout_watch.poll(services, world.client.id)
    world.directory.unlock(alice.user.directory_id)
    lockout_watch.poll(services, world.client.id)
    world.lock(alice.username)

    lockout_watch.poll(services, world.client.id)

    assert len(twilio.sent) == 1
    assert [e.notice for e in events(services)] == ["sent", "throttled"]


def test_the_notice_is_in_the_users_language(
    world: World, twilio: FakeTwilio, services: Blink
) -> None:
    world.person("nora", "+15551230005", language="nl")
    world.lock("nora")

    lockout_watch.poll(services, world.client.id)

    [sms] = twilio.sent
    assert "nora" in sms["Body"] and "UNLOCK" in sms["Body"] and "Your account" not in sms["Body"]


def test_a_failed_sms_is_recorded_and_not_sent_again(
    world: World, alice: Persona, twilio: FakeTwilio, services: Blink
) -> None:
    twilio.failures.append((400, 21211))  # Twilio: invalid 'To' number
    world.lock(alice.username)

    assert lockout_watch.poll(services, world.client.id).texted == 0
    assert lockout_watch.poll(services, world.client.id).texted == 0

    assert [e.notice for e in events(services)] == ["failed"]
    assert [a["notice"] for a in audited(services, "lockout.detected")] == ["failed"]


def test_a_notice_a_dead_poll_left_sending_is_never_sent_again(
    world: World, alice: Persona, twilio: FakeTwilio, services: Blink
) -> None:
    world.lock(alice.username)
    with services.db.session() as session:  # what a poll that died before the SMS left
        session.add(
            LockoutEvent(
                client_id=world.client.id, user_id=alice.user.id, notice="sending",
                detected_at=utcnow() - timedelta(minutes=1),
            )
        )  # fmt: skip
        session.commit()

    lockout_watch.poll(services, world.client.id)

    assert twilio.sent == []
    assert [e.notice for e in events(services)] == ["unknown"]
    assert audited(services, "lockout.detected") == [
        {"user_id": alice.user.id, "kind": "lockout", "notice": "unknown"}
    ]


def test_a_poll_of_a_client_disabled_while_it_waited_does_nothing(
    world: World, alice: Persona, twilio: FakeTwilio, services: Blink
) -> None:
    world.lock(alice.username)
    change_client(services, world.client, disabled_at=utcnow())

    assert lockout_watch.poll(services, world.client.id).status == "skipped"
    assert twilio.sent == [] and events(services) == []


def test_a_directory_outage_marks_the_watch_failing_until_it_answers(
    world: World, alice: Persona, twilio: FakeTwilio, services: Blink
) -> None:
    world.lock(alice.username)
    world.directory.set_outage(1)

    assert lockout_watch.poll(services, world.client.id).status == "failing"
    state = watch(services, world.client)
    assert state.status == "failing" and "did not answer" in (state.detail or "")
    assert state.queued_at is None and state.polled_at is not None

    assert lockout_watch.poll(services, world.client.id).texted == 1
    assert watch(services, world.client).status == "ok"


# -- the scheduler's task ---------------------------------------------------------------------


@pytest.fixture
def with_redis(services: Blink, redis_url: str, settings: Settings) -> Iterator[Redis[bytes]]:
    """The app's queue on a real Redis (RQ), as in production."""
    from blink_sms.queue import RqQueue

    redis: Redis[bytes] = Redis.from_url(redis_url)
    original = services.queue
    services.queue = RqQueue(redis, settings.job_retry_intervals)
    yield redis
    services.queue = original
    redis.close()


def test_the_scheduler_queues_one_poll_per_due_client_on_the_clients_queue(
    world: World, services: Blink, with_redis: Redis[bytes]
) -> None:
    fabrikam = world.another_client("fabrikam")
    watch_off = world.another_client("initech")
    disabled = world.another_client("umbrella")
    change_client(services, watch_off, lockout_watch=False)
    change_client(services, disabled, disabled_at=utcnow())
    now = utcnow()

    assert lockout_watch.enqueue_due(services, now=now) == 2

    def queued(slug: str) -> list[str]:
        return Queue(f"client-{slug}", connection=with_redis).job_ids

    assert queued("contoso") == [f"lockout-poll-{world.client.id}"]
    assert queued("fabrikam") == [f"lockout-poll-{fabrikam.id}"]
    assert queued("initech") == queued("umbrella") == []
    assert watch(services, world.client).queued_at is not None
    # Still queued: never queued twice, however often the task runs.
    assert lockout_watch.enqueue_due(services, now=now + timedelta(seconds=5)) == 0
    assert lockout_watch.enqueue_due(services, now=now + LATER) == 0
    assert len(queued("contoso")) == 1


def test_a_poll_the_queue_lost_is_queued_again(
    world: World, services: Blink, with_redis: Redis[bytes]
) -> None:
    now = utcnow()
    lockout_watch.enqueue_due(services, now=now)
    with_redis.flushall()  # Redis restarted without persistence

    assert lockout_watch.enqueue_due(services, now=now + timedelta(seconds=30)) == 0
    assert lockout_watch.enqueue_due(services, now=now + LATER) == 1
    assert Queue("client-contoso", connection=with_redis).count == 1


def test_a_client_is_polled_again_after_its_interval(
    world: World, alice: Persona, twilio: FakeTwilio, services: Blink
) -> None:
    change_client(services, world.client, lockout_poll_seconds=120)
    world.lock(alice.username)
    now = utcnow()

    assert lockout_watch.enqueue_due(services, now=now) == 1
    wait_for_jobs(services)  # the in-process queue ran the poll
    assert len(twilio.sent) == 1
    polled = watch(services, world.client).polled_at
    assert polled is not None and watch(services, world.client).queued_at is None
    assert lockout_watch.enqueue_due(services, now=polled + timedelta(seconds=60)) == 0
    assert lockout_watch.enqueue_due(services, now=polled + timedelta(seconds=120)) == 1
    wait_for_jobs(services)


# -- the admin digest -------------------------------------------------------------------------


def test_the_alert_address_gets_one_digest_per_poll_with_news(
    world: World, alice: Persona, twilio: FakeTwilio, services: Blink, smtp: SmtpServer
) -> None:
    change_client(services, world.client, lockout_alert_email="it@contoso.example")
    bob = world.person("bob", "+15551230002")
    world.lock(alice.username)
    world.lock(bob.username)

    lockout_watch.poll(services, world.client.id)
    wait_for_jobs(services)
    lockout_watch.poll(services, world.client.id)  # no news: no email
    wait_for_jobs(services)

    [mail] = smtp.mailbox.to("it@contoso.example")
    assert mail.message["Subject"] == "Contoso: 2 accounts locked out"
    assert "- alice (Alice), locked " in mail.text and "; texted" in mail.text
    assert "- bob (Bob)" in mail.text
    assert watch(services, world.client).digest_sent_at is not None
    assert len(audited(services, "lockout.digest_sent")) == 1


def test_a_digest_job_run_twice_sends_once(
    world: World, alice: Persona, twilio: FakeTwilio, services: Blink, smtp: SmtpServer
) -> None:
    change_client(services, world.client, lockout_alert_email="it@contoso.example")
    world.lock(alice.username)
    lockout_watch.poll(services, world.client.id)
    wait_for_jobs(services)
    [event] = events(services)

    again = lockout_digest.deliver_digest(
        services, world.client.id, event.id, event.id, retries_left=0
    )

    assert not again and len(smtp.mailbox.to("it@contoso.example")) == 1


# -- health and the command line --------------------------------------------------------------


def test_the_clients_health_shows_the_watch(
    world: World, alice: Persona, twilio: FakeTwilio, services: Blink
) -> None:
    with services.db.session() as session:
        [before] = overview.client_health(services, session, COMMAND_LINE)
    assert before.lockout_watch.status == "waiting"
    world.lock(alice.username)
    lockout_watch.poll(services, world.client.id)
    change_client(services, world.client, lockout_watch=False)

    with services.db.session() as session:
        [after] = overview.client_health(services, session, COMMAND_LINE)

    state = after.lockout_watch
    assert (state.status, state.open_lockouts) == ("off", 1)
    assert state.detail == "Turned off in the client's settings."


def test_blink_sms_lockouts_lists_the_open_lockouts(
    world: World,
    alice: Persona,
    twilio: FakeTwilio,
    services: Blink,
    settings: Settings,
    database_url: str,
) -> None:
    world.lock(alice.username)
    lockout_watch.poll(services, world.client.id)
    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("BLINK_")}
    env |= {"BLINK_SECRET_KEY": settings.secret_key, "BLINK_DATABASE_URL": database_url}

    listed = CliRunner().invoke(cli, ["lockouts", "--client", "contoso"], env=env)
    unknown = CliRunner().invoke(cli, ["lockouts", "--client", "nobody"], env=env)

    assert listed.exit_code == 0, listed.output
    assert "Contoso (contoso): lockout watch ok" in listed.output
    [row] = [line for line in listed.output.splitlines() if line.startswith("alice")]
    assert "lockout" in row and "sent" in row
    assert unknown.exit_code == 1 and "no such client" in unknown.output


# -- Entra ID ---------------------------------------------------------------------------------


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    """One ``responses`` mock for Twilio and Microsoft (nested mocks would hide each other)."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def twilio(rsps: responses.RequestsMock) -> FakeTwilio:
    return FakeTwilio(ACCOUNT_SID).install(rsps)


@pytest.fixture
def tenant(rsps: responses.RequestsMock) -> FakeEntra:
    return FakeEntra().install(rsps)


def entra_client(services: Blink, tenant: FakeEntra) -> Client:
    with services.db.session() as session:
        client = create_client(
            session, services.secrets, COMMAND_LINE, slug="tailspin", name="Tailspin",
            directory_kind="entra_id", directory_settings=tenant.settings(),
            sender_number=GATEWAY,
        )  # fmt: skip
        session.commit()
        return client


def enrol(services: Blink, client: Client, directory_id: str, username: str, phone: str) -> int:
    with services.db.session() as session:
        user = User(
            client_id=client.id, directory_id=directory_id, username=username,
            display_name=username, phone=phone, status=UserStatus.ACTIVE,
        )  # fmt: skip
        session.add(user)
        session.commit()
        return user.id


def test_an_entra_lockout_offers_reset_only(
    services: Blink, tenant: FakeEntra, twilio: FakeTwilio, tmp_path: Path
) -> None:
    client = entra_client(services, tenant)
    zoe = tenant.add_user("zoe", "Old!Passw0rd-1")
    enrol(services, client, zoe.id, zoe.user_principal_name, "+15551230009")
    for attempt in range(tenant.lockout_threshold + 1):
        tenant.sign_in(zoe.user_principal_name, f"wrong-{attempt}")

    result = lockout_watch.poll(services, client.id)

    assert result.texted == 1
    [sms] = twilio.sent
    assert "UNLOCK" not in sms["Body"] and "Reply RESET" in sms["Body"]
    assert watch(services, client).since is not None


@pytest.mark.parametrize(
    ("premium", "permissions", "says"),
    [
        (False, FULL_PERMISSIONS, "P1/P2 licence"),
        (True, FULL_PERMISSIONS - {"AuditLog.Read.All"}, "without AuditLog.Read.All"),
    ],
)
def test_the_entra_watch_is_off_without_a_licence_or_permission_and_says_why(
    services: Blink,
    tenant: FakeEntra,
    twilio: FakeTwilio,
    premium: bool,
    permissions: frozenset[str],
    says: str,
) -> None:
    tenant.premium, tenant.permissions = premium, set(permissions)
    client = entra_client(services, tenant)

    assert lockout_watch.poll(services, client.id).status == "off"

    state = watch(services, client)
    assert state.status == "off" and says in (state.detail or "")
    assert "request-id" not in (state.detail or "")
    polled = state.polled_at
    assert polled is not None
    # Off: tried again after 15 minutes, not at every interval.
    assert lockout_watch.enqueue_due(services, now=polled + timedelta(minutes=5)) == 0
    assert lockout_watch.enqueue_due(services, now=polled + timedelta(minutes=15)) == 1
    wait_for_jobs(services)
