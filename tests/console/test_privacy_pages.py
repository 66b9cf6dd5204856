"""The console's GDPR actions on a user's page, the MSP's settings page, and the audit
trail's JSON-lines export."""

from __future__ import annotations

import json
from collections.abc import Callable

from sqlalchemy import select

from blink_sms.actors import Role
from blink_sms.context import Blink
from blink_sms.models import AuditEvent, Client, User, UserStatus
from blink_sms.services import retention

from ..conftest import Persona, World
from .conftest import Console


def user_row(services: Blink, user_id: int) -> User:
    with services.db.session() as session:
        return session.get_one(User, user_id)


def actions_about(services: Blink, user_id: int) -> list[str]:
    with services.db.session() as session:
        query = select(AuditEvent.action).where(AuditEvent.user_id == user_id)
        return list(session.execute(query.order_by(AuditEvent.id)).scalars())


def test_a_client_admin_exports_and_erases_a_user_from_their_page(
    console_as: Callable[..., Console], world: World, alice: Persona, services: Blink
) -> None:
    admin = console_as(Role.CLIENT_ADMIN, world.client)
    page_path = f"/admin/clients/contoso/users/{alice.user.id}"
    page = admin.http.get(page_path).text
    assert "Export data (JSON)" in page and "Erase personal data" in page
    exported = admin.http.get(f"{page_path}/export.json")
    assert exported.status_code == 200 and exported.mimetype == "application/json"
    assert "attachment" in exported.headers["Content-Disposition"]
    data = json.loads(exported.text)
    assert data["user"]["username"] == "alice" and data["user"]["phone"] == alice.phone

    refused = admin.post(f"{page_path}/erase", {"confirm": "alic"}, follow_redirects=True)
    assert "Nothing erased: type the username (alice)" in refused.text
    assert user_row(services, alice.user.id).username == "alice"

    erased = admin.post(f"{page_path}/erase", {"confirm": " alice "})
    assert erased.status_code == 303 and erased.location.endswith(page_path)
    shown = admin.http.get(page_path).text
    assert f"erased-{alice.user.id}" in shown and "+155" not in shown and "alice@" not in shown
    row = user_row(services, alice.user.id)
    assert row.phone is None and row.email is None and row.status is UserStatus.DISABLED
    assert actions_about(services, alice.user.id)[-2:] == ["user.exported", "user.erased"]


def test_another_clients_user_is_a_404_and_an_auditor_is_refused(
    console_as: Callable[..., Console], world: World, fabrikam: Client, alice: Persona
) -> None:
    zed = world.person("zed", "+15551230032", client=fabrikam)
    contoso_admin = console_as(Role.CLIENT_ADMIN, world.client)
    theirs = f"/admin/clients/fabrikam/users/{zed.user.id}"
    assert contoso_admin.http.get(f"{theirs}/export.json").status_code == 404
    assert contoso_admin.post(f"{theirs}/erase", {"confirm": "zed"}).status_code == 404
    # Fabrikam's user through Contoso's address: the same 404.
    mixed = f"/admin/clients/contoso/users/{zed.user.id}/export.json"
    assert contoso_admin.http.get(mixed).status_code == 404
    auditor = console_as(Role.AUDITOR)
    mine = f"/admin/clients/contoso/users/{alice.user.id}"
    assert "Erase personal data" not in auditor.http.get(mine).text
    assert auditor.http.get(f"{mine}/export.json").status_code == 403
    assert auditor.post(f"{mine}/erase", {"confirm": "alice"}).status_code == 403


def test_msp_owners_set_the_audit_retention_on_the_settings_page(
    console_as: Callable[..., Console], owner: Console, world: World, services: Blink
) -> None:
    assert 'href="/admin/settings"' in owner.http.get("/admin/").text
    page = owner.http.get("/admin/settings").text
    assert 'value="400"' in page and "Save" in page
    saved = owner.post("/admin/settings", {"audit_retention_days": "90"}, follow_redirects=True)
    assert "Audit events are kept 90 days" in saved.text
    with services.db.session() as session:
        assert retention.audit_retention_days(session) == 90
    for typed in ("7", "ninety", ""):
        bad = owner.post("/admin/settings", {"audit_retention_days": typed})
        assert bad.status_code == 400 and "Keep audit events" in bad.text
    technician = console_as(Role.MSP_TECHNICIAN)
    assert "Only MSP owners" in technician.http.get("/admin/settings").text
    assert technician.post("/admin/settings", {"audit_retention_days": "60"}).status_code == 403
    client_admin = console_as(Role.CLIENT_ADMIN, world.client)
    assert client_admin.http.get("/admin/settings").status_code == 404
    assert 'href="/admin/settings"' not in client_admin.http.get("/admin/").text
    with services.db.session() as session:
        assert retention.audit_retention_days(session) == 90


def test_the_audit_page_exports_json_lines_of_what_the_admin_may_see(
    console_as: Callable[..., Console], world: World, fabrikam: Client, alice: Persona
) -> None:
    contoso_admin = console_as(Role.CLIENT_ADMIN, world.client)
    assert "/admin/audit.jsonl" in contoso_admin.http.get("/admin/audit").text
    response = contoso_admin.http.get("/admin/audit.jsonl")
    assert response.status_code == 200 and "attachment" in response.headers["Content-Disposition"]
    lines = [json.loads(line) for line in response.text.splitlines()]
    assert lines and {line["client"] for line in lines} == {"contoso"}
    assert contoso_admin.http.get("/admin/audit.jsonl?client=fabrikam").status_code == 404
    assert contoso_admin.http.get("/admin/audit.jsonl?outcome=maybe").status_code == 400
