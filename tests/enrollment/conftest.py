"""Fixtures for enrollment: a real SMTP server, invited personas, a page-walking helper."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from blink_sms.actors import COMMAND_LINE
from blink_sms.context import Blink
from blink_sms.models import Client, Invitation, User, UserStatus
from blink_sms.services import invitations
from blink_sms.settings import Settings
from tests.conftest import Persona, World, wait_for_jobs

from .smtp import Received, SmtpServer

MAIL_FROM = "reset@msp.example"
CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
CODE = re.compile(r"\b(\d{6})\b")


@pytest.fixture
def settings(settings: Settings, smtp: SmtpServer) -> Settings:
    return settings.with_changes(smtp_url=smtp.url, mail_from=MAIL_FROM)


@dataclass
class Invited:
    persona: Persona
    mail: Received
    link: str

    @property
    def path(self) -> str:
        return urlsplit(self.link).path

    @property
    def token(self) -> str:
        return self.path.rsplit("/", 1)[1]


Invite = Callable[..., Invited]


@pytest.fixture
def invite(services: Blink, world: World, smtp: SmtpServer) -> Invite:
    """Import a pending user, invite them, and read the link from the real email."""

    def make(
        username: str = "dana",
        *,
        language: str | None = None,
        client: Client | None = None,
        mobile: str | None = None,  # the directory's mobile number (the user has no phone)
    ) -> Invited:
        persona = world.person(
            username, mobile, status=UserStatus.PENDING, language=language, client=client
        )
        with services.db.session() as session:
            user = session.get(User, persona.user.id)
            assert user is not None
            user.phone = None
            invitations.invite(services, session, COMMAND_LINE, user)
        wait_for_jobs(services)
        received = smtp.mailbox.to(persona.user.email or "")
        assert received, "no activation email reached the SMTP server"
        return Invited(persona, received[-1], received[-1].link)

    return make


def csrf_of(html: str) -> str:
    match = CSRF.search(html)
    assert match, html
    return match.group(1)


def last_code(twilio: Any, number: str) -> str:
    bodies = twilio.bodies_to(number)
    assert bodies, f"no SMS to {number}"
    match = CODE.search(bodies[-1])
    assert match, bodies[-1]
    return match.group(1)


@dataclass
class Walker:
    """Walks the enrollment pages with the Flask test client, like a browser without JS."""

    http: FlaskClient
    path: str

    def get(self, suffix: str = "") -> Any:
        return self.http.get(self.path + suffix)

    def post(self, suffix: str, **form: str) -> Any:
        # One CSRF token serves every form of the session, as in a browser.
        token = csrf_of(self.http.get(self.path).get_data(as_text=True))
        return self.http.post(self.path + suffix, data={"csrf_token": token, **form})

    def number(self, number: str, country: str = "US") -> Any:
        return self.post("", number=number, country=country)

    def code(self, code: str, **extra: str) -> Any:
        return self.post("/code", code=code, **extra)

    def resend(self) -> Any:
        return self.post("/resend")


@pytest.fixture
def walker(http: FlaskClient) -> Callable[[Invited], Walker]:
    return lambda invited: Walker(http, invited.path)


def invitation_of(services: Blink, user_id: int) -> Invitation:
    with services.db.session() as session:
        found = (
            session.execute(
                select(Invitation)
                .where(Invitation.user_id == user_id)
                .order_by(Invitation.id.desc())
            )
            .scalars()
            .first()
        )
        assert found is not None
        return found
