"""Enrollment in the demo: the newcomer's activation email, the real enrollment pages, the
code on the phone simulator, then RESET from her new phone."""

from __future__ import annotations

import html
import re
from urllib.parse import quote, urlsplit

from flask import Flask
from flask.testing import FlaskClient

from blink_sms.context import blink
from blink_sms.demo.seed import NEWCOMER
from blink_sms.messaging.sms import ConsoleSender
from blink_sms.models import User, UserStatus

from .conftest import wait_for_demo_jobs

NEW_PHONE = "+12025550143"
LINK = re.compile(r'<a class="button" href="([^"]+/enroll/[^"]+)"')
CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
CODE = re.compile(r"\b(\d{6})\b")


def invite(browser: FlaskClient) -> str:
    """Press the phone page's button; return the mailbox page it leads to."""
    assert "Send Dana the activation email" in browser.get("/demo/phone").get_data(as_text=True)
    response = browser.post("/demo/invite")
    assert response.status_code == 303 and response.location.endswith("/demo/mailbox")
    return browser.get("/demo/mailbox").get_data(as_text=True)


def link_in(mailbox: str) -> str:
    match = LINK.search(mailbox)
    assert match, mailbox
    return urlsplit(html.unescape(match.group(1))).path


def post(browser: FlaskClient, path: str, **form: str) -> str:
    csrf = CSRF.search(browser.get(path).get_data(as_text=True))
    assert csrf
    response = browser.post(path, data={"csrf_token": csrf.group(1), **form})
    assert response.status_code == 303, response.get_data(as_text=True)
    return str(response.location)


def status_of(demo_app: Flask) -> tuple[UserStatus, str | None]:
    with demo_app.app_context(), blink().db.session() as db:
        user = db.query(User).filter_by(username=NEWCOMER.username).one()
        return user.status, user.phone


def test_the_newcomer_registers_a_phone_and_resets_her_password(
    demo_app: Flask, browser: FlaskClient
) -> None:
    assert status_of(demo_app) == (UserStatus.PENDING, None)
    mailbox = invite(browser)
    assert "Set up password reset by text" in mailbox
    link = link_in(mailbox)

    # The real enrollment pages: number, then the code the simulator's new phone got.
    assert post(browser, link, number=NEW_PHONE, country="US").endswith(link + "/code")
    phone_page = browser.get(f"/demo/phone?phone={quote(NEW_PHONE)}").get_data(as_text=True)
    assert f'value="{NEW_PHONE}" selected' in phone_page and "New phone" in phone_page
    with demo_app.app_context():
        sms = blink().sms
        assert isinstance(sms, ConsoleSender)
        code = CODE.search(sms.messages_to(NEW_PHONE)[-1].body)
    assert code
    assert post(browser, link + "/code", code=code.group(1)).endswith("/enroll/done")
    assert status_of(demo_app) == (UserStatus.ACTIVE, NEW_PHONE)

    # Her phone is an enrolled one now: RESET texts her a one-time password.
    browser.post("/demo/phone/send", data={"phone": NEW_PHONE, "body": "RESET"})
    wait_for_demo_jobs(demo_app)
    page = browser.get(f"/demo/phone?phone={quote(NEW_PHONE)}").get_data(as_text=True)
    assert NEWCOMER.display_name in page and 'value="dana"' in page
    with demo_app.app_context():
        bodies = [m.body for m in sms.messages_to(NEW_PHONE)]
    assert any("Your new password: " in body for body in bodies), bodies


def test_inviting_an_enrolled_newcomer_again_is_reset_user(
    demo_app: Flask, browser: FlaskClient
) -> None:
    link = link_in(invite(browser))
    post(browser, link, number=NEW_PHONE, country="US")
    with demo_app.app_context():
        sms = blink().sms
        assert isinstance(sms, ConsoleSender)
        code = CODE.search(sms.messages_to(NEW_PHONE)[-1].body)
    assert code
    post(browser, link + "/code", code=code.group(1))
    wait_for_demo_jobs(demo_app)

    mailbox = invite(browser)
    assert "phone was unbound (Reset User)" in mailbox
    assert status_of(demo_app) == (UserStatus.INVITED, None)
    assert link_in(mailbox) != link
    assert browser.get(link).status_code == 410  # the old link was revoked


def test_the_mailbox_before_any_email_offers_to_send_one(browser: FlaskClient) -> None:
    page = browser.get("/demo/mailbox").get_data(as_text=True)
    assert "No email yet." in page and 'action="/demo/invite"' in page
