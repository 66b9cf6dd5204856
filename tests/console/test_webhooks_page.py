"""The Webhooks page: MSP staff manage every endpoint, a client admin their client's own;
the signing secret is shown once; a test event's delivery shows in the listing."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest

from blink_sms.actors import Role
from blink_sms.context import Blink
from blink_sms.models import Client, WebhookEndpoint
from blink_sms.services import webhook_sender
from tests.blink_sms.test_webhooks import Receiver, verify

from ..conftest import World
from .conftest import Console

SECRET = re.compile(r"whsec_[\w-]{43}")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.stop()


def endpoint_ids(page: str) -> list[int]:
    return [int(found) for found in re.findall(r"/admin/webhooks/(\d+)/test", page)]


def test_an_owner_adds_an_endpoint_sees_the_secret_once_and_sends_a_test(
    owner: Console, services: Blink, world: World, receiver: Receiver
) -> None:
    made = owner.post("/admin/webhooks", {"url": receiver.url(), "description": "Autotask"})
    assert made.status_code == 200
    found = SECRET.search(made.text)
    assert found
    secret = found.group(0)
    listing = owner.http.get("/admin/webhooks").text
    assert receiver.url() in listing and "Autotask" in listing and "every client" in listing
    assert secret not in listing and "none yet" in listing
    [endpoint_id] = endpoint_ids(listing)
    tested = owner.post(f"/admin/webhooks/{endpoint_id}/test", follow_redirects=True)
    assert "Test event queued" in tested.text
    task = webhook_sender.Sender()
    assert task(services) == 1
    task.drain()
    [request] = receiver.received
    assert request.json["type"] == "webhook.test" and request.json["client"] is None
    assert verify(secret, request.headers["Blink-Signature"], request.body)
    listing = owner.http.get("/admin/webhooks").text
    assert "delivered" in listing and "webhook.test" in listing


def test_an_owner_adds_one_clients_endpoint_with_chosen_events(
    owner: Console, services: Blink, world: World
) -> None:
    made = owner.post(
        "/admin/webhooks",
        {
            "url": "https://psa.example.com/hook",
            "client": "contoso",
            "events": ["reset.failed", "unlock.failed"],
        },
    )
    assert made.status_code == 200 and SECRET.search(made.text)
    with services.db.session() as session:
        [row] = session.query(WebhookEndpoint).all()
        assert row.client_id == world.client.id and row.events == ["reset.failed", "unlock.failed"]
    assert "reset.failed, unlock.failed" in owner.http.get("/admin/clients/contoso/webhooks").text


def test_a_bad_address_is_refused_with_the_reason(owner: Console) -> None:
    refused = owner.post("/admin/webhooks", {"url": "http://psa.example.com/hook"})
    assert refused.status_code == 400 and "https is required" in refused.text
    assert not SECRET.search(refused.text)
    assert 'value="http://psa.example.com/hook"' in refused.text  # kept to correct


def test_a_client_admin_manages_only_their_clients_endpoints(
    owner: Console, console_as: Callable[..., Console], world: World, fabrikam: Client
) -> None:
    owner.post("/admin/webhooks", {"url": "https://msp.example.com/all"})
    owner.post("/admin/webhooks", {"url": "https://psa.fabrikam.example/f", "client": "fabrikam"})
    admin = console_as(Role.CLIENT_ADMIN, world.client)
    home = admin.http.get("/admin/webhooks")
    assert home.status_code == 302 and home.location.endswith("/admin/clients/contoso/webhooks")
    assert (
        admin.post("/admin/webhooks", {"url": "https://psa.contoso.example/x"}).status_code == 404
    )
    made = admin.post("/admin/clients/contoso/webhooks", {"url": "https://psa.contoso.example/x"})
    assert made.status_code == 200 and SECRET.search(made.text)
    page = admin.http.get("/admin/clients/contoso/webhooks").text
    assert "psa.contoso.example" in page
    assert "msp.example.com" not in page and "fabrikam" not in page.lower()
    [mine] = endpoint_ids(page)
    back = {"back": "contoso"}
    paused = admin.post(f"/admin/webhooks/{mine}/disable", back, follow_redirects=True)
    assert "Endpoint paused" in paused.text and "paused" in paused.text
    again = admin.post(f"/admin/webhooks/{mine}/disable", back, follow_redirects=True)
    assert "disabled already" in again.text
    enabled = admin.post(f"/admin/webhooks/{mine}/enable", back, follow_redirects=True)
    assert "Endpoint enabled" in enabled.text
    removed = admin.post(f"/admin/webhooks/{mine}/remove", back, follow_redirects=True)
    assert "Endpoint removed" in removed.text and "psa.contoso.example" not in removed.text
    everything = owner.http.get("/admin/webhooks").text
    assert "msp.example.com" in everything and "Fabrikam" in everything


def test_auditors_do_not_see_the_page_and_staff_see_the_link(
    console_as: Callable[..., Console], world: World
) -> None:
    assert console_as(Role.AUDITOR).http.get("/admin/webhooks").status_code == 404
    technician = console_as(Role.MSP_TECHNICIAN)
    page = technician.http.get("/admin/webhooks")
    assert page.status_code == 200 and 'href="/admin/webhooks"' in page.text
    client_admin = console_as(Role.CLIENT_ADMIN, world.client)
    assert 'href="/admin/webhooks"' in client_admin.http.get("/admin/account").text
    assert 'href="/admin/webhooks"' not in console_as(Role.AUDITOR).http.get("/admin/").text
