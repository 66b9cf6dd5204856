"""The client's page shows its lockout watch: how the last poll went, why, and how many
accounts are locked now."""

from __future__ import annotations

import responses

from blink_sms.context import Blink
from blink_sms.services import lockout_watch
from tests.conftest import ACCOUNT_SID, Persona, World
from tests.support.fake_twilio import FakeTwilio

from .conftest import Console


def test_the_client_page_shows_the_lockout_watch(
    owner: Console, world: World, alice: Persona, services: Blink
) -> None:
    before = owner.http.get("/admin/clients/contoso").get_data(as_text=True)
    assert "Lockout watch" in before and "waiting" in before and "No poll yet." in before

    world.lock(alice.username)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        FakeTwilio(ACCOUNT_SID).install(rsps)
        lockout_watch.poll(services, world.client.id)
    world.directory.set_outage(1)
    lockout_watch.poll(services, world.client.id)

    page = owner.http.get("/admin/clients/contoso").get_data(as_text=True)
    assert "failing" in page and "1 locked now" in page and "did not answer" in page
