"""Password-expiry reminders end to end on the sandbox directory: the scheduler's daily
job, the reminders at 7, 3 and 1 days each sent once (not again on the next run or after
a restart), nobody who is not enrolled or opted out, nothing when off, the preview
command, and a RESET reply that works as always.

The time of a run is passed in (``now``); the sandbox's expiries are real times ahead.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from click.testing import CliRunner, Result
from redis import Redis
from rq import Queue, SimpleWorker
from sqlalchemy import select

from blink_sms.actors import COMMAND_LINE
from blink_sms.app import create_app
from blink_sms.cli import cli
from blink_sms.context import Blink
from blink_sms.models import (
    AuditEvent,
    Client,
    ExpiryReminder,
    OutboundMessage,
    User,
    UserStatus,
    utcnow,
)
from blink_sms.scheduler import tasks
from blink_sms.services import expiry_reminders
from blink_sms.services.clients import set_disabled, update_client
from blink_sms.services.expiry_reminders import DailyReminders, due_day, remind
from blink_sms.settings import Settings
from directory_adapters.sandbox import SandboxDirectory
from tests.conftest import GATEWAY, Persona, World, reply_text, wait_for_jobs
from tests.support.fake_twilio import FakeTwilio

DAY = timedelta(days=1)
Send = Callable[..., Any]


def reminders_on(world: World, days: str | None = "7,3,1", client: Client | None = None) -> None:
    with world.services.db.session() as session:
        row = session.get(Client, (client or world.client).id)
        assert row is not None
        update_client(session, COMMAND_LINE, row, expiry_reminder_days=days)


def expires_in(world: World, persona: Persona, delta: timedelta) -> datetime:
    when = utcnow() + delta
    world.directory.set_password_expiry(persona.username, when)
    return when


def reminder_rows(services: Blink) -> list[tuple[int, int]]:
    with services.db.session() as session:
        rows = session.execute(
            select(ExpiryReminder.user_id, ExpiryReminder.days_before).order_by(ExpiryReminder.id)
        ).all()
    return [(user_id, day) for user_id, day in rows]


def events(services: Blink, action: str) -> list[AuditEvent]:
    with services.db.session() as session:
        query = select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
        return list(session.execute(query).scalars())


# --- which day is due ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("left", "due"),
    [
        (timedelta(days=9), None),  # not yet
        (timedelta(days=7, hours=12), None),  # 8 days, rounded up: not yet
        (timedelta(days=7), 7),
        (timedelta(days=6, hours=1), 7),  # the 7-day reminder was missed: made up now
        (timedelta(days=2, hours=12), 3),
        (timedelta(hours=3), 1),
        (timedelta(seconds=-1), None),  # expired: too late
    ],
)
def test_the_due_day_is_the_smallest_configured_day_not_below_the_days_left(
    left: timedelta, due: int | None
) -> None:
    now = utcnow()
    assert due_day((7, 3, 1), now + left, now) == due


# --- the sandbox's expiries --------------------------------------------------------------------


def test_the_sandbox_reports_expiries_in_the_window_and_a_new_password_drops_them(
    tmp_path: Any,
) -> None:
    directory = SandboxDirectory(tmp_path / "d.sqlite", hash_cost=4)
    now = utcnow()
    for name, delta, disabled in [
        ("soon", 2 * DAY, False),
        ("later", 30 * DAY, False),
        ("past", -DAY, False),
        ("off", DAY, True),
    ]:
        directory.add_user(name, name.title(), password="Start!Pass1", disabled=disabled)
        directory.set_password_expiry(name, now + delta)
    directory.add_user("never", "Never", password="Start!Pass1")

    [expiry] = directory.password_expiries(now + 8 * DAY)
    assert expiry.user.username == "soon"
    assert expiry.expires_at == now + 2 * DAY

    directory.set_password(expiry.user.id, "New!Passw0rd-1", must_change=True, unlock=True)
    assert directory.password_expiries(now + 8 * DAY) == []


def test_a_sandbox_file_made_before_expiries_gains_them_when_opened(tmp_path: Any) -> None:
    path = tmp_path / "old.sqlite"
    SandboxDirectory(path, hash_cost=4).add_user("ann", "Ann", password="Start!Pass1")
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TABLE password_expiries")  # as a file of an earlier version
    reopened = SandboxDirectory(path, hash_cost=4)
    reopened.set_password_expiry("ann", utcnow() + DAY)
    assert [e.user.username for e in reopened.password_expiries(utcnow() + 2 * DAY)] == ["ann"]


# --- reminders -------------------------------------------------------------------------------


def test_reminders_at_7_3_and_1_days_are_each_sent_once(
    world: World, alice: Persona, twilio: FakeTwilio
) -> None:
    reminders_on(world)
    start = utcnow()
    expires_in(world, alice, timedelta(days=7, hours=12))
    runs = [start + DAY * n for n in (0, 1, 1, 2, 3, 4.6, 5, 6.6, 6.7, 7.2)]
    sent_per_run = []
    for now in runs:
        before = len(twilio.sent)
        remind(world.services, world.client.id, now=now)
        sent_per_run.append(len(twilio.sent) - before)

    assert sent_per_run == [0, 1, 0, 0, 0, 1, 0, 1, 0, 0]
    assert [m["To"] for m in twilio.sent] == [alice.phone] * 3
    assert {m["From"] for m in twilio.sent} == {GATEWAY}
    bodies = twilio.bodies_to(alice.phone or "")
    assert bodies[0] == (
        "Your password for alice expires in 7 days. Reply RESET for a new password."
    )
    assert "expires in 3 days" in bodies[1]
    assert "expires in 22 hours" in bodies[2]  # the 1-day reminder says how long, exactly
    assert reminder_rows(world.services) == [(alice.user.id, 7), (alice.user.id, 3),
                                             (alice.user.id, 1)]  # fmt: skip
    [event, *_] = reminded = events(world.services, "password.expiry_reminded")
    assert len(reminded) == 3
    assert event.user_id == alice.user.id and event.client_id == world.client.id
    assert event.actor == "system" and event.detail["days_before"] == 7
    with world.services.db.session() as session:
        purposes = session.execute(select(OutboundMessage.purpose)).scalars().all()
    assert purposes == ["expiry_reminder"] * 3


def test_a_missed_day_is_made_up_once_and_a_user_is_texted_in_their_language(
    world: World, twilio: FakeTwilio
) -> None:
    reminders_on(world)
    bram = world.person("bram", "+15551230002", language="nl")
    expires_in(world, bram, timedelta(days=2, hours=12))  # the 7-day reminder was never sent
    start = utcnow()

    remind(world.services, world.client.id, now=start)
    remind(world.services, world.client.id, now=start + DAY)  # 2 days left: 3 was sent

    [body] = twilio.bodies_to("+15551230002")
    assert body.startswith("Je wachtwoord voor bram verloopt over 3 dagen.")
    assert reminder_rows(world.services) == [(bram.user.id, 3)]


def test_only_enrolled_users_who_did_not_opt_out_are_reminded(
    world: World, alice: Persona, twilio: FakeTwilio
) -> None:
    reminders_on(world)
    pending = world.person("paula", None, status=UserStatus.PENDING)
    invited = world.person("ivan", "+15551230003", status=UserStatus.INVITED)
    opted_out = world.person("otto", "+15551230004")
    with world.services.db.session() as session:
        session.get_one(User, opted_out.user.id).sms_opted_out = True
        session.commit()
    stranger = world.directory.add_user("stranger", "Stranger", mobile="+15551230005")
    for persona in (alice, pending, invited, opted_out):
        expires_in(world, persona, timedelta(days=2))
    world.directory.set_password_expiry(stranger.username, utcnow() + 2 * DAY)

    run = remind(world.services, world.client.id)

    assert run.expiring == 5
    assert [m["To"] for m in twilio.sent] == [alice.phone]
    assert reminder_rows(world.services) == [(alice.user.id, 3)]


def test_nothing_is_queued_or_sent_when_reminders_are_off_or_the_client_is_disabled(
    world: World, alice: Persona, twilio: FakeTwilio
) -> None:
    expires_in(world, alice, timedelta(days=2))
    assert DailyReminders()(world.services) == 0  # off by default
    assert remind(world.services, world.client.id).expiring == 0

    reminders_on(world)
    with world.services.db.session() as session:
        set_disabled(session, COMMAND_LINE, session.get_one(Client, world.client.id), disabled=True)
    assert DailyReminders()(world.services) == 0
    assert remind(world.services, world.client.id).expiring == 0
    wait_for_jobs(world.services)
    assert twilio.sent == []


def test_the_scheduler_queues_one_job_a_day_and_a_restart_sends_nothing_again(
    world: World, alice: Persona, twilio: FakeTwilio
) -> None:
    assert "expiry-reminders" in [task.name for task in tasks(world.services)]
    reminders_on(world)
    expires_in(world, alice, timedelta(days=2, hours=12))
    schedule = DailyReminders()

    assert schedule(world.services) == 1
    wait_for_jobs(world.services)
    assert schedule(world.services) == 0  # once a day
    assert len(twilio.sent) == 1

    restarted = DailyReminders()  # without Redis, a new scheduler forgets the day...
    assert restarted(world.services) == 1
    wait_for_jobs(world.services)
    assert len(twilio.sent) == 1  # ...but the reminder's row keeps it from going twice
    assert schedule(world.services, now=utcnow() + DAY) == 1  # the next day's job
    wait_for_jobs(world.services)
    assert len(twilio.sent) == 1  # 1 day 12 hours left: the 3-day reminder was sent


def test_with_redis_the_day_is_kept_across_a_scheduler_restart(
    settings: Settings, redis_url: str, world: World, alice: Persona, twilio: FakeTwilio
) -> None:
    reminders_on(world)
    expires_in(world, alice, timedelta(days=2, hours=12))
    app = create_app(settings.with_changes(redis_url=redis_url))
    services: Blink = app.extensions["blink_sms"]
    redis: Redis[bytes] = Redis.from_url(redis_url)
    queue = Queue(world.client.queue_name, connection=redis)
    try:
        with app.app_context():
            assert DailyReminders()(services) == 1
            assert queue.count == 1
            SimpleWorker([queue], connection=redis).work(burst=True)
            assert DailyReminders()(services) == 0  # a new scheduler: the day is in Redis
            assert queue.count == 0
    finally:
        services.db.dispose()
        redis.close()
    [body] = twilio.bodies_to(alice.phone or "")
    assert "expires in 3 days" in body


def test_reminders_of_each_client_go_from_its_own_number(
    world: World, alice: Persona, twilio: FakeTwilio
) -> None:
    other = world.another_client()
    reminders_on(world)
    reminders_on(world, client=other)
    carol = world.person("carol", "+15551230006", client=other)
    for persona in (alice, carol):
        expires_in(world, persona, timedelta(days=2))

    remind(world.services, world.client.id)

    assert [m["To"] for m in twilio.sent] == [alice.phone]  # carol is not contoso's
    remind(world.services, other.id)
    assert [(m["To"], m["From"]) for m in twilio.sent[1:]] == [(carol.phone, "+15005550007")]


def test_a_failed_text_is_tried_again_and_a_throttled_one_waits(
    world: World, alice: Persona, twilio: FakeTwilio
) -> None:
    reminders_on(world)
    expires_in(world, alice, timedelta(days=6, hours=12))
    now = utcnow()
    twilio.failures.append((503, 20503))  # Twilio down for a moment

    failed = remind(world.services, world.client.id, now=now)
    assert (failed.sent, failed.failed, failed.retry) == (0, 1, True)
    assert reminder_rows(world.services) == []  # not claimed: the retry sends it
    assert remind(world.services, world.client.id, now=now).sent == 1

    # Four days on, within 12 hours of the last text (as if the clock had jumped): held.
    expires_in(world, alice, timedelta(days=2, hours=12))
    assert remind(world.services, world.client.id, now=now + timedelta(hours=1)).throttled == 1
    assert remind(world.services, world.client.id, now=now + timedelta(hours=13)).sent == 1


def test_a_job_whose_text_failed_for_now_is_retried_on_the_queue(
    world: World, alice: Persona, twilio: FakeTwilio
) -> None:
    reminders_on(world)
    expires_in(world, alice, timedelta(days=2, hours=12))
    twilio.failures.append((503, 20503))

    assert DailyReminders()(world.services) == 1
    wait_for_jobs(world.services)

    assert len(twilio.bodies_to(alice.phone or "")) == 1  # the retry sent it, once
    assert reminder_rows(world.services) == [(alice.user.id, 3)]


def test_a_directory_outage_is_retried_on_the_queue(
    world: World, alice: Persona, twilio: FakeTwilio
) -> None:
    reminders_on(world)
    expires_in(world, alice, timedelta(days=2, hours=12))
    world.directory.set_outage(1)  # the first query fails

    assert remind(world.services, world.client.id).retry
    world.directory.set_outage(1)
    assert DailyReminders()(world.services) == 1
    wait_for_jobs(world.services)

    assert len(twilio.bodies_to(alice.phone or "")) == 1


def test_reset_after_a_reminder_works_as_always_and_ends_the_reminders(
    world: World, alice: Persona, twilio: FakeTwilio, text_gateway: Send
) -> None:
    reminders_on(world)
    expires_in(world, alice, timedelta(days=2, hours=12))
    remind(world.services, world.client.id)
    assert "Reply RESET" in twilio.bodies_to(alice.phone or "")[0]

    ack = reply_text(text_gateway(alice.phone, "RESET"))
    wait_for_jobs(world.services)

    assert ack is not None and "password" in ack.lower()
    password_sms = twilio.bodies_to(alice.phone or "")[1]
    password = password_sms.rsplit(":", 1)[1].split()[0]
    assert world.sign_in(alice.username, password) == "must_change"
    assert remind(world.services, world.client.id, now=utcnow() + DAY).expiring == 0
    assert len(twilio.sent) == 2


def test_the_preview_lists_who_would_be_reminded_and_sends_nothing(
    world: World, alice: Persona, twilio: FakeTwilio, settings: Settings
) -> None:
    env = {"BLINK_SECRET_KEY": settings.secret_key, "BLINK_DATABASE_URL": settings.database_url}

    def preview(slug: str) -> Result:
        return CliRunner().invoke(cli, ["reminders", "preview", "--client", slug], env=env)

    off = preview("contoso")
    assert off.exit_code == 1 and "reminders are off for contoso" in off.output

    reminders_on(world)
    expires_in(world, alice, timedelta(days=2, hours=12))
    world.person("bob", "+15551230007")
    shown = preview("contoso")

    assert shown.exit_code == 0, shown.output
    lines = shown.output.splitlines()
    [header, row, summary] = lines[lines.index(next(x for x in lines if x.startswith("USER"))) :]
    assert header.split()[:2] == ["USER", "PHONE"]
    assert row.split()[0] == "alice" and row.split()[-1] == "3"
    assert alice.phone not in shown.output  # masked
    assert summary == "1 reminder(s) would be sent; nothing was sent"
    assert twilio.sent == [] and reminder_rows(world.services) == []
    unknown = preview("nope")
    assert unknown.exit_code == 1 and "no such client" in unknown.output


def test_the_preview_is_scoped_to_what_the_actor_sees(world: World, alice: Persona) -> None:
    other = world.another_client()
    reminders_on(world, client=other)
    from blink_sms.actors import Actor, Role
    from blink_sms.services.errors import NotFound

    admin = Actor("admin", "admin:9:ann@contoso.example", Role.CLIENT_ADMIN, world.client.id)
    with world.services.db.session() as session, pytest.raises(NotFound):
        expiry_reminders.preview(world.services, session, admin, other.slug)
