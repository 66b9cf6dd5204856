"""The admins page: MSP owners add, change and disable accounts; nobody else sees it."""

from __future__ import annotations

import re
from collections.abc import Callable

from sqlalchemy import select

from blink_sms.actors import Role
from blink_sms.context import Blink
from blink_sms.models import Admin, AdminToken

from ..conftest import World
from .conftest import Console


def test_an_owner_creates_an_admin_with_a_set_up_link_shown_once(
    owner: Console, services: Blink, world: World
) -> None:
    response = owner.post(
        "/admin/admins",
        {"email": "Ann@Contoso.example", "role": "client-admin", "client": "contoso",
         "delivery": "link"},
    )  # fmt: skip
    assert response.status_code == 200
    link = re.search(r"https://sms\.example\.com/admin/setup/[\w-]+", response.text)
    assert link
    token = link.group(0).rsplit("/", 1)[1]
    with services.db.session() as session:
        admin = session.execute(select(Admin).where(Admin.email == "ann@contoso.example")).one()[0]
        assert (admin.role, admin.client_id) == (Role.CLIENT_ADMIN, world.client.id)
        stored = session.execute(select(AdminToken.token_hash)).scalars().all()
    assert token not in stored and len(stored) == 1  # only its hash
    assert token not in owner.http.get("/admin/admins").text  # shown once


def test_bad_input_is_named_and_kept(owner: Console) -> None:
    response = owner.post(
        "/admin/admins", {"email": "tech@msp.example", "role": "client-admin", "delivery": "link"}
    )
    assert response.status_code == 400
    assert 'value="tech@msp.example"' in response.text and "client" in response.text.lower()


def test_an_owner_disables_and_changes_another_admin(
    owner: Console, console_as: Callable[..., Console], services: Blink
) -> None:
    tech = console_as(Role.MSP_TECHNICIAN)
    assert tech.http.get("/admin/").status_code == 200
    owner.post(f"/admin/admins/{tech.admin_id}/disable", {"disabled": "1"})
    assert tech.http.get("/admin/").status_code == 302  # signed out: disabled
    owner.post(f"/admin/admins/{tech.admin_id}/role", {"role": "auditor", "client": ""})
    with services.db.session() as session:
        admin = session.get(Admin, tech.admin_id)
        assert admin is not None and admin.role is Role.AUDITOR and admin.disabled_at
    # The owner cannot remove themself, and is told so.
    refused = owner.post(f"/admin/admins/{owner.admin_id}/remove", follow_redirects=True)
    assert "cannot remove your own account" in refused.text


def test_only_msp_owners_see_the_admins_page(console_as: Callable[..., Console]) -> None:
    for role in (Role.MSP_TECHNICIAN, Role.AUDITOR):
        assert console_as(role).http.get("/admin/admins").status_code == 404
