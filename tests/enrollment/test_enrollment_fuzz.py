"""A fuzz run over the enrollment pages: two clients, 100 links, 20 addresses, 1,000 tries.

What must hold whatever the order: a number bound to somebody is answered exactly as
a free number can be; the caps per address and per client are never passed; no code
goes to a number outside the client's allowed countries, or to a taken number."""

from __future__ import annotations

import random
import re
import secrets
from collections import Counter
from datetime import timedelta
from typing import Any

import phonenumbers
import pytest
from flask import Flask, g
from flask.testing import FlaskClient
from sqlalchemy import select

from blink_sms.context import Blink
from blink_sms.models import Client, Invitation, User, UserStatus, VerificationCode, utcnow
from blink_sms.services.invitations import token_hash
from blink_sms.settings import Settings
from tests.conftest import GATEWAY, World
from tests.support.fake_twilio import FakeTwilio

from .conftest import CSRF, csrf_of

PER_IP, PER_CLIENT = 4, 30
ATTEMPTS, ADDRESSES, LINKS_PER_CLIENT = 1_000, 20, 50
OTHER_GATEWAY = "+15005550007"  # World.another_client's sender


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.with_changes(
        enrollment_codes_per_ip=PER_IP,
        enrollment_codes_per_client=PER_CLIENT,
        enrollment_codes_per_minute=10_000,  # the breaker has its own test
    )


def links_for(services: Blink, client: Client, prefix: str) -> list[str]:
    """Open activation links of fresh invited users, made in one go (no email: speed)."""
    now = utcnow()
    tokens = [secrets.token_urlsafe(32) for _ in range(LINKS_PER_CLIENT)]
    with services.db.session() as session:
        for index, token in enumerate(tokens):
            user = User(
                client_id=client.id,
                directory_id=f"{prefix}-{index}",
                username=f"{prefix}{index}",
                display_name=f"{prefix}{index}".title(),
                email=f"{prefix}{index}@contoso.example",
                status=UserStatus.INVITED,
            )
            session.add(user)
            session.flush()
            session.add(
                Invitation(
                    user_id=user.id,
                    actor="cli",
                    token_hash=token_hash(token),
                    created_at=now,
                    expires_at=now + timedelta(hours=72),
                    email_status="sent",
                )
            )
        session.commit()
    return [f"/enroll/{token}" for token in tokens]


def normalised(response: Any, path: str, typed: str) -> tuple[int, str]:
    """What a visitor sees, without what differs by design: token, CSRF, name, number."""
    body = CSRF.sub("CSRF", response.get_data(as_text=True))
    body = re.sub(r"Hello \w+\.", "Hello NAME.", body)  # the user's name
    body = body.replace(path.rsplit("/", 1)[1], "TOKEN")
    if typed:
        body = body.replace(typed, "NUMBER")
    return response.status_code, f"{response.headers.get('Location', '')}\n{body}".replace(
        path.rsplit("/", 1)[1], "TOKEN"
    )


def test_a_thousand_tries_from_twenty_addresses_over_two_clients(
    app: Flask, services: Blink, world: World, twilio: FakeTwilio
) -> None:
    rng = random.Random(13)  # noqa: S311 - a repeatable run, not a secret
    with services.db.session() as session:
        contoso = session.get_one(Client, world.client.id)
        contoso.allowed_countries = "BE,NL"
        session.commit()
    fabrikam = world.another_client()  # no list: US only
    taken = {
        "+31612399001": world.person("tom", "+31612399001"),
        "+31612399002": world.person("tim", "+31612399002", client=fabrikam),
        "+12015559001": world.person("ted", "+12015559001", client=fabrikam),
        "+12015559002": world.person("tia", "+12015559002"),
    }
    links = {
        world.client.id: links_for(services, world.client, "c"),
        fabrikam.id: links_for(services, fabrikam, "f"),
    }
    allowed = {GATEWAY: {"BE", "NL"}, OTHER_GATEWAY: {"US"}}
    # Free and taken numbers, in and out of each client's countries.
    pools = {
        world.client.id: [f"+316123{i:05d}" for i in range(40)]
        + [f"+1201555{i:04d}" for i in range(5)]
        + ["+31612399001", "+31612399002", "+12015559002"],
        fabrikam.id: [f"+1201555{i:04d}" for i in range(40)]
        + [f"+316123{i:05d}" for i in range(5)]
        + ["+12015559001", "+12015559002", "+31612399002"],
    }
    odd = ["+881612345678", "+19005551234", "+448712345678", "hello", "+31 6 1234", ""]
    browsers: list[tuple[str, FlaskClient, str]] = []
    for index in range(ADDRESSES):
        address = f"198.51.100.{index + 1}"
        browser = app.test_client()
        browser.environ_base["REMOTE_ADDR"] = address
        g.pop("csrf_token", None)  # cached in the test's long-lived app context
        token = csrf_of(browser.get(links[fabrikam.id][-1]).get_data(as_text=True))
        browsers.append((address, browser, token))

    answers: dict[bool, set[tuple[int, str]]] = {True: set(), False: set()}
    codes_by_address: dict[str, int] = {}
    for _ in range(ATTEMPTS):
        address, browser, token = rng.choice(browsers)
        client_id = rng.choice(list(links))
        path = rng.choice(links[client_id])
        roll = rng.random()
        if roll < 0.15:
            response = browser.post(
                path + "/code", data={"csrf_token": token, "code": f"{rng.randrange(10**6):06d}"}
            )
            continue
        number = rng.choice(pools[client_id]) if roll < 0.85 else rng.choice(odd)
        response = browser.post(path, data={"csrf_token": token, "number": number})
        if number in pools[client_id] and _open_number_step(response):
            answers[number in taken].add(normalised(response, path, number))
        if response.status_code == 303 and response.location.endswith("/code"):
            codes_by_address[address] = codes_by_address.get(address, 0) + 1

    # Taken numbers answer as free ones do, and did reach the code step.
    assert answers[True] and answers[True] <= answers[False]
    assert any(status == 303 for status, _ in answers[True])
    # The caps: codes (real and decoy) per address and per client.
    assert max(codes_by_address.values()) <= PER_IP
    with services.db.session() as session:
        issued = session.execute(
            select(User.client_id)
            .join(Invitation, Invitation.user_id == User.id)
            .join(VerificationCode, VerificationCode.invitation_id == Invitation.id)
        ).scalars()
        per_client = Counter(issued)
        assert set(per_client) == set(links)
        assert max(per_client.values()) == PER_CLIENT  # the cap was reached, and held
        # Nobody was bound by a guessed code, and the taken numbers kept their owners.
        bound = session.execute(select(User.phone).where(User.phone.is_not(None))).scalars()
        assert set(bound) == set(taken)
    # No text outside the client's countries, nor to a taken number.
    assert twilio.sent
    for message in twilio.sent:
        region = phonenumbers.region_code_for_number(phonenumbers.parse(message["To"], None))
        assert region in allowed[message["From"]], message["To"]
        assert message["To"] not in taken


def _open_number_step(response: Any) -> bool:
    """A number-step answer of a link still open (a locked link answers 410 alike)."""
    return response.status_code in (303, 422, 429, 503)
