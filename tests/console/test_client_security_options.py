"""Issue 13: the reset-PIN (and SIM swap) options on the client settings page."""

from __future__ import annotations

import re

from sqlalchemy import select

from blink_sms.context import Blink
from blink_sms.models import Client

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
