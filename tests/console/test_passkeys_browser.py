"""Passkeys in real Chromium: register one from "Account", then sign in with it.

Chromium's own virtual authenticator (DevTools ``WebAuthn`` domain) stands in for a
security key or a phone: the page's ``console.js``, the browser's WebAuthn and the
server's py_webauthn checks all run for real. WebAuthn needs a domain as the relying
party, so the app is reached as ``localhost``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pyotp
import pytest
from flask import Flask
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select

from blink_sms.actors import COMMAND_LINE, Role
from blink_sms.context import Blink
from blink_sms.models import Admin, Passkey
from blink_sms.services import admins, second_factor
from blink_sms.settings import Settings
from tests.support.live import launched_chromium, serving
from tests.support.services import free_port

PASSWORD = "correct horse battery staple"
EMAIL = "owner@msp.example"


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def settings(settings: Settings, port: int) -> Settings:
    return settings.with_changes(public_url=f"http://localhost:{port}")


@pytest.fixture
def live(app: Flask, port: int) -> Iterator[str]:
    with serving(app, port):
        yield f"http://localhost:{port}"


@pytest.fixture
def browser() -> Iterator[Browser]:
    with launched_chromium() as launched:
        yield launched


def owner_with_an_app(services: Blink) -> str:
    """An MSP owner with a password and an authenticator app; returns the TOTP key."""
    with services.db.session() as session:
        _, url = admins.create_admin(
            services, session, COMMAND_LINE, email=EMAIL, role=Role.MSP_OWNER
        )
        admin = admins.complete_setup(services, session, url.rsplit("/", 1)[1], PASSWORD)
        enrolment = second_factor.begin_totp(services, admin)
        # A code from the previous time step: the sign-in below uses the current one.
        earlier = pyotp.TOTP(enrolment.secret).at(int(time.time()) - 30)
        second_factor.confirm_totp(services, session, admin, enrolment.secret, earlier)
    return enrolment.secret


def sign_in_with_password(page: Page, live: str) -> None:
    page.goto(f"{live}/admin/sign-in")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/admin/sign-in/verify"))


def test_an_admin_registers_a_passkey_and_signs_in_with_it(
    live: str, browser: Browser, services: Blink
) -> None:
    key = owner_with_an_app(services)
    context = browser.new_context()
    page = context.new_page()
    devtools = context.new_cdp_session(page)
    devtools.send("WebAuthn.enable")
    devtools.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
            }
        },
    )
    sign_in_with_password(page, live)
    page.get_by_label("Code from your authenticator app").fill(pyotp.TOTP(key).now())
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", name="Clients")).to_be_visible()

    page.goto(f"{live}/admin/account")
    page.once("dialog", lambda dialog: dialog.accept("Test key"))
    page.get_by_role("button", name="Add a passkey").click()
    expect(page.get_by_text("Passkeys: Test key")).to_be_visible()
    with services.db.session() as session:
        [passkey] = session.execute(select(Passkey)).scalars().all()
        assert passkey.name == "Test key"

    page.get_by_role("button", name="Sign out", exact=True).click()
    sign_in_with_password(page, live)
    page.get_by_role("button", name="Use a passkey").click()
    expect(page.get_by_role("heading", name="Clients")).to_be_visible()
    with services.db.session() as session:
        stored = session.execute(select(Passkey)).scalar_one()
        admin = session.execute(select(Admin)).scalar_one()
        assert stored.last_used_at is not None and admin.last_sign_in_at is not None
    context.close()
