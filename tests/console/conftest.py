"""Console fixtures: admins of every role, signed in, and a second client to stay out of.

``console_as(role, client=None)`` creates an admin row and signs a test client in as
them by writing the session the console's own sign-in writes (second factor passed):
page tests need not repeat the sign-in, which ``test_sign_in.py`` drives for real.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask, g
from flask.testing import FlaskClient

from blink_sms.actors import Role, admin_actor
from blink_sms.context import Blink
from blink_sms.models import Admin, Client, utcnow

from ..conftest import World


@dataclass
class Console:
    """A browser signed in to the console as one admin."""

    http: FlaskClient
    admin_id: int
    email: str
    role: Role
    client_id: int | None

    @property
    def actor(self) -> Any:
        return admin_actor(self.admin_id, self.email, self.role, self.client_id)

    def csrf(self, path: str = "/admin/account") -> str:
        """A CSRF token, read from a page's form as a browser would."""
        g.pop("csrf_token", None)  # cached in the test's long-lived app context
        page = self.http.get(path)
        match = re.search(rb'name="csrf_token" value="([^"]+)"', page.data)
        assert match, f"no CSRF token on {path}"
        return match.group(1).decode()

    def post(self, path: str, data: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        """POST a form with a valid CSRF token."""
        return self.http.post(path, data={"csrf_token": self.csrf(), **(data or {})}, **kwargs)


def make_admin(
    services: Blink, role: Role, client: Client | None = None, email: str | None = None
) -> Admin:
    with services.db.session() as session:
        admin = Admin(
            email=email or f"{role.value}-{time.monotonic_ns()}@msp.example",
            name=role.display,
            role=role,
            client_id=client.id if client else None,
            totp_confirmed_at=utcnow(),
        )
        session.add(admin)
        session.commit()
        session.expunge(admin)
        return admin


def sign_in_as(http: FlaskClient, admin: Admin) -> None:
    now = int(time.time())
    with http.session_transaction() as session:
        session["console"] = {
            "admin": admin.id,
            "epoch": admin.session_epoch or 0,
            "at": now,
            "seen": now,
            "2fa": True,
        }


@pytest.fixture
def console_as(app: Flask, services: Blink, world: World) -> Callable[..., Console]:
    """Sign in as an admin of ``role`` (a client admin: of ``client``). Contoso exists.

    The ``app`` fixture keeps one app context open for the whole test, so test clients
    share ``flask.g``, where Flask-WTF caches a request's CSRF token: ``Console.csrf``
    forgets it before reading a page.
    """

    def make(role: Role = Role.MSP_OWNER, client: Client | None = None) -> Console:
        admin = make_admin(services, role, client)
        http = app.test_client()
        sign_in_as(http, admin)
        return Console(http, admin.id, admin.email, role, admin.client_id)

    return make


@pytest.fixture
def owner(console_as: Callable[..., Console]) -> Console:
    return console_as(Role.MSP_OWNER)


@pytest.fixture
def fabrikam(world: World) -> Client:
    """A second client, whose objects a client admin of Contoso must never reach."""
    return world.another_client("fabrikam")
