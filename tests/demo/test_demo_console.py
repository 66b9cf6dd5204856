"""The demo offers the console: one click signs in as the demo MSP owner, two clients."""

from __future__ import annotations

import re

from flask.testing import FlaskClient

from blink_sms.app import create_app

from .conftest import demo_settings


def test_the_phone_page_signs_in_to_the_console_as_the_demo_owner(browser: FlaskClient) -> None:
    page = browser.get("/demo/phone").get_data(as_text=True)
    form = re.search(
        r'action="(/admin/demo-sign-in)".*?name="csrf_token" value="([^"]+)"', page, re.S
    )
    assert form, "the phone page offers the console"
    signed_in = browser.post(form.group(1), data={"csrf_token": form.group(2)})
    assert signed_in.status_code == 302 and signed_in.location.endswith("/admin/")
    home = browser.get("/admin/").get_data(as_text=True)
    assert "Demo account" in home
    assert "Contoso (demo)" in home and "Fabrikam (demo)" in home
    users = browser.get("/admin/clients/fabrikam/users").get_data(as_text=True)
    assert "Omar Haddad" in users and "Sanne Visser" in users


def test_there_is_no_one_click_sign_in_outside_the_demo(tmp_path: object) -> None:
    settings = demo_settings(tmp_path, sms_backend="twilio")  # type: ignore[arg-type]
    app = create_app(settings)
    assert "console_demo.sign_in" not in app.view_functions
