"""The MSP's branding (/admin/branding): the look of every client without its own.

Saved in the console, it shows in the activation emails (sent through a real SMTP
server, aiosmtpd) and on the enrollment pages of clients that leave a part empty; a
client's own values win; only MSP owners and technicians change it.
"""

from __future__ import annotations

import html
import os
import re
import secrets
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient
from sqlalchemy import select, update

from blink_sms.actors import COMMAND_LINE, Role
from blink_sms.cli import cli
from blink_sms.context import Blink
from blink_sms.messaging.pages import Branding, MspBrand
from blink_sms.models import AuditEvent, MspBranding, UserStatus
from blink_sms.services import branding
from blink_sms.settings import Settings
from tests.enrollment.smtp import Received, SmtpServer

from ..conftest import World, wait_for_jobs
from .conftest import Console

MAIL_FROM = "reset@msp.example"
SETTINGS_COLOR = "#222222"  # BLINK_BRAND_COLOR: what shows when the MSP saved no colour
MSP = {
    "brand_name": "Northwind IT",
    "brand_logo_url": "https://cdn.northwind.example/logo.png",
    "brand_color": "#7C3AED",
    "support_email": "desk@northwind.example",
    "email_message": "Northwind IT & your company set this up together.",
}


@pytest.fixture
def settings(settings: Settings, smtp: SmtpServer) -> Settings:
    return settings.with_changes(smtp_url=smtp.url, mail_from=MAIL_FROM, brand_color=SETTINGS_COLOR)


def text_of(response: Any) -> str:
    return str(response.get_data(as_text=True))


def saved_row(services: Blink) -> MspBranding | None:
    with services.db.session() as session:
        row = session.get(MspBranding, 1)
        if row is not None:
            session.expunge(row)
        return row


def events(services: Blink, action: str) -> list[AuditEvent]:
    with services.db.session() as session:
        return list(
            session.execute(select(AuditEvent).where(AuditEvent.action == action)).scalars()
        )


def frames(body: str) -> dict[str, str]:
    sources = [html.unescape(s) for s in re.findall(r'<iframe[^>]* src="([^"]+)"', body)]
    return {re.search(r"page=(\w+)", src).group(1): src for src in sources}  # type: ignore[union-attr]


def invite(console: Console, world: World, services: Blink, smtp: SmtpServer) -> Received:
    """Invite a new pending user of Contoso from the console; the email as received."""
    dana = world.person("dana", None, status=UserStatus.PENDING)
    response = console.post(
        f"/admin/clients/contoso/users/{dana.user.id}/invite", follow_redirects=True
    )
    assert "Activation email queued for dana@contoso.example" in text_of(response)
    wait_for_jobs(services)
    [received] = smtp.mailbox.to("dana@contoso.example")
    return received


def enrollment_page(http: FlaskClient, received: Received) -> str:
    """The enrollment page the email's link opens, as the user sees it."""
    page = http.get(urlsplit(received.link).path)
    assert page.status_code == 200
    return text_of(page)


def test_saving_shows_on_the_page_in_the_previews_and_the_audit_trail(
    owner: Console, services: Blink
) -> None:
    page = text_of(owner.http.get("/admin/branding"))
    assert 'href="/admin/branding"' in page  # in the nav of who may change it
    assert f"Empty: {SETTINGS_COLOR}" in page  # what an empty field falls back to

    saved = owner.post("/admin/branding", {**MSP, "action": "save"})
    assert saved.status_code == 303 and saved.headers["Location"].endswith("/admin/branding")
    row = saved_row(services)
    assert row is not None
    assert (row.brand_name, row.brand_color, row.support_email) == (
        "Northwind IT",
        "#7C3AED",
        "desk@northwind.example",
    )
    body = text_of(owner.http.get("/admin/branding"))
    assert "Branding saved: Your name, Logo address, Colour, Support email, Your paragraph" in body
    assert 'value="Northwind IT"' in body and 'value="#7C3AED"' in body
    assert "Northwind IT &amp; your company set this up together." in body
    [event] = events(services, "msp.branding_changed")
    assert event.actor.endswith(owner.email) and event.client_id is None
    assert event.detail["fields"] == sorted(MSP)

    shown = frames(body)
    email = owner.http.get(shown["email"])
    assert "frame-ancestors 'self'" in email.headers["Content-Security-Policy"]
    assert "background:#7c3aed" in text_of(email) and "Example Ltd" in text_of(email)
    assert "desk@northwind.example" in text_of(email)
    assert "--brand: #7c3aed" in text_of(owner.http.get(shown["enrollment"]))
    assert "Northwind IT" in text_of(owner.http.get(shown["unknown"]))

    # Saved again unchanged: nothing changes, nothing is audited.
    again = owner.post("/admin/branding", {**MSP, "action": "save"}, follow_redirects=True)
    assert "Nothing changed" in text_of(again)
    assert len(events(services, "msp.branding_changed")) == 1


def test_the_preview_shows_the_forms_values_without_saving_them(
    owner: Console, services: Blink
) -> None:
    page = owner.post("/admin/branding", {**MSP, "action": "preview"})
    assert page.status_code == 200 and "not saved yet" in text_of(page)
    assert saved_row(services) is None
    email = owner.http.get(frames(text_of(page))["email"])
    assert "background:#7c3aed" in text_of(email)
    assert 'src="https://cdn.northwind.example/logo.png"' in text_of(email)


def test_a_client_without_its_own_gets_the_msps_look_in_the_email_and_enrollment_page(
    owner: Console, world: World, services: Blink, smtp: SmtpServer, http: FlaskClient
) -> None:
    owner.post("/admin/branding", {**MSP, "action": "save"})

    received = invite(owner, world, services, smtp)

    mail = received.html
    assert "background:#7c3aed" in mail and SETTINGS_COLOR not in mail
    assert 'src="https://cdn.northwind.example/logo.png"' in mail
    assert "Northwind IT &amp; your company set this up together." in mail
    assert received.message["Reply-To"] == "desk@northwind.example"
    assert "desk@northwind.example" in received.text
    # The account is the client's: its name, not the MSP's, names it.
    assert received.message["Subject"] == ("Set up password reset by text for your Contoso account")
    page = enrollment_page(http, received)
    assert "--brand: #7c3aed" in page
    assert 'src="https://cdn.northwind.example/logo.png" alt="Contoso"' in page
    assert "desk@northwind.example" in page


def test_a_client_with_its_own_keeps_it_and_takes_the_msps_for_the_rest(
    owner: Console, world: World, services: Blink, smtp: SmtpServer, http: FlaskClient
) -> None:
    own = owner.post(
        "/admin/clients/contoso/branding",
        {
            "brand_color": "#0F766E",
            "brand_logo_url": "https://cdn.contoso.example/logo.png",
            "invitation_hours": "72",
            "action": "save",
        },
    )
    assert own.status_code == 303
    owner.post("/admin/branding", {**MSP, "action": "save"})

    received = invite(owner, world, services, smtp)

    mail = received.html
    assert "background:#0f766e" in mail and "#7c3aed" not in mail
    assert "cdn.contoso.example/logo.png" in mail and "cdn.northwind.example" not in mail
    assert received.message["Reply-To"] == "desk@northwind.example"  # Contoso sets none
    page = enrollment_page(http, received)
    assert "--brand: #0f766e" in page and "cdn.northwind.example" not in page


def test_the_settings_apply_where_neither_the_client_nor_the_msp_sets_a_value(
    owner: Console, world: World, services: Blink, smtp: SmtpServer
) -> None:
    owner.post("/admin/branding", {**MSP, "action": "save"})
    owner.post("/admin/branding", {**MSP, "brand_color": "", "action": "save"})
    row = saved_row(services)
    assert row is not None and row.brand_color is None and row.brand_name == "Northwind IT"

    received = invite(owner, world, services, smtp)

    assert f"background:{SETTINGS_COLOR}" in received.html
    assert 'src="https://cdn.northwind.example/logo.png"' in received.html


def test_an_unknown_link_shows_the_msps_name_once_it_has_one(
    owner: Console, http: FlaskClient
) -> None:
    unknown = "/enroll/" + "A" * 43
    before = http.get(unknown)
    assert before.status_code == 404 and "Northwind IT" not in text_of(before)
    owner.post("/admin/branding", {**MSP, "action": "save"})
    after = http.get(unknown)
    assert after.status_code == 404 and "This link does not work" in text_of(after)
    assert 'alt="Northwind IT"' in text_of(after) and "--brand: #7c3aed" in text_of(after)
    assert "Ask desk@northwind.example for a new activation email." in text_of(after)


def test_a_client_admin_gets_404_and_no_link(
    console_as: Callable[..., Console], world: World, services: Blink
) -> None:
    admin = console_as(Role.CLIENT_ADMIN, world.client)
    assert admin.http.get("/admin/branding").status_code == 404
    assert admin.http.get("/admin/branding/preview?page=email").status_code == 404
    refused = admin.post("/admin/branding", {**MSP, "action": "save"})
    assert refused.status_code == 404
    assert admin.post("/admin/branding", {**MSP, "action": "preview"}).status_code == 404
    assert saved_row(services) is None and events(services, "msp.branding_changed") == []
    assert 'href="/admin/branding"' not in text_of(admin.http.get("/admin/"))


def test_an_auditor_may_look_but_not_save(
    console_as: Callable[..., Console], services: Blink
) -> None:
    auditor = console_as(Role.AUDITOR)
    page = auditor.http.get("/admin/branding")
    assert page.status_code == 200 and ">Save<" not in text_of(page)
    assert 'href="/admin/branding"' not in text_of(page)  # not in the nav: nothing to do
    assert auditor.post("/admin/branding", {**MSP, "action": "save"}).status_code == 403
    assert saved_row(services) is None


def test_a_technician_may_change_it(console_as: Callable[..., Console], services: Blink) -> None:
    technician = console_as(Role.MSP_TECHNICIAN)
    assert 'href="/admin/branding"' in text_of(technician.http.get("/admin/"))
    saved = technician.post("/admin/branding", {**MSP, "action": "save"})
    assert saved.status_code == 303
    [event] = events(services, "msp.branding_changed")
    assert event.actor.endswith(technician.email)


def test_a_bad_colour_is_a_field_error_and_what_was_typed_stays(
    owner: Console, services: Blink
) -> None:
    for action in ("save", "preview"):
        bad = owner.post("/admin/branding", {**MSP, "brand_color": "purple", "action": action})
        body = text_of(bad)
        assert bad.status_code == 400
        assert '<p class="field-error" id="brand_color-error">must look like #1f5fbf</p>' in body
        assert 'value="purple"' in body and 'value="Northwind IT"' in body
        assert 'value="desk@northwind.example"' in body
        assert "Northwind IT &amp; your company set this up together.</textarea>" in body
    assert saved_row(services) is None and events(services, "msp.branding_changed") == []
    bad_logo = owner.post("/admin/branding", {**MSP, "brand_logo_url": "http://x.example/a.png"})
    assert bad_logo.status_code == 400 and "must be an https:// address" in text_of(bad_logo)


def test_the_msps_branding_is_read_once_per_few_seconds_and_at_once_after_a_save(
    services: Blink, monkeypatch: pytest.MonkeyPatch
) -> None:
    with services.db.session() as session:
        branding.set_msp_branding(services, session, COMMAND_LINE, brand_color="#111111")
    assert branding.msp_branding(services).brand_color == "#111111"
    # Another process saves (a direct write here): this one keeps its copy a few seconds...
    with services.db.session() as session:
        session.execute(update(MspBranding).values(brand_color="#333333"))
        session.commit()
    assert branding.msp_branding(services).brand_color == "#111111"
    clock = branding.time.monotonic
    monkeypatch.setattr(branding.time, "monotonic", lambda: clock() + branding.CACHE_SECONDS + 1)
    assert branding.msp_branding(services).brand_color == "#333333"  # ...then reads again
    # A save in this process shows at once.
    with services.db.session() as session:
        branding.set_msp_branding(services, session, COMMAND_LINE, brand_color="#444444")
    assert branding.msp_branding(services).brand_color == "#444444"


def test_the_fallback_order_client_msp_settings_product(settings: Settings, world: World) -> None:
    client = world.client
    bare = settings.with_changes(brand_color=None, brand_support_email=None)
    assert Branding.of(client, bare, MspBrand()).color == "#1f5fbf"  # the product's own
    assert Branding.of(client, settings, MspBrand()).color == SETTINGS_COLOR
    msp = MspBrand(brand_color="#7C3AED", support_email="desk@northwind.example")
    assert Branding.of(client, settings, msp).color == "#7c3aed"
    assert Branding.of(client, settings, msp).support == "desk@northwind.example"
    client.brand_color = "#0F766E"
    assert Branding.of(client, settings, msp).color == "#0f766e"
    assert Branding.of(client, settings, msp).name == "Contoso"


def test_the_command_line_shows_and_sets_the_msps_branding(
    database_url: str, owner: Console, monkeypatch: pytest.MonkeyPatch
) -> None:
    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("BLINK_")}
    env |= {
        "BLINK_SECRET_KEY": secrets.token_urlsafe(32),
        "BLINK_DATABASE_URL": database_url,
        "BLINK_PUBLIC_URL": "https://sms.example.com",
    }

    def run(*args: str) -> Any:
        return CliRunner().invoke(cli, ["branding", "msp", *args], env=env)

    bad = run("--color", "purple")
    assert bad.exit_code == 1 and "brand_color: must look like #1f5fbf" in bad.output
    result = run("--name", "Northwind IT", "--color", "#7c3aed")
    assert result.exit_code == 0, result.output
    assert "changed brand_color, brand_name" in result.output
    assert "colour:        #7c3aed" in result.output
    shown = run()
    assert "name:          Northwind IT" in shown.output and "logo:          -" in shown.output
    assert 'value="Northwind IT"' in text_of(owner.http.get("/admin/branding"))
