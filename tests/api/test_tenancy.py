"""Tenancy over every API operation, generated from the OpenAPI document: an operation
added later is covered without anyone writing a test for it.

A key scoped to client A gets 404 for client B's objects, exactly as for objects that
do not exist; a read-only key gets 403 for every action; and nothing refused leaves a
trace of having acted.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from blink_sms.actors import COMMAND_LINE
from blink_sms.context import Blink
from blink_sms.models import AuditEvent, UserStatus
from blink_sms.services import webhooks
from tests.conftest import World

from .conftest import Api, MakeKey

# A valid body for each operation that takes one, so that the answer is about who asks,
# not about the body. A new operation with a body needs one here (the test says so).
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("post", "/api/v1/clients"): {
        "slug": "new-client",
        "name": "New Client",
        "directory": {"kind": "sandbox", "settings": {"path": "/nonexistent/directory.sqlite"}},
    },
    ("patch", "/api/v1/clients/{slug}"): {"name": "Renamed"},
    ("post", "/api/v1/clients/{slug}/imports"): {"everyone": True},
    ("post", "/api/v1/webhooks"): {"url": "https://psa.example/hook"},
}
# Reads that need more than a read key: webhook addresses can hold the receiver's token.
MANAGERS_ONLY = {"/api/v1/webhooks", "/api/v1/webhooks/{webhook_id}"}


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
    ]


def url(path: str, *, slug: str, user_id: int, webhook_id: int = 0) -> str:
    return (
        path.replace("{slug}", slug)
        .replace("{user_id}", str(user_id))
        .replace("{webhook_id}", str(webhook_id))
    )


def body_for(method: str, path: str, operation: dict[str, Any]) -> dict[str, Any] | None:
    if "requestBody" not in operation:
        return None
    assert (method, path) in BODIES, f"add a valid body for {method.upper()} {path} to BODIES"
    return BODIES[(method, path)]


@pytest.fixture
def document(http: Any) -> dict[str, Any]:
    found: dict[str, Any] = http.get("/api/v1/openapi.json").get_json()
    return found


@pytest.fixture
def two_clients(world: World, services: Blink) -> dict[str, Any]:
    """Contoso (A) with its user and webhook endpoint, Fabrikam (B) with its own."""
    fabrikam = world.another_client("fabrikam")
    mine = world.person("ann", "+14155550101", status=UserStatus.ACTIVE)
    theirs = world.person("ben", "+14155550102", status=UserStatus.ACTIVE, client=fabrikam)
    hooks = {}
    with services.db.session() as session:
        for name, client in (("a", world.client), ("b", fabrikam)):
            row, _ = webhooks.create_endpoint(
                session, services.secrets, COMMAND_LINE,
                url=f"https://psa.{client.slug}.example/hook", client=client,
            )  # fmt: skip
            hooks[name] = row.id
    return {
        "a": world.client,
        "b": fabrikam,
        "a_user": mine.user.id,
        "b_user": theirs.user.id,
        "a_hook": hooks["a"],
        "b_hook": hooks["b"],
    }


def send(key: Api, method: str, target: str, body: dict[str, Any] | None) -> Any:
    return key.request(method.upper(), target, json=body)


def test_a_key_of_client_a_gets_404_for_every_object_of_client_b(
    document: dict[str, Any], two_clients: dict[str, Any], api_key: MakeKey, services: Blink
) -> None:
    a, b = two_clients["a"], two_clients["b"]
    keys = [api_key(client=a, writes=True, name="rw"), api_key(client=a, writes=False, name="ro")]
    checked = 0
    for method, path, operation in operations(document):
        if "{slug}" not in path and "{webhook_id}" not in path:
            continue
        body = body_for(method, path, operation)
        theirs = {"user_id": two_clients["b_user"], "webhook_id": two_clients["b_hook"]}
        targets = [url(path, slug=b.slug, **theirs)]
        if "{webhook_id}" in path:
            targets.append(url(path, slug="", user_id=0, webhook_id=987654))
        elif "{user_id}" in path:  # A's client with B's user is just as unknown
            targets.append(url(path, slug=a.slug, user_id=two_clients["b_user"]))
            targets.append(url(path, slug=a.slug, user_id=987654))
        else:
            targets.append(url(path, slug="no-such-client", user_id=0))
        for key in keys:
            for target in targets:
                answer = send(key, method, target, body)
                assert answer.status_code == 404, (method, target, answer.get_data(as_text=True))
                assert answer.get_json()["detail"].startswith("no such")
                checked += 1
    addressed = [p for _, p, _ in operations(document) if "{slug}" in p or "{webhook_id}" in p]
    assert checked >= 4 * len(addressed)
    # Objects named in a body are scoped too.
    hook = {"url": "https://psa.example/hook", "client": b.slug}
    assert keys[0].post("/api/v1/webhooks", json=hook).status_code == 404
    # Filters that name a client are scoped too.
    for method, path, operation in operations(document):
        names = {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}
        if method == "get" and "client" in names:
            answer = keys[1].get(f"{path}?client={b.slug}")
            assert answer.status_code == 404, path
    with services.db.session() as session:
        acted = session.execute(select(AuditEvent).where(AuditEvent.actor.like("api_key:%"))).all()
    assert acted == []


def test_lists_show_a_client_key_only_its_own_client(
    two_clients: dict[str, Any], api_key: MakeKey, world: World
) -> None:
    key = api_key(client=two_clients["a"], writes=False)
    slugs = [c["slug"] for c in key.get("/api/v1/clients").get_json()["items"]]
    assert slugs == ["contoso"]
    events = key.get("/api/v1/audit-events?limit=200").get_json()["items"]
    assert events and {event["client"] for event in events} == {"contoso"}


@pytest.mark.parametrize("scope", ["msp", "client"])
def test_a_read_only_key_gets_403_for_every_action(
    scope: str,
    document: dict[str, Any],
    two_clients: dict[str, Any],
    api_key: MakeKey,
    services: Blink,
) -> None:
    a = two_clients["a"]
    reader = api_key(client=a if scope == "client" else None, writes=False)
    actions = 0
    mine = {"user_id": two_clients["a_user"], "webhook_id": two_clients["a_hook"]}
    for method, path, operation in operations(document):
        target = url(path, slug=a.slug, **mine)
        if method == "get":
            expected = 403 if path in MANAGERS_ONLY else 200
            assert reader.get(target).status_code == expected, target
            continue
        if scope == "client" and path == "/api/v1/clients":
            continue  # a client's key cannot see that clients can be created: 404 above
        answer = send(reader, method, target, body_for(method, path, operation))
        assert answer.status_code == 403, (method, target, answer.get_data(as_text=True))
        actions += 1
    assert actions >= 10
    with services.db.session() as session:
        acted = session.execute(select(AuditEvent).where(AuditEvent.actor.like("api_key:%"))).all()
    assert acted == []
