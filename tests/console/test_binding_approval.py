"""Approving or rejecting a phone binding (policy "approval") on the user's page and by CLI."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest
from click.testing import CliRunner

from blink_sms.actors import Role
from blink_sms.cli import cli
from blink_sms.context import Blink
from blink_sms.models import UserStatus, utcnow
from blink_sms.settings import Settings
from tests.conftest import Persona, World
from tests.enrollment.smtp import SmtpServer
from tests.support.fake_twilio import FakeTwilio

from .conftest import Console
from .test_users_pages import MAIL_FROM, events, flashes, fresh, invited, user_path

PHONE = "+31612345678"


@pytest.fixture
def settings(settings: Settings, smtp: SmtpServer) -> Settings:
    return settings.with_changes(smtp_url=smtp.url, mail_from=MAIL_FROM)


@pytest.fixture
def waiting(world: World, services: Blink) -> Persona:
    """Dana confirmed PHONE with a code; the binding waits for an admin."""
    dana = world.person("dana", None, status=UserStatus.PENDING)
    invited(services, dana, phone=PHONE, approval_requested_at=utcnow())
    return dana


def test_an_admin_approves_the_waiting_binding_on_the_users_page(
    console_as: Callable[..., Console],
    world: World,
    waiting: Persona,
    services: Blink,
    twilio: FakeTwilio,
) -> None:
    admin = console_as(Role.CLIENT_ADMIN, world.client)
    page = admin.http.get(user_path(waiting))
    assert "Waiting for your approval" in page.text and "+316******78" in page.text
    assert PHONE not in page.text
    done = admin.post(user_path(waiting, action="approve-binding"), follow_redirects=True)
    [(kind, message)] = flashes(done)
    assert kind == "success" and "approved and bound" in message
    assert "Waiting for your approval" not in done.text
    user = fresh(services, waiting.user.id)
    assert user is not None and user.phone == PHONE and user.status is UserStatus.ACTIVE
    assert twilio.sent[-1]["To"] == PHONE  # the welcome text
    [event] = events(services, "enrollment.binding_approved")
    assert event.actor.startswith("admin:")
    again = admin.post(user_path(waiting, action="approve-binding"), follow_redirects=True)
    assert flashes(again)[0][0] == "error"  # nothing waits any more


def test_an_admin_rejects_the_waiting_binding(
    console_as: Callable[..., Console], world: World, waiting: Persona, services: Blink
) -> None:
    admin = console_as(Role.CLIENT_ADMIN, world.client)
    done = admin.post(user_path(waiting, action="reject-binding"), follow_redirects=True)
    assert flashes(done)[0][0] == "success"
    user = fresh(services, waiting.user.id)
    assert user is not None and user.phone is None
    assert events(services, "enrollment.binding_rejected")


def test_the_command_line_approves_and_rejects(
    world: World, waiting: Persona, services: Blink, settings: Settings, twilio: FakeTwilio
) -> None:
    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("BLINK_")}
    env |= {
        "BLINK_SECRET_KEY": settings.secret_key,
        "BLINK_DATABASE_URL": settings.database_url,
        "BLINK_TWILIO_ACCOUNT_SID": settings.twilio_account_sid,
        "BLINK_TWILIO_AUTH_TOKEN": settings.twilio_auth_token,
        "BLINK_SMTP_URL": settings.smtp_url,
        "BLINK_MAIL_FROM": MAIL_FROM,
        "BLINK_PUBLIC_URL": settings.public_url,
    }

    def run(*args: str) -> tuple[int, str]:
        result = CliRunner().invoke(cli, ["users", *args], env=env)
        return result.exit_code, result.output

    assert run("reject-binding", "--client", "contoso", "nobody")[0] != 0
    code, output = run("approve-binding", "--client", "contoso", "dana")
    assert code == 0, output
    assert "dana: phone +316******78 approved and bound" in output
    user = fresh(services, waiting.user.id)
    assert user is not None and user.phone == PHONE
    code, output = run("reject-binding", "--client", "contoso", "dana")
    assert code == 1 and "no phone binding waits for approval" in output
