"""The phone simulator: texts go through the real signed webhook and job; the sign-in
card talks to the sandbox directory."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

from flask import Flask
from flask.testing import FlaskClient

from blink_sms.app import create_app
from blink_sms.context import blink
from blink_sms.db import upgrade
from blink_sms.demo.seed import PEOPLE, api_key, seed
from blink_sms.demo.views import STRANGER
from blink_sms.messaging.sms import ConsoleSender

from .conftest import demo_settings, wait_for_demo_jobs

ALICE = PEOPLE[0]
OTP = re.compile(r"Your new password: (\S+)\n")
NEW_PASSWORD = "Sunny!Days2025"


def _page(browser: FlaskClient, phone: str = ALICE.phone) -> str:
    response = browser.get(f"/demo/phone?phone={quote(phone)}")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def _text(browser: FlaskClient, body: str, phone: str = ALICE.phone) -> str:
    """Send a text from the simulated phone; return the page it redirects to."""
    response = browser.post("/demo/phone/send", data={"phone": phone, "body": body})
    assert response.status_code == 303
    assert response.headers["Location"] == f"/demo/phone?phone={quote(phone)}"
    return _page(browser, phone)


def _messages(browser: FlaskClient, phone: str = ALICE.phone) -> list[dict[str, Any]]:
    response = browser.get(f"/demo/phone/messages?phone={quote(phone)}")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    messages: list[dict[str, Any]] = response.get_json()["messages"]
    return messages


def _one_time_password(demo_app: Flask, browser: FlaskClient) -> str:
    wait_for_demo_jobs(demo_app)
    bodies = [m["body"] for m in _messages(browser) if not m["mine"]]
    found = [match.group(1) for body in bodies if (match := OTP.search(body))]
    assert len(found) == 1, bodies
    return found[0]


def _sign_in(browser: FlaskClient, password: str, username: str = ALICE.username) -> str:
    response = browser.post(
        "/demo/signin",
        data={"username": username, "password": password, "phone": ALICE.phone},
        follow_redirects=True,
    )
    assert response.status_code == 200
    return response.get_data(as_text=True)


def _change(browser: FlaskClient, old: str, new: str, confirm: str | None = None) -> str:
    response = browser.post(
        "/demo/change-password",
        data={
            "username": ALICE.username,
            "old_password": old,
            "new_password": new,
            "confirm": new if confirm is None else confirm,
            "phone": ALICE.phone,
        },
        follow_redirects=True,
    )
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_it_shows_the_demo_people_and_the_sign_in_card(browser: FlaskClient) -> None:
    html = _page(browser)
    for person in PEOPLE:
        assert person.display_name in html
        assert f'value="{person.phone}"' in html
    assert "SMS are printed, not sent" in html
    assert 'name="username" type="text" value="alice"' in html
    assert "Sign in to Contoso" in html
    assert "No messages yet" in html


def test_a_hand_typed_plus_sign_still_picks_the_phone(browser: FlaskClient) -> None:
    bram = PEOPLE[1]
    html = browser.get(f"/demo/phone?phone={bram.phone}").get_data(as_text=True)
    assert f'value="{bram.username}"' in html


def test_reset_by_text_then_sign_in_and_change_the_password(
    demo_app: Flask, browser: FlaskClient
) -> None:
    html = _text(browser, "reset")
    assert "Got it. Your new password will arrive in a moment." in html

    password = _one_time_password(demo_app, browser)
    with demo_app.app_context():
        sms = blink().sms
        assert isinstance(sms, ConsoleSender)
        assert [m.from_ for m in sms.messages_to(ALICE.phone)] == ["+15005550006"]
    messages = _messages(browser)
    assert [(m["mine"], m["body"].split()[0]) for m in messages] == [
        (True, "reset"),
        (False, "Got"),
        (False, "Your"),
    ]
    assert f'<code class="secret">{password}</code>' in _page(browser)  # set apart
    assert messages[-1]["parts"][1] == password

    assert "Wrong password" in _sign_in(browser, ALICE.password)  # the reset replaced it

    html = _sign_in(browser, password)
    assert "Password must be changed" in html
    assert 'name="new_password"' in html

    assert "do not match" in _change(browser, password, NEW_PASSWORD, "Something!Else9")
    assert "Password refused: too short" in _change(browser, password, "Ab1!")
    assert "The current password is wrong" in _change(browser, "Nope!Nope42", NEW_PASSWORD)

    html = _change(browser, password, NEW_PASSWORD)
    assert "Password changed, signed in." in html
    assert "Signed in as Alice Johnson" in html

    browser.post("/demo/signout", data={"phone": ALICE.phone})
    assert "Wrong password" in _sign_in(browser, password)
    assert "Signed in as Alice Johnson" in _sign_in(browser, NEW_PASSWORD)


def test_a_garbage_text_gets_the_help_text(browser: FlaskClient) -> None:
    html = _text(browser, "banana bread")
    assert "reply RESET for a new password, or UNLOCK to unlock your account" in html


def test_a_number_nobody_enrolled_gets_the_generic_answer(browser: FlaskClient) -> None:
    html = _text(browser, "reset", phone=STRANGER)
    assert "This number only serves registered users." in html


def test_a_locked_account_is_unlocked_by_text(demo_app: Flask, browser: FlaskClient) -> None:
    for _ in range(5):
        _sign_in(browser, "Wrong!Guess99")
    html = _sign_in(browser, ALICE.password)
    assert "Account locked. Text UNLOCK to +1 500-555-0006" in html

    assert "Your account will be unlocked in a moment." in _text(browser, "UNLOCK")
    wait_for_demo_jobs(demo_app)
    assert "Your account is unlocked." in _page(browser)
    assert "Signed in as Alice Johnson" in _sign_in(browser, ALICE.password)


def test_texts_are_escaped(browser: FlaskClient) -> None:
    html = _text(browser, '<img src=x onerror="alert(1)">')
    assert "&lt;img src=x onerror=" in html
    assert "<img src=x" not in html


def test_a_script_can_send_and_get_the_conversation_as_json(browser: FlaskClient) -> None:
    response = browser.post(
        "/demo/phone/send",
        data={"phone": ALICE.phone, "body": "help"},
        headers={"Accept": "application/json"},
    )
    assert response.status_code == 200
    state = response.get_json()
    assert [m["mine"] for m in state["messages"]] == [True, False]
    assert state["messages"][0]["body"] == "help"
    assert state["pending"] is False


def test_the_page_and_its_assets_load(browser: FlaskClient) -> None:
    html = _page(browser)
    for asset in re.findall(r'(?:href|src)="(/demo/static/[^"]+)"', html):
        assert browser.get(asset).status_code == 200
    assert "script-src 'self'" in browser.get("/demo/phone").headers["Content-Security-Policy"]


def test_it_is_not_there_when_sms_are_really_sent(tmp_path: Path) -> None:
    settings = demo_settings(tmp_path, sms_backend="twilio")
    upgrade(settings.database_url)
    app = create_app(settings)
    with app.app_context():
        seed(str(tmp_path / "dir.sqlite"))
    browser = app.test_client()
    assert browser.get("/demo/phone").status_code == 404
    assert browser.post("/demo/phone/send", data={"body": "reset"}).status_code == 404


def test_the_demo_key_reaches_the_rest_api(demo_app: Flask, browser: FlaskClient) -> None:
    with demo_app.app_context():
        key = api_key()
    answer = browser.get("/api/v1/clients", headers={"Authorization": f"Bearer {key}"})
    assert answer.status_code == 200
    assert {c["slug"] for c in answer.get_json()["items"]} == {"demo", "fabrikam"}
