"""The REST API's conventions: keys, problems, cursors, Idempotency-Key, the rate limit."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from openapi_spec_validator import validate
from sqlalchemy import func, select, update

from blink_sms.actors import COMMAND_LINE
from blink_sms.app import create_app
from blink_sms.context import Blink
from blink_sms.models import AuditEvent, IdempotencyKey, ResetRequest, User, UserStatus, utcnow
from blink_sms.services import api_keys, pins
from blink_sms.settings import Settings
from tests.conftest import Persona, World, wait_for_jobs
from tests.support.fake_twilio import FakeTwilio
from tests.support.worker import password_in

from .conftest import Api, MakeKey

PROBLEM = "application/problem+json"


def problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.content_type == PROBLEM
    body: dict[str, Any] = response.get_json(force=True)
    assert body["status"] == status and body["title"] and body["type"]
    return body


def test_the_openapi_document_is_valid_3_1_and_documents_every_operation(
    app: Flask, http: Any
) -> None:
    document = http.get("/api/v1/openapi.json").get_json()
    validate(document)
    assert document["openapi"].startswith("3.1")
    documented = {
        (method.upper(), path)
        for path, operations in document["paths"].items()
        for method in operations
    }
    served = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/") or rule.endpoint in ("api.openapi", "api.docs"):
            continue
        path = rule.rule
        for name in rule.arguments:
            path = path.replace(f"<{name}>", f"{{{name}}}")
            path = path.replace(f"<int:{name}>", f"{{{name}}}")
        served |= {(method, path) for method in rule.methods - {"HEAD", "OPTIONS"}}
    assert served == documented
    # Errors are documented as problem details.
    for operations in document["paths"].values():
        for operation in operations.values():
            for status, answer in operation["responses"].items():
                if status.startswith("4"):
                    assert list(answer["content"]) == [PROBLEM], (status, operation["operationId"])
    assert http.get("/api/v1/docs").status_code == 200


def test_no_key_a_wrong_key_and_a_revoked_key_get_401(
    world: World, services: Blink, http: Any, api_key: MakeKey
) -> None:
    body = problem(http.get("/api/v1/clients"), 401)
    assert "Bearer" in body["detail"]
    assert http.get("/api/v1/clients").headers["WWW-Authenticate"].startswith("Bearer")
    good = api_key()
    assert good.get("/api/v1/clients").status_code == 200
    wrong = Api(http, good.key[:-2] + ("AA" if not good.key.endswith("AA") else "BB"))
    problem(wrong.get("/api/v1/clients"), 401)
    with services.db.session() as session:
        identity = api_keys.identify(session, good.key)
        assert identity is not None
        api_keys.revoke_key(session, COMMAND_LINE, identity.key_id)
    problem(good.get("/api/v1/clients"), 401)


def test_me_says_what_the_key_may_do(world: World, api_key: MakeKey) -> None:
    reader = api_key(client=world.client, writes=False, name="BI")
    assert reader.get("/api/v1/me").get_json() == {
        "key": reader.get("/api/v1/me").get_json()["key"],
        "role": "auditor",
        "client": "contoso",
        "writes": False,
    }
    assert api_key().get("/api/v1/me").get_json()["role"] == "msp-technician"


def test_bad_input_is_a_problem_naming_each_field_and_nothing_is_written(
    world: World, services: Blink, msp: Api
) -> None:
    body = problem(msp.post("/api/v1/clients", json={"slug": "x", "nmae": "typo"}), 422)
    fields = {error["field"] for error in body["errors"]}
    assert {"name", "directory", "nmae"} <= fields
    body = problem(
        msp.post(
            "/api/v1/clients",
            json={
                "slug": "Not A Slug",
                "name": "Fabrikam",
                "directory": {"kind": "sandbox", "settings": {"path": "/tmp/x.sqlite"}},
            },
        ),
        422,
    )
    assert body["errors"][0]["field"] == "slug"
    problem(msp.patch("/api/v1/clients/contoso", json={"resets_per_hour": -1}), 422)
    problem(msp.get("/api/v1/clients?limit=0"), 422)
    problem(msp.get("/api/v1/clients/contoso/users?state=sleeping"), 422)
    problem(msp.get("/api/v1/audit-events?since=yesterday"), 422)
    with services.db.session() as session:
        assert session.execute(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action == "client.created", AuditEvent.client_id != world.client.id
        )).scalar_one() == 0  # fmt: skip
    problem(msp.get("/api/v1/no-such-thing"), 404)
    problem(msp.request("DELETE", "/api/v1/clients"), 405)


def test_lists_are_paged_with_cursors_that_see_every_item_once(
    world: World, services: Blink, msp: Api
) -> None:
    for n in range(5):
        world.another_client(f"client-{n}")
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        url = "/api/v1/clients?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = msp.get(url).get_json()
        seen += [client["slug"] for client in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3 and sorted(seen) == sorted({"contoso", *(f"client-{n}" for n in range(5))})
    body = problem(msp.get("/api/v1/clients?cursor=not-a-cursor"), 422)
    assert body["errors"] == [{"field": "cursor", "message": "not a cursor from this API"}]

    for n in range(3):
        world.person(f"user{n}", None, status=UserStatus.PENDING)
    first = msp.get("/api/v1/clients/contoso/users?limit=2").get_json()
    rest = msp.get(f"/api/v1/clients/contoso/users?cursor={first['next_cursor']}").get_json()
    names = [u["username"] for u in first["items"] + rest["items"]]
    assert names == ["user0", "user1", "user2"] and rest["next_cursor"] is None
    only = msp.get("/api/v1/clients/contoso/users?search=user1").get_json()["items"]
    assert [u["username"] for u in only] == ["user1"]


def test_a_retried_push_reset_with_an_idempotency_key_texts_once(
    world: World, services: Blink, alice: Persona, msp: Api, twilio: FakeTwilio
) -> None:
    path = f"/api/v1/clients/contoso/users/{alice.user.id}/push-reset"
    key = {"Idempotency-Key": "ticket-4711"}
    first = msp.post(path, headers=key)
    assert first.status_code == 202, first.get_data(as_text=True)
    wait_for_jobs(services)
    again = msp.post(path, headers=key)
    wait_for_jobs(services)
    assert again.status_code == 202 and again.get_json() == first.get_json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert len(twilio.bodies_to(alice.phone or "")) == 1
    with services.db.session() as session:
        assert session.execute(select(func.count()).select_from(ResetRequest)).scalar_one() == 1
        # The stored answer is the ids and the state, never the password.
        [stored] = session.execute(select(IdempotencyKey)).scalars().all()
        [body] = twilio.bodies_to(alice.phone or "")
        assert password_in(body) not in (stored.response_body or "") + first.get_data(as_text=True)
    # The same key for another request is refused; without a key the call acts again.
    unlock = f"/api/v1/clients/contoso/users/{alice.user.id}/unlock"
    problem(msp.post(unlock, headers=key), 422)
    assert msp.post(path).status_code == 202
    wait_for_jobs(services)
    assert len(twilio.bodies_to(alice.phone or "")) == 2
    problem(msp.post(path, headers={"Idempotency-Key": "bad key with spaces"}), 422)


def test_a_refusal_is_replayed_too_and_keys_are_per_api_key(
    world: World, services: Blink, api_key: MakeKey, twilio: FakeTwilio
) -> None:
    bob = world.person("bob", None, status=UserStatus.PENDING)  # no phone: no reset
    path = f"/api/v1/clients/contoso/users/{bob.user.id}/push-reset"
    first, second = api_key(name="one"), api_key(name="two")
    refused = problem(first.post(path, headers={"Idempotency-Key": "k1"}), 409)
    replay = first.post(path, headers={"Idempotency-Key": "k1"})
    assert replay.get_json() == refused and replay.headers["Idempotent-Replayed"] == "true"
    other = second.post(path, headers={"Idempotency-Key": "k1"})
    assert "Idempotent-Replayed" not in other.headers


@pytest.fixture
def limited(settings: Settings) -> Settings:
    return settings.with_changes(api_requests_per_minute=3)


def test_each_key_has_a_rate_limit_with_headers(
    limited: Settings, world: World, services: Blink
) -> None:
    app = create_app(limited)
    http = app.test_client()
    with services.db.session() as session:
        _, key = api_keys.create_key(session, COMMAND_LINE, name="a", client=None, writes=False)
        _, other = api_keys.create_key(session, COMMAND_LINE, name="b", client=None, writes=False)
    busy, calm = Api(http, key), Api(http, other)
    answers = [busy.get("/api/v1/me") for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert [a.headers["RateLimit-Remaining"] for a in answers] == ["2", "1", "0"]
    assert answers[0].headers["RateLimit-Limit"] == "3"
    assert 0 < int(answers[0].headers["RateLimit-Reset"]) <= 60
    body = problem(busy.get("/api/v1/me"), 429)
    assert "3 calls a minute" in body["detail"]
    assert 1 <= int(busy.get("/api/v1/me").headers["Retry-After"]) <= 60
    assert calm.get("/api/v1/me").status_code == 200


def test_the_rate_limit_is_counted_in_redis_across_processes(
    limited: Settings, redis_url: str, world: World, services: Blink
) -> None:
    shared = limited.with_changes(redis_url=redis_url)
    one, two = create_app(shared).test_client(), create_app(shared).test_client()
    with services.db.session() as session:
        _, key = api_keys.create_key(session, COMMAND_LINE, name="a", client=None, writes=False)
    statuses = [Api(http, key).get("/api/v1/me").status_code for http in (one, two, one, two)]
    assert statuses == [200, 200, 200, 429]


def test_calls_act_as_the_key_and_are_audited_with_where_they_came_from(
    world: World, services: Blink, alice: Persona, api_key: MakeKey, twilio: FakeTwilio
) -> None:
    psa = api_key(client=world.client, name="Autotask")
    assert psa.post(f"/api/v1/clients/contoso/users/{alice.user.id}/unlock").status_code == 202
    with services.db.session() as session:
        event = session.execute(
            select(AuditEvent).where(AuditEvent.action == "unlock.requested")
        ).scalar_one()
    assert event.actor.startswith("api_key:") and event.actor.endswith(":Autotask")
    assert event.detail["source"] == "127.0.0.1" and event.user_id == alice.user.id


def test_a_user_says_whether_their_reset_pin_is_set_or_blocked(
    world: World, services: Blink, alice: Persona, api_key: MakeKey
) -> None:
    psa = api_key(client=world.client, name="Autotask", writes=False)
    path = f"/api/v1/clients/contoso/users/{alice.user.id}"
    assert psa.get(path).json["reset_pin"] is None
    with services.db.session() as session:
        user = session.get_one(User, alice.user.id)
        pins.set_at_enrollment(session, user, "7305", actor="test")
        session.commit()
    assert psa.get(path).json["reset_pin"] == "set"
    with services.db.session() as session:
        session.execute(update(User).values(pin_blocked_until=utcnow() + timedelta(hours=1)))
        session.commit()
    assert psa.get(path).json["reset_pin"] == "blocked"
    listed = psa.get("/api/v1/clients/contoso/users").json["items"]
    assert {item["id"]: item["reset_pin"] for item in listed}[alice.user.id] == "blocked"
