"""The enrollment pages in a real browser: Debian's Chromium driven by Playwright.

The app runs on a werkzeug server thread of this process, so the fake Twilio
(``responses``) still catches its REST calls; the browser talks real HTTP to it.
A phone viewport (390x844); a screenshot of every page goes to $BLINK_SCREENSHOTS
(or the test's temp folder). No Chromium is a failure, never a skip.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Page,
    ViewportSize,
    expect,
)
from sqlalchemy import func, select, update

from blink_sms.context import Blink
from blink_sms.models import Client, User
from blink_sms.settings import Settings
from tests.conftest import SMS_URL, World, inbound_params, reply_text, sign, wait_for_jobs
from tests.support.fake_twilio import FakeTwilio
from tests.support.live import launched_chromium, serving
from tests.support.services import free_port

from .conftest import Invite, last_code

PHONE: ViewportSize = {"width": 390, "height": 844}
MOBILE = "+31612345678"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with launched_chromium() as launched:
        yield launched


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def settings(settings: Settings, port: int) -> Settings:
    # The emailed link and the webhook signatures use the address the browser reaches.
    return settings.with_changes(public_url=f"http://127.0.0.1:{port}")


@pytest.fixture
def live(app: Flask, port: int) -> Iterator[str]:
    with serving(app, port):
        yield f"http://127.0.0.1:{port}"


@pytest.fixture
def phone(browser: Browser) -> Iterator[BrowserContext]:
    context = browser.new_context(
        viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True, locale="en-US"
    )
    yield context
    context.close()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("BLINK_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def shoot(page: Page, folder: Path, name: str) -> None:
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


def test_a_user_enrolls_on_their_phone_and_then_resets_by_sms(
    live: str,
    phone: BrowserContext,
    invite: Invite,
    twilio: FakeTwilio,
    http: FlaskClient,
    services: Blink,
    world: World,
    shots: Path,
) -> None:
    invited = invite("dana")
    assert invited.link.startswith(live + "/enroll/")
    page = phone.new_page()
    page.set_content(invited.mail.html)  # the activation email as a phone's mail app shows it
    expect(page.get_by_role("link", name="Set up my phone")).to_have_attribute("href", invited.link)
    shoot(page, shots, "0-email")
    page.goto(invited.link)
    expect(page).to_have_title(re.compile("Add your mobile number"))
    expect(page.get_by_label("Country")).to_have_value("US")
    shoot(page, shots, "1-number")

    # A landline first: a clear message, nothing sent.
    page.get_by_label("Country").select_option("NL")
    page.get_by_label("Mobile number").fill("020 123 4567")
    page.get_by_role("button", name="Text me a code").click()
    expect(page.get_by_role("alert")).to_contain_text("landline")
    expect(page.get_by_label("Mobile number")).to_have_attribute("aria-invalid", "true")
    shoot(page, shots, "1b-number-landline")
    assert twilio.sent == []

    page.get_by_label("Mobile number").fill("06 12345678")
    page.get_by_role("button", name="Text me a code").click()
    expect(page).to_have_url(invited.link + "/code")
    expect(page.get_by_role("main")).to_contain_text("+31 6 12345678")
    expect(page.get_by_role("button", name="Send a new code")).to_be_disabled()
    shoot(page, shots, "2-code")

    page.get_by_label("Code").fill("000000" if last_code(twilio, MOBILE) != "000000" else "111111")
    page.get_by_role("button", name="Confirm").click()
    expect(page.get_by_role("alert")).to_contain_text("Tries left: 4.")
    shoot(page, shots, "2b-code-wrong")

    page.get_by_label("Code").fill(last_code(twilio, MOBILE))
    page.get_by_role("button", name="Confirm").click()
    expect(page).to_have_url(live + "/enroll/done")
    expect(page.get_by_role("link", name=re.compile("Text RESET to"))).to_have_text(
        "+1 500-555-0006"
    )
    shoot(page, shots, "3-done")
    with page.expect_download() as download:
        page.get_by_role("link", name="Save as a contact").click()
    card = Path(download.value.path()).read_text()
    assert "TEL;TYPE=CELL:+15005550006" in card and "RESET" in card

    # The link is spent: opening it again gets the "gone" page.
    gone = phone.new_page()
    response = gone.goto(invited.link)
    assert response is not None and response.status == 410
    expect(gone.get_by_role("heading", level=1)).to_have_text("This link does not work")
    shoot(gone, shots, "4-link-gone")

    # From now on a signed RESET from that phone brings a one-time password.
    params = inbound_params(MOBILE, "RESET")
    signature = sign(live + SMS_URL, params)
    reply = http.post(SMS_URL, data=params, headers={"X-Twilio-Signature": signature})
    assert reply_text(reply) == "Got it. Your new password will arrive in a moment."
    wait_for_jobs(services)
    body = twilio.bodies_to(MOBILE)[-1]
    password = re.search(r"password: (\S+)", body)
    assert password, body
    assert world.sign_in("dana", password.group(1)) == "must_change"


def test_the_locked_and_invalid_pages_look_right(
    live: str, phone: BrowserContext, invite: Invite, twilio: FakeTwilio, shots: Path
) -> None:
    page = phone.new_page()
    response = page.goto(live + "/enroll/" + "x" * 43)
    assert response is not None and response.status == 404
    expect(page.get_by_role("heading", level=1)).to_have_text("This link does not work")
    shoot(page, shots, "5-link-unknown")
    invited = invite("erik", language="nl")
    page.goto(invited.link)
    page.get_by_label("Mobiel nummer").fill("+31 6 87654321")
    page.get_by_role("button", name="Sms mij een code").click()
    right = last_code(twilio, "+31687654321")
    for _ in range(5):
        page.get_by_label("Code").fill("000000" if right != "000000" else "111111")
        page.get_by_role("button", name="Bevestigen").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Te veel verkeerde codes")
    shoot(page, shots, "6-locked-nl")


def test_two_people_racing_for_one_number_cannot_both_win(
    live: str, browser: Browser, invite: Invite, twilio: FakeTwilio, services: Blink
) -> None:
    first, second = invite("fay"), invite("gus")
    contexts = [browser.new_context(viewport=PHONE, is_mobile=True) for _ in range(2)]
    try:
        pages = [context.new_page() for context in contexts]
        for page, invited in zip(pages, (first, second), strict=True):
            page.goto(invited.link)
            page.get_by_label("Mobile number").fill(MOBILE)
            page.get_by_role("button", name="Text me a code").click()
            expect(page).to_have_url(invited.link + "/code")
            page.get_by_label("Code").fill(last_code(twilio, MOBILE))
        # Both press "Confirm" together; the server handles them on two threads.
        for page in pages:
            page.get_by_role("button", name="Confirm").click(no_wait_after=True)
        for page in pages:
            page.wait_for_load_state()
            expect(page.get_by_role("heading", level=1)).to_have_text(
                re.compile("Your phone is set up|Add your mobile number")
            )
        headings = sorted(page.get_by_role("heading", level=1).inner_text() for page in pages)
        assert headings == ["Add your mobile number", "Your phone is set up"]
        loser = next(
            p for p in pages if "Add your" in p.get_by_role("heading", level=1).inner_text()
        )
        expect(loser.get_by_role("alert")).to_contain_text("already registered")
    finally:
        for context in contexts:
            context.close()
    with services.db.session() as session:
        bound = session.execute(select(func.count(User.id)).where(User.phone == MOBILE))
        assert bound.scalar_one() == 1


def test_a_reset_pin_is_chosen_with_the_code_on_a_phone(
    live: str,
    phone: BrowserContext,
    invite: Invite,
    twilio: FakeTwilio,
    services: Blink,
    world: World,
    shots: Path,
) -> None:
    with services.db.session() as session:
        session.execute(update(Client).values(reset_pin="required"))
        session.commit()
    invited = invite("dana")
    page = phone.new_page()
    page.goto(invited.link)
    page.get_by_label("Mobile number").fill("06 12345678")
    page.get_by_label("Country").select_option("NL")
    page.get_by_role("button", name="Text me a code").click()
    page.get_by_label("Code").fill(last_code(twilio, MOBILE))
    page.get_by_label("Choose a reset PIN").fill("7305")
    page.get_by_label("Type the PIN again").fill("7350")
    page.get_by_role("button", name="Confirm").click()
    expect(page.get_by_role("alert")).to_contain_text("The two PINs are not the same.")
    expect(page.get_by_label("Choose a reset PIN")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Choose a reset PIN")).to_have_value("")  # never echoed back
    expect(page.get_by_label("Code")).to_have_value(last_code(twilio, MOBILE))  # kept
    expect(page.get_by_label("Choose a reset PIN")).to_be_focused()
    shoot(page, shots, "code-with-pin-refused")
    page.get_by_label("Choose a reset PIN").fill("7305")
    page.get_by_label("Type the PIN again").fill("7305")
    page.get_by_role("button", name="Confirm").click()
    expect(page.get_by_role("heading", name="Your phone is set up")).to_be_visible()
    expect(page.get_by_text("text RESET and your PIN to:")).to_be_visible()
    shoot(page, shots, "done-with-pin")
    with services.db.session() as session:
        user = session.get_one(User, invited.persona.user.id)
        assert user.phone == MOBILE and user.pin_hash is not None
