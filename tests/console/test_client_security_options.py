"""Issue 13: the reset-PIN (and SIM swap) options on the client settings page."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from sqlalchemy import select, update

from blink_sms.context import Blink
from blink_sms.models import Client, User
from blink_sms.services import pins

from ..conftest import World
from .conftest import Console


def options(page: str) -> dict[str, str]:
    """The settings form's text options as the page shows them, and its language."""
    fields = dict(re.findall(r'<input[^>]*name="([a-z_]+)"[^>]*value="([^"]*)"', page))
    return {**fields, "form": "options", "language": "en"}


def client_row(services: Blink) -> Client:
    with services.db.session() as session:
        return session.execute(select(Client).where(Client.slug == "contoso")).scalar_one()


def test_the_reset_pin_is_set_on_the_settings_page(
    owner: Console, world: World, services: Blink
) -> None:
    page = owner.http.get("/admin/clients/contoso/settings").get_data(as_text=True)
    assert 'name="reset_pin"' in page and 'value="off"' in page
    form = options(page)
    bad = owner.post("/admin/clients/contoso/settings", {**form, "reset_pin": "sometimes"})
    assert bad.status_code == 400 and "must be one of off, optional, required" in bad.get_data(
        as_text=True
    )
    saved = owner.post("/admin/clients/contoso/settings", {**form, "reset_pin": "Required"})
    assert saved.status_code == 303
    assert client_row(services).reset_pin == "required"


def test_the_sim_swap_check_is_set_on_the_settings_page(
    owner: Console, world: World, services: Blink
) -> None:
    page = owner.http.get("/admin/clients/contoso/settings").get_data(as_text=True)
    form = options(page)
    assert (form["sim_swap_policy"], form["sim_swap_days"]) == ("off", "7")
    bad = owner.post("/admin/clients/contoso/settings", {**form, "sim_swap_days": "365"})
    assert bad.status_code == 400 and "from 1 to 90" in bad.get_data(as_text=True)
    saved = owner.post(
        "/admin/clients/contoso/settings",
        {**form, "sim_swap_policy": "block", "sim_swap_days": "14"},
    )
    assert saved.status_code == 303
    client = client_row(services)
    assert (client.sim_swap_policy, client.sim_swap_days) == ("block", 14)


def test_a_users_page_says_whether_their_reset_pin_is_set_or_blocked(
    owner: Console, world: World, services: Blink
) -> None:
    alice = world.person("alice", "+12015550100").user
    page = f"/admin/clients/contoso/users/{alice.id}"

    def says() -> str | None:
        found = re.search(r'id="reset-pin">([^<]*)<', owner.http.get(page).get_data(as_text=True))
        return found.group(1) if found else None

    assert says() is None  # PINs off: no row
    with services.db.session() as session:
        session.execute(update(Client).values(reset_pin="required"))
        session.commit()
    assert says() == "not set: texted resets are refused until the user chooses one (Reset User)"
    with services.db.session() as session:
        user = session.get_one(User, alice.id)
        pins.set_at_enrollment(session, user, "7305", actor="test")
        user.pin_failures = 2
        session.commit()
    assert says() == "set, 2 wrong in the last 24 hours"
    with services.db.session() as session:
        blocked = datetime(2099, 1, 2, 3, 4, tzinfo=UTC)
        session.execute(update(User).values(pin_failures=5, pin_blocked_until=blocked))
        session.commit()
    assert says() == "blocked until 2099-01-02 03:04 UTC after 5 wrong PINs (Reset User clears it)"
