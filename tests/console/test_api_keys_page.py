"""The API keys page: an MSP owner makes a key (shown once), sees its use, revokes it."""

from __future__ import annotations

import re
from collections.abc import Callable

from blink_sms.actors import Role
from blink_sms.context import Blink
from blink_sms.services import api_keys

from ..conftest import World
from .conftest import Console


def test_an_owner_creates_a_key_shown_once_and_revokes_it(
    owner: Console, services: Blink, world: World
) -> None:
    made = owner.post(
        "/admin/api-keys", {"name": "PSA automation", "client": "contoso", "access": "read-write"}
    )
    assert made.status_code == 200
    found = re.search(r"blk_[0-9a-f]{8}_[\w-]{43}", made.text)
    assert found
    key = found.group(0)
    listing = owner.http.get("/admin/api-keys").text
    assert "PSA automation" in listing and "Contoso" in listing and key not in listing
    with services.db.session() as session:
        acting = api_keys.authenticate(session, key)
        assert acting is not None and acting.client_id == world.client.id
    assert "never" not in owner.http.get("/admin/api-keys").text  # last use shown
    key_id = int(re.findall(r"/admin/api-keys/(\d+)/revoke", listing)[0])
    revoked = owner.post(f"/admin/api-keys/{key_id}/revoke", follow_redirects=True)
    assert "revoked" in revoked.text
    with services.db.session() as session:
        assert api_keys.authenticate(session, key) is None


def test_a_key_needs_a_name(owner: Console) -> None:
    response = owner.post("/admin/api-keys", {"name": " ", "access": "read"})
    assert response.status_code == 400 and "name the key" in response.text


def test_only_msp_owners_see_the_keys(console_as: Callable[..., Console]) -> None:
    for role in (Role.MSP_TECHNICIAN, Role.AUDITOR):
        assert console_as(role).http.get("/admin/api-keys").status_code == 404
