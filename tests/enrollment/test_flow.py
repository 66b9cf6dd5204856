"""Enrollment over HTTP (no browser): the link, the number, the code, the binding, the limits."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import select, text, update

from blink_sms.actors import COMMAND_LINE
from blink_sms.context import Blink
from blink_sms.models import (
    AuditEvent,
    Invitation,
    OutboundMessage,
    User,
    UserStatus,
    VerificationCode,
    utcnow,
)
from blink_sms.services import enrollment as service
from blink_sms.services import invitations
from blink_sms.settings import Settings
from tests.conftest import GATEWAY, World, wait_for_jobs
from tests.support.fake_twilio import FakeTwilio

from .conftest import CSRF, MAIL_FROM, Invite, Invited, Walker, invitation_of, last_code
from .smtp import SmtpServer

MOBILE = "+31612345678"
ACTIVATION = "Set up password reset by text for your Contoso account"
Walk = Callable[..., Walker]


def actions(services: Blink, user_id: int) -> list[str]:
    with services.db.session() as session:
        return list(
            session.execute(
                select(AuditEvent.action)
                .where(AuditEvent.user_id == user_id)
                .order_by(AuditEvent.id)
            ).scalars()
        )


def database_dump(services: Blink) -> str:
    tables = ("invitations", "verification_codes", "audit_events", "users", "outbound_messages")
    with services.db.session() as session:
        return "\n".join(
            repr(row)
            for table in tables  # fixed names above, not input
            for row in session.execute(text(f"SELECT * FROM {table}"))  # noqa: S608
        )


def age_codes(services: Blink, invitation_id: int, seconds: int) -> None:
    """Move every code of an invitation ``seconds`` into the past."""
    with services.db.session() as session:
        for code in session.execute(
            select(VerificationCode).where(VerificationCode.invitation_id == invitation_id)
        ).scalars():
            code.created_at -= timedelta(seconds=seconds)
            code.expires_at -= timedelta(seconds=seconds)
        session.commit()


# --- the email and the link ------------------------------------------------------------------


def test_the_activation_email_arrives_over_smtp_and_only_a_hash_is_stored(
    invite: Invite, services: Blink, smtp: SmtpServer
) -> None:
    invited = invite()
    mail = invited.mail
    assert mail.mail_from == MAIL_FROM
    assert mail.message["Subject"] == ACTIVATION
    assert invited.link.startswith("https://sms.example.com/enroll/")
    assert len(invited.token) >= 43  # 32 random bytes
    assert invited.link in mail.html and "Set up my phone" in mail.html
    assert "Contoso IT, +1 555 0100" in mail.text  # the support contact
    invitation = invitation_of(services, invited.persona.user.id)
    assert invitation.token_hash == hashlib.sha256(invited.token.encode()).hexdigest()
    assert invitation.email_status == "sent"
    assert invitation.expires_at - utcnow() > timedelta(hours=71)
    assert invited.token not in database_dump(services)
    assert actions(services, invited.persona.user.id) == [
        "invitation.created",
        "invitation.email_sent",
    ]


def test_the_email_is_branded_per_client_and_in_the_users_language(
    invite: Invite, services: Blink, world: World
) -> None:
    with services.db.session() as session:
        session.execute(
            update(type(world.client))
            .where(type(world.client).id == world.client.id)
            .values(
                brand_name="Northwind IT",
                brand_color="#0f766e",
                brand_logo_url="https://msp.example/logo.png",
                email_message="Northwind now offers password resets by SMS.",
                support_email="help@northwind.example",
            )
        )
        session.commit()
    mail = invite("joost", language="nl").mail
    assert mail.message["Subject"] == (
        "Stel wachtwoordherstel per sms in voor je Northwind IT-account"
    )
    assert mail.message["Reply-To"] == "help@northwind.example"
    assert "Northwind IT" in str(mail.message["From"])
    html = mail.html
    assert "#0f766e" in html and "https://msp.example/logo.png" in html
    assert "Northwind now offers password resets by SMS." in html
    assert "help@northwind.example" in mail.text
    assert "Hallo Joost," in mail.text


def test_unknown_and_malformed_tokens_get_a_clear_404(http: FlaskClient) -> None:
    for path in ("/enroll/" + "A" * 43, "/enroll/short", "/enroll/" + "%00" * 50):
        response = http.get(path)
        assert response.status_code == 404
        assert "This link does not work" in response.get_data(as_text=True)


def test_a_scanner_get_never_consumes_the_link(
    invite: Invite, walker: Walk, services: Blink, twilio: FakeTwilio
) -> None:
    invited = invite()
    page = walker(invited)
    for _ in range(3):
        assert page.get().status_code == 200
    assert page.http.head(invited.path).status_code == 200
    assert page.get("/code").status_code == 303  # no code asked for yet: back to step 1
    assert twilio.sent == []
    assert actions(services, invited.persona.user.id)[-1] == "invitation.email_sent"
    assert page.number(MOBILE, "NL").status_code == 303
    assert page.code(last_code(twilio, MOBILE)).status_code == 303


def test_the_whole_flow_binds_the_phone_and_says_so_by_sms_and_email(
    invite: Invite, walker: Walk, services: Blink, twilio: FakeTwilio, smtp: SmtpServer
) -> None:
    invited = invite()
    page = walker(invited)
    form = page.get().get_data(as_text=True)
    assert 'autocomplete="tel"' in form and '<label for="number">' in form
    assert '<option value="US" selected>' in form  # the client's region by default
    response = page.number("06 12345678", "NL")
    assert response.status_code == 303 and response.location.endswith(invited.path + "/code")
    sms = twilio.sent[-1]
    assert sms["To"] == MOBILE and sms["From"] == GATEWAY
    code_page = page.get("/code").get_data(as_text=True)
    assert "+31 6 12345678" in code_page and 'autocomplete="one-time-code"' in code_page
    code = last_code(twilio, MOBILE)
    response = page.code(code)
    assert response.status_code == 303 and response.location.endswith("/enroll/done")
    done = page.http.get("/enroll/done").get_data(as_text=True)
    assert "+1 500-555-0006" in done and "RESET" in done
    card = page.http.get("/enroll/done/contact.vcf")
    assert card.mimetype == "text/vcard"
    assert f"TEL;TYPE=CELL:{GATEWAY}" in card.get_data(as_text=True)
    welcome = twilio.sent[-1]
    assert welcome["To"] == MOBILE and welcome["From"] == GATEWAY and "RESET" in welcome["Body"]
    wait_for_jobs(services)
    [notice] = smtp.mailbox.to(
        invited.persona.user.email or "", subject="A phone was registered for your password resets"
    )
    assert "+316******78" in notice.text
    with services.db.session() as session:
        user = session.get(User, invited.persona.user.id)
        assert user is not None and user.phone == MOBILE and user.status is UserStatus.ACTIVE
        purposes = session.execute(select(OutboundMessage.purpose)).scalars().all()
        assert sorted(purposes) == ["verification", "welcome"]
    assert actions(services, invited.persona.user.id) == [
        "invitation.created",
        "invitation.email_sent",
        "enrollment.code_sent",
        "enrollment.phone_bound",
        "notice.phone_bound_sent",
    ]
    with services.db.session() as session:
        stored = list(session.execute(text("SELECT detail FROM audit_events")).scalars())
        stored += session.execute(text("SELECT code_hash FROM verification_codes")).scalars().all()
    assert not [value for value in stored if code in str(value)]
    # The link is used up: a replayed POST binds nothing and sends nothing.
    sent = len(twilio.sent)
    assert page.get().status_code == 410
    assert page.http.post(invited.path + "/code", data={"code": code}).status_code == 410
    assert len(twilio.sent) == sent


def test_the_pages_speak_the_users_language(
    invite: Invite, walker: Walk, twilio: FakeTwilio
) -> None:
    page = walker(invite("lena", language="de"))
    html = page.get().get_data(as_text=True)
    assert 'lang="de"' in html and "Handynummer" in html
    page.number("+4915112345678")
    assert "Bestätigungscode" in twilio.sent[-1]["Body"]


# --- bad links ---------------------------------------------------------------------------------


def test_an_expired_link_is_gone(
    invite: Invite, walker: Walk, services: Blink, twilio: FakeTwilio
) -> None:
    invited = invite()
    with services.db.session() as session:
        session.execute(update(Invitation).values(expires_at=utcnow() - timedelta(seconds=1)))
        session.commit()
    response = walker(invited).get()
    assert response.status_code == 410
    assert "This link does not work" in response.get_data(as_text=True)
    posted = walker(invited).http.post(invited.path, data={"number": MOBILE, "country": "NL"})
    assert posted.status_code == 410 and twilio.sent == []


def test_reset_user_revokes_the_link_and_sends_a_new_one(
    invite: Invite, walker: Walk, services: Blink, smtp: SmtpServer, twilio: FakeTwilio
) -> None:
    first = invite()
    with services.db.session() as session:
        user = session.get(User, first.persona.user.id)
        assert user is not None
        invitations.reset_user(services, session, COMMAND_LINE, user)
    wait_for_jobs(services)
    assert walker(first).get().status_code == 410
    second = smtp.mailbox.to(first.persona.user.email or "", subject=ACTIVATION)[-1].link
    assert second != first.link
    with services.db.session() as session:
        reasons = session.execute(select(Invitation.revoked_reason)).scalars().all()
    assert reasons == ["reset_user", None]
    page = Walker(walker(first).http, second.split("sms.example.com", 1)[1])
    assert page.get().status_code == 200


def test_reset_user_unbinds_and_the_next_binding_is_reported_as_a_change(
    invite: Invite, walker: Walk, services: Blink, smtp: SmtpServer, twilio: FakeTwilio
) -> None:
    invited = invite()
    page = walker(invited)
    page.number(MOBILE, "NL")
    page.code(last_code(twilio, MOBILE))
    wait_for_jobs(services)
    address = invited.persona.user.email or ""
    with services.db.session() as session:
        user = session.get(User, invited.persona.user.id)
        assert user is not None
        invitations.reset_user(services, session, COMMAND_LINE, user)
        assert user.phone is None and user.status is UserStatus.INVITED
    wait_for_jobs(services)
    [first, link] = [mail.link for mail in smtp.mailbox.to(address, subject=ACTIVATION)]
    assert link != first
    again = Walker(page.http, link.split("sms.example.com", 1)[1])
    again.number("+31687654321", "NL")
    again.code(last_code(twilio, "+31687654321"))
    wait_for_jobs(services)
    assert smtp.mailbox.to(address, subject="The phone for your password resets was changed")
    assert "user.phone_unbound" in actions(services, invited.persona.user.id)


# --- numbers -----------------------------------------------------------------------------------


def _walk_to_a_wrong_code(
    invited: Invited, page: Walker, services: Blink, number: str
) -> list[tuple[int, str]]:
    """The answers of every step a visitor can see, with what differs by design (the
    link, the CSRF token, the name and the number) blanked out."""
    answers = [page.get(), page.number(number, "NL"), page.get("/code"), page.code("000000")]
    age_codes(services, invitation_of(services, invited.persona.user.id).id, 61)
    answers.append(page.resend())
    answers.append(page.code("000000"))
    blanks = {
        invited.token: "TOKEN",
        invited.persona.user.display_name: "NAME",
        service.display_number(number): "NUMBER",
    }

    def blank(response: Any) -> tuple[int, str]:
        body = CSRF.sub("CSRF", response.get_data(as_text=True))
        for value, placeholder in blanks.items():
            body = body.replace(value, placeholder)
        return response.status_code, f"{response.headers.get('Location')}\n{body}".replace(
            invited.token, "TOKEN"
        )

    return [blank(answer) for answer in answers]


def test_a_taken_number_answers_exactly_like_a_free_one_and_is_never_texted(
    invite: Invite, walker: Walk, world: World, twilio: FakeTwilio, services: Blink
) -> None:
    taken, free = MOBILE, "+31687654321"
    world.person("victor", taken, client=world.another_client())  # any client's user
    free_link, taken_link = invite("dana"), invite("erin")
    free_answers = _walk_to_a_wrong_code(free_link, walker(free_link), services, free)
    assert last_code(twilio, free) != "000000"  # it was a wrong code
    taken_answers = _walk_to_a_wrong_code(taken_link, walker(taken_link), services, taken)
    assert [status for status, _ in free_answers] == [200, 303, 200, 422, 200, 422]
    assert taken_answers == free_answers
    assert "Tries left: 3." in taken_answers[-1][1]
    assert "A number can be set up for one account only" in taken_answers[2][1]
    assert twilio.bodies_to(taken) == [] and len(twilio.bodies_to(free)) == 2
    assert invitation_of(services, taken_link.persona.user.id).code_failures == 2
    events = actions(services, taken_link.persona.user.id)
    assert "enrollment.number_refused" in events and "enrollment.code_sent" not in events
    with services.db.session() as session:
        victor = session.execute(select(User).where(User.username == "victor")).scalar_one()
        assert victor.phone == taken  # untouched


def test_invalid_junk_and_over_long_numbers_are_refused(
    invite: Invite, walker: Walk, twilio: FakeTwilio
) -> None:
    page = walker(invite())
    for junk in ("", "hello", "12", "+1 555 123 0001", "9" * 40, "<script>", "+31 6 1234"):
        response = page.number(junk, "NL")
        assert response.status_code == 422, junk
        assert 'role="alert"' in response.get_data(as_text=True)
        assert "<script>" not in response.get_data(as_text=True)
    assert page.number(MOBILE, "XX").status_code == 303  # a + number ignores the country
    assert len(twilio.sent) == 1


def test_landlines_and_numbers_that_cannot_take_texts_are_refused(
    invite: Invite, walker: Walk, twilio: FakeTwilio
) -> None:
    page = walker(invite())
    landline = page.number("020 123 4567", "NL")
    assert landline.status_code == 422 and "landline" in landline.get_data(as_text=True)
    for number in ("+18005551234", "+319001234567"):  # toll-free, premium-rate
        refused = page.number(number)
        assert refused.status_code == 422 and "cannot receive" in refused.get_data(as_text=True)
    assert twilio.sent == []


def test_a_post_without_csrf_token_acts_on_nothing(
    invite: Invite, walker: Walk, twilio: FakeTwilio
) -> None:
    invited = invite()
    page = walker(invited)
    response = page.http.post(invited.path, data={"number": MOBILE, "country": "NL"})
    assert response.status_code == 400
    assert "open too long" in response.get_data(as_text=True)
    wrong = page.http.post(invited.path, data={"number": MOBILE, "csrf_token": "x" * 40})
    assert wrong.status_code == 400
    assert twilio.sent == []


def test_twilio_refusing_the_number_is_a_clear_message(
    invite: Invite, walker: Walk, twilio: FakeTwilio
) -> None:
    twilio.failures.append((400, 21614))  # 'To' is not a mobile number
    response = walker(invite()).number(MOBILE, "NL")
    assert response.status_code == 422
    assert "could not send a text to this number" in response.get_data(as_text=True)


# --- codes -------------------------------------------------------------------------------------


def test_five_wrong_codes_lock_the_link_and_a_new_code_does_not_reset_the_count(
    invite: Invite, walker: Walk, services: Blink, twilio: FakeTwilio
) -> None:
    invited = invite()
    page = walker(invited)
    page.number(MOBILE, "NL")
    right = last_code(twilio, MOBILE)
    wrong = "000000" if right != "000000" else "111111"
    for left in (4, 3, 2):
        response = page.code(wrong)
        assert response.status_code == 422
        assert f"Tries left: {left}." in response.get_data(as_text=True)
    age_codes(services, invitation_of(services, invited.persona.user.id).id, 61)
    assert page.resend().status_code == 200
    fresh = last_code(twilio, MOBILE)
    wrong = "000000" if fresh != "000000" else "111111"
    assert "Tries left: 1." in page.code(wrong).get_data(as_text=True)
    locked = page.code(wrong)
    assert locked.status_code == 410
    assert "Too many wrong codes" in locked.get_data(as_text=True)
    # Even the right code does nothing now, and the link stays locked.
    assert page.http.get(invited.path).status_code == 410
    with services.db.session() as session:
        user = session.get(User, invited.persona.user.id)
        assert user is not None and user.phone is None
    assert "enrollment.locked" in actions(services, invited.persona.user.id)


def test_a_malformed_code_is_not_counted_as_a_try(
    invite: Invite, walker: Walk, services: Blink, twilio: FakeTwilio
) -> None:
    invited = invite()
    page = walker(invited)
    page.number(MOBILE, "NL")
    for junk in ("12", "abcdef", "1" * 20):
        response = page.code(junk)
        assert "Enter the 6 digits" in response.get_data(as_text=True)
    assert invitation_of(services, invited.persona.user.id).code_failures == 0
    spaced = " ".join(last_code(twilio, MOBILE))  # "1 2 3 4 5 6" as some people type it
    assert page.code(spaced).status_code == 303


def test_a_code_expires_after_ten_minutes(
    invite: Invite, walker: Walk, services: Blink, twilio: FakeTwilio
) -> None:
    invited = invite()
    page = walker(invited)
    page.number(MOBILE, "NL")
    code = last_code(twilio, MOBILE)
    age_codes(services, invitation_of(services, invited.persona.user.id).id, 10 * 60)
    response = page.code(code)
    assert response.status_code == 422
    assert "expired" in response.get_data(as_text=True)
    with services.db.session() as session:
        user = session.get(User, invited.persona.user.id)
        assert user is not None and user.phone is None


def test_resend_waits_a_minute_and_allows_three_codes_an_hour(
    invite: Invite, walker: Walk, services: Blink, twilio: FakeTwilio
) -> None:
    invited = invite()
    page = walker(invited)
    page.number(MOBILE, "NL")
    invitation_id = invitation_of(services, invited.persona.user.id).id
    code_page = page.get("/code").get_data(as_text=True)
    assert "You can ask for a new code in" in code_page and "disabled" in code_page
    early = page.resend()
    assert early.status_code == 429 and "seconds" in early.get_data(as_text=True)
    for _ in range(2):
        age_codes(services, invitation_id, 61)
        assert page.resend().status_code == 200
    age_codes(services, invitation_id, 61)
    limited = page.resend()
    assert limited.status_code == 429
    assert "minutes" in limited.get_data(as_text=True)
    assert len(twilio.bodies_to(MOBILE)) == 3
    # Only the newest code works.
    with services.db.session() as session:
        live = (
            session.execute(select(VerificationCode).where(VerificationCode.ended_at.is_(None)))
            .scalars()
            .all()
        )
    assert len(live) == 1


def test_one_number_gets_at_most_five_codes_a_day_over_all_invitations(
    invite: Invite, walker: Walk, services: Blink, twilio: FakeTwilio
) -> None:
    outcomes = []
    for index in range(3):
        invited = invite(f"user{index}")
        page = walker(invited)
        outcomes.append(page.number(MOBILE, "NL").status_code)
        age_codes(services, invitation_of(services, invited.persona.user.id).id, 61)
        outcomes.append(page.resend().status_code)
    assert outcomes == [303, 200, 303, 200, 303, 429]
    assert len(twilio.bodies_to(MOBILE)) == 5
    assert "Too many codes were sent to this number today" in page.resend().get_data(as_text=True)


def test_the_msps_branding_applies_where_the_client_sets_none(
    services: Blink, world: World, settings: Settings
) -> None:
    from blink_sms.messaging.pages import Branding

    msp = settings.with_changes(
        brand_logo_url="https://msp.example/msp-logo.png",
        brand_color="#7c3aed",
        brand_support_email="desk@msp.example",
    )
    brand = Branding.of(world.client, msp)
    assert brand.logo_url == "https://msp.example/msp-logo.png"
    assert brand.color == "#7c3aed" and brand.support == "desk@msp.example"
    with services.db.session() as session:
        session.execute(
            update(type(world.client))
            .where(type(world.client).id == world.client.id)
            .values(brand_color="#0f766e")
        )
        session.commit()
        client = session.get(type(world.client), world.client.id)
        assert client is not None
        assert Branding.of(client, msp).color == "#0f766e"  # the client's own wins
