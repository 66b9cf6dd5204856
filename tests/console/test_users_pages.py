"""The console's users pages: the list, one user, and every action on a user, over HTTP."""

from __future__ import annotations

import html
import logging
import re
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, func, insert, inspect, select, text
from structlog.testing import capture_logs

from blink_sms.actors import Role
from blink_sms.context import Blink
from blink_sms.models import (
    AuditEvent,
    Client,
    Invitation,
    RequestKind,
    RequestOrigin,
    RequestStatus,
    ResetRequest,
    User,
    UserStatus,
    utcnow,
)
from blink_sms.settings import Settings
from tests.conftest import Persona, World, wait_for_jobs
from tests.enrollment.smtp import SmtpServer
from tests.support.fake_twilio import FakeTwilio

from .conftest import Console

MAIL_FROM = "reset@msp.example"
FLASH = re.compile(r'<p class="flash ([a-z]*)" role="status">(.*?)</p>', re.S)


@pytest.fixture
def settings(settings: Settings, smtp: SmtpServer) -> Settings:
    """Email on: activation emails reach a real SMTP server."""
    return settings.with_changes(smtp_url=smtp.url, mail_from=MAIL_FROM)


def flashes(response: Any) -> list[tuple[str, str]]:
    return [(kind, html.unescape(body)) for kind, body in FLASH.findall(response.text)]


def events(services: Blink, action: str) -> list[AuditEvent]:
    with services.db.session() as session:
        return list(
            session.execute(
                select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
            ).scalars()
        )


def fresh(services: Blink, user_id: int) -> User | None:
    with services.db.session() as session:
        found = session.get(User, user_id)
        if found is not None:
            session.expunge(found)
        return found


def invited(services: Blink, persona: Persona, **columns: Any) -> None:
    """Give ``persona`` an invitation with ``columns`` (status invited)."""
    now = utcnow()
    with services.db.session() as session:
        values = {"created_at": now, "expires_at": now + timedelta(hours=72), **columns}
        session.add(Invitation(user_id=persona.user.id, actor="cli", **values))
        user = session.get(User, persona.user.id)
        assert user is not None
        user.status = UserStatus.INVITED
        session.commit()


def user_path(persona: Persona, slug: str = "contoso", action: str = "") -> str:
    return f"/admin/clients/{slug}/users/{persona.user.id}" + (f"/{action}" if action else "")


@pytest.fixture
def admin(console_as: Callable[..., Console], world: World) -> Console:
    """A client admin of Contoso."""
    return console_as(Role.CLIENT_ADMIN, world.client)


# --- the list -------------------------------------------------------------------------------


def test_the_list_shows_status_with_invitation_detail_masked_phones_and_emails(
    admin: Console, world: World, services: Blink, alice: Persona
) -> None:
    bob = world.person("bob", None, status=UserStatus.PENDING)
    carol = world.person("carol", None)
    invited(services, carol, expires_at=utcnow() - timedelta(hours=1), email_status="sent")
    dave = world.person("dave", None)
    invited(services, dave, email_status="failed", email_error="550 mailbox unavailable")

    page = admin.http.get("/admin/clients/contoso/users")

    assert page.status_code == 200
    body = html.unescape(page.text)
    rows = dict(re.findall(r"<tr>\s*<td><a[^>]*>(\w+)</a>(.*?)</tr>", body, re.S))
    assert sorted(rows) == ["Alice", "Bob", "Carol", "Dave"]
    assert "active" in rows["Alice"] and "+155******01" in rows["Alice"]
    assert (alice.phone or "-") not in body
    assert "not invited" in rows["Bob"] and "bob@contoso.example" in rows["Bob"]
    assert "link expired" in rows["Carol"]
    assert "email failed: 550 mailbox unavailable" in rows["Dave"]
    assert "4 users" in body
    assert bob.user.id and "Invite everyone not yet active" in body


def test_it_finds_users_by_name_and_by_the_last_digits_of_their_phone(
    admin: Console, world: World
) -> None:
    world.person("alice", "+15551230001")
    world.person("bob", "+15551230077")
    world.person("alfred", None, status=UserStatus.PENDING)

    by_name = html.unescape(admin.http.get("/admin/clients/contoso/users?q=AL").text)
    by_phone = html.unescape(admin.http.get("/admin/clients/contoso/users?q=0077").text)

    assert ">Alice<" in by_name and ">Alfred<" in by_name and ">Bob<" not in by_name
    assert ">Bob<" in by_phone and ">Alice<" not in by_phone
    assert 'value="0077"' in by_phone  # the search stays in the box


def test_it_filters_by_state(admin: Console, world: World, services: Blink) -> None:
    world.person("alice", "+15551230001")
    world.person("bob", None, status=UserStatus.PENDING)
    world.person("erin", None, status=UserStatus.DISABLED)
    world.person("ivan", "+15551230002")
    world.lock("ivan")

    def names(state: str) -> list[str]:
        page = admin.http.get(f"/admin/clients/contoso/users?state={state}")
        assert page.status_code == 200
        return re.findall(r"<td><a[^>]*>(\w+)</a>", page.text)

    assert names("active") == ["Alice", "Ivan"]
    assert names("not-invited") == ["Bob"]
    assert names("disabled") == ["Erin"]
    assert names("locked") == ["Ivan"]
    assert names("") == ["Alice", "Bob", "Erin", "Ivan"]
    bad = admin.http.get("/admin/clients/contoso/users?state=asleep")
    assert bad.status_code == 400 and "one of not-invited" in bad.text
    world.directory.set_outage()
    down = admin.http.get("/admin/clients/contoso/users?state=locked")
    world.directory.clear_outage()
    assert down.status_code == 200
    assert "Cannot list the locked-out users: the directory did not answer" in html.unescape(
        down.text
    )


def test_paging_links_keep_the_search_and_the_filter(
    admin: Console, world: World, services: Blink
) -> None:
    with services.db.session() as session:
        session.execute(
            insert(User),
            [
                {
                    "client_id": world.client.id,
                    "directory_id": f"id-{n}",
                    "username": f"staff{n:03}",
                    "display_name": f"Staff {n:03}",
                    "email": f"staff{n}@contoso.example",
                    "status": UserStatus.PENDING,
                }
                for n in range(60)
            ]
            + [
                {
                    "client_id": world.client.id,
                    "directory_id": "id-x",
                    "username": "other",
                    "display_name": "Other",
                    "status": UserStatus.PENDING,
                }
            ],
        )
        session.commit()

    first = admin.http.get("/admin/clients/contoso/users?q=staff&state=not-invited")
    assert "60 users match" in first.text and "page 1 of 2" in first.text
    assert len(re.findall(r"<td><a[^>]*>Staff", first.text)) == 50
    [next_link] = re.findall(r'rel="next" href="([^"]+)"', first.text)
    next_link = html.unescape(next_link)
    assert "q=staff" in next_link and "state=not-invited" in next_link and "page=2" in next_link

    second = admin.http.get(next_link)
    assert re.findall(r"<td><a[^>]*>(Staff \d+)</a>", second.text) == [
        f"Staff {n:03}" for n in range(50, 60)
    ]
    [prev_link] = re.findall(r'rel="prev" href="([^"]+)"', second.text)
    assert "q=staff" in html.unescape(prev_link) and "page=1" in html.unescape(prev_link)


def _add_users(services: Blink, client: Client, count: int, start: int = 0) -> None:
    now = utcnow()
    with services.db.session() as session:
        session.execute(
            insert(User),
            [
                {
                    "client_id": client.id,
                    "directory_id": f"bulk-{n}",
                    "username": f"user{n:05}",
                    "display_name": f"User {n:05}",
                    "email": f"user{n}@contoso.example",
                    "phone": f"+1555{n:07}" if n % 2 else None,
                    "status": UserStatus.ACTIVE if n % 2 else UserStatus.INVITED,
                }
                for n in range(start, start + count)
            ],
        )
        invitees = session.execute(
            select(User.id).where(
                User.client_id == client.id,
                User.status == UserStatus.INVITED,
                User.directory_id.in_([f"bulk-{n}" for n in range(start, start + count)]),
            )
        ).scalars()
        session.execute(
            insert(Invitation),
            [
                {
                    "user_id": user_id,
                    "actor": "cli",
                    "created_at": now,
                    "expires_at": now + timedelta(hours=72),
                    "email_status": "sent",
                }
                for user_id in invitees
            ],
        )
        session.commit()


def _statements_of(services: Blink, call: Callable[[], Any]) -> list[str]:
    seen: list[str] = []

    def record(*args: Any) -> None:
        seen.append(args[2])

    event.listen(services.db.engine, "before_cursor_execute", record)
    try:
        call()
    finally:
        event.remove(services.db.engine, "before_cursor_execute", record)
    return seen


def test_the_list_runs_the_same_few_queries_for_a_page_of_fifty(
    admin: Console, world: World, services: Blink
) -> None:
    _add_users(services, world.client, 3)
    few = _statements_of(services, lambda: admin.http.get("/admin/clients/contoso/users"))
    _add_users(services, world.client, 200, start=3)
    many = _statements_of(services, lambda: admin.http.get("/admin/clients/contoso/users"))

    assert len(many) == len(few)
    # The admin, the client, one count, one page, one query for their invitations.
    assert len([s for s in many if "FROM users" in s or "FROM invitations" in s]) == 3
    assert len([s for s in many if "FROM clients" in s]) == 1


def test_a_page_of_ten_thousand_users_is_served_fast(
    admin: Console, world: World, services: Blink
) -> None:
    _add_users(services, world.client, 10_000)
    admin.http.get("/admin/clients/contoso/users")  # templates compiled, caches warm
    timings = []
    for path in ("", "?page=150", "?q=user0999", "?state=invited&page=40"):
        start = time.perf_counter()
        page = admin.http.get("/admin/clients/contoso/users" + path)
        timings.append(time.perf_counter() - start)
        assert page.status_code == 200 and "<td><a" in page.text
    assert max(timings) < 0.3, timings


# --- bulk invitation ------------------------------------------------------------------------


def test_invite_everyone_queues_emails_and_says_why_the_others_were_not_invited(
    admin: Console, world: World, services: Blink, smtp: SmtpServer, alice: Persona
) -> None:
    bob = world.person("bob", None, status=UserStatus.PENDING)
    erin = world.person("erin", None, status=UserStatus.PENDING)
    with services.db.session() as session:
        user = session.get(User, erin.user.id)
        assert user is not None
        user.email = None
        session.commit()

    page = admin.post(
        "/admin/clients/contoso/users/invite-pending",
        {"q": "", "state": "not-invited"},
        follow_redirects=True,
    )

    assert page.request.path == "/admin/clients/contoso/users"
    assert page.request.args["state"] == "not-invited"
    assert ("success", "1 activation email queued") in flashes(page)
    assert ("error", "Not invited (1): erin has no email address (users set-email)") in flashes(
        page
    )
    wait_for_jobs(services)
    assert smtp.mailbox.to("bob@contoso.example")
    assert [e.user_id for e in events(services, "invitation.created")] == [bob.user.id]
    assert fresh(services, alice.user.id).status is UserStatus.ACTIVE  # type: ignore[union-attr]


# --- one user -------------------------------------------------------------------------------


def test_a_users_page_shows_details_and_the_last_ten_requests(
    admin: Console, world: World, services: Blink, alice: Persona
) -> None:
    start = utcnow() - timedelta(days=1)
    with services.db.session() as session:
        for n in range(12):
            session.add(
                ResetRequest(
                    user_id=alice.user.id,
                    kind=RequestKind.UNLOCK if n == 11 else RequestKind.RESET,
                    origin=RequestOrigin.SMS,
                    status=RequestStatus.FAILED if n == 10 else RequestStatus.DONE,
                    error_code="directory_unavailable" if n == 10 else None,
                    created_at=start + timedelta(minutes=n),
                )
            )
        session.commit()

    page = admin.http.get(user_path(alice))

    assert page.status_code == 200
    body = html.unescape(page.text)
    assert "Alice" in body and "alice@contoso.example" in body and "+155******01" in body
    assert (alice.phone or "-") not in body
    requests = re.findall(r"<td>(\d{4}-\d\d-\d\d \d\d:\d\d)</td>\s*<td>(\w+)</td>", body)
    assert len(requests) == 10
    assert requests[0] == ((start + timedelta(minutes=11)).strftime("%Y-%m-%d %H:%M"), "unlock")
    assert "directory unavailable" in body
    for button in ("Push a reset", "Unlock the account", "Reset User", "Remove from the gateway"):
        assert button in body


def test_send_activation_queues_an_email_and_is_audited(
    admin: Console, world: World, services: Blink, smtp: SmtpServer
) -> None:
    bob = world.person("bob", None, status=UserStatus.PENDING)
    before = admin.http.get(user_path(bob)).text
    assert "Send activation email" in before and "not invited" in before
    assert "Push a reset" not in before and "has no active phone" in before

    page = admin.post(user_path(bob, action="invite"), follow_redirects=True)

    assert page.request.path == user_path(bob)
    assert ("success", "Activation email queued for bob@contoso.example") in flashes(page)
    wait_for_jobs(services)
    assert smtp.mailbox.to("bob@contoso.example")
    assert fresh(services, bob.user.id).status is UserStatus.INVITED  # type: ignore[union-attr]
    assert "Re-send activation email" in page.text
    [created] = events(services, "invitation.created")
    assert created.user_id == bob.user.id and created.actor.startswith("admin:")


def test_sending_activation_to_an_active_user_is_refused_with_a_flash(
    admin: Console, alice: Persona, services: Blink
) -> None:
    page = admin.post(user_path(alice, action="invite"), follow_redirects=True)

    assert ("error", "alice is already active: use Reset User") in flashes(page)
    assert events(services, "invitation.created") == []


def test_reset_user_unbinds_the_phone_and_sends_a_new_link(
    admin: Console, alice: Persona, services: Blink, smtp: SmtpServer
) -> None:
    page = admin.post(user_path(alice, action="reset"), follow_redirects=True)

    assert flashes(page)[0][0] == "success" and "phone unbound" in flashes(page)[0][1]
    user = fresh(services, alice.user.id)
    assert user is not None and user.phone is None and user.status is UserStatus.INVITED
    assert [e.user_id for e in events(services, "user.phone_unbound")] == [alice.user.id]
    wait_for_jobs(services)
    assert smtp.mailbox.to("alice@contoso.example")


def test_editing_the_email_saves_it_and_a_bad_one_comes_back_with_the_error(
    admin: Console, alice: Persona, services: Blink
) -> None:
    bad = admin.post(user_path(alice, action="email"), {"email": "alice at home"})

    assert bad.status_code == 400
    assert "not an email address" in bad.text and 'value="alice at home"' in bad.text
    assert fresh(services, alice.user.id).email == "alice@contoso.example"  # type: ignore[union-attr]

    good = admin.post(
        user_path(alice, action="email"), {"email": "alice@home.example"}, follow_redirects=True
    )

    assert flashes(good)[0][0] == "success"
    assert fresh(services, alice.user.id).email == "alice@home.example"  # type: ignore[union-attr]
    assert len(events(services, "user.email_changed")) == 1


def test_push_reset_texts_a_one_time_password_to_the_bound_phone(
    admin: Console, world: World, alice: Persona, services: Blink, twilio: FakeTwilio
) -> None:
    page = admin.post(user_path(alice, action="push-reset"), follow_redirects=True)
    wait_for_jobs(services)

    assert flashes(page)[0] == (
        "success",
        "Reset queued: alice gets a one-time password by text",
    )
    [body] = twilio.bodies_to(alice.phone or "")
    assert world.directory.must_change("alice")
    with services.db.session() as session:
        request = session.execute(select(ResetRequest)).scalar_one()
        assert request.kind is RequestKind.RESET and request.origin is RequestOrigin.ADMIN
        assert request.status is RequestStatus.DONE and request.actor == admin.actor.label
    [requested] = events(services, "reset.requested")
    assert requested.user_id == alice.user.id and requested.actor == admin.actor.label
    assert body not in admin.http.get(user_path(alice)).text


def test_push_reset_without_a_phone_is_refused_in_plain_words(
    admin: Console, world: World, services: Blink, twilio: FakeTwilio
) -> None:
    bob = world.person("bob", None, status=UserStatus.PENDING)

    page = admin.post(user_path(bob, action="push-reset"), follow_redirects=True)

    assert flashes(page) == [
        ("error", "bob has no registered phone: send an activation email first")
    ]
    assert twilio.sent == []


def test_unlock_clears_the_lockout_and_is_audited(
    admin: Console, world: World, alice: Persona, services: Blink, twilio: FakeTwilio
) -> None:
    world.lock("alice")

    page = admin.post(user_path(alice, action="unlock"), follow_redirects=True)
    wait_for_jobs(services)

    assert flashes(page)[0][0] == "success"
    assert not world.directory.is_locked("alice")
    assert world.sign_in("alice", alice.password) == "ok"  # the password is untouched
    assert [e.user_id for e in events(services, "unlock.requested")] == [alice.user.id]


def test_disable_and_enable_change_the_status_and_are_audited(
    admin: Console, alice: Persona, services: Blink
) -> None:
    disabled = admin.post(
        user_path(alice, action="disable"), {"disabled": "1"}, follow_redirects=True
    )

    assert ("success", "alice: disabled") in flashes(disabled)
    assert fresh(services, alice.user.id).status is UserStatus.DISABLED  # type: ignore[union-attr]
    assert "Enable: they can reset by text again" in disabled.text

    enabled = admin.post(
        user_path(alice, action="disable"), {"disabled": "0"}, follow_redirects=True
    )

    assert ("success", "alice: enabled") in flashes(enabled)
    assert fresh(services, alice.user.id).status is UserStatus.ACTIVE  # type: ignore[union-attr]
    assert len(events(services, "user.disabled")) == len(events(services, "user.enabled")) == 1


def test_remove_needs_the_confirmation_then_removes_the_user(
    admin: Console, alice: Persona, services: Blink
) -> None:
    unconfirmed = admin.post(user_path(alice, action="remove"))

    assert unconfirmed.status_code == 400 and "tick the box" in unconfirmed.text
    assert fresh(services, alice.user.id) is not None

    removed = admin.post(
        user_path(alice, action="remove"), {"confirm": "yes"}, follow_redirects=True
    )

    assert removed.request.path == "/admin/clients/contoso/users"
    assert ("success", "alice removed from the gateway (the directory account is kept)") in flashes(
        removed
    )
    assert fresh(services, alice.user.id) is None
    [event_] = events(services, "user.removed")
    assert event_.detail["username"] == "alice" and event_.detail["phone"] == "+155******01"
    assert admin.http.get(user_path(alice)).status_code == 404


# --- a generated password, shown once ---------------------------------------------------------


def database_dump(services: Blink) -> str:
    with services.db.session() as session:
        tables = inspect(services.db.engine).get_table_names()
        return repr([session.execute(text(f"SELECT * FROM {t}")).all() for t in tables])  # noqa: S608


def test_a_generated_password_is_shown_once_and_stored_nowhere(
    admin: Console,
    world: World,
    alice: Persona,
    services: Blink,
    caplog: pytest.LogCaptureFixture,
) -> None:
    world.lock("alice")
    caplog.set_level(logging.DEBUG)
    token = admin.csrf()

    with capture_logs() as logs:
        page = admin.http.post(
            user_path(alice, action="password"), data={"csrf_token": token, "must_change": "yes"}
        )
        later = admin.http.get(user_path(alice))
        listing = admin.http.get("/admin/clients/contoso/users")

    assert page.status_code == 200
    assert page.headers["Cache-Control"] == "no-store"
    [password] = re.findall(r'<p class="once"[^>]*>(.*?)</p>', page.text)
    password = html.unescape(password)
    assert len(password) >= 12
    assert world.sign_in("alice", password) == "must_change"  # set, and the lockout cleared
    assert "alice" not in password.casefold()

    assert password not in later.text and password not in listing.text
    assert flashes(later) == []
    assert password not in database_dump(services)
    assert password not in repr(logs)
    assert password not in caplog.text
    with admin.http.session_transaction() as session:
        assert password not in repr(dict(session))
    [set_event] = events(services, "password.set_by_admin")
    assert set_event.user_id == alice.user.id and set_event.actor == admin.actor.label
    assert set_event.detail["must_change"] is True
    assert password not in repr(set_event.detail)


def test_a_generated_password_may_skip_the_change_at_next_sign_in(
    admin: Console, world: World, alice: Persona
) -> None:
    page = admin.post(user_path(alice, action="password"))

    [password] = re.findall(r'<p class="once"[^>]*>(.*?)</p>', page.text)
    assert world.sign_in("alice", html.unescape(password)) == "ok"


def test_a_directory_failure_is_flashed_in_plain_words(
    admin: Console, world: World, alice: Persona, services: Blink
) -> None:
    world.directory.set_outage()

    page = admin.post(user_path(alice, action="password"), follow_redirects=True)

    world.directory.clear_outage()
    assert page.request.path == user_path(alice)
    [(kind, message)] = flashes(page)
    assert kind == "error" and message.startswith("the directory did not answer")
    assert "try again in a minute" in message
    assert events(services, "password.set_by_admin") == []


# --- who may --------------------------------------------------------------------------------

ACTIONS = {
    "invite": {},
    "reset": {},
    "email": {"email": "x@contoso.example"},
    "push-reset": {},
    "unlock": {},
    "password": {"must_change": "yes"},
    "disable": {"disabled": "1"},
    "remove": {"confirm": "yes"},
    "approve-binding": {},
    "reject-binding": {},
}


def test_a_client_admin_of_contoso_gets_404_for_a_fabrikam_user(
    admin: Console, world: World, fabrikam: Client, services: Blink, twilio: FakeTwilio
) -> None:
    frank = world.person("frank", "+15551239999", client=fabrikam)

    assert admin.http.get(user_path(frank, "fabrikam")).status_code == 404
    assert admin.http.get(user_path(frank, "contoso")).status_code == 404
    assert admin.http.get("/admin/clients/fabrikam/users").status_code == 404
    for action, form in ACTIONS.items():
        for slug in ("fabrikam", "contoso"):
            response = admin.post(user_path(frank, slug, action), form)
            assert response.status_code == 404, (action, slug)
    assert admin.post("/admin/clients/fabrikam/users/invite-pending").status_code == 404
    user = fresh(services, frank.user.id)
    assert user is not None and user.status is UserStatus.ACTIVE
    assert user.phone == frank.phone and user.email == "frank@contoso.example"
    assert twilio.sent == []


def _event_count(services: Blink) -> int:
    with services.db.session() as session:
        return session.execute(select(func.count()).select_from(AuditEvent)).scalar_one()


def test_an_auditor_sees_the_users_but_every_action_is_forbidden(
    console_as: Callable[..., Console], world: World, alice: Persona, services: Blink
) -> None:
    auditor = console_as(Role.AUDITOR, world.client)
    before = _event_count(services)

    listing = auditor.http.get("/admin/clients/contoso/users")
    page = auditor.http.get(user_path(alice))

    assert listing.status_code == 200 and ">Alice<" in listing.text
    assert "Invite everyone" not in listing.text
    assert page.status_code == 200 and "Push a reset" not in page.text
    for action, form in ACTIONS.items():
        assert auditor.post(user_path(alice, action=action), form).status_code == 403, action
    assert auditor.post("/admin/clients/contoso/users/invite-pending").status_code == 403
    assert _event_count(services) == before
    user = fresh(services, alice.user.id)
    assert user is not None and user.status is UserStatus.ACTIVE and user.phone == alice.phone
