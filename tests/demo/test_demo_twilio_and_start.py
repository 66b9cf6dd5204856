"""The demo's start page, Twilio's own answers to STOP and START on the simulated phone,
the mailbox's HTML view and the phone page's long numbers."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import quote

from flask import Flask
from flask.testing import FlaskClient

from blink_sms.app import create_app
from blink_sms.db import upgrade
from blink_sms.demo.seed import PEOPLE
from blink_sms.demo.views import TWILIO_ANSWERS
from blink_sms.keywords import Action

from .conftest import demo_settings, wait_for_demo_jobs

ALICE = PEOPLE[0]


def _bodies(browser: FlaskClient, phone: str = ALICE.phone) -> list[str]:
    response = browser.get(f"/demo/phone/messages?phone={quote(phone)}")
    return [m["body"] for m in response.get_json()["messages"] if not m["mine"]]


def test_stop_and_start_show_what_twilio_answers(demo_app: Flask, browser: FlaskClient) -> None:
    stopped = browser.post("/demo/phone/send", data={"phone": ALICE.phone, "body": "Stop"})
    assert stopped.status_code == 303
    wait_for_demo_jobs(demo_app)
    assert _bodies(browser)[-1] == TWILIO_ANSWERS[Action.STOP]
    assert "Reply START to resubscribe" in TWILIO_ANSWERS[Action.STOP]
    browser.post("/demo/phone/send", data={"phone": ALICE.phone, "body": "START"})
    wait_for_demo_jobs(demo_app)
    assert TWILIO_ANSWERS[Action.START] in _bodies(browser)
    # A word that is not Twilio's gets no answer from Twilio.
    before = _bodies(browser).count(TWILIO_ANSWERS[Action.STOP])
    browser.post("/demo/phone/send", data={"phone": ALICE.phone, "body": "please stop it"})
    wait_for_demo_jobs(demo_app)
    assert _bodies(browser).count(TWILIO_ANSWERS[Action.STOP]) == before


def test_the_root_leads_to_a_start_page_linking_every_part_of_the_demo(
    browser: FlaskClient,
) -> None:
    root = browser.get("/")
    assert root.status_code == 302 and root.location.endswith("/demo/")
    page = browser.get("/demo/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    for href in ("/demo/phone", "/demo/mailbox", "/admin/", "/api/v1/docs"):
        assert f'href="{href}"' in html, href
        assert browser.get(href).status_code in (200, 302), href
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]


def test_no_start_page_outside_the_demo(tmp_path: Path) -> None:
    settings = demo_settings(tmp_path, sms_backend="twilio")
    upgrade(settings.database_url)
    assert create_app(settings).test_client().get("/").status_code == 404


def test_the_mailbox_shows_the_html_part_in_a_locked_down_frame(
    demo_app: Flask, browser: FlaskClient
) -> None:
    assert browser.post("/demo/invite").status_code == 303
    mailbox = browser.get("/demo/mailbox")
    html = mailbox.get_data(as_text=True)
    assert '<iframe class="mail-html" sandbox src="/demo/mailbox/0.html"' in html
    policy = mailbox.headers["Content-Security-Policy"]
    assert "frame-src 'self'" in policy and "script-src 'self'" in policy
    part = browser.get("/demo/mailbox/0.html")
    assert part.status_code == 200 and part.mimetype == "text/html"
    assert "Set up my phone" in part.get_data(as_text=True)  # the email's button
    assert part.headers["Content-Security-Policy"].startswith("sandbox; default-src 'none';")
    assert "script-src" not in part.headers["Content-Security-Policy"]
    assert part.headers["X-Frame-Options"] == "SAMEORIGIN"
    assert browser.get("/demo/mailbox/1.html").status_code == 404


def test_numbers_stay_on_one_line_on_the_phone_page(browser: FlaskClient) -> None:
    """The gateway's number in the chat head never wraps; a bubble breaks at spaces and
    splits a number or code only when it cannot fit on a line at all."""
    css = browser.get("/demo/static/demo.css").get_data(as_text=True)
    rules = {
        selector.strip(): body
        for selector, body in re.findall(r"([^{}]+)\{([^}]*)\}", re.sub(r"/\*.*?\*/", "", css))
    }
    assert "white-space: nowrap" in rules[".chat-head-text small"]
    assert "overflow-wrap: break-word" in rules[".bubble"]
    assert "anywhere" not in rules[".bubble"]
    page = browser.get(f"/demo/phone?phone={quote(ALICE.phone)}").get_data(as_text=True)
    assert re.search(r'<span class="chat-head-text">\s*<strong>[^<]+</strong>\s*<small>\+', page)
