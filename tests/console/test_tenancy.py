"""Tenancy over every console route, generated from the app's URL map.

A client admin of Contoso asking for anything of Fabrikam gets 404, for every route
and method, exactly as for an object that does not exist; pages that list things show
nothing of Fabrikam; an auditor's POSTs are refused with 403. A new route is covered
the moment it exists: a URL parameter this test does not know fails it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask
from werkzeug.routing import Rule

from blink_sms.actors import COMMAND_LINE, Role
from blink_sms.models import Client
from blink_sms.services import webhooks
from console import auth

from ..conftest import Persona, World
from .conftest import Console, make_admin

# What each URL parameter names, and so which of Fabrikam's objects to put in it.
OBJECT_PARAMETERS = {"slug", "user_id", "admin_id", "key_id", "webhook_id"}
# Parameters that name no tenant's object (a link token): any value.
OTHER_PARAMETERS = {"token", "filename"}


@dataclass
class Tenants:
    contoso: Client
    fabrikam: Client
    mine: Persona  # a Contoso user
    theirs: Persona  # a Fabrikam user
    their_admin_id: int


@pytest.fixture
def tenants(world: World, fabrikam: Client, services: Any) -> Tenants:
    mine = world.person("carol", "+15551230031")
    theirs = world.person("zed", "+15551230032", client=fabrikam)
    their_admin = make_admin(services, Role.CLIENT_ADMIN, fabrikam)
    with services.db.session() as session:  # Fabrikam's webhook endpoint: the only one, id 1
        url = "https://psa.fabrikam.example/hook"
        webhooks.create_endpoint(session, services.secrets, COMMAND_LINE, url=url, client=fabrikam)
    return Tenants(world.client, fabrikam, mine, theirs, their_admin.id)


def console_rules(app: Flask) -> Iterator[Rule]:
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("console.") and rule.endpoint != "console.static":
            yield rule


def _values(rule: Rule, client: Client, user: Persona, admin_id: int) -> dict[str, Any]:
    unknown = set(rule.arguments) - OBJECT_PARAMETERS - OTHER_PARAMETERS
    assert not unknown, f"{rule.rule}: teach test_tenancy what {sorted(unknown)} name"
    values: dict[str, Any] = {}
    for name in rule.arguments:
        values[name] = {
            "slug": client.slug,
            "user_id": user.user.id,
            "admin_id": admin_id,
            "key_id": 1,  # keys are the MSP owners' only: any id is another's
            "webhook_id": 1,  # Fabrikam's endpoint, made by the tenants fixture
        }.get(name, "x" * 43)
    return values


def _path(rule: Rule, values: dict[str, Any]) -> str:
    path = rule.rule
    for name, value in values.items():
        path = path.replace(f"<{name}>", str(value)).replace(f"<int:{name}>", str(value))
    return path


def _exempt(rule: Rule) -> bool:
    """Routes that act on no client's objects: signing in, the admin's own account."""
    return rule.endpoint in auth.PUBLIC | auth.SELF_SERVICE | auth.OWN_ACCOUNT


def test_every_route_hides_another_clients_objects(
    app: Flask, tenants: Tenants, console_as: Callable[..., Console]
) -> None:
    """Client admin of Contoso → Fabrikam's objects: 404 on every method of every route."""
    contoso_admin = console_as(Role.CLIENT_ADMIN, tenants.contoso)
    checked = 0
    for rule in console_rules(app):
        if _exempt(rule):
            continue
        values = _values(rule, tenants.fabrikam, tenants.theirs, tenants.their_admin_id)
        path = _path(rule, values)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            get = method == "GET"
            response = contoso_admin.http.get(path) if get else contoso_admin.post(path)
            if rule.arguments & OBJECT_PARAMETERS or method != "GET":
                assert response.status_code == 404, f"{method} {rule.rule}: {response.status_code}"
            else:
                # A listing: it may show, but never anything of Fabrikam.
                body = response.get_data(as_text=True)
                assert response.status_code in (200, 302, 404), f"{rule.rule}"
                assert "Fabrikam" not in body and tenants.theirs.username not in body, rule.rule
            checked += 1
    assert checked >= 10  # the console's routes were found


def test_a_client_admin_reaches_their_own_clients_pages(
    app: Flask, tenants: Tenants, console_as: Callable[..., Console]
) -> None:
    """The 404s above come from the scoping: the same pages of Contoso open (GET)."""
    contoso_admin = console_as(Role.CLIENT_ADMIN, tenants.contoso)
    for rule in console_rules(app):
        if _exempt(rule) or "GET" not in (rule.methods or set()):
            continue
        if not rule.arguments & {"slug", "user_id"} or rule.arguments - {"slug", "user_id"}:
            continue
        path = _path(rule, _values(rule, tenants.contoso, tenants.mine, 0))
        response = contoso_admin.http.get(path)
        if rule.endpoint in MSP_ONLY:
            assert response.status_code in (403, 404), rule.rule
        else:
            assert response.status_code in (200, 302), f"GET {rule.rule}: {response.status_code}"


# Pages of a client that only MSP staff may open (a client admin is refused their own).
MSP_ONLY = {"console.edit_client"}


def test_an_auditor_may_look_but_every_post_is_refused(
    app: Flask, tenants: Tenants, console_as: Callable[..., Console]
) -> None:
    auditor = console_as(Role.AUDITOR)
    posts = 0
    for rule in console_rules(app):
        if _exempt(rule) or "POST" not in (rule.methods or set()):
            continue
        values = _values(rule, tenants.contoso, tenants.mine, tenants.their_admin_id)
        response = auditor.post(_path(rule, values))
        assert response.status_code == 403, f"POST {rule.rule}: {response.status_code}"
        posts += 1
    assert posts >= 1
    assert auditor.http.get(f"/admin/clients/{tenants.contoso.slug}").status_code == 200
