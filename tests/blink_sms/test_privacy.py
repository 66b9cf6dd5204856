"""GDPR: everything held about a user exported, their personal data erased, the trail kept."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import insert, select, text

from blink_sms.actors import COMMAND_LINE, Forbidden, Role, admin_actor
from blink_sms.cli import cli
from blink_sms.context import Blink
from blink_sms.models import (
    AuditEvent,
    Base,
    RequestKind,
    RequestOrigin,
    ResetRequest,
    User,
    UserStatus,
    WebhookDelivery,
    WebhookEndpoint,
)
from blink_sms.services import audit, invitations, privacy
from blink_sms.services.errors import Conflict, NotFound
from blink_sms.settings import Settings
from tests.conftest import Persona, World, reply_text, wait_for_jobs
from tests.enrollment.conftest import MAIL_FROM, Walker, last_code
from tests.enrollment.smtp import SmtpServer
from tests.support.fake_twilio import FakeTwilio

FIRST, SECOND = "+31612345678", "+31687654321"


@pytest.fixture
def settings(settings: Settings, smtp: SmtpServer) -> Settings:
    return settings.with_changes(smtp_url=smtp.url, mail_from=MAIL_FROM)


@dataclass
class Story:
    user_id: int
    personal: list[str]  # every way the database could hold dana's identity


def _user(services: Blink, user_id: int) -> User:
    with services.db.session() as session:
        user = session.get(User, user_id)
        assert user is not None
        session.expunge(user)
        return user


def _enroll(http: Any, services: Blink, twilio: FakeTwilio, smtp: SmtpServer, number: str) -> None:
    wait_for_jobs(services)
    link = smtp.mailbox.to("dana@contoso.example")[-1].link
    page = Walker(http, link.split("sms.example.com", 1)[1])
    assert page.number(number, "NL").status_code == 303
    assert page.code(last_code(twilio, number)).status_code == 303
    wait_for_jobs(services)


@pytest.fixture
def story(
    services: Blink,
    world: World,
    http: Any,
    smtp: SmtpServer,
    twilio: FakeTwilio,
    text_gateway: Any,
) -> Story:
    """Dana is invited, enrols a phone, is Reset User'd, enrols another, texts RESET; a
    test email goes to her address; a webhook delivery names her."""
    dana = world.person("dana", None, status=UserStatus.PENDING)
    with services.db.session() as session:
        invitations.invite(services, session, COMMAND_LINE, session.get_one(User, dana.user.id))
    _enroll(http, services, twilio, smtp, FIRST)
    with services.db.session() as session:
        invitations.reset_user(services, session, COMMAND_LINE, session.get_one(User, dana.user.id))
    _enroll(http, services, twilio, smtp, SECOND)
    assert reply_text(text_gateway(SECOND, "RESET"))
    wait_for_jobs(services)
    with services.db.session() as session:
        audit.record(session, "client.mail_tested", actor=COMMAND_LINE, client_id=world.client.id,
                     to="Dana@contoso.example", ok=True)  # fmt: skip
        endpoint = session.execute(
            insert(WebhookEndpoint).returning(WebhookEndpoint.id),
            {"url": "https://psa.example/hook", "secret_encrypted": "x", "events": [],
             "created_by": "cli", "description": ""},
        ).scalar_one()  # fmt: skip
        user = {"id": dana.user.id, "username": "dana", "display_name": "Dana"}
        session.execute(
            insert(WebhookDelivery),
            {"endpoint_id": endpoint, "event_id": "e1", "event": "reset.completed",
             "payload": {"id": "e1", "user": user}},
        )  # fmt: skip
        session.commit()
        actions = session.execute(
            select(AuditEvent.action).where(AuditEvent.user_id == dana.user.id)
        ).scalars()
        assert {"user.phone_unbound", "enrollment.code_sent", "reset.completed"} <= set(actions)
    personal = [
        "dana", "dana@contoso.example", FIRST, SECOND, "+316******78", "+316******21",
        "612345678", "687654321",
    ]  # fmt: skip
    return Story(dana.user.id, personal)


def everything(services: Blink) -> list[tuple[str, str]]:
    """Every value of every table, as text, with its table's name."""
    with services.db.session() as session:
        return [
            (table.name, str(value))
            for table in Base.metadata.sorted_tables
            for row in session.execute(table.select())
            for value in row
        ]


def found(services: Blink, needles: list[str]) -> list[tuple[str, str]]:
    lowered = [needle.lower() for needle in needles]
    return [
        (table, value)
        for table, value in everything(services)
        if any(needle in value.lower() for needle in lowered)
    ]


def count_events(services: Blink, **where: Any) -> int:
    with services.db.session() as session:
        query = select(AuditEvent.id).filter_by(**where)
        return len(session.execute(query).all())


# --- export --------------------------------------------------------------------------------


def test_the_export_holds_everything_about_the_user_and_no_hashes(
    services: Blink, story: Story
) -> None:
    technician = admin_actor(2, "tech@msp.example", Role.MSP_TECHNICIAN, None)
    with services.db.session() as session:
        user = session.get(User, story.user_id)
        assert user is not None
        data = privacy.export_user(session, technician, user)
        hashes = session.execute(
            text(
                "SELECT token_hash FROM invitations UNION SELECT code_hash FROM verification_codes"
            )
        ).scalars()
        hashes = [value for value in hashes if value]
    dumped = json.dumps(data)  # plain JSON: no dates or enums left as objects
    assert data["user"]["username"] == "dana" and data["user"]["phone"] == SECOND
    assert data["user"]["status"] == "active" and data["client"]["slug"] == "contoso"
    assert [i["phone"] for i in data["invitations"]] == [FIRST, SECOND]
    assert all(i["used_at"] for i in data["invitations"])
    assert [c["phone"] for c in data["verification_codes"]] == [FIRST, SECOND]
    assert all(c["outcome"] == "used" for c in data["verification_codes"])
    [request] = data["reset_requests"]
    assert request["kind"] == "reset" and request["status"] == "done"
    assert {m["purpose"] for m in data["messages"]} >= {"verification", "welcome"}
    actions = [event["action"] for event in data["audit_events"]]
    assert "user.phone_unbound" in actions and "reset.completed" in actions
    assert len(hashes) >= 4 and not [h for h in hashes if h in dumped]
    assert "token_hash" not in dumped and "code_hash" not in dumped and "lease" not in dumped
    assert count_events(services, action="user.exported", user_id=story.user_id) == 1


# --- erasure -------------------------------------------------------------------------------


def test_erasure_leaves_no_personal_data_and_keeps_every_event(
    services: Blink, story: Story, world: World, text_gateway: Any, twilio: FakeTwilio
) -> None:
    assert found(services, story.personal)  # the search finds what is there
    events_before = count_events(services)
    about_before = count_events(services, user_id=story.user_id)
    with services.db.session() as session:
        user = session.get(User, story.user_id)
        assert user is not None
        privacy.erase_user(session, COMMAND_LINE, user)
    assert found(services, story.personal) == []
    assert count_events(services) == events_before + 1
    assert count_events(services, user_id=story.user_id) == about_before + 1
    erased = _user(services, story.user_id)
    assert erased.username == erased.display_name == f"erased-{story.user_id}"
    assert erased.status is UserStatus.DISABLED and erased.email is None and erased.phone is None
    with services.db.session() as session:
        # One event of each action checked below: the dict keeps it.
        query = select(AuditEvent.action, AuditEvent.detail)
        details = dict(session.execute(query).all())
        payload = session.execute(select(WebhookDelivery.payload)).scalar_one()
    assert details["user.phone_unbound"]["phone"] == privacy.ERASED
    assert details["client.mail_tested"] == {"to": privacy.ERASED, "ok": True}
    assert details["user.erased"]["events_pseudonymised"] >= 4
    assert payload["user"]["username"] == f"erased-{story.user_id}"
    # Her old number is a stranger's now: a RESET starts nothing.
    sent = len(twilio.sent)
    text_gateway(SECOND, "RESET")
    wait_for_jobs(services)
    with services.db.session() as session:
        assert len(session.execute(select(ResetRequest.id)).all()) == 1
    assert all("password" not in message["Body"].lower() for message in twilio.sent[sent:])


def test_erasure_waits_for_a_reset_on_its_way_and_happens_once(
    services: Blink, alice: Persona
) -> None:
    with services.db.session() as session:
        session.add(
            ResetRequest(user_id=alice.user.id, kind=RequestKind.RESET, origin=RequestOrigin.SMS)
        )
        session.commit()
        user = session.get_one(User, alice.user.id)
        with pytest.raises(Conflict, match="on its way"):
            privacy.erase_user(session, COMMAND_LINE, user)
        session.rollback()
        session.execute(text("UPDATE reset_requests SET status = 'done'"))
        session.commit()
        privacy.erase_user(session, COMMAND_LINE, user)
        with pytest.raises(Conflict, match="erased already"):
            privacy.erase_user(session, COMMAND_LINE, user)
    assert count_events(services, action="user.erased") == 1


def test_another_clients_admin_cannot_reach_the_user_and_an_auditor_cannot_act(
    services: Blink, world: World, alice: Persona
) -> None:
    fabrikam = world.another_client("fabrikam")
    outsider = admin_actor(5, "it@fabrikam.example", Role.CLIENT_ADMIN, fabrikam.id)
    auditor = admin_actor(6, "audit@msp.example", Role.AUDITOR, None)
    with services.db.session() as session:
        user = session.get_one(User, alice.user.id)
        for action in (privacy.export_user, privacy.erase_user):
            with pytest.raises(NotFound):
                action(session, outsider, user)
            with pytest.raises(Forbidden):
                action(session, auditor, user)
    assert _user(services, alice.user.id).username == "alice"
    assert count_events(services, action="user.exported") == 0


def test_export_and_erase_from_the_command_line(services: Blink, alice: Persona) -> None:
    env = {
        "BLINK_SECRET_KEY": services.settings.secret_key,
        "BLINK_DATABASE_URL": services.settings.database_url,
        "BLINK_PUBLIC_URL": services.settings.public_url,
    }
    runner = CliRunner()
    exported = runner.invoke(cli, ["users", "export", "--client", "contoso", "alice"], env=env)
    assert exported.exit_code == 0, exported.output
    assert json.loads(exported.stdout)["user"]["phone"] == alice.phone
    unsure = runner.invoke(
        cli, ["users", "erase", "--client", "contoso", "alice"], env=env, input="n\n"
    )
    assert unsure.exit_code == 1 and _user(services, alice.user.id).username == "alice"
    erased = runner.invoke(
        cli, ["users", "erase", "--client", "contoso", "alice", "--yes"], env=env
    )
    assert erased.exit_code == 0, erased.output
    assert f"now erased-{alice.user.id}" in erased.stdout
    gone = runner.invoke(cli, ["users", "export", "--client", "contoso", "alice"], env=env)
    assert gone.exit_code == 1 and "no single user" in gone.output
    again = runner.invoke(
        cli, ["users", "erase", "--client", "contoso", f"erased-{alice.user.id}", "--yes"], env=env
    )
    assert again.exit_code == 1 and "erased already" in again.output
