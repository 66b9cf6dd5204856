"""Signing in to the console, for real: set-up link, password, TOTP, sessions, CSRF."""

from __future__ import annotations

import re
import time
from typing import Any

import pyotp
import pytest
from flask import Flask, g
from flask.testing import FlaskClient
from sqlalchemy import select

from blink_sms.actors import COMMAND_LINE, Role
from blink_sms.context import Blink
from blink_sms.models import Admin, AuditEvent
from blink_sms.services import admins

PASSWORD = "correct horse battery staple"


def csrf(http: FlaskClient) -> str:
    """The session's CSRF token, from the sign-in form (a GET there changes nothing).

    The ``app`` fixture keeps one app context for the whole test, so ``flask.g`` (where
    Flask-WTF caches the token of a request) outlives requests: forget it first.
    """
    g.pop("csrf_token", None)
    match = re.search(rb'name="csrf_token" value="([^"]+)"', http.get("/admin/sign-in").data)
    assert match
    return match.group(1).decode()


def post(http: FlaskClient, path: str, data: dict[str, str], **kwargs: Any) -> Any:
    return http.post(path, data={"csrf_token": csrf(http), **data}, **kwargs)


def new_owner(services: Blink, email: str = "owner@msp.example") -> str:
    with services.db.session() as session:
        _, url = admins.create_admin(
            services, session, COMMAND_LINE, email=email, role=Role.MSP_OWNER
        )
    return url.removeprefix("https://sms.example.com")


def enrol(http: FlaskClient, services: Blink, email: str = "owner@msp.example") -> str:
    """Set-up link → password → authenticator app; returns the TOTP secret."""
    setup = new_owner(services, email)
    mismatch = post(http, setup, {"password": PASSWORD, "confirm": PASSWORD + "!"})
    assert mismatch.status_code == 400 and b"not the same" in mismatch.data
    done = post(http, setup, {"password": PASSWORD, "confirm": PASSWORD})
    assert done.status_code == 302 and done.location.endswith("/admin/account/two-factor")
    # An MSP owner cannot go anywhere before a second factor is set up.
    assert http.get("/admin/").location.endswith("/admin/sign-in/verify")
    assert http.get("/admin/sign-in/verify").location.endswith("/admin/account/two-factor")
    page = http.get("/admin/account/two-factor")
    assert b"<svg" in page.data  # the QR code, rendered on the server
    secret = re.search(rb'class="secret">([A-Z2-7]+)<', page.data)
    assert secret
    wrong = post(http, "/admin/account/two-factor", {"code": "000000"})
    assert wrong.status_code == 400
    # The wrong try showed a fresh secret: enrol the one on the page now.
    secret = re.search(rb'class="secret">([A-Z2-7]+)<', wrong.data)
    assert secret
    key = secret.group(1).decode()
    codes = post(http, "/admin/account/two-factor", {"code": pyotp.TOTP(key).now()})
    assert codes.status_code == 200 and b"shown <strong>only now</strong>" in codes.data
    assert http.get("/admin/").status_code == 200
    return key


def test_first_owner_sets_up_a_password_and_an_authenticator_app(
    http: FlaskClient, services: Blink
) -> None:
    enrol(http, services)
    with services.db.session() as session:
        admin = session.execute(select(Admin)).scalar_one()
        assert admin.password_hash and admin.password_hash.startswith("$argon2id$")
        assert admin.totp_confirmed_at is not None
        actions = set(session.execute(select(AuditEvent.action)).scalars())
    assert {"admin.created", "admin.setup_completed"} <= actions


def test_a_set_up_link_works_once(http: FlaskClient, services: Blink, app: Flask) -> None:
    setup = new_owner(services)
    post(http, setup, {"password": PASSWORD, "confirm": PASSWORD})
    other = app.test_client()
    again = other.get(setup)
    assert again.status_code == 404 and b"used already" in again.data


def sign_in(http: FlaskClient, email: str, password: str) -> Any:
    return post(http, "/admin/sign-in", {"email": email, "password": password})


def test_sign_in_refuses_a_wrong_password_like_an_unknown_email_then_throttles(
    http: FlaskClient, services: Blink, app: Flask
) -> None:
    enrol(http, services)
    browser = app.test_client()
    wrong = sign_in(browser, "owner@msp.example", "not the password at all")
    unknown = sign_in(browser, "nobody@msp.example", "not the password at all")
    assert wrong.status_code == unknown.status_code == 401
    assert b"wrong email address or password" in wrong.data
    assert b"wrong email address or password" in unknown.data
    for _ in range(4):
        sign_in(browser, "owner@msp.example", "still wrong, sorry")
    throttled = sign_in(browser, "owner@msp.example", PASSWORD)  # even the right one
    assert throttled.status_code == 429 and b"try again later" in throttled.data


def test_sign_in_needs_the_second_factor_and_a_code_works_once(
    http: FlaskClient, services: Blink, app: Flask
) -> None:
    key = enrol(http, services)
    browser = app.test_client()
    password_ok = sign_in(browser, "owner@msp.example", PASSWORD)
    assert password_ok.status_code == 302 and "/admin/sign-in/verify" in password_ok.location
    assert browser.get("/admin/clients/contoso").location.endswith("/admin/sign-in/verify")
    bad = post(browser, "/admin/sign-in/verify", {"code": "123456"})
    assert bad.status_code == 401
    # The code that confirmed the enrolment has been spent: it cannot sign in again.
    replay = post(browser, "/admin/sign-in/verify", {"code": pyotp.TOTP(key).now()})
    assert replay.status_code == 401
    assert browser.get("/admin/").status_code == 302


def test_a_recovery_code_signs_in_once(http: FlaskClient, services: Blink, app: Flask) -> None:
    setup = new_owner(services)
    post(http, setup, {"password": PASSWORD, "confirm": PASSWORD})
    page = http.get("/admin/account/two-factor")
    match = re.search(rb'class="secret">([A-Z2-7]+)<', page.data)
    assert match
    codes_page = post(
        http, "/admin/account/two-factor", {"code": pyotp.TOTP(match.group(1).decode()).now()}
    )
    codes = re.findall(r"<li>([a-z0-9]{4}-[a-z0-9]{4}-[a-z0-9]{4})</li>", codes_page.text)
    assert len(codes) == 10
    for attempt, expected in ((1, 302), (2, 401)):
        browser = app.test_client()
        sign_in(browser, "owner@msp.example", PASSWORD)
        response = post(browser, "/admin/sign-in/verify", {"code": codes[0]})
        assert response.status_code == expected, attempt


def test_sign_in_starts_a_fresh_session(http: FlaskClient, services: Blink, app: Flask) -> None:
    """Session fixation: whatever the cookie held before signing in is dropped."""
    enrol(http, services)
    browser = app.test_client()
    with browser.session_transaction() as session:
        session["planted"] = "by an attacker"
        session["console"] = {"admin": 999, "epoch": 0, "at": 0, "seen": 0, "2fa": True}
    sign_in(browser, "owner@msp.example", PASSWORD)
    with browser.session_transaction() as session:
        assert "planted" not in session
        state = session["console"]
        assert state["2fa"] is False and state["admin"] != 999


def test_a_form_without_its_csrf_token_is_refused(http: FlaskClient, services: Blink) -> None:
    enrol(http, services)
    response = http.post("/admin/sign-out")
    assert response.status_code == 400
    assert http.get("/admin/").status_code == 200  # still signed in
    forged = http.post("/admin/sign-in", data={"email": "owner@msp.example", "password": "x"})
    assert forged.status_code == 400


@pytest.mark.parametrize(("field", "age"), [("seen", 31 * 60), ("at", 12 * 3600 + 60)])
def test_sessions_end_after_30_idle_minutes_and_12_hours(
    http: FlaskClient, services: Blink, field: str, age: int
) -> None:
    enrol(http, services)
    with http.session_transaction() as session:
        state = dict(session["console"])
        state[field] = int(time.time()) - age
        session["console"] = state
    response = http.get("/admin/")
    assert response.status_code == 302 and "/admin/sign-in" in response.location


def test_sign_out_everywhere_ends_every_session(
    http: FlaskClient, services: Blink, app: Flask
) -> None:
    key = enrol(http, services)
    laptop = app.test_client()
    with http.session_transaction() as source, laptop.session_transaction() as target:
        target.update(source)  # the same account, signed in on another device
    assert laptop.get("/admin/").status_code == 200
    post(http, "/admin/account/sign-out-everywhere", {})
    assert laptop.get("/admin/").status_code == 302
    assert http.get("/admin/").status_code == 302
    assert key  # the account itself still works: only sessions ended
