"""A client's branding page (with its previews) and its mail page (with a real test email).

The mail tests run a real SMTP server (aiosmtpd, :mod:`tests.enrollment.smtp`) for the
deployment and another for a client that has a mail server of its own.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
from sqlalchemy import select

from blink_sms.actors import COMMAND_LINE, Role
from blink_sms.context import Blink
from blink_sms.models import AuditEvent, Client, User, UserStatus
from blink_sms.services import invitations, mail
from blink_sms.settings import Settings
from tests.enrollment.smtp import SmtpServer
from tests.support.services import free_port

from ..conftest import World, wait_for_jobs
from .conftest import Console

MAIL_FROM = "reset@msp.example"
SMTP_PASSWORD = "Smtp-Pa55word-4b1d!"


@pytest.fixture(scope="module")
def deployment_smtp() -> Iterator[SmtpServer]:
    server = SmtpServer()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def client_smtp() -> Iterator[SmtpServer]:
    server = SmtpServer()
    yield server
    server.stop()


@pytest.fixture
def settings(settings: Settings, deployment_smtp: SmtpServer, client_smtp: SmtpServer) -> Settings:
    for server in (deployment_smtp, client_smtp):
        server.mailbox.messages.clear()
        server.mailbox.refuse.clear()
    return settings.with_changes(smtp_url=deployment_smtp.url, mail_from=MAIL_FROM)


def text_of(response: Any) -> str:
    return str(response.get_data(as_text=True))


def stored(services: Blink, slug: str = "contoso") -> Client:
    with services.db.session() as session:
        client = session.execute(select(Client).where(Client.slug == slug)).scalar_one()
        session.expunge(client)
        return client


def events(services: Blink, action: str) -> list[AuditEvent]:
    with services.db.session() as session:
        return list(
            session.execute(select(AuditEvent).where(AuditEvent.action == action)).scalars()
        )


def frames(body: str) -> list[str]:
    return [html.unescape(src) for src in re.findall(r'<iframe[^>]* src="([^"]+)"', body)]


BRANDING = {
    "brand_name": "Contoso Blue",
    "brand_logo_url": "https://cdn.contoso.example/logo.png",
    "brand_color": "#123456",
    "support_email": "help@contoso.example",
    "email_message": "Your IT team set this up for you & your phone.",
    "invitation_hours": "48",
}


# --- branding ----------------------------------------------------------------------------------


def test_the_preview_shows_the_forms_values_without_saving_them(
    owner: Console, world: World, services: Blink
) -> None:
    page = owner.post("/admin/clients/contoso/branding", {**BRANDING, "action": "preview"})
    body = text_of(page)
    assert page.status_code == 200
    assert "frame-src 'self'" in page.headers["Content-Security-Policy"]
    assert 'value="Contoso Blue"' in body and "not saved yet" in body
    assert stored(services).brand_name is None  # a preview saves nothing
    email_src, enrollment_src = frames(body)
    assert len(re.findall(r"<iframe class=\"preview\" sandbox src=", body)) == 2

    email = owner.http.get(email_src)
    assert email.status_code == 200
    policy = email.headers["Content-Security-Policy"]
    assert "style-src 'self' 'unsafe-inline'" in policy and "frame-ancestors 'self'" in policy
    assert "script-src" not in policy and email.headers["X-Frame-Options"] == "SAMEORIGIN"
    shown = text_of(email)
    assert "Contoso Blue" in shown and "background:#123456" in shown
    assert 'src="https://cdn.contoso.example/logo.png"' in shown
    assert "Your IT team set this up for you &amp; your phone." in shown
    assert "expires in 2 days" in shown and "help@contoso.example" in shown

    enrollment = owner.http.get(enrollment_src)
    assert enrollment.status_code == 200
    assert "--brand: #123456" in text_of(enrollment) and "Add your mobile number" in text_of(
        enrollment
    )
    assert "Contoso Blue" in text_of(enrollment)

    # Without changes, the previews show what is saved.
    saved_look = owner.http.get(
        frames(text_of(owner.http.get("/admin/clients/contoso/branding")))[0]
    )
    assert "Contoso Blue" not in text_of(saved_look) and "Contoso" in text_of(saved_look)


def test_branding_is_saved_and_a_bad_value_comes_back_with_what_was_typed(
    owner: Console, world: World, services: Blink
) -> None:
    bad = owner.post(
        "/admin/clients/contoso/branding", {**BRANDING, "brand_color": "blue", "action": "save"}
    )
    assert bad.status_code == 400
    assert "Colour" in text_of(bad) and "must look like #1f5fbf" in text_of(bad)
    assert 'value="blue"' in text_of(bad) and 'value="Contoso Blue"' in text_of(bad)
    assert stored(services).brand_color is None
    preview = owner.post(
        "/admin/clients/contoso/branding", {**BRANDING, "brand_color": "blue", "action": "preview"}
    )
    assert preview.status_code == 400 and "must look like #1f5fbf" in text_of(preview)

    saved = owner.post("/admin/clients/contoso/branding", {**BRANDING, "action": "save"})
    assert saved.status_code == 303
    client = stored(services)
    assert (client.brand_name, client.brand_color, client.invitation_hours) == (
        "Contoso Blue",
        "#123456",
        48,
    )
    [event] = events(services, "client.branding_changed")
    assert "brand_color" in event.detail["fields"] and event.actor.endswith(owner.email)
    page = owner.http.get("/admin/clients/contoso/branding")
    assert "Branding saved" in text_of(page) and "Contoso Blue" in text_of(
        owner.http.get(frames(text_of(page))[0])
    )


def test_a_client_admin_brands_their_own_client_and_never_anothers(
    console_as: Callable[..., Console], world: World, fabrikam: Client, services: Blink
) -> None:
    admin = console_as(Role.CLIENT_ADMIN, world.client)
    assert admin.http.get("/admin/clients/contoso/branding").status_code == 200
    saved = admin.post("/admin/clients/contoso/branding", {**BRANDING, "action": "save"})
    assert saved.status_code == 303 and stored(services).brand_name == "Contoso Blue"
    for path in ("branding", "branding/preview?page=email", "mail"):
        assert admin.http.get(f"/admin/clients/fabrikam/{path}").status_code == 404
    for path in ("branding", "mail", "mail/test"):
        response = admin.post(f"/admin/clients/fabrikam/{path}", {**BRANDING, "action": "save"})
        assert response.status_code == 404
    assert stored(services, "fabrikam").brand_name is None


def test_an_auditor_sees_the_branding_but_cannot_change_it(
    console_as: Callable[..., Console], world: World, services: Blink
) -> None:
    auditor = console_as(Role.AUDITOR)
    page = auditor.http.get("/admin/clients/contoso/branding")
    assert page.status_code == 200 and ">Save<" not in text_of(page)
    for path in ("branding", "mail", "mail/test"):
        response = auditor.post(
            f"/admin/clients/contoso/{path}", {**BRANDING, "action": "save", "to": "a@b.example"}
        )
        assert response.status_code == 403, path
    assert stored(services).brand_name is None


# --- mail --------------------------------------------------------------------------------------


def test_the_smtp_password_is_write_only_and_the_audit_names_no_secret(
    owner: Console, world: World, services: Blink
) -> None:
    form = {
        "url": "smtps://mailer@smtp.contoso.example",
        "password": SMTP_PASSWORD,
        "mail_from": "it@contoso.example",
        "action": "save",
    }
    saved = owner.post("/admin/clients/contoso/mail", form)
    assert saved.status_code == 303
    client = stored(services)
    url = mail.stored_url(services.secrets, client)
    assert url is not None and unquote(urlsplit(url).password or "") == SMTP_PASSWORD
    assert SMTP_PASSWORD not in (client.smtp_settings_encrypted or "")
    page = owner.http.get("/admin/clients/contoso/mail")
    assert SMTP_PASSWORD.encode() not in page.data
    assert "smtps://mailer@smtp.contoso.example" in text_of(page)
    assert "A password is set: leave empty to keep it" in text_of(page)
    [event] = events(services, "client.mail_changed")
    assert event.detail["fields"] == ["server", "password", "sender"]
    assert SMTP_PASSWORD not in str(event.detail)

    # Saved again with an empty password box: the password is kept.
    again = owner.post(
        "/admin/clients/contoso/mail",
        {**form, "password": "", "url": "smtps://mailer@smtp.contoso.example:465"},
    )
    assert again.status_code == 303
    kept = mail.stored_url(services.secrets, stored(services))
    assert kept is not None and unquote(urlsplit(kept).password or "") == SMTP_PASSWORD

    # Another server needs the password again: a stored one never goes to a new host.
    moved = owner.post(
        "/admin/clients/contoso/mail",
        {**form, "password": "", "url": "smtps://mailer@evil.example"},
    )
    assert moved.status_code == 400
    assert "type the password of this mail account" in text_of(moved)
    assert 'value="smtps://mailer@evil.example"' in text_of(moved)
    assert SMTP_PASSWORD.encode() not in moved.data

    bad = owner.post("/admin/clients/contoso/mail", {**form, "url": "http://smtp.contoso.example"})
    assert bad.status_code == 400 and "must look like smtps://" in text_of(bad)
    assert SMTP_PASSWORD.encode() not in bad.data

    removed = owner.post("/admin/clients/contoso/mail", {"action": "remove"})
    assert removed.status_code == 303
    client = stored(services)
    assert client.smtp_settings_encrypted is None and client.mail_from is None


def test_a_test_email_goes_through_the_clients_own_server(
    owner: Console,
    world: World,
    services: Blink,
    client_smtp: SmtpServer,
    deployment_smtp: SmtpServer,
) -> None:
    owner.post(
        "/admin/clients/contoso/mail",
        {"url": client_smtp.url, "mail_from": "it@contoso.example", "action": "save"},
    )
    sent = owner.post("/admin/clients/contoso/mail/test", {"to": "ann@msp.example"})
    assert sent.status_code == 303
    page = text_of(owner.http.get(sent.headers["Location"]))
    assert f"accepted by 127.0.0.1:{client_smtp.port}" in page
    [received] = client_smtp.mailbox.to("ann@msp.example")
    assert received.mail_from == "it@contoso.example"
    assert "Test email for Contoso" in received.message["Subject"]
    assert deployment_smtp.mailbox.messages == []
    [event] = events(services, "client.mail_tested")
    assert event.detail["ok"] is True and event.detail["to"] == "ann@msp.example"


def test_a_test_email_without_settings_of_its_own_goes_through_the_deployments_server(
    owner: Console, world: World, deployment_smtp: SmtpServer
) -> None:
    sent = owner.post("/admin/clients/contoso/mail/test", {"to": "ann@msp.example"})
    assert sent.status_code == 303
    [received] = deployment_smtp.mailbox.to("ann@msp.example")
    assert received.mail_from == MAIL_FROM


def test_a_failed_test_email_says_why_in_plain_words(
    owner: Console, world: World, services: Blink, client_smtp: SmtpServer
) -> None:
    bad_address = owner.post("/admin/clients/contoso/mail/test", {"to": "not an address"})
    assert bad_address.status_code == 400 and "not an email address" in text_of(bad_address)
    assert 'value="not an address"' in text_of(bad_address)

    client_smtp.mailbox.refuse.add("gone@contoso.example")
    owner.post(
        "/admin/clients/contoso/mail",
        {"url": client_smtp.url, "mail_from": "it@contoso.example", "action": "save"},
    )
    refused = owner.post("/admin/clients/contoso/mail/test", {"to": "gone@contoso.example"})
    assert refused.status_code == 200
    assert "refused the address gone@contoso.example (SMTP 550)" in text_of(refused)

    port = free_port()  # nothing listens there
    owner.post(
        "/admin/clients/contoso/mail",
        {"url": f"smtp://127.0.0.1:{port}", "mail_from": "it@contoso.example", "action": "save"},
    )
    unreachable = owner.post("/admin/clients/contoso/mail/test", {"to": "ann@msp.example"})
    assert f"could not reach 127.0.0.1:{port} (nothing answers on that port)" in text_of(
        unreachable
    )

    # An account on a server without STARTTLS: the password is not sent in clear.
    owner.post(
        "/admin/clients/contoso/mail",
        {
            "url": f"smtp://mailer@{client_smtp.host}:{client_smtp.port}",
            "password": SMTP_PASSWORD,
            "mail_from": "it@contoso.example",
            "action": "save",
        },
    )
    clear = owner.post("/admin/clients/contoso/mail/test", {"to": "ann@msp.example"})
    assert "does not offer STARTTLS, so the password would travel in clear" in text_of(clear)
    assert SMTP_PASSWORD.encode() not in clear.data
    assert client_smtp.mailbox.messages == []
    assert [e.detail["ok"] for e in events(services, "client.mail_tested")] == [False] * 3


def test_activation_emails_of_a_client_go_through_its_own_server(
    owner: Console, world: World, services: Blink, client_smtp: SmtpServer
) -> None:
    owner.post(
        "/admin/clients/contoso/mail",
        {"url": client_smtp.url, "mail_from": "it@contoso.example", "action": "save"},
    )
    persona = world.person("dana", None, status=UserStatus.PENDING)
    with services.db.session() as session:
        user = session.get(User, persona.user.id)
        assert user is not None
        invitations.invite(services, session, COMMAND_LINE, user)
    wait_for_jobs(services)
    [received] = client_smtp.mailbox.to("dana@contoso.example")
    assert received.mail_from == "it@contoso.example"
