"""Notices after a change (NIST SP 800-63B-4): the email after every reset or unlock, over
a real SMTP server, and the SMS to the phone a new binding replaced (Twilio faked)."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from typing import Any

import pytest
from redis import Redis
from rq.job import Job
from sqlalchemy import select, update
from structlog.testing import capture_logs

from blink_sms.actors import COMMAND_LINE, Role, admin_actor
from blink_sms.context import Blink
from blink_sms.crypto import mask_phone
from blink_sms.messaging import texts
from blink_sms.messaging.i18n import translate
from blink_sms.models import (
    AuditEvent,
    Client,
    Invitation,
    OutboundMessage,
    RequestKind,
    RequestStatus,
    ResetRequest,
    User,
    utcnow,
)
from blink_sms.queue import RqQueue
from blink_sms.services import enrollment, invitations, notices, privacy, reset_job, users
from blink_sms.settings import Settings
from tests.conftest import GATEWAY, Persona, World, wait_for_jobs
from tests.enrollment.smtp import Received, SmtpServer
from tests.support.fake_twilio import FakeTwilio
from tests.support.services import free_port

Send = Callable[..., Any]
MAIL_FROM = "reset@msp.example"
SUPPORT = "Contoso IT, +1 555 0100"
RESET_SUBJECT = "Your password was reset"
UNLOCK_SUBJECT = "Your account was unlocked"
TECHNICIAN = admin_actor(2, "tech@msp.example", Role.MSP_TECHNICIAN, None)
OLD = "+31612345678"
NEW = "+31687654321"
CODE = re.compile(r"\b(\d{6})\b")


@pytest.fixture
def settings(settings: Settings, smtp: SmtpServer) -> Settings:
    return settings.with_changes(smtp_url=smtp.url, mail_from=MAIL_FROM)


def password_in(body: str) -> str:
    match = re.search(r":\s*(\S+)", body)
    assert match, body
    return match.group(1)


def actions(services: Blink, user_id: int) -> list[str]:
    with services.db.session() as session:
        return list(
            session.execute(
                select(AuditEvent.action)
                .where(AuditEvent.user_id == user_id)
                .order_by(AuditEvent.id)
            ).scalars()
        )


def only_notice(smtp: SmtpServer, persona: Persona, subject: str) -> Received:
    [mail] = smtp.mailbox.to(persona.user.email or "", subject=subject)
    return mail


def push(services: Blink, persona: Persona, kind: RequestKind) -> int:
    with services.db.session() as session:
        user = session.get_one(User, persona.user.id)
        return users.request(services, session, TECHNICIAN, user, kind=kind)


def set_client(services: Blink, **values: Any) -> None:
    with services.db.session() as session:
        session.execute(update(Client).values(**values))
        session.commit()


# --- reset and unlock notices ----------------------------------------------------------------


def test_an_sms_reset_emails_the_user_with_the_masked_phone_and_never_the_password(
    text_gateway: Send, alice: Persona, world: World, twilio: FakeTwilio, smtp: SmtpServer
) -> None:
    text_gateway(alice.phone, "RESET")
    wait_for_jobs(world.services)
    [sms] = twilio.sent
    password = password_in(sms["Body"])
    mail = only_notice(smtp, alice, RESET_SUBJECT)
    assert mail.rcpt_tos == ["alice@contoso.example"]
    assert mail.message["Reply-To"] is None and MAIL_FROM in mail.message["From"]
    masked = mask_phone(alice.phone)
    assert masked is not None and alice.phone is not None
    for body in (mail.text, mail.html):
        assert "The password of your account alice was reset on" in body
        assert f"requested by text message from {masked}" in body
        assert f"Contact {SUPPORT} right away" in body
        assert " UTC" in body and "never contains your password" in body
        assert password not in body and alice.phone not in body
    assert password not in mail.message.as_string()
    [request_id] = requests(world.services)
    with world.services.db.session() as session:
        sent = session.execute(
            select(AuditEvent).where(AuditEvent.action == "notice.reset_sent")
        ).scalar_one()
    assert (sent.user_id, sent.request_id, sent.actor) == (alice.user.id, request_id, "system")


def requests(services: Blink) -> list[int]:
    with services.db.session() as session:
        return list(session.execute(select(ResetRequest.id).order_by(ResetRequest.id)).scalars())


def test_an_admin_push_reset_emails_that_the_it_administrator_did_it(
    alice: Persona, world: World, twilio: FakeTwilio, smtp: SmtpServer
) -> None:
    push(world.services, alice, RequestKind.RESET)
    wait_for_jobs(world.services)
    [sms] = twilio.sent
    mail = only_notice(smtp, alice, RESET_SUBJECT)
    assert "was reset on" in mail.text and "by your IT administrator." in mail.text
    assert f"The new password was sent by text message to {mask_phone(alice.phone)}." in mail.text
    assert "requested by text message" not in mail.text
    assert password_in(sms["Body"]) not in mail.message.as_string()
    assert "notice.reset_sent" in actions(world.services, alice.user.id)


def test_an_unlock_sends_an_unlock_notice(
    text_gateway: Send, alice: Persona, world: World, twilio: FakeTwilio, smtp: SmtpServer
) -> None:
    world.lock(alice.username)
    text_gateway(alice.phone, "UNLOCK")
    wait_for_jobs(world.services)
    assert world.sign_in(alice.username, alice.password) == "ok"
    mail = only_notice(smtp, alice, UNLOCK_SUBJECT)
    assert "Your account alice was unlocked on" in mail.text
    assert f"requested by text message from {mask_phone(alice.phone)}" in mail.text
    assert "never contains your password" not in mail.text  # no password was involved
    assert smtp.mailbox.to(alice.user.email or "", subject=RESET_SUBJECT) == []
    push(world.services, alice, RequestKind.UNLOCK)
    wait_for_jobs(world.services)
    [_, by_admin] = smtp.mailbox.to(alice.user.email or "", subject=UNLOCK_SUBJECT)
    assert "was unlocked on" in by_admin.text and "by your IT administrator." in by_admin.text
    assert [a for a in actions(world.services, alice.user.id) if a.startswith("notice.")] == [
        "notice.unlock_sent",
        "notice.unlock_sent",
    ]


def test_the_notice_is_in_the_users_language(
    text_gateway: Send, world: World, twilio: FakeTwilio, smtp: SmtpServer
) -> None:
    lena = world.person("lena", "+15551230002", language="de")
    text_gateway(lena.phone, "RESET")
    wait_for_jobs(world.services)
    mail = only_notice(smtp, lena, "Ihr Passwort wurde zurückgesetzt")
    assert "Das Passwort Ihres Kontos lena wurde am" in mail.text
    assert f"angefordert per SMS von {mask_phone(lena.phone)}" in mail.text
    assert f"Wenden Sie sich sofort an {SUPPORT}" in mail.text
    assert mail.html.startswith("<!doctype html>") and 'lang="de"' in mail.html


def test_the_support_email_of_the_branding_is_named_and_replied_to(
    text_gateway: Send, alice: Persona, world: World, twilio: FakeTwilio, smtp: SmtpServer
) -> None:
    set_client(world.services, support_email="help@contoso.example", brand_name="Contoso Ltd")
    text_gateway(alice.phone, "RESET")
    wait_for_jobs(world.services)
    mail = only_notice(smtp, alice, RESET_SUBJECT)
    assert f"Contact {SUPPORT} (help@contoso.example) right away" in mail.text
    assert mail.message["Reply-To"] == "help@contoso.example"
    assert "Contoso Ltd" in mail.message["From"]


def test_no_notice_when_the_client_turned_them_off(
    text_gateway: Send, alice: Persona, world: World, twilio: FakeTwilio, smtp: SmtpServer
) -> None:
    set_client(world.services, reset_notices=False)
    text_gateway(alice.phone, "RESET")
    wait_for_jobs(world.services)
    assert len(twilio.sent) == 1  # the reset itself happened
    assert smtp.mailbox.messages == []
    assert not [a for a in actions(world.services, alice.user.id) if a.startswith("notice.")]


def test_no_notice_for_a_user_without_an_email_address(
    text_gateway: Send, world: World, twilio: FakeTwilio, smtp: SmtpServer
) -> None:
    omar = world.person("omar", "+15551230003")
    with world.services.db.session() as session:
        session.execute(update(User).where(User.id == omar.user.id).values(email=None))
        session.commit()
    text_gateway(omar.phone, "RESET")
    wait_for_jobs(world.services)
    assert len(twilio.sent) == 1
    assert smtp.mailbox.messages == []


def test_a_failed_reset_gets_no_notice_and_a_notice_is_sent_once(
    alice: Persona, world: World, twilio: FakeTwilio, smtp: SmtpServer
) -> None:
    twilio.failures.append((400, 21211))  # the SMS with the password is refused for good
    request_id = push(world.services, alice, RequestKind.RESET)
    wait_for_jobs(world.services)
    services = world.services
    with services.db.session() as session:
        assert session.get_one(ResetRequest, request_id).status is RequestStatus.FAILED
    assert notices.deliver_reset_notice(services, request_id, retries_left=0) is False
    assert smtp.mailbox.messages == []
    done = push(services, alice, RequestKind.RESET)
    wait_for_jobs(services)
    assert len(smtp.mailbox.to(alice.user.email or "", subject=RESET_SUBJECT)) == 1
    # The same job again (a duplicate enqueue, a retried job): no second email.
    assert notices.deliver_reset_notice(services, done, retries_left=0) is False
    assert len(smtp.mailbox.messages) == 1


def test_a_refused_address_is_audited_as_a_failed_notice(
    alice: Persona, world: World, twilio: FakeTwilio, smtp: SmtpServer
) -> None:
    smtp.mailbox.refuse.add(alice.user.email or "")
    push(world.services, alice, RequestKind.RESET)
    wait_for_jobs(world.services)
    assert len(twilio.sent) == 1 and smtp.mailbox.messages == []
    with world.services.db.session() as session:
        failed = session.execute(
            select(AuditEvent).where(AuditEvent.action == "notice.reset_failed")
        ).scalar_one()
    assert "550" in failed.detail["error"]


def test_a_queue_outage_never_fails_the_reset(
    alice: Persona, world: World, twilio: FakeTwilio, smtp: SmtpServer
) -> None:
    """Redis down when the job finishes: the reset is done, the log says the notice is lost."""
    dead = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=1)
    down = dataclasses.replace(world.services, queue=RqQueue(dead, [0]))
    with down.db.session() as session:
        user = session.get_one(User, alice.user.id)
        request_id = users.request(down, session, TECHNICIAN, user, kind=RequestKind.RESET)
    with capture_logs() as logs:
        reset_job.perform(down, request_id)
    with down.db.session() as session:
        assert session.get_one(ResetRequest, request_id).status is RequestStatus.DONE
    assert len(twilio.sent) == 1 and smtp.mailbox.messages == []
    [missed] = [e for e in logs if e["event"] == "cannot enqueue the reset notice email"]
    assert missed["log_level"] == "error" and missed["reset_request"] == request_id


def test_the_job_on_redis_carries_the_request_id_only(world: World, redis_url: str) -> None:
    redis = Redis.from_url(redis_url)
    notices.queue_reset_notice(dataclasses.replace(world.services, queue=RqQueue(redis, [5])), 42)
    job = Job.fetch("reset-notice-42", connection=redis)
    assert (job.origin, job.args, job.func_name) == (
        "email", (42,), "blink_sms.services.notices.send_reset_notice",
    )  # fmt: skip
    assert job.retries_left == 1


# --- the phone a new binding replaced --------------------------------------------------------


def enroll(
    services: Blink, smtp: SmtpServer, twilio: FakeTwilio, persona: Persona, number: str
) -> None:
    """Read the newest activation link from the real email and bind ``number`` with it."""
    wait_for_jobs(services)
    link = smtp.mailbox.to(persona.user.email or "")[-1].link  # the activation email
    token = link.rsplit("/", 1)[1]
    with services.db.session() as session:
        invitation = enrollment.find_invitation(session, token, now=utcnow())
        assert isinstance(invitation, Invitation)
        sent = enrollment.submit_number(services, session, invitation, number, "NL", now=utcnow())
        assert isinstance(sent, enrollment.CodeSent), sent
        match = CODE.search(twilio.bodies_to(number)[-1])
        assert match
        bound = enrollment.verify_code(services, session, invitation, match.group(1), now=utcnow())
        assert isinstance(bound, enrollment.Bound), bound
    wait_for_jobs(services)


def reset_user(services: Blink, persona: Persona) -> None:
    with services.db.session() as session:
        invitations.reset_user(
            services, session, COMMAND_LINE, session.get_one(User, persona.user.id)
        )


def user_row(services: Blink, persona: Persona) -> User:
    with services.db.session() as session:
        return session.get_one(User, persona.user.id)


def test_a_new_number_texts_the_one_reset_user_unbound(
    world: World, twilio: FakeTwilio, smtp: SmtpServer
) -> None:
    nina = world.person("nina", OLD, language="nl")
    reset_user(world.services, nina)
    assert user_row(world.services, nina).previous_phone == OLD
    enroll(world.services, smtp, twilio, nina, NEW)
    [notice] = twilio.bodies_to(OLD)
    assert notice == translate("nl", texts.PHONE_CHANGED, username="nina", support=SUPPORT)
    [to_old] = [m for m in twilio.sent if m["To"] == OLD]
    assert to_old["From"] == GATEWAY
    after = user_row(world.services, nina)
    assert (after.phone, after.previous_phone) == (NEW, None)
    with world.services.db.session() as session:
        purposes = session.execute(
            select(OutboundMessage.purpose).where(OutboundMessage.user_id == nina.user.id)
        ).scalars().all()  # fmt: skip
    assert sorted(purposes) == ["phone_changed", "verification", "welcome"]
    trail = actions(world.services, nina.user.id)
    assert trail.index("enrollment.phone_bound") < trail.index("notice.phone_changed_sent")


def test_the_same_number_bound_again_texts_nothing(
    world: World, twilio: FakeTwilio, smtp: SmtpServer
) -> None:
    nina = world.person("nina", OLD)
    reset_user(world.services, nina)
    enroll(world.services, smtp, twilio, nina, OLD)
    texts_to_old = twilio.bodies_to(OLD)
    assert len(texts_to_old) == 2  # the code and the welcome, nothing more
    after = user_row(world.services, nina)
    assert (after.phone, after.previous_phone) == (OLD, None)
    assert not [a for a in actions(world.services, nina.user.id) if "phone_changed" in a]


def test_the_old_number_is_texted_a_few_times_a_day_at_most_and_never_when_someone_holds_it(
    world: World, twilio: FakeTwilio
) -> None:
    nina = world.person("nina", NEW)
    services = world.services
    for _ in range(notices.PHONE_CHANGED_PER_DAY + 1):
        with services.db.session() as session:
            user = session.get_one(User, nina.user.id)
            user.previous_phone = OLD
            session.commit()
            notices.text_previous_phone(services, session, user)
    assert len(twilio.bodies_to(OLD)) == notices.PHONE_CHANGED_PER_DAY
    assert user_row(services, nina).previous_phone is None
    world.person("otto", "+31611112222")
    with services.db.session() as session:
        user = session.get_one(User, nina.user.id)
        user.previous_phone = "+31611112222"
        session.commit()
        assert notices.text_previous_phone(services, session, user) is False
    assert twilio.bodies_to("+31611112222") == []
    with services.db.session() as session:
        reasons = session.execute(
            select(AuditEvent.detail).where(AuditEvent.action == "notice.phone_changed_not_sent")
        ).scalars().all()  # fmt: skip
    assert [r["reason"] for r in reasons] == ["rate_limited", "bound_to_another_user"]
    assert all(r["phone"].count("*") for r in reasons)


def test_the_previous_phone_is_exported_and_erased(world: World, smtp: SmtpServer) -> None:
    nina = world.person("nina", OLD)
    reset_user(world.services, nina)
    with world.services.db.session() as session:
        user = session.get_one(User, nina.user.id)
        data = privacy.export_user(session, COMMAND_LINE, user)
        assert data["user"]["previous_phone"] == OLD
        privacy.erase_user(session, COMMAND_LINE, user)
    assert user_row(world.services, nina).previous_phone is None
