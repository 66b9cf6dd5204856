"""The client pages: the add wizard, the settings page, disable and remove.

Everything through HTTP as a signed-in admin: what the page says, and what changed in
the database and the audit trail. Secrets are typed into forms and must never come back
in any page.
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from blink_sms.actors import COMMAND_LINE, Role
from blink_sms.context import Blink
from blink_sms.models import AuditEvent, Client, ResetRequest
from blink_sms.services import clients

from ..conftest import Persona, World, reply_text
from .conftest import Console

BIND_PASSWORD = "Bind-Pa55word-7f3c!"
NEW_PASSWORD = "Rotated-Pa55word-91e2?"


def closed_port() -> int:
    """A loopback port nothing listens on: a domain controller that is not there."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stored(services: Blink, slug: str) -> Client | None:
    with services.db.session() as session:
        client = session.execute(select(Client).where(Client.slug == slug)).scalar_one_or_none()
        if client is not None:
            session.expunge(client)
        return client


def settings_of(services: Blink, slug: str) -> dict[str, Any]:
    client = stored(services, slug)
    assert client is not None
    return clients.directory_settings(services.secrets, client)


def events(services: Blink, action: str) -> list[AuditEvent]:
    with services.db.session() as session:
        return list(
            session.execute(select(AuditEvent).where(AuditEvent.action == action)).scalars()
        )


def text_of(response: Any) -> str:
    return str(response.get_data(as_text=True))


def hidden(body: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', body)
    assert match, f"no hidden {name}"
    return match.group(1)


STEP1 = {
    "directory_kind": "sandbox",
    "name": "Northwind Traders",
    "slug": "",
    "sender_number": "+15005550009",
    "default_region": "US",
    "language": "en",
    "support_contact": "Northwind IT, +1 555 0199",
}


def ad_client(services: Blink, slug: str = "adatum") -> Client:
    """An Active Directory client with a service-account password, through the service."""
    with services.db.session() as session:
        client = clients.create_client(
            session,
            services.secrets,
            COMMAND_LINE,
            slug=slug,
            name=slug.title(),
            directory_kind="active_directory",
            directory_settings={
                "hosts": [f"127.0.0.1:{closed_port()}"],
                "bind_user": "svc-blink@adatum.example",
                "bind_password": BIND_PASSWORD,
                "base_dn": "DC=adatum,DC=example",
                "connect_timeout": 1,
            },
            support_contact="Adatum IT",
        )
        session.commit()
        session.expunge(client)
        return client


# --- the add wizard ----------------------------------------------------------------------------


def test_an_owner_adds_a_sandbox_client_with_the_wizard(
    owner: Console, services: Blink, tmp_path: Path
) -> None:
    first = owner.http.get("/admin/clients/new")
    assert first.status_code == 200
    assert "Sandbox directory" in text_of(first) and "Active Directory" in text_of(first)

    step2 = owner.post("/admin/clients/new", {**STEP1, "action": "next"})
    body = text_of(step2)
    assert step2.status_code == 200
    assert 'value="northwind-traders"' in body  # the slug suggested from the name
    assert 'name="dir_path"' in body and "Directory file" in body  # generated from the schema
    assert '<details class="advanced"' in body and "Password hash cost" in body

    form = {**STEP1, "slug": "northwind-traders", "carried_kind": "sandbox"}
    form["dir_path"] = str(tmp_path / "northwind.sqlite")
    tested = owner.post("/admin/clients/new", {**form, "action": "test"})
    assert tested.status_code == 200
    assert "no problems" in text_of(tested) and "the directory answers" in text_of(tested)
    assert stored(services, "northwind-traders") is None  # a test saves nothing

    saved = owner.post("/admin/clients/new", {**form, "dir_complexity": "on", "action": "save"})
    assert saved.status_code == 303
    assert saved.headers["Location"].endswith("/admin/clients/northwind-traders")
    client = stored(services, "northwind-traders")
    assert client is not None
    assert (client.name, client.sender_number, client.support_contact) == (
        "Northwind Traders",
        "+15005550009",
        "Northwind IT, +1 555 0199",
    )
    assert settings_of(services, "northwind-traders") == {
        "path": str(tmp_path / "northwind.sqlite"),
        "complexity": True,
    }
    [created] = [e for e in events(services, "client.created") if e.client_id == client.id]
    assert created.actor.endswith(owner.email)
    overview = owner.http.get(saved.headers["Location"])
    assert "Northwind Traders added" in text_of(overview)


def test_a_bad_setting_names_the_field_and_keeps_what_was_typed(
    owner: Console, services: Blink, tmp_path: Path
) -> None:
    form = {**STEP1, "slug": "northwind", "carried_kind": "sandbox", "action": "save"}
    form["dir_path"] = str(tmp_path / "northwind.sqlite")
    response = owner.post("/admin/clients/new", {**form, "dir_lockout_threshold": "five"})
    body = text_of(response)
    assert response.status_code == 400
    assert "Bad passwords before a lockout" in body and "is not a number" in body
    assert 'id="dir_lockout_threshold-error"' in body
    assert f'value="{tmp_path / "northwind.sqlite"}"' in body  # what was typed is kept
    assert 'value="five"' in body and 'value="Northwind Traders"' in body
    assert stored(services, "northwind") is None

    # A detail refused by the service (the slug is taken) opens the details again.
    taken = owner.post("/admin/clients/new", {**form, "slug": "contoso"})
    body = text_of(taken)
    assert taken.status_code == 400
    assert "exists already" in body and 'id="slug-error"' in body
    assert '<details class="summary-details" open>' in body
    assert f'value="{tmp_path / "northwind.sqlite"}"' in body


def test_test_connection_shows_a_problem_for_a_wrong_sandbox_path(
    owner: Console, services: Blink
) -> None:
    form = {**STEP1, "slug": "northwind", "carried_kind": "sandbox", "action": "test"}
    response = owner.post("/admin/clients/new", {**form, "dir_path": "/no/such/folder/x.sqlite"})
    body = text_of(response)
    assert response.status_code == 200
    assert "1 problem" in body and 'class="badge bad">problem' in body
    assert "does not exist" in body
    assert 'value="/no/such/folder/x.sqlite"' in body
    assert stored(services, "northwind") is None


def test_an_ad_password_typed_in_the_wizard_is_never_shown_and_is_carried_sealed(
    owner: Console, services: Blink, world: World
) -> None:
    port = closed_port()
    form = {
        **STEP1,
        "directory_kind": "active_directory",
        "carried_kind": "active_directory",
        "slug": "adatum",
        "dir_hosts": f"127.0.0.1:{port}",
        "dir_bind_user": "svc-blink@adatum.example",
        "dir_bind_password": BIND_PASSWORD,
        "dir_base_dn": "DC=adatum,DC=example",
        "dir_connect_timeout": "1",
        "dir_protect_admins": "on",
        "dir_verify_tls": "on",
    }
    tested = owner.post("/admin/clients/new", {**form, "action": "test"})
    body = text_of(tested)
    assert tested.status_code == 200
    assert 'class="badge bad">problem' in body and f"127.0.0.1:{port}" in body
    assert BIND_PASSWORD not in body  # neither in the field nor anywhere else
    assert "leave empty to keep it" in body
    sealed = hidden(body, "sealed")

    # Back to step 1, from a form with the password typed again: it is sealed, not shown.
    back = owner.post("/admin/clients/new", {**form, "action": "back"})
    assert BIND_PASSWORD not in text_of(back)
    assert 'name="dir_bind_user" value="svc-blink@adatum.example"' in text_of(back)
    assert hidden(text_of(back), "sealed") != sealed
    # Next: step 2 again, the password kept but not shown.
    step1 = {key: value for key, value in form.items() if not key.startswith("dir_")}
    carried = dict(re.findall(r'name="(dir_\w+)" value="([^"]*)"', text_of(back)))
    again = owner.post(
        "/admin/clients/new",
        {**step1, **carried, "sealed": hidden(text_of(back), "sealed"), "action": "next"},
    )
    assert BIND_PASSWORD not in text_of(again) and "leave empty to keep it" in text_of(again)
    assert 'value="DC=adatum,DC=example"' in text_of(again)
    # The password box left empty: the sealed one is used.
    saved = owner.post(
        "/admin/clients/new",
        {
            **form,
            "dir_bind_password": "",
            "sealed": hidden(text_of(again), "sealed"),
            "action": "save",
        },
    )
    assert saved.status_code == 303, text_of(saved)
    assert settings_of(services, "adatum")["bind_password"] == BIND_PASSWORD


def test_a_sealed_password_is_worth_nothing_to_another_admin_or_later(
    owner: Console, services: Blink
) -> None:
    from console import directory_form

    form = {
        **STEP1,
        "directory_kind": "active_directory",
        "carried_kind": "active_directory",
        "slug": "adatum",
        "dir_hosts": "dc1.adatum.example",
        "dir_bind_user": "svc",
        "dir_bind_password": "",
        "dir_base_dn": "DC=adatum,DC=example",
        "action": "save",
    }
    secret = {"bind_password": BIND_PASSWORD}
    someone_elses = directory_form.seal(
        services.secrets, owner.admin_id + 1, "active_directory", secret
    )
    for_sandbox = directory_form.seal(services.secrets, owner.admin_id, "sandbox", secret)
    stored_settings = services.secrets.encrypt_json(secret)  # like a client's column
    for sealed in (someone_elses, for_sandbox, stored_settings):
        refused = owner.post("/admin/clients/new", {**form, "sealed": sealed})
        assert refused.status_code == 400
        assert "Service account password: a value is required" in text_of(refused)
    expired = services.secrets.encrypt_json(
        {
            "purpose": directory_form.SEAL_PURPOSE,
            "admin": owner.admin_id,
            "kind": "active_directory",
            "secrets": secret,
            "at": int(time.time()) - directory_form.SEAL_SECONDS - 1,
        }
    )
    assert owner.post("/admin/clients/new", {**form, "sealed": expired}).status_code == 400
    assert stored(services, "adatum") is None


def test_a_technician_may_onboard(
    console_as: Callable[..., Console], services: Blink, tmp_path: Path
) -> None:
    technician = console_as(Role.MSP_TECHNICIAN)
    form = {**STEP1, "slug": "northwind", "carried_kind": "sandbox", "action": "save"}
    saved = technician.post("/admin/clients/new", {**form, "dir_path": str(tmp_path / "n.db")})
    assert saved.status_code == 303
    assert stored(services, "northwind") is not None


def test_a_client_admin_may_not_create_clients_nor_see_the_wizard(
    console_as: Callable[..., Console], world: World, services: Blink, tmp_path: Path
) -> None:
    admin = console_as(Role.CLIENT_ADMIN, world.client)
    assert admin.http.get("/admin/clients/new").status_code == 404
    form = {**STEP1, "slug": "northwind", "carried_kind": "sandbox", "action": "save"}
    refused = admin.post("/admin/clients/new", {**form, "dir_path": str(tmp_path / "n.db")})
    assert refused.status_code == 404
    assert stored(services, "northwind") is None
    assert "Add a client" not in text_of(admin.http.get("/admin/clients/contoso"))


def test_an_auditor_may_not_onboard(
    console_as: Callable[..., Console], world: World, services: Blink, tmp_path: Path
) -> None:
    auditor = console_as(Role.AUDITOR)
    assert auditor.http.get("/admin/clients/new").status_code == 404
    form = {**STEP1, "slug": "northwind", "carried_kind": "sandbox", "action": "save"}
    refused = auditor.post("/admin/clients/new", {**form, "dir_path": str(tmp_path / "n.db")})
    assert refused.status_code == 403
    assert stored(services, "northwind") is None


# --- the settings page -------------------------------------------------------------------------


def test_options_are_saved_and_a_bad_one_comes_back_with_what_was_typed(
    owner: Console, world: World, services: Blink
) -> None:
    page = owner.http.get("/admin/clients/contoso/settings")
    assert page.status_code == 200 and 'value="Contoso IT, +1 555 0100"' in text_of(page)
    options = {
        "form": "options",
        "name": "Contoso Ltd",
        "support_contact": "Contoso IT",
        "sender_number": "+15005550006",
        "messaging_service_sid": "",
        "default_region": "US",
        "language": "en",
        "password_length": "14",
        "resets_per_hour": "3",
        "resets_per_day": "10",
        "unlock_on_reset": "on",
        "lockout_watch": "on",
        "reset_notices": "on",
        "expiry_reminder_days": "3, 7,1",
        "allowed_countries": "us, ca",
    }
    bad = owner.post("/admin/clients/contoso/settings", {**options, "resets_per_hour": "500"})
    assert bad.status_code == 400
    assert "Resets per user per hour" in text_of(bad) and "from 1 to 100" in text_of(bad)
    assert 'value="Contoso Ltd"' in text_of(bad) and 'value="500"' in text_of(bad)
    assert stored(services, "contoso").name == "Contoso"  # type: ignore[union-attr]

    saved = owner.post("/admin/clients/contoso/settings", options)
    assert saved.status_code == 303
    client = stored(services, "contoso")
    assert client is not None
    assert (client.name, client.password_length, client.must_change_at_next_logon) == (
        "Contoso Ltd",
        14,
        False,  # its box was not ticked
    )
    [event] = events(services, "client.updated")
    assert set(event.detail["fields"]) == {
        "name",
        "support_contact",
        "password_length",
        "must_change_at_next_logon",
        "expiry_reminder_days",
        "allowed_countries",
    }
    assert client.expiry_reminder_days == "7,3,1"  # normalised, largest first
    assert client.allowed_countries == "CA,US"  # normalised, sorted


def test_secrets_never_appear_in_any_page(owner: Console, services: Blink, world: World) -> None:
    ad_client(services)
    pages = [
        owner.http.get("/admin/clients/adatum/settings"),
        owner.http.get("/admin/clients/adatum"),
        owner.http.get("/admin/clients/adatum/branding"),
        owner.http.get("/admin/clients/adatum/mail"),
        owner.post("/admin/clients/adatum/test"),
        owner.post("/admin/clients/adatum/settings", {"form": "directory", "dir_hosts": "x:y"}),
        owner.post("/admin/clients/adatum/rotate-secret", {}),
        owner.post("/admin/clients/adatum/remove", {"confirm": "nope"}),
    ]
    for response in pages:
        assert response.status_code in (200, 400), response.request.path
        assert BIND_PASSWORD.encode() not in response.data, response.request.path
    settings_page = text_of(pages[0])
    assert 'name="dir_bind_password" type="password" autocomplete="new-password" value=""' in (
        settings_page
    )
    assert "Leave empty to keep the current one" in settings_page
    assert 'value="svc-blink@adatum.example"' in settings_page  # the rest is shown


def test_directory_settings_keep_the_secret_left_empty(
    owner: Console, services: Blink, world: World
) -> None:
    ad_client(services)
    form = {
        "form": "directory",
        "dir_hosts": "dc1.adatum.example dc2.adatum.example",
        "dir_bind_user": "svc-blink@adatum.example",
        "dir_bind_password": "",
        "dir_base_dn": "DC=adatum,DC=example",
        "dir_user_attribute": "sAMAccountName",
        "dir_protect_admins": "on",
        "dir_verify_tls": "on",
    }
    saved = owner.post("/admin/clients/adatum/settings", form)
    assert saved.status_code == 303
    settings = settings_of(services, "adatum")
    assert settings["hosts"] == ["dc1.adatum.example", "dc2.adatum.example"]
    assert settings["bind_password"] == BIND_PASSWORD
    [event] = events(services, "client.directory_changed")
    assert event.detail["rotated"] == [] and "bind_password" not in event.detail["settings"]

    bad = owner.post("/admin/clients/adatum/settings", {**form, "dir_base_dn": "adatum"})
    assert bad.status_code == 400
    assert "&#39;base_dn&#39; must be a DN" in text_of(bad) and 'id="dir_base_dn-error"' in text_of(
        bad
    )
    assert 'value="adatum"' in text_of(bad)


def test_rotating_the_secret_changes_only_the_secret_and_audits_no_value(
    owner: Console, services: Blink, world: World
) -> None:
    ad_client(services)
    before = settings_of(services, "adatum")
    empty = owner.post("/admin/clients/adatum/rotate-secret", {"dir_bind_password": ""})
    assert empty.status_code == 400 and "type the new secret" in text_of(empty)

    rotated = owner.post("/admin/clients/adatum/rotate-secret", {"dir_bind_password": NEW_PASSWORD})
    assert rotated.status_code == 303
    after = settings_of(services, "adatum")
    assert after == {**before, "bind_password": NEW_PASSWORD}
    page = owner.http.get(rotated.headers["Location"])
    assert "New Service account password saved" in text_of(page)
    assert NEW_PASSWORD not in text_of(page)
    [event] = events(services, "client.directory_changed")
    assert event.detail["rotated"] == ["bind_password"] and event.detail["settings"] == []
    assert NEW_PASSWORD not in str(event.detail) and BIND_PASSWORD not in str(event.detail)


def test_test_connection_of_the_stored_settings_shows_each_finding(
    owner: Console, services: Blink, world: World
) -> None:
    ok = owner.post("/admin/clients/contoso/test")
    assert ok.status_code == 200 and "no problems" in text_of(ok)
    ad_client(services)
    bad = owner.post("/admin/clients/adatum/test")
    assert bad.status_code == 200
    assert 'class="badge bad">problem' in text_of(bad) and "unreachable" in text_of(bad)


def test_a_disabled_clients_user_who_texts_reset_is_told_and_nothing_reaches_the_directory(
    owner: Console,
    services: Blink,
    alice: Persona,
    text_gateway: Callable[..., Any],
    twilio: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    page = owner.http.get("/admin/clients/contoso/settings")
    assert "text RESET or UNLOCK get a text saying" in text_of(page)
    disabled = owner.post("/admin/clients/contoso/disable", {"disabled": "1"})
    assert disabled.status_code == 303
    assert stored(services, "contoso").disabled_at is not None  # type: ignore[union-attr]
    assert "nothing reaches the directory" in text_of(owner.http.get("/admin/clients/contoso"))

    def no_directory(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a disabled client's directory was called")

    monkeypatch.setattr(services.directories, "for_client", no_directory)
    reply = reply_text(text_gateway(alice.phone, "RESET"))
    assert reply is not None and "turned off for your organisation" in reply
    assert "Contoso IT" in reply
    with services.db.session() as session:
        assert session.execute(select(ResetRequest)).first() is None

    enabled = owner.post("/admin/clients/contoso/disable", {"disabled": "0"})
    assert enabled.status_code == 303
    assert stored(services, "contoso").disabled_at is None  # type: ignore[union-attr]
    assert [e.action for e in events(services, "client.disabled")] == ["client.disabled"]
    assert len(events(services, "client.enabled")) == 1


def test_removing_a_client_needs_its_slug_typed_and_keeps_the_audit_trail(
    owner: Console, services: Blink, world: World, alice: Persona
) -> None:
    wrong = owner.post("/admin/clients/contoso/remove", {"confirm": "Contoso"})
    assert wrong.status_code == 400
    assert "type the client&#39;s slug (contoso) to confirm" in text_of(wrong)
    assert stored(services, "contoso") is not None

    removed = owner.post("/admin/clients/contoso/remove", {"confirm": "contoso"})
    assert removed.status_code == 303 and removed.headers["Location"].endswith("/admin/")
    assert stored(services, "contoso") is None
    home = owner.http.get("/admin/")
    assert "Contoso removed" in text_of(home) and "audit trail is kept" in text_of(home)
    [event] = events(services, "client.removed")
    assert event.detail["slug"] == "contoso" and event.actor.endswith(owner.email)
    assert events(services, "client.created")  # the older events are still there


def test_a_client_admin_cannot_use_the_settings_page(
    console_as: Callable[..., Console], world: World, fabrikam: Client, services: Blink
) -> None:
    contoso_admin = console_as(Role.CLIENT_ADMIN, world.client)
    assert contoso_admin.http.get("/admin/clients/contoso/settings").status_code == 403
    assert contoso_admin.http.get("/admin/clients/fabrikam/settings").status_code == 404
    for path in ("settings", "test", "rotate-secret", "disable", "remove"):
        assert contoso_admin.post(f"/admin/clients/fabrikam/{path}", {}).status_code == 404
    assert contoso_admin.post("/admin/clients/contoso/disable", {}).status_code == 403


# Each Console in its own test: the test's app context (and so flask.g, where the CSRF
# token of a request is cached) is shared by every test client of one test.
def test_an_auditor_cannot_change_a_clients_settings(
    console_as: Callable[..., Console], world: World, services: Blink
) -> None:
    auditor = console_as(Role.AUDITOR)
    for path in ("settings", "test", "rotate-secret", "disable", "remove"):
        response = auditor.post(f"/admin/clients/contoso/{path}", {"confirm": "contoso"})
        assert response.status_code == 403, path
    client = stored(services, "contoso")
    assert client is not None and client.disabled_at is None
